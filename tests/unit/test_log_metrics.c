/* test_log_metrics.c — JSON log lines parse as JSON and carry context;
 * metrics render in Prometheus text format with correct histogram sums;
 * error names/strings are complete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "core/qb_err.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "qb_test.h"

static void log_some(void) {
    qb_log_init("qb-test", QB_LOG_INFO);
    qb_log_ctx_set("topic", "md.bars");
    qb_log_ctx_set_int("partition", 3);
    qb_log_set_trace("abc123");
    QB_INFO("quote \" backslash \\ newline \n tab \t ctl \x01 done %d", 42);
    QB_DEBUG("must not appear");
    qb_log_ctx_clear();
    QB_WARN("second");
}

static void test_log_json(void **state) {
    (void)state;
    qb_test_capture_stderr_start(); /* what the logger writes */
    log_some();
    char *out = qb_test_capture_stderr_stop();
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "info");
    assert_string_equal(cJSON_GetObjectItem(j, "service")->valuestring, "qb-test");
    assert_string_equal(cJSON_GetObjectItem(j, "topic")->valuestring, "md.bars");
    assert_string_equal(cJSON_GetObjectItem(j, "partition")->valuestring, "3");
    assert_string_equal(cJSON_GetObjectItem(j, "trace_id")->valuestring, "abc123");
    assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring,
                        "quote \" backslash \\ newline \n tab \t ctl \x01 done 42");
    cJSON_Delete(j);
    char *second = nl + 1;
    assert_null(strstr(second, "must not appear"));
    j = cJSON_Parse(second);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
    assert_null(cJSON_GetObjectItem(j, "topic"));
    cJSON_Delete(j);
}

static void test_metrics_render(void **state) {
    (void)state;
    qb_metrics_reset();
    qb_counter_t *a = qb_metrics_counter("qb_t_msgs_total", "messages", "topic=\"a\"");
    qb_counter_t *b = qb_metrics_counter("qb_t_msgs_total", "messages", "topic=\"b\"");
    assert_ptr_equal(a, qb_metrics_counter("qb_t_msgs_total", "messages", "topic=\"a\""));
    qb_counter_add(a, 5);
    qb_counter_inc(b);
    qb_gauge_t *g = qb_metrics_gauge("qb_t_lag", "lag", NULL);
    qb_gauge_set(g, 7);
    qb_gauge_add(g, -2.5);
    qb_hist_t *h = qb_metrics_histogram("qb_t_latency_seconds", "lat", NULL);
    qb_hist_observe(h, 0.0002);
    qb_hist_observe(h, 0.003);
    qb_hist_observe(h, 99);
    char *txt = qb_metrics_render();
    assert_non_null(txt);
    assert_non_null(strstr(txt, "# TYPE qb_t_msgs_total counter\n"));
    assert_non_null(strstr(txt, "qb_t_msgs_total{topic=\"a\"} 5\n"));
    assert_non_null(strstr(txt, "qb_t_msgs_total{topic=\"b\"} 1\n"));
    assert_non_null(strstr(txt, "qb_t_lag 4.5\n"));
    assert_non_null(strstr(txt, "qb_t_latency_seconds_bucket{le=\"0.00025\"} 1\n"));
    assert_non_null(strstr(txt, "qb_t_latency_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(txt, "qb_t_latency_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(txt, "qb_t_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(txt, "qb_t_latency_seconds_count 3\n"));
    /* One TYPE line per family. */
    char *first = strstr(txt, "# TYPE qb_t_msgs_total");
    assert_null(strstr(first + 1, "# TYPE qb_t_msgs_total"));
    free(txt);
    qb_metrics_reset();
}

static void test_err_table(void **state) {
    (void)state;
    assert_string_equal(qb_err_name(QB_ERR_PARSE), "PARSE");
    assert_string_equal(qb_err_str(QB_OK), "success");
    assert_true(qb_err_is_retriable(QB_ERR_UNAVAILABLE));
    assert_false(qb_err_is_retriable(QB_ERR_DECODE));
    assert_string_equal(qb_err_name((qb_err_t)-999), "UNKNOWN");
    char buf[64];
    assert_int_equal(qb_err_set(buf, sizeof(buf), QB_ERR_RANGE, "line %d", 7), QB_ERR_RANGE);
    assert_string_equal(buf, "line 7");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_err_table),
    };
    return cmocka_run_group_tests_name("log_metrics", tests, NULL, NULL);
}
