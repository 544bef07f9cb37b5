/* api_routes.c — the route table: the union of each domain file's table
 * (api_<domain>.c defines `const api_route_t api_routes_<domain>[]`, ended
 * by a row whose method is NULL). The server matches requests against it,
 * the OpenAPI document is generated from it, and the authorisation matrix
 * test walks it — so a route exists in all three or in none. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

extern const api_route_t api_routes_system[], api_routes_users[], api_routes_market[],
    api_routes_features[], api_routes_strategies[], api_routes_backtests[],
    api_routes_trading[], api_routes_risk[], api_routes_alerts[], api_routes_stream[];

static const api_route_t *const parts[] = {
    api_routes_system,  api_routes_users,    api_routes_market, api_routes_features,
    api_routes_strategies, api_routes_backtests, api_routes_trading, api_routes_risk,
    api_routes_alerts,  api_routes_stream};

static api_route_t *all;
static size_t nall;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    size_t n = 0;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        for (const api_route_t *r = parts[p]; r->method; r++) n++;
    all = calloc(n + 1, sizeof *all);
    if (!all) return;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        for (const api_route_t *r = parts[p]; r->method; r++) all[nall++] = *r;
}

const api_route_t *api_routes(size_t *n) {
    pthread_once(&once, build);
    *n = nall;
    return all;
}

/* ---- system routes ------------------------------------------------------------------- */
void h_openapi(api_req_t *r) {
    char *doc = api_openapi_json();
    if (!doc) {
        api_error(r, 500, NULL, "out of memory");
        return;
    }
    api_json_text(r, 200, doc, strlen(doc));
    free(doc);
}

void h_health(api_req_t *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "service", "qb-api");
    api_json(r, 200, o);
}

const api_route_t api_routes_system[] = {
    {"GET", "/api/v1/health", QB_ROLE_NONE, h_health, "system",
     "Liveness of the gateway (no credentials needed)", 200, NULL,
     "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"}}}", {{0}},
     API_R_INLINE},
    {"GET", "/api/v1/openapi.json", QB_ROLE_NONE, h_openapi, "system",
     "This API's OpenAPI 3 document, generated from the route table", 200, NULL, NULL, {{0}},
     API_R_INLINE},
    {0}};
