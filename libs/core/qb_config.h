/* qb_config.h — typed configuration tables, read from the environment.
 *
 * Each service declares its settings as a table of entries, like Redis's
 * static_configs[] or an nginx module's directives: name, environment
 * variable, type, default, bounds, help, and the offset of the field in the
 * service's own config struct. qb_config_load() fills the struct from the
 * environment (default where unset), checks types and bounds, and on a bad
 * value returns QB_ERR_CONFIG with a message naming the variable, e.g.
 *   "QB_ADMIN_PORT=70000: must be between 0 and 65535".
 * qb_config_help() prints the table for --help.
 *
 * Field types: QB_CFG_STRING -> const char * (points into the environment or
 * at the default literal; never freed), QB_CFG_INT -> int64_t, QB_CFG_BOOL ->
 * int (accepts 1/0/true/false/yes/no/on/off), QB_CFG_DOUBLE -> double. */
#ifndef QB_CONFIG_H
#define QB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/qb_err.h"

typedef enum qb_cfg_type_e {
    QB_CFG_STRING,
    QB_CFG_INT,
    QB_CFG_BOOL,
    QB_CFG_DOUBLE
} qb_cfg_type_t;

#define QB_CFG_SECRET 0x1   /* never printed or logged */
#define QB_CFG_REQUIRED 0x2 /* no default: must be set */

typedef struct qb_cfg_entry_s {
    const char *name;   /* dotted name, e.g. "admin.port" */
    const char *env;    /* environment variable, e.g. "QB_ADMIN_PORT" */
    qb_cfg_type_t type;
    const char *def;    /* default as text; NULL with QB_CFG_REQUIRED */
    double min, max;    /* bounds for INT/DOUBLE, max length for STRING;
                           ignored when min > max */
    size_t offset;      /* offsetof(struct, field) */
    int flags;
    const char *help;
} qb_cfg_entry_t;

/* One table and the struct it fills. A table ends with an entry whose name
 * is NULL. */
typedef struct qb_cfg_section_s {
    const char *title;
    const qb_cfg_entry_t *entries;
    void *dst;
} qb_cfg_section_t;

/* Fill every section's struct. Stops at the first bad value. */
qb_err_t qb_config_load(const qb_cfg_section_t *sections, int n,
                        char *errstr, size_t errstr_size);

/* Parse one value into *dst per the entry; used by qb_config_load and tests. */
qb_err_t qb_config_parse_value(const qb_cfg_entry_t *e, const char *value,
                               void *dst_struct, char *errstr,
                               size_t errstr_size);

/* Print "usage" text listing every entry: env var, type, default, bounds,
 * help. */
void qb_config_help(FILE *out, const char *prog, const char *about,
                    const qb_cfg_section_t *sections, int n);

/* Log the effective configuration (secrets shown as "***"). */
void qb_config_log(const qb_cfg_section_t *sections, int n);

#endif
