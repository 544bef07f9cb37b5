/* qb_bt_config.c — the backtest config: defaults, the strategy table,
 * setting fields from text (CLI, service, grid search), validation and the
 * JSON form written into reports. The field meanings are in qb_backtest.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backtest/qb_backtest.h"
#include "backtest/qb_bt_int.h"

static qb_dec_t qb_bt_units(int64_t n) { return (qb_dec_t)n * QB_DEC_SCALE; }

void qb_bt_config_default(qb_bt_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->cash = qb_bt_units(100000);
    cfg->margin_long = qb_bt_units(1);
    cfg->margin_short = qb_bt_units(1);
    cfg->fill = QB_FILL_NEXT_OPEN;
    cfg->commission = qb_commission_none();
    cfg->lot = qb_bt_units(1);
    cfg->entry_type = QB_ORDER_TYPE_MARKET;
    cfg->entry_tif = QB_TIF_GTC;
    cfg->sizing = QB_SIZING_ALL_IN;
    cfg->use_target_weight = 1;
    cfg->warmup_bars = -1;
    cfg->benchmark = 1;
    cfg->keep_fills = 1;
}

const char *qb_bt_role_name(qb_bt_role_t r) {
    switch (r) {
    case QB_BT_ROLE_EXIT: return "EXIT";
    case QB_BT_ROLE_ENTRY: return "ENTRY";
    case QB_BT_ROLE_STOP: return "STOP";
    }
    return "UNKNOWN";
}

qb_err_t qb_bt_config_add_strategy(qb_bt_config_t *cfg, const char *kind,
                                   const char *params_json, const char *symbols, char *errstr,
                                   size_t errstr_size) {
    if (!kind || !*kind)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "strategy: kind is empty");
    if (cfg->nstrategies >= QB_BT_MAX_STRATEGIES)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "strategy: at most %d strategy entries", QB_BT_MAX_STRATEGIES);
    if (!params_json) params_json = "";
    if (!symbols) symbols = "";
    if (strlen(kind) > QB_BT_KIND_MAX || strlen(params_json) > QB_BT_PARAMS_MAX ||
        strlen(symbols) > QB_BT_SYMBOLS_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "strategy %s: kind, params or symbols too long (%d, %d, %d max)", kind,
                          QB_BT_KIND_MAX, QB_BT_PARAMS_MAX, QB_BT_SYMBOLS_MAX);
    qb_bt_strategy_t *s = &cfg->strategies[cfg->nstrategies++];
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    snprintf(s->params, sizeof s->params, "%s", params_json);
    snprintf(s->symbols, sizeof s->symbols, "%s", symbols);
    return QB_OK;
}

/* ---- set from text ------------------------------------------------------------------------ */

static qb_err_t qb_bt_parse_dec(const char *name, const char *v, qb_dec_t *out, char *errstr,
                                size_t errstr_size) {
    if (qb_dec_parse(v, strlen(v), out) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: '%s' is not a decimal number",
                          name, v);
    return QB_OK;
}

static qb_err_t qb_bt_parse_bool(const char *name, const char *v, int *out, char *errstr,
                                 size_t errstr_size) {
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) {
        *out = 1;
        return QB_OK;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) {
        *out = 0;
        return QB_OK;
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: '%s' is not true or false", name,
                      v);
}

/* commission none | per_trade:FEE | per_share:RATE[:MIN] | percent:PCT[:MIN] */
static qb_err_t qb_bt_parse_commission(const char *v, qb_commission_t *out, char *errstr,
                                       size_t errstr_size) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    char *a = strchr(buf, ':'), *b = NULL;
    if (a) {
        *a++ = 0;
        b = strchr(a, ':');
        if (b) *b++ = 0;
    }
    qb_commission_t m = qb_commission_none();
    qb_dec_t x = 0, mn = 0;
    if (a && qb_dec_parse(a, strlen(a), &x) != QB_OK) goto bad;
    if (b && qb_dec_parse(b, strlen(b), &mn) != QB_OK) goto bad;
    if (!strcasecmp(buf, "none")) {
        if (a) goto bad;
    } else if (!strcasecmp(buf, "per_trade")) {
        if (!a || b) goto bad;
        m = qb_commission_per_trade(x);
    } else if (!strcasecmp(buf, "per_share")) {
        if (!a) goto bad;
        m = qb_commission_per_share(x, mn);
    } else if (!strcasecmp(buf, "percent")) {
        if (!a) goto bad;
        qb_dec_t frac; /* percent -> fraction, exact when it fits 8 decimals */
        if (x % 100 != 0) goto bad;
        frac = x / 100;
        m = qb_commission_percent(frac, mn);
    } else {
        goto bad;
    }
    m.step = out->step;
    if (qb_commission_validate(&m, NULL, 0) != QB_OK) goto bad;
    *out = m;
    return QB_OK;
bad:
    return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                      "commission: '%s' is not none, per_trade:FEE, per_share:RATE[:MIN] or "
                      "percent:PCT[:MIN] (PCT in percent with at most 6 decimals, values >= 0)",
                      v);
}

qb_err_t qb_bt_config_set(qb_bt_config_t *cfg, const char *name, const char *value,
                          char *errstr, size_t errstr_size) {
    const char *v = value ? value : "";
    qb_dec_t d;
    qb_err_t err;
#define DEC_FIELD(key, field)                                                              \
    if (!strcmp(name, key)) {                                                              \
        err = qb_bt_parse_dec(key, v, &d, errstr, errstr_size);                            \
        if (err == QB_OK) cfg->field = d;                                                  \
        return err;                                                                        \
    }
#define BOOL_FIELD(key, field)                                                             \
    if (!strcmp(name, key)) return qb_bt_parse_bool(key, v, &cfg->field, errstr, errstr_size);
    DEC_FIELD("cash", cash)
    DEC_FIELD("margin_long", margin_long)
    DEC_FIELD("margin_short", margin_short)
    DEC_FIELD("slippage_bps", slippage_bps)
    DEC_FIELD("tick", tick)
    DEC_FIELD("volume_cap", volume_cap)
    DEC_FIELD("lot", lot)
    DEC_FIELD("limit_offset_bps", limit_offset_bps)
    DEC_FIELD("stop_limit_bps", stop_limit_bps)
    DEC_FIELD("sizing_value", sizing_value)
    DEC_FIELD("commission_step", commission.step)
    BOOL_FIELD("long_only", long_only)
    BOOL_FIELD("stop_exits", stop_exits)
    BOOL_FIELD("use_target_weight", use_target_weight)
    BOOL_FIELD("benchmark", benchmark)
    BOOL_FIELD("reasons", reasons)
    BOOL_FIELD("keep_fills", keep_fills)
    BOOL_FIELD("keep_signals", keep_signals)
#undef DEC_FIELD
#undef BOOL_FIELD
    if (!strcmp(name, "fill")) {
        if (qb_fill_timing_parse(v, &cfg->fill) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "fill: '%s' is not next_open or close", v);
        return QB_OK;
    }
    if (!strcmp(name, "commission")) return qb_bt_parse_commission(v, &cfg->commission, errstr, errstr_size);
    if (!strcmp(name, "entry_type")) {
        qb_order_type_t t;
        if (qb_order_type_parse(v, &t) != QB_OK ||
            (t != QB_ORDER_TYPE_MARKET && t != QB_ORDER_TYPE_LIMIT))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "entry_type: '%s' is not market or limit", v);
        cfg->entry_type = t;
        return QB_OK;
    }
    if (!strcmp(name, "entry_tif")) {
        if (qb_tif_parse(v, &cfg->entry_tif) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "entry_tif: '%s' is not day, gtc, ioc or fok", v);
        return QB_OK;
    }
    if (!strcmp(name, "sizing")) {
        if (qb_sizing_kind_parse(v, &cfg->sizing) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "sizing: '%s' is not all_in, fixed_qty, percent_equity or "
                              "fixed_fractional",
                              v);
        return QB_OK;
    }
    if (!strcmp(name, "from") || !strcmp(name, "to")) {
        qb_time_t t = 0;
        if (*v && qb_time_parse(v, strlen(v), &t) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "%s: '%s' is not an ISO-8601 time or date", name, v);
        if (name[0] == 'f')
            cfg->from = t;
        else
            cfg->to = t;
        return QB_OK;
    }
    if (!strcmp(name, "warmup_bars")) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || n < -1)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "warmup_bars: '%s' is not an integer >= -1", v);
        cfg->warmup_bars = n;
        return QB_OK;
    }
    if (!strcmp(name, "bars_per_year")) {
        char *end;
        double x = strtod(v, &end);
        if (!*v || *end || !(x >= 0))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "bars_per_year: '%s' is not a number >= 0", v);
        cfg->bars_per_year = x;
        return QB_OK;
    }
    if (!strcmp(name, "calendar")) {
        if (!strcasecmp(v, "24x7"))
            cfg->twenty_four_seven = 1;
        else if (!strcasecmp(v, "equity") || !strcasecmp(v, "nyse") || !strcasecmp(v, "xnys"))
            cfg->twenty_four_seven = 0;
        else
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "calendar: '%s' is not equity or 24x7", v);
        return QB_OK;
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "unknown backtest setting \"%s\"",
                      name);
}

/* ---- validation --------------------------------------------------------------------------- */

qb_err_t qb_bt_config_validate(const qb_bt_config_t *c, char *errstr, size_t errstr_size) {
#define BAD(...) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, __VA_ARGS__)
    if (c->cash <= 0) BAD("cash: must be > 0");
    if (c->margin_long <= 0) BAD("margin_long: must be > 0");
    if (c->margin_short <= 0) BAD("margin_short: must be > 0");
    if (c->fill != QB_FILL_NEXT_OPEN && c->fill != QB_FILL_CLOSE) BAD("fill: unknown value");
    char msg[128];
    if (qb_commission_validate(&c->commission, msg, sizeof msg) != QB_OK)
        BAD("commission: %s", msg);
    if (c->slippage_bps < 0 || c->slippage_bps >= 10000 * QB_DEC_SCALE)
        BAD("slippage_bps: must be in [0, 10000)");
    if (c->tick < 0) BAD("tick: must be >= 0");
    if (c->volume_cap < 0) BAD("volume_cap: must be >= 0");
    if (c->lot <= 0) BAD("lot: must be > 0");
    if (c->entry_type != QB_ORDER_TYPE_MARKET && c->entry_type != QB_ORDER_TYPE_LIMIT)
        BAD("entry_type: must be MARKET or LIMIT");
    if (c->limit_offset_bps < 0 || c->limit_offset_bps >= 10000 * QB_DEC_SCALE)
        BAD("limit_offset_bps: must be in [0, 10000)");
    if (c->entry_tif < QB_TIF_DAY || c->entry_tif > QB_TIF_FOK) BAD("entry_tif: unknown value");
    if (c->stop_limit_bps < 0 || c->stop_limit_bps >= 10000 * QB_DEC_SCALE)
        BAD("stop_limit_bps: must be in [0, 10000)");
    switch (c->sizing) {
    case QB_SIZING_ALL_IN: break;
    case QB_SIZING_FIXED_QTY:
        if (c->sizing_value <= 0) BAD("sizing_value: fixed_qty needs a quantity > 0");
        break;
    case QB_SIZING_PERCENT_EQUITY:
        if (c->sizing_value < 0) BAD("sizing_value: percent_equity needs a fraction >= 0");
        break;
    case QB_SIZING_FIXED_FRACTIONAL:
        if (c->sizing_value <= 0 || c->sizing_value > QB_DEC_SCALE)
            BAD("sizing_value: fixed_fractional needs a fraction at risk in (0, 1]");
        break;
    default: BAD("sizing: unknown rule");
    }
    if (c->from && c->to && c->to <= c->from) BAD("to: must be after from");
    if (c->warmup_bars < -1) BAD("warmup_bars: must be >= -1");
    if (!(c->bars_per_year >= 0)) BAD("bars_per_year: must be >= 0");
    if (c->nstrategies < 0 || c->nstrategies > QB_BT_MAX_STRATEGIES)
        BAD("nstrategies: must be 0..%d", QB_BT_MAX_STRATEGIES);
    for (int i = 0; i < c->nstrategies; i++)
        if (!c->strategies[i].kind[0]) BAD("strategies[%d].kind: empty", i);
#undef BAD
    return QB_OK;
}

/* ---- JSON --------------------------------------------------------------------------------- */

size_t qb_bt_config_json(const qb_bt_config_t *c, char *buf, size_t cap) {
    qb_bt_sb_t sb = {buf, cap, 0};
    if (cap) buf[0] = 0;
    qb_bt_sb_printf(&sb, "{\"strategies\":[");
    for (int i = 0; i < c->nstrategies && i < QB_BT_MAX_STRATEGIES; i++) {
        qb_bt_sb_printf(&sb, "%s{\"kind\":", i ? "," : "");
        qb_bt_sb_str(&sb, c->strategies[i].kind);
        qb_bt_sb_printf(&sb, ",\"params\":");
        qb_bt_sb_str(&sb, c->strategies[i].params);
        qb_bt_sb_printf(&sb, ",\"symbols\":");
        qb_bt_sb_str(&sb, c->strategies[i].symbols);
        qb_bt_sb_printf(&sb, "}");
    }
    qb_bt_sb_printf(&sb, "],\"cash\":");
    qb_bt_sb_dec(&sb, c->cash);
    qb_bt_sb_printf(&sb, ",\"long_only\":%s,\"margin_long\":", c->long_only ? "true" : "false");
    qb_bt_sb_dec(&sb, c->margin_long);
    qb_bt_sb_printf(&sb, ",\"margin_short\":");
    qb_bt_sb_dec(&sb, c->margin_short);
    qb_bt_sb_printf(&sb, ",\"fill\":\"%s\",\"commission\":{\"kind\":\"%s\",\"rate\":",
                    qb_fill_timing_name(c->fill), qb_commission_kind_name(c->commission.kind));
    qb_bt_sb_dec(&sb, c->commission.rate);
    qb_bt_sb_printf(&sb, ",\"minimum\":");
    qb_bt_sb_dec(&sb, c->commission.minimum);
    qb_bt_sb_printf(&sb, ",\"step\":");
    qb_bt_sb_dec(&sb, c->commission.step);
    qb_bt_sb_printf(&sb, "},\"slippage_bps\":");
    qb_bt_sb_dec(&sb, c->slippage_bps);
    qb_bt_sb_printf(&sb, ",\"tick\":");
    qb_bt_sb_dec(&sb, c->tick);
    qb_bt_sb_printf(&sb, ",\"volume_cap\":");
    qb_bt_sb_dec(&sb, c->volume_cap);
    qb_bt_sb_printf(&sb, ",\"lot\":");
    qb_bt_sb_dec(&sb, c->lot);
    qb_bt_sb_printf(&sb, ",\"entry_type\":\"%s\",\"limit_offset_bps\":",
                    qb_order_type_name(c->entry_type));
    qb_bt_sb_dec(&sb, c->limit_offset_bps);
    qb_bt_sb_printf(&sb, ",\"entry_tif\":\"%s\",\"stop_exits\":%s,\"stop_limit_bps\":",
                    qb_tif_name(c->entry_tif), c->stop_exits ? "true" : "false");
    qb_bt_sb_dec(&sb, c->stop_limit_bps);
    qb_bt_sb_printf(&sb, ",\"sizing\":\"%s\",\"sizing_value\":", qb_sizing_kind_name(c->sizing));
    qb_bt_sb_dec(&sb, c->sizing_value);
    qb_bt_sb_printf(&sb, ",\"use_target_weight\":%s,\"from\":",
                    c->use_target_weight ? "true" : "false");
    qb_bt_sb_time(&sb, c->from);
    qb_bt_sb_printf(&sb, ",\"to\":");
    qb_bt_sb_time(&sb, c->to);
    qb_bt_sb_printf(&sb, ",\"warmup_bars\":%lld,\"bars_per_year\":", (long long)c->warmup_bars);
    qb_bt_sb_double(&sb, c->bars_per_year);
    qb_bt_sb_printf(&sb, ",\"calendar\":\"%s\",\"benchmark\":%s}",
                    c->twenty_four_seven ? "24x7" : "equity", c->benchmark ? "true" : "false");
    return sb.len;
}
