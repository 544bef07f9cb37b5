/* test_config.c — config tables: types, bounds, defaults, required, and
 * error messages that name the variable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/qb_config.h"

typedef struct {
    const char *name;
    int64_t port;
    int flag;
    double ratio;
    const char *secret;
} cfg_t;

static const qb_cfg_entry_t table[] = {
    {"t.name", "QBT_NAME", QB_CFG_STRING, "alpha", 1, 8, offsetof(cfg_t, name), 0, "a name"},
    {"t.port", "QBT_PORT", QB_CFG_INT, "80", 1, 65535, offsetof(cfg_t, port), 0, "a port"},
    {"t.flag", "QBT_FLAG", QB_CFG_BOOL, "false", 1, 0, offsetof(cfg_t, flag), 0, "a flag"},
    {"t.ratio", "QBT_RATIO", QB_CFG_DOUBLE, "0.5", 0, 1, offsetof(cfg_t, ratio), 0, "a ratio"},
    {"t.secret", "QBT_SECRET", QB_CFG_STRING, "", 1, 0, offsetof(cfg_t, secret), QB_CFG_SECRET, "s"},
    {0},
};

static void clear_env(void) {
    unsetenv("QBT_NAME"); unsetenv("QBT_PORT"); unsetenv("QBT_FLAG");
    unsetenv("QBT_RATIO"); unsetenv("QBT_SECRET");
}

static qb_err_t load(cfg_t *c, char *err, size_t n) {
    qb_cfg_section_t s = {"test", table, c};
    return qb_config_load(&s, 1, err, n);
}

static void test_defaults(void **state) {
    (void)state;
    cfg_t c; char err[256];
    clear_env();
    assert_int_equal(load(&c, err, sizeof(err)), QB_OK);
    assert_string_equal(c.name, "alpha");
    assert_int_equal(c.port, 80);
    assert_int_equal(c.flag, 0);
    assert_true(c.ratio == 0.5);
}

static void test_values_from_env(void **state) {
    (void)state;
    cfg_t c; char err[256];
    clear_env();
    setenv("QBT_NAME", "beta", 1); setenv("QBT_PORT", "8080", 1);
    setenv("QBT_FLAG", "YES", 1); setenv("QBT_RATIO", "0.25", 1);
    assert_int_equal(load(&c, err, sizeof(err)), QB_OK);
    assert_string_equal(c.name, "beta");
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.flag, 1);
    assert_true(c.ratio == 0.25);
    clear_env();
}

static void expect_bad(const char *var, const char *val, const char *needle) {
    cfg_t c; char err[256] = "";
    clear_env();
    setenv(var, val, 1);
    assert_int_equal(load(&c, err, sizeof(err)), QB_ERR_CONFIG);
    assert_non_null(strstr(err, var));
    assert_non_null(strstr(err, needle));
    clear_env();
}

static void test_bad_values_name_the_variable(void **state) {
    (void)state;
    expect_bad("QBT_PORT", "70000", "between 1 and 65535");
    expect_bad("QBT_PORT", "0", "between");
    expect_bad("QBT_PORT", "12ab", "not an integer");
    expect_bad("QBT_PORT", "", "not an integer");
    expect_bad("QBT_PORT", "99999999999999999999999", "not an integer");
    expect_bad("QBT_FLAG", "maybe", "not a boolean");
    expect_bad("QBT_RATIO", "1.5", "between");
    expect_bad("QBT_RATIO", "nan", "not a number");
    expect_bad("QBT_NAME", "much-too-long", "longer than 8");
    expect_bad("QBT_NAME", "", "must not be empty");
}

static void test_secret_value_not_echoed(void **state) {
    (void)state;
    static const qb_cfg_entry_t t2[] = {
        {"t.key", "QBT_KEY", QB_CFG_INT, "1", 1, 0, 0, QB_CFG_SECRET, "k"}, {0}};
    int64_t v; char err[256];
    qb_cfg_section_t s = {"test", t2, &v};
    setenv("QBT_KEY", "hunter2", 1);
    assert_int_equal(qb_config_load(&s, 1, err, sizeof(err)), QB_ERR_CONFIG);
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "QBT_KEY"));
    unsetenv("QBT_KEY");
}

static void test_required(void **state) {
    (void)state;
    static const qb_cfg_entry_t t3[] = {
        {"t.req", "QBT_REQ", QB_CFG_STRING, NULL, 1, 0, 0, QB_CFG_REQUIRED, "needed"}, {0}};
    const char *v; char err[256];
    qb_cfg_section_t s = {"test", t3, &v};
    unsetenv("QBT_REQ");
    assert_int_equal(qb_config_load(&s, 1, err, sizeof(err)), QB_ERR_CONFIG);
    assert_non_null(strstr(err, "QBT_REQ: required"));
    setenv("QBT_REQ", "x", 1);
    assert_int_equal(qb_config_load(&s, 1, err, sizeof(err)), QB_OK);
    assert_string_equal(v, "x");
    unsetenv("QBT_REQ");
}

static void test_help_lists_every_variable(void **state) {
    (void)state;
    char *buf = NULL; size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    qb_cfg_section_t s = {"test", table, NULL};
    qb_config_help(f, "prog", "about text", &s, 1);
    fclose(f);
    for (const qb_cfg_entry_t *e = table; e->name; e++) assert_non_null(strstr(buf, e->env));
    assert_non_null(strstr(buf, "range: 1..65535"));
    assert_non_null(strstr(buf, "secret"));
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_from_env),
        cmocka_unit_test(test_bad_values_name_the_variable),
        cmocka_unit_test(test_secret_value_not_echoed),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_help_lists_every_variable),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
