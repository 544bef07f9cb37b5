// validate_openapi.mjs FILE — validate an OpenAPI 3 document with
// @apidevtools/swagger-parser (installed by scripts/deps.sh into
// tests/e2e/api/node_modules). Exit 0 when valid, 1 with the reason.
import SwaggerParser from "@apidevtools/swagger-parser";
try {
  const api = await SwaggerParser.validate(process.argv[2]);
  console.log(`valid: ${api.info.title} ${api.info.version}, ${Object.keys(api.paths).length} paths`);
} catch (e) {
  console.error(String(e.message || e));
  process.exit(1);
}
