/* api_openapi.c — the OpenAPI 3.0 document, generated from the route table
 * at each request (so it can never describe a route the server does not
 * have, or miss one): paths, methods, path and query parameters with their
 * types and bounds, request body schemas, the success status, the error
 * responses every route can give, security (API key or bearer JWT) and the
 * least role as the extension x-min-role. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "svc/qb_svc.h"

static cJSON *error_ref(const char *desc) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "description", desc);
    cJSON *c = cJSON_AddObjectToObject(r, "content");
    cJSON *j = cJSON_AddObjectToObject(c, "application/json");
    cJSON *s = cJSON_AddObjectToObject(j, "schema");
    cJSON_AddStringToObject(s, "$ref", "#/components/schemas/Error");
    return r;
}

static cJSON *param_schema(const api_qparam_t *q) {
    cJSON *s = cJSON_CreateObject();
    switch (q->type) {
    case API_P_INT:
        cJSON_AddStringToObject(s, "type", "integer");
        cJSON_AddNumberToObject(s, "minimum", (double)q->min);
        cJSON_AddNumberToObject(s, "maximum", (double)q->max);
        break;
    case API_P_BOOL:
        cJSON_AddStringToObject(s, "type", "boolean");
        break;
    case API_P_TIME:
        cJSON_AddStringToObject(s, "type", "string");
        cJSON_AddStringToObject(s, "description",
                                "RFC 3339 time, YYYY-MM-DD, or integer ns since the epoch");
        break;
    case API_P_ENUM: {
        cJSON_AddStringToObject(s, "type", "string");
        cJSON *e = cJSON_AddArrayToObject(s, "enum");
        char buf[256];
        snprintf(buf, sizeof buf, "%s", q->values ? q->values : "");
        char *save = NULL;
        for (char *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save))
            cJSON_AddItemToArray(e, cJSON_CreateString(t));
        break;
    }
    case API_P_LIST:
        cJSON_AddStringToObject(s, "type", "string");
        cJSON_AddStringToObject(s, "description", "comma-separated list");
        break;
    case API_P_SYMBOL:
        cJSON_AddStringToObject(s, "type", "string");
        cJSON_AddStringToObject(s, "pattern", "^[A-Za-z0-9._:/^=-]{1,32}$");
        break;
    default:
        cJSON_AddStringToObject(s, "type", "string");
        cJSON_AddNumberToObject(s, "maxLength", (double)(q->max ? q->max : 200));
    }
    return s;
}

static cJSON *schema_or_invalid(const char *text) {
    cJSON *s = cJSON_Parse(text);
    if (s) return s;
    s = cJSON_CreateObject();
    cJSON_AddBoolToObject(s, "x-invalid-schema", 1); /* the route table test fails on this */
    return s;
}

static void op_id(const api_route_t *rt, char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "%s", rt->method);
    for (size_t i = 0; i < k; i++) out[i] = (char)(out[i] | 0x20);
    for (const char *p = rt->path + strlen("/api/v1"); *p && k + 2 < n; p++) {
        if (*p == '/' || *p == '-' || *p == '.' || *p == '{' || *p == '}') {
            if (k && out[k - 1] != '_') out[k++] = '_';
        } else {
            out[k++] = *p;
        }
    }
    while (k && out[k - 1] == '_') k--;
    out[k] = 0;
}

char *api_openapi_json(void) {
    size_t n;
    const api_route_t *rt = api_routes(&n);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "openapi", "3.0.3");
    cJSON *info = cJSON_AddObjectToObject(doc, "info");
    cJSON_AddStringToObject(info, "title", "Quantbus API");
    cJSON_AddStringToObject(info, "version", QB_VERSION);
    cJSON_AddStringToObject(
        info, "description",
        "The HTTP gateway of Quantbus. Errors are {\"error\":{\"code\",\"message\",\"field\"}}. "
        "Prices, quantities and money are exact decimals (JSON numbers with up to 8 decimals); "
        "times are RFC 3339 UTC. Writes go to Kafka and answer 202 once the bus acknowledged "
        "them. Lists are paged with limit and the opaque next_cursor.");
    cJSON *servers = cJSON_AddArrayToObject(doc, "servers");
    cJSON *srv = cJSON_CreateObject();
    cJSON_AddStringToObject(srv, "url", "/");
    cJSON_AddItemToArray(servers, srv);
    cJSON *comp = cJSON_AddObjectToObject(doc, "components");
    cJSON *sec = cJSON_AddObjectToObject(comp, "securitySchemes");
    cJSON *ak = cJSON_AddObjectToObject(sec, "apiKey");
    cJSON_AddStringToObject(ak, "type", "apiKey");
    cJSON_AddStringToObject(ak, "in", "header");
    cJSON_AddStringToObject(ak, "name", "X-API-Key");
    cJSON *br = cJSON_AddObjectToObject(sec, "bearer");
    cJSON_AddStringToObject(br, "type", "http");
    cJSON_AddStringToObject(br, "scheme", "bearer");
    cJSON_AddStringToObject(br, "bearerFormat", "JWT");
    cJSON *schemas = cJSON_AddObjectToObject(comp, "schemas");
    cJSON_AddItemToObject(
        schemas, "Error",
        cJSON_Parse("{\"type\":\"object\",\"required\":[\"error\"],\"properties\":{\"error\":"
                    "{\"type\":\"object\",\"required\":[\"code\",\"message\",\"field\"],"
                    "\"properties\":{\"code\":{\"type\":\"string\"},\"message\":{\"type\":"
                    "\"string\"},\"field\":{\"type\":\"string\",\"nullable\":true}}}}}"));
    cJSON *paths = cJSON_AddObjectToObject(doc, "paths");
    for (size_t i = 0; i < n; i++) {
        const api_route_t *r = &rt[i];
        cJSON *item = cJSON_GetObjectItemCaseSensitive(paths, r->path);
        if (!item) item = cJSON_AddObjectToObject(paths, r->path);
        char m[8];
        snprintf(m, sizeof m, "%s", r->method);
        for (char *c = m; *c; c++) *c = (char)(*c | 0x20);
        cJSON *op = cJSON_AddObjectToObject(item, m);
        char id[200];
        op_id(r, id, sizeof id);
        cJSON_AddStringToObject(op, "operationId", id);
        cJSON_AddStringToObject(op, "summary", r->summary ? r->summary : "");
        cJSON *tags = cJSON_AddArrayToObject(op, "tags");
        cJSON_AddItemToArray(tags, cJSON_CreateString(r->tag ? r->tag : "misc"));
        cJSON_AddStringToObject(op, "x-min-role",
                                r->min_role == QB_ROLE_NONE ? "public" : qb_role_name(r->min_role));
        cJSON *params = cJSON_AddArrayToObject(op, "parameters");
        for (const char *p = strchr(r->path, '{'); p; p = strchr(p + 1, '{')) {
            const char *e = strchr(p, '}');
            if (!e) break;
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
            cJSON *pp = cJSON_CreateObject();
            cJSON_AddStringToObject(pp, "name", name);
            cJSON_AddStringToObject(pp, "in", "path");
            cJSON_AddBoolToObject(pp, "required", 1);
            cJSON *s = cJSON_AddObjectToObject(pp, "schema");
            cJSON_AddStringToObject(s, "type", "string");
            size_t nl = strlen(name);
            if (!strcmp(name, "id") || (nl > 3 && !strcmp(name + nl - 3, "_id")))
                cJSON_AddStringToObject(s, "format", "uuid");
            cJSON_AddItemToArray(params, pp);
        }
        for (int q = 0; q < API_MAX_QPARAMS && r->q[q].name; q++) {
            cJSON *pp = cJSON_CreateObject();
            cJSON_AddStringToObject(pp, "name", r->q[q].name);
            cJSON_AddStringToObject(pp, "in", "query");
            cJSON_AddBoolToObject(pp, "required", r->q[q].required);
            if (r->q[q].desc) cJSON_AddStringToObject(pp, "description", r->q[q].desc);
            cJSON_AddItemToObject(pp, "schema", param_schema(&r->q[q]));
            cJSON_AddItemToArray(params, pp);
        }
        if (r->flags & API_R_STREAM) {
            cJSON *pp = cJSON_CreateObject();
            cJSON_AddStringToObject(pp, "name", "access_token");
            cJSON_AddStringToObject(pp, "in", "query");
            cJSON_AddBoolToObject(pp, "required", 0);
            cJSON_AddStringToObject(pp, "description",
                                    "JWT or API key, for clients that cannot set headers "
                                    "(EventSource)");
            cJSON *s = cJSON_AddObjectToObject(pp, "schema");
            cJSON_AddStringToObject(s, "type", "string");
            cJSON_AddItemToArray(params, pp);
        }
        if (r->body_schema) {
            cJSON *rb = cJSON_AddObjectToObject(op, "requestBody");
            cJSON_AddBoolToObject(rb, "required", 1);
            cJSON *c = cJSON_AddObjectToObject(rb, "content");
            cJSON *j = cJSON_AddObjectToObject(c, "application/json");
            cJSON_AddItemToObject(j, "schema", schema_or_invalid(r->body_schema));
        }
        cJSON *resp = cJSON_AddObjectToObject(op, "responses");
        char st[8];
        snprintf(st, sizeof st, "%d", r->status ? r->status : 200);
        cJSON *ok = cJSON_AddObjectToObject(resp, st);
        cJSON_AddStringToObject(ok, "description", r->status == 202   ? "Accepted"
                                                   : r->status == 201 ? "Created"
                                                   : r->status == 204 ? "No content"
                                                                      : "OK");
        if (r->status != 204) {
            cJSON *c = cJSON_AddObjectToObject(ok, "content");
            const char *ct = (r->flags & API_R_STREAM) ? "text/event-stream"
                             : (r->flags & API_R_RAW)  ? "text/html"
                                                       : "application/json";
            cJSON *j = cJSON_AddObjectToObject(c, ct);
            if (!(r->flags & (API_R_STREAM | API_R_RAW)))
                cJSON_AddItemToObject(j, "schema",
                                      r->resp_schema ? schema_or_invalid(r->resp_schema)
                                                     : cJSON_Parse("{\"type\":\"object\"}"));
        }
        cJSON_AddItemToObject(resp, "400", error_ref("Bad request: the field names what"));
        if (r->min_role != QB_ROLE_NONE) {
            cJSON_AddItemToObject(resp, "401", error_ref("Missing or wrong credentials"));
            cJSON_AddItemToObject(resp, "403", error_ref("Role not allowed"));
        }
        if (!(r->flags & API_R_NO_RATE))
            cJSON_AddItemToObject(resp, "429", error_ref("Rate limit exceeded (Retry-After)"));
        cJSON_AddItemToObject(resp, "503", error_ref("A dependency is unavailable"));
        cJSON *secs = cJSON_AddArrayToObject(op, "security");
        if (r->min_role != QB_ROLE_NONE) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddArrayToObject(a, "apiKey");
            cJSON_AddItemToArray(secs, a);
            cJSON *b = cJSON_CreateObject();
            cJSON_AddArrayToObject(b, "bearer");
            cJSON_AddItemToArray(secs, b);
        }
    }
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return s;
}
