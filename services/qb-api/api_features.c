/* api_features.c — the features routes of the gateway (see api.h for the handler API). */
#include "api.h"

const api_route_t api_routes_features[] = {{0}};
