/* qb_types.c — validation, names and rules of the domain value types; see
 * qb_types.h. Owns nothing: every function works on caller-owned structs. */
#include "core/qb_types.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define QB_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- symbol ------------------------------------------------------------- */

static int qb_symbol_char_ok(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr(".-/_^=", c) != NULL);
}

qb_err_t qb_symbol_set_len(qb_symbol_t *sym, const char *s, size_t len,
                           char *errstr, size_t errstr_size) {
    qb_symbol_t tmp;
    if (len == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "symbol is empty");
    if (len > QB_SYMBOL_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "symbol longer than %d characters", QB_SYMBOL_MAX);
    memset(&tmp, 0, sizeof tmp);
    for (size_t i = 0; i < len; i++) {
        char c = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A') : s[i];
        if (!qb_symbol_char_ok(c))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "symbol has invalid character 0x%02x at position %zu"
                              " (allowed: A-Z 0-9 . - / _ ^ =)",
                              (unsigned char)s[i], i);
        tmp.s[i] = c;
    }
    *sym = tmp;
    return QB_OK;
}

qb_err_t qb_symbol_set(qb_symbol_t *sym, const char *s, char *errstr,
                       size_t errstr_size) {
    if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "symbol is missing");
    return qb_symbol_set_len(sym, s, strnlen(s, QB_SYMBOL_MAX + 1), errstr,
                             errstr_size);
}

int qb_symbol_eq(const qb_symbol_t *a, const qb_symbol_t *b) {
    /* symbols set by qb_symbol_set are NUL-padded: equal copies are equal
     * bytes (a few vector compares), the usual case on the fill path */
    if (memcmp(a->s, b->s, sizeof a->s) == 0) return 1;
    return strncmp(a->s, b->s, sizeof a->s) == 0;
}

/* ---- enums -------------------------------------------------------------- */

static const char *const qb_side_names[] = {
    [QB_SIDE_BUY] = "BUY", [QB_SIDE_SELL] = "SELL"};

static const char *const qb_order_type_names[] = {
    [QB_ORDER_TYPE_MARKET] = "MARKET", [QB_ORDER_TYPE_LIMIT] = "LIMIT",
    [QB_ORDER_TYPE_STOP] = "STOP", [QB_ORDER_TYPE_STOP_LIMIT] = "STOP_LIMIT"};

static const char *const qb_tif_names[] = {
    [QB_TIF_DAY] = "DAY", [QB_TIF_GTC] = "GTC", [QB_TIF_IOC] = "IOC",
    [QB_TIF_FOK] = "FOK"};

static const char *const qb_order_status_names[] = {
    [QB_ORDER_STATUS_NEW] = "NEW",
    [QB_ORDER_STATUS_SUBMITTED] = "SUBMITTED",
    [QB_ORDER_STATUS_ACCEPTED] = "ACCEPTED",
    [QB_ORDER_STATUS_PARTIALLY_FILLED] = "PARTIALLY_FILLED",
    [QB_ORDER_STATUS_FILLED] = "FILLED",
    [QB_ORDER_STATUS_CANCELED] = "CANCELED",
    [QB_ORDER_STATUS_REJECTED] = "REJECTED",
    [QB_ORDER_STATUS_EXPIRED] = "EXPIRED"};

static const char *qb_enum_name(const char *const *names, size_t n, int v) {
    return (v > 0 && (size_t)v < n && names[v]) ? names[v] : "UNKNOWN";
}

static qb_err_t qb_enum_parse(const char *const *names, size_t n,
                              const char *s, int *out) {
    for (size_t i = 1; s && i < n; i++) {
        if (names[i] && strcasecmp(names[i], s) == 0) {
            *out = (int)i;
            return QB_OK;
        }
    }
    return QB_ERR_PARSE;
}

/* prefix_name() and prefix_parse() of one enum from its names table. */
#define QB_ENUM_FUNCS(prefix, type, names)                                     \
    const char *prefix##_name(type v) {                                        \
        return qb_enum_name(names, QB_NELEM(names), (int)v);                   \
    }                                                                          \
    qb_err_t prefix##_parse(const char *s, type *out) {                        \
        int v;                                                                 \
        qb_err_t err = qb_enum_parse(names, QB_NELEM(names), s, &v);           \
        if (err == QB_OK) *out = (type)v;                                      \
        return err;                                                            \
    }

QB_ENUM_FUNCS(qb_side, qb_side_t, qb_side_names)
QB_ENUM_FUNCS(qb_order_type, qb_order_type_t, qb_order_type_names)
QB_ENUM_FUNCS(qb_tif, qb_tif_t, qb_tif_names)
QB_ENUM_FUNCS(qb_order_status, qb_order_status_t, qb_order_status_names)

int qb_side_sign(qb_side_t side) {
    if (side == QB_SIDE_BUY) return 1;
    if (side == QB_SIDE_SELL) return -1;
    return 0;
}

/* ---- order state machine ------------------------------------------------ */

#define QB_BIT(s) (1u << (s))

/* For each status, the set of statuses it may move to. */
static const unsigned qb_order_next[] = {
    [QB_ORDER_STATUS_NEW] = QB_BIT(QB_ORDER_STATUS_SUBMITTED) |
                            QB_BIT(QB_ORDER_STATUS_REJECTED) |
                            QB_BIT(QB_ORDER_STATUS_CANCELED),
    [QB_ORDER_STATUS_SUBMITTED] = QB_BIT(QB_ORDER_STATUS_ACCEPTED) |
                                  QB_BIT(QB_ORDER_STATUS_REJECTED) |
                                  QB_BIT(QB_ORDER_STATUS_CANCELED) |
                                  QB_BIT(QB_ORDER_STATUS_FILLED) |
                                  QB_BIT(QB_ORDER_STATUS_PARTIALLY_FILLED) |
                                  QB_BIT(QB_ORDER_STATUS_EXPIRED),
    [QB_ORDER_STATUS_ACCEPTED] = QB_BIT(QB_ORDER_STATUS_PARTIALLY_FILLED) |
                                 QB_BIT(QB_ORDER_STATUS_FILLED) |
                                 QB_BIT(QB_ORDER_STATUS_CANCELED) |
                                 QB_BIT(QB_ORDER_STATUS_EXPIRED) |
                                 QB_BIT(QB_ORDER_STATUS_REJECTED),
    [QB_ORDER_STATUS_PARTIALLY_FILLED] = QB_BIT(QB_ORDER_STATUS_PARTIALLY_FILLED) |
                                         QB_BIT(QB_ORDER_STATUS_FILLED) |
                                         QB_BIT(QB_ORDER_STATUS_CANCELED) |
                                         QB_BIT(QB_ORDER_STATUS_EXPIRED),
    /* FILLED, CANCELED, REJECTED, EXPIRED: terminal, no moves. */
    [QB_ORDER_STATUS_EXPIRED] = 0};

static int qb_order_status_valid(qb_order_status_t s) {
    return s >= QB_ORDER_STATUS_NEW && s <= QB_ORDER_STATUS_EXPIRED;
}

int qb_order_status_is_terminal(qb_order_status_t s) {
    return s == QB_ORDER_STATUS_FILLED || s == QB_ORDER_STATUS_CANCELED ||
           s == QB_ORDER_STATUS_REJECTED || s == QB_ORDER_STATUS_EXPIRED;
}

int qb_order_transition_ok(qb_order_status_t from, qb_order_status_t to) {
    if (!qb_order_status_valid(from) || !qb_order_status_valid(to)) return 0;
    return (qb_order_next[from] & QB_BIT(to)) != 0;
}

/* ---- timeframes --------------------------------------------------------- */

static const struct {
    const char *name;
    int64_t ns;
} qb_timeframes[] = {
    {"1m", QB_NS_PER_MIN},      {"5m", 5 * QB_NS_PER_MIN},
    {"15m", 15 * QB_NS_PER_MIN}, {"30m", 30 * QB_NS_PER_MIN},
    {"1h", QB_NS_PER_HOUR},     {"4h", 4 * QB_NS_PER_HOUR},
    {"1d", QB_NS_PER_DAY},      {"1w", 7 * QB_NS_PER_DAY}};

qb_err_t qb_timeframe_parse(const char *s, int64_t *ns) {
    for (size_t i = 0; s && i < QB_NELEM(qb_timeframes); i++) {
        if (strcmp(s, qb_timeframes[i].name) == 0) {
            *ns = qb_timeframes[i].ns;
            return QB_OK;
        }
    }
    return QB_ERR_PARSE;
}

/* ---- bar ---------------------------------------------------------------- */

/* "AAPL 1m 2024-01-02T14:30:00Z": which bar a message is about. The fields
 * are printed with bounded widths in case they are not terminated. */
static void qb_bar_describe(const qb_bar_t *b, char *out, size_t cap) {
    char ts[QB_TIME_STRLEN];
    qb_time_format(b->ts, ts, sizeof ts);
    snprintf(out, cap, "%.*s %.*s %s", QB_SYMBOL_MAX, b->symbol.s,
             QB_TIMEFRAME_MAX, b->timeframe, ts);
}

typedef struct qb_named_price_s {
    const char *name;
    qb_dec_t v;
} qb_named_price_t;

static qb_err_t qb_bar_check_prices(const qb_bar_t *b, const char *who,
                                    char *errstr, size_t n) {
    const qb_named_price_t all[] = {{"open", b->open}, {"high", b->high},
                                    {"low", b->low}, {"close", b->close}};
    const qb_named_price_t inside[] = {{"open", b->open}, {"close", b->close}};
    char v[QB_DEC_STRLEN], lo[QB_DEC_STRLEN], hi[QB_DEC_STRLEN];
    for (size_t i = 0; i < QB_NELEM(all); i++) {
        if (all[i].v > 0) continue;
        qb_dec_format(all[i].v, v, sizeof v);
        return qb_err_set(errstr, n, QB_ERR_INVALID, "bar %s: %s %s is not > 0",
                          who, all[i].name, v);
    }
    qb_dec_format(b->low, lo, sizeof lo);
    qb_dec_format(b->high, hi, sizeof hi);
    if (b->high < b->low)
        return qb_err_set(errstr, n, QB_ERR_INVALID, "bar %s: high %s < low %s",
                          who, hi, lo);
    for (size_t i = 0; i < QB_NELEM(inside); i++) {
        if (inside[i].v >= b->low && inside[i].v <= b->high) continue;
        qb_dec_format(inside[i].v, v, sizeof v);
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "bar %s: %s %s outside [low %s, high %s]", who,
                          inside[i].name, v, lo, hi);
    }
    return QB_OK;
}

qb_err_t qb_bar_validate(const qb_bar_t *b, char *errstr, size_t errstr_size) {
    char who[96], tf[QB_TIMEFRAME_MAX + 1], v[QB_DEC_STRLEN];
    int64_t ns;
    qb_bar_describe(b, who, sizeof who);
    if (b->symbol.s[0] == '\0')
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "bar %s: symbol is empty", who);
    snprintf(tf, sizeof tf, "%.*s", QB_TIMEFRAME_MAX, b->timeframe);
    if (qb_timeframe_parse(tf, &ns) != QB_OK ||
        memchr(b->timeframe, '\0', sizeof b->timeframe) == NULL)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "bar %s: unknown timeframe \"%s\"", who, tf);
    qb_err_t err = qb_bar_check_prices(b, who, errstr, errstr_size);
    if (err != QB_OK) return err;
    if (b->volume < 0) {
        qb_dec_format(b->volume, v, sizeof v);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "bar %s: volume %s is negative", who, v);
    }
    return QB_OK;
}

/* ---- position ----------------------------------------------------------- */

static qb_err_t qb_fill_check(const qb_position_t *pos, const qb_fill_t *f,
                              char *errstr, size_t n) {
    char v[QB_DEC_STRLEN];
    const char *id = f->fill_id;
    const int idw = QB_FILL_ID_MAX;
    if (qb_side_sign(f->side) == 0)
        return qb_err_set(errstr, n, QB_ERR_INVALID, "fill %.*s: invalid side %d",
                          idw, id, (int)f->side);
    if (f->qty <= 0) {
        qb_dec_format(f->qty, v, sizeof v);
        return qb_err_set(errstr, n, QB_ERR_INVALID, "fill %.*s: qty %s is not > 0",
                          idw, id, v);
    }
    if (f->price <= 0) {
        qb_dec_format(f->price, v, sizeof v);
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "fill %.*s: price %s is not > 0", idw, id, v);
    }
    if (f->symbol.s[0] == '\0')
        return qb_err_set(errstr, n, QB_ERR_INVALID, "fill %.*s: symbol is empty",
                          idw, id);
    if (pos->symbol.s[0] != '\0' && !qb_symbol_eq(&pos->symbol, &f->symbol))
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "fill %.*s for %.*s applied to a position in %.*s", idw,
                          id, QB_SYMBOL_MAX, f->symbol.s, QB_SYMBOL_MAX,
                          pos->symbol.s);
    return QB_OK;
}

/* Opening or adding (delta has the position's sign, or the position is
 * flat): avg_cost = (qty·avg_cost + delta·price) / (qty + delta), exact
 * until the one rounding. */
static qb_err_t qb_position_add(qb_position_t *p, qb_dec_t delta,
                                qb_dec_t price) {
    qb_dec_t qty, avg;
    qb_err_t err = qb_dec_add(p->qty, delta, &qty);
    if (err != QB_OK) return err;
    qb_dec_wide_t cost =
        (qb_dec_wide_t)p->qty * p->avg_cost + (qb_dec_wide_t)delta * price;
    err = qb_dec_div_wide(cost, qty, &avg, QB_ROUND_HALF_EVEN);
    if (err != QB_OK) return err;
    p->qty = qty;
    p->avg_cost = avg;
    return QB_OK;
}

static qb_dec_wide_t qb_wide_min_abs(qb_dec_wide_t a, qb_dec_wide_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    return a < b ? a : b;
}

/* Reducing, closing or flipping (delta against the position's sign). */
static qb_err_t qb_position_reduce(qb_position_t *p, qb_dec_t delta,
                                   qb_dec_t price) {
    qb_dec_wide_t closed = qb_wide_min_abs(p->qty, delta);
    qb_dec_wide_t gain = p->qty > 0 ? (qb_dec_wide_t)price - p->avg_cost
                                    : (qb_dec_wide_t)p->avg_cost - price;
    qb_dec_t pnl;
    qb_err_t err = qb_dec_div_wide(gain * closed, QB_DEC_SCALE, &pnl,
                                   QB_ROUND_HALF_EVEN);
    if (err == QB_OK) err = qb_dec_add(p->realized_pnl, pnl, &p->realized_pnl);
    if (err != QB_OK) return err;
    qb_dec_t qty = p->qty + delta; /* opposite signs: cannot overflow */
    if (qty == 0) p->avg_cost = 0;
    else if ((qty > 0) != (p->qty > 0)) p->avg_cost = price; /* flipped */
    p->qty = qty;
    return QB_OK;
}

qb_err_t qb_position_apply_fill(qb_position_t *pos, const qb_fill_t *fill,
                                char *errstr, size_t errstr_size) {
    qb_err_t err = qb_fill_check(pos, fill, errstr, errstr_size);
    if (err != QB_OK) return err;
    qb_position_t next = *pos;
    qb_dec_t delta = fill->side == QB_SIDE_BUY ? fill->qty : -fill->qty;
    if (next.qty == 0 || (next.qty > 0) == (delta > 0))
        err = qb_position_add(&next, delta, fill->price);
    else
        err = qb_position_reduce(&next, delta, fill->price);
    if (err == QB_OK)
        err = qb_dec_sub(next.realized_pnl, fill->commission, &next.realized_pnl);
    if (err != QB_OK)
        return qb_err_set(errstr, errstr_size, err,
                          "position %.*s: fill %.*s: %s", QB_SYMBOL_MAX,
                          fill->symbol.s, QB_FILL_ID_MAX, fill->fill_id,
                          qb_err_str(err));
    next.symbol = fill->symbol;
    *pos = next;
    return QB_OK;
}
