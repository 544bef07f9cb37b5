/* api_market.c — the market routes of the gateway (see api.h for the handler API). */
#include "api.h"

const api_route_t api_routes_market[] = {{0}};
