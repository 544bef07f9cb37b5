/* qb_md_sources.c — see qb_md_sources.h. */
#include "md/qb_md_sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "md/qb_md_alpaca.h"
#include "md/qb_md_coinbase.h"
#include "md/qb_md_csv.h"
#include "md/qb_md_polygon.h"
#include "md/qb_md_resample_src.h"
#include "md/qb_md_synth.h"
#include "md/qb_md_yahoo.h"

int qb_md_source_per_symbol(const char *name) {
    return name && strcmp(name, "csv") == 0;
}

static const char *opt(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static qb_md_source_t *csv_open(const cJSON *o, const char *symbol, char *errstr,
                                size_t errstr_size) {
    const char *p = opt(o, "path");
    if (!p || !*p) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: options.path is required");
        return NULL;
    }
    char path[4096], columns[4096];
    size_t n = 0;
    for (const char *q = p; *q;) {
        const char *piece = q;
        size_t len = 1;
        if (strncmp(q, "{symbol}", 8) == 0) {
            if (!symbol || !*symbol) {
                qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                           "csv: options.path has {symbol} but no symbol was given");
                return NULL;
            }
            piece = symbol;
            len = strlen(symbol);
            q += 8;
        } else {
            q++;
        }
        if (n + len >= sizeof path) {
            qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: options.path too long");
            return NULL;
        }
        memcpy(path + n, piece, len);
        n += len;
    }
    path[n] = '\0';
    snprintf(columns, sizeof columns, "%s", opt(o, "columns") ? opt(o, "columns") : "");
    qb_md_csv_opts_t co;
    char msg[512];
    if (qb_md_csv_opts_parse(opt(o, "format"), columns, opt(o, "time_format"), &co, msg,
                             sizeof msg) != QB_OK) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: %s", msg);
        return NULL;
    }
    return qb_md_csv_source_new(path, &co, errstr, errstr_size);
}

qb_md_source_t *qb_md_source_open(const char *name, const char *options, const char *symbol,
                                  char *errstr, size_t errstr_size) {
    return qb_md_source_open_store(name, options, symbol, NULL, errstr, errstr_size);
}

qb_md_source_t *qb_md_source_open_store(const char *name, const char *options,
                                        const char *symbol, qb_store_t *store, char *errstr,
                                        size_t errstr_size) {
    if (!name) name = "";
    cJSON *o = cJSON_Parse(options && *options ? options : "{}");
    qb_md_source_t *src = NULL;
    if (!cJSON_IsObject(o)) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: options are not a JSON object",
                   name);
    } else if (strcmp(name, "csv") == 0) {
        src = csv_open(o, symbol, errstr, errstr_size);
    } else if (strcmp(name, "synthetic") == 0 || strcmp(name, "synth") == 0) {
        const char *seed = opt(o, "seed");
        char *end = NULL;
        unsigned long long sv = seed ? strtoull(seed, &end, 10) : 42;
        if (seed && (!*seed || *end))
            qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                       "synthetic: options.seed must be a decimal integer, got '%.32s'", seed);
        else {
            qb_md_synth_opts_t so;
            qb_md_synth_opts_default(&so, (uint64_t)sv);
            src = qb_md_synth_source_new(&so, errstr, errstr_size);
        }
    } else if (strcmp(name, "resample") == 0) {
        const char *in = opt(o, "from_timeframe"), *cn = opt(o, "calendar");
        const qb_cal_t *cal = NULL;
        if (!store)
            qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                       "resample: needs the database (not available here)");
        else if (!cn || qb_cal_get(cn, &cal, errstr, errstr_size) == QB_OK)
            src = qb_md_resample_source_new(store, in ? in : "1m", cal, errstr, errstr_size);
    } else if (strcmp(name, "alpaca") == 0) {
        src = qb_md_alpaca_source_new(NULL, NULL, errstr, errstr_size);
    } else if (strcmp(name, "polygon") == 0) {
        src = qb_md_polygon_source_new(NULL, NULL, errstr, errstr_size);
    } else if (strcmp(name, "yahoo") == 0) {
        src = qb_md_yahoo_source_new(NULL, NULL, errstr, errstr_size);
    } else if (strcmp(name, "coinbase") == 0) {
        src = qb_md_coinbase_source_new(NULL, NULL, errstr, errstr_size);
    } else {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                   "unknown source \"%.32s\" (csv, synthetic, resample, alpaca, polygon, yahoo, "
                   "coinbase)",
                   name);
    }
    cJSON_Delete(o);
    return src;
}
