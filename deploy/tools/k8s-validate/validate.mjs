// validate.mjs — offline schema validation of Kubernetes manifests with
// kubernetes-models (the API's OpenAPI schemas compiled to ajv validators;
// no cluster, no network). Used by tests/e2e/test_deploy_manifests.sh.
//
//   node validate.mjs FILE.yaml...      (multi-document YAML; '-' = stdin)
//
// Every document must have apiVersion and kind of a built-in API group the
// package knows; unknown kinds fail (so a typo in a kind is caught). Prints
// one line per document and exits 1 if any failed.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE.yaml...");
  process.exit(2);
}

async function modelFor(apiVersion, kind) {
  // "apps/v1" -> kubernetes-models/apps/v1 ; "v1" -> kubernetes-models/v1
  const path = `kubernetes-models/${apiVersion}/${kind}`;
  try {
    const mod = await import(path);
    return mod[kind] || mod.default;
  } catch (e) {
    return null;
  }
}

let bad = 0, n = 0;
for (const f of files) {
  const text = readFileSync(f === "-" ? 0 : f, "utf8");
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      console.log(`FAIL ${f}: YAML: ${doc.errors[0].message}`);
      bad++;
      continue;
    }
    const obj = doc.toJS();
    if (obj == null) continue; // empty document
    n++;
    const where = `${f}: ${obj.kind}/${obj.metadata && obj.metadata.name}`;
    if (!obj.apiVersion || !obj.kind) {
      console.log(`FAIL ${where}: no apiVersion/kind`);
      bad++;
      continue;
    }
    const Model = await modelFor(obj.apiVersion, obj.kind);
    if (!Model) {
      console.log(`FAIL ${where}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`ok   ${where}`);
    } catch (e) {
      bad++;
      const errs = e.errors ? e.errors.map((x) => `${x.instancePath} ${x.message}`).join("; ") : e.message;
      console.log(`FAIL ${where}: ${errs}`);
    }
  }
}
console.log(`${n} document(s), ${bad} invalid`);
process.exit(bad ? 1 : 0);
