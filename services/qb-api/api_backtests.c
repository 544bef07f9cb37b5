/* api_backtests.c — the backtests routes of the gateway (see api.h for the handler API). */
#include "api.h"

const api_route_t api_routes_backtests[] = {{0}};
