/* api_strategies.c — the strategies routes of the gateway (see api.h for the handler API). */
#include "api.h"

const api_route_t api_routes_strategies[] = {{0}};
