/* qb_config.c — loads typed config tables from the environment; see
 * qb_config.h. Owns nothing: strings point into the environment or at the
 * table's default literals. */
#include "core/qb_config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/qb_log.h"

static int qb_cfg_has_bounds(const qb_cfg_entry_t *e) { return e->min <= e->max; }

qb_err_t qb_config_parse_value(const qb_cfg_entry_t *e, const char *value,
                               void *dst_struct, char *errstr,
                               size_t errstr_size) {
    char *field = (char *)dst_struct + e->offset;
    char *end;
    switch (e->type) {
    case QB_CFG_STRING:
        if (qb_cfg_has_bounds(e) && (double)strlen(value) > e->max)
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "%s: longer than %.0f characters", e->env, e->max);
        if (qb_cfg_has_bounds(e) && (double)strlen(value) < e->min)
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "%s: must not be empty", e->env);
        *(const char **)field = value;
        return QB_OK;
    case QB_CFG_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end)
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "%s=%s: not an integer", e->env,
                              (e->flags & QB_CFG_SECRET) ? "***" : value);
        if (qb_cfg_has_bounds(e) && ((double)v < e->min || (double)v > e->max))
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "%s=%lld: must be between %.0f and %.0f", e->env,
                              v, e->min, e->max);
        *(int64_t *)field = (int64_t)v;
        return QB_OK;
    }
    case QB_CFG_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "%s=%s: not a number", e->env, value);
        if (qb_cfg_has_bounds(e) && (v < e->min || v > e->max))
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "%s=%g: must be between %g and %g", e->env, v,
                              e->min, e->max);
        *(double *)field = v;
        return QB_OK;
    }
    case QB_CFG_BOOL: {
        static const char *yes[] = {"1", "true", "yes", "on"};
        static const char *no[] = {"0", "false", "no", "off"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(value, yes[i]) == 0) { *(int *)field = 1; return QB_OK; }
            if (strcasecmp(value, no[i]) == 0) { *(int *)field = 0; return QB_OK; }
        }
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "%s=%s: not a boolean (use true/false, 1/0, yes/no, on/off)",
                          e->env, value);
    }
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "%s: unknown type",
                      e->env);
}

qb_err_t qb_config_load(const qb_cfg_section_t *sections, int n,
                        char *errstr, size_t errstr_size) {
    for (int s = 0; s < n; s++) {
        for (const qb_cfg_entry_t *e = sections[s].entries; e->name; e++) {
            const char *v = getenv(e->env);
            if (!v) {
                if (e->flags & QB_CFG_REQUIRED || !e->def)
                    return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                                      "%s: required but not set (%s)", e->env,
                                      e->help);
                v = e->def;
            }
            qb_err_t err = qb_config_parse_value(e, v, sections[s].dst, errstr,
                                                 errstr_size);
            if (err) return err;
        }
    }
    return QB_OK;
}

static const char *qb_cfg_type_name(qb_cfg_type_t t) {
    switch (t) {
    case QB_CFG_STRING: return "string";
    case QB_CFG_INT: return "int";
    case QB_CFG_BOOL: return "bool";
    case QB_CFG_DOUBLE: return "number";
    }
    return "?";
}

void qb_config_help(FILE *out, const char *prog, const char *about,
                    const qb_cfg_section_t *sections, int n) {
    fprintf(out, "Usage: %s [--help]\n\n%s\n\nConfiguration (environment variables):\n",
            prog, about ? about : "");
    for (int s = 0; s < n; s++) {
        fprintf(out, "\n  [%s]\n", sections[s].title);
        for (const qb_cfg_entry_t *e = sections[s].entries; e->name; e++) {
            fprintf(out, "  %-28s %-7s default: %s", e->env, qb_cfg_type_name(e->type),
                    (e->flags & QB_CFG_REQUIRED || !e->def) ? "(required)"
                    : (*e->def ? e->def : "\"\""));
            if (qb_cfg_has_bounds(e) && e->type != QB_CFG_STRING)
                fprintf(out, "  range: %g..%g", e->min, e->max);
            fprintf(out, "\n  %-28s %s%s\n", "", e->help,
                    (e->flags & QB_CFG_SECRET) ? " (secret: never logged)" : "");
        }
    }
    for (int s = 0; s < n; s++)
        for (const qb_cfg_entry_t *e = sections[s].entries; e->name; e++)
            if (strcmp(e->env, "QB_KAFKA_BROKERS") == 0) {
                fprintf(out, "\n  Any QB_KAFKA_<property> variable is passed to librdkafka as\n"
                             "  <property> with '_' turned into '.', e.g. "
                             "QB_KAFKA_SECURITY_PROTOCOL=SASL_SSL.\n");
                return;
            }
}

void qb_config_log(const qb_cfg_section_t *sections, int n) {
    for (int s = 0; s < n; s++) {
        for (const qb_cfg_entry_t *e = sections[s].entries; e->name; e++) {
            const char *v = getenv(e->env);
            const char *shown = (e->flags & QB_CFG_SECRET) ? "***"
                                : v ? v : (e->def ? e->def : "");
            QB_INFO("config %s=%s%s", e->env, shown, v ? "" : " (default)");
        }
    }
}
