/* qb_ta_int.h — internals shared by qb_ta.c (API, spec parsing) and
 * qb_ta_kinds.c (the indicator definitions). Not for use outside libs/ta.
 *
 * An indicator kind is one row of a table (ta_kind_t): its parameters with
 * defaults and bounds, its outputs, the inputs it reads, and two functions:
 *   init    check cross-parameter rules, set the lookback, size the ring
 *           buffers (ta_alloc). Runs at creation and again at every reset
 *           (ta_alloc then hands back the same, zeroed, buffers).
 *   update  consume one bar and write the outputs. Outputs written for a
 *           bar before the lookback are replaced by NaN by the caller
 *           (qb_ta_update), so an update need not special-case them.
 * The batch form (qb_ta_batch) calls the same update for every bar: there
 * is no second implementation to drift. */
#ifndef QB_TA_INT_H
#define QB_TA_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ta/qb_ta.h"

#define TA_MAX_ALLOCS 12

typedef struct ta_param_s {
    const char *name;
    int is_int;          /* integer parameter: written and stored as integer */
    double def, min, max;
} ta_param_t;

struct qb_ta_s;

typedef struct ta_kind_s {
    qb_ta_info_t info;
    int nparams;
    int ncore; /* parameters always shown in the canonical spec */
    ta_param_t params[QB_TA_MAX_PARAMS];
    int nout;
    const char *outs[QB_TA_MAX_OUTPUTS];
    unsigned inputs;
    size_t state_size;
    qb_err_t (*init)(struct qb_ta_s *ta, char *errstr, size_t errstr_size);
    void (*update)(struct qb_ta_s *ta, const qb_ta_bar_t *bar, double *out);
} ta_kind_t;

struct qb_ta_s {
    const ta_kind_t *kind;
    double p[QB_TA_MAX_PARAMS]; /* parameter values (defaults filled in) */
    int ip[QB_TA_MAX_PARAMS];   /* the same, as int, for integer parameters */
    char spec[QB_TA_SPEC_MAX];
    int lookback;
    unsigned inputs;            /* may differ from kind->inputs (vwap reset) */
    int64_t t;                  /* bars fed */
    int ready;
    double last[QB_TA_MAX_OUTPUTS];
    void *st;                   /* kind state, kind->state_size bytes */
    void *allocs[TA_MAX_ALLOCS];
    size_t alloc_n[TA_MAX_ALLOCS];
    int nalloc, nalloc_used;
    int nomem;
};

/* Zeroed array of n doubles owned by the instance (freed at destroy). At a
 * reset the same buffers come back in the same order, zeroed. On failure
 * sets ta->nomem and returns a static dummy of one element: init must not
 * use it beyond storing the pointer (qb_ta_new fails afterwards). */
double *ta_alloc(struct qb_ta_s *ta, size_t n);

/* The kind table (qb_ta_kinds.c). */
extern const ta_kind_t ta_kinds[];
extern const int ta_nkinds;

#endif
