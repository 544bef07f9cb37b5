/* it_svc.c — the service skeleton against the real stack: /healthz,
 * /readyz naming the missing dependency, /metrics accepted by promtool,
 * config errors and --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "core/qb_metrics.h"
#include "qb_test.h"
#include "svc/qb_svc.h"

typedef struct { char *p; size_t n; } body_t;

static size_t on_data(char *d, size_t sz, size_t nm, void *u) {
    body_t *b = u;
    char *np = realloc(b->p, b->n + sz * nm + 1);
    if (!np) return 0;
    b->p = np;
    memcpy(b->p + b->n, d, sz * nm);
    b->n += sz * nm;
    b->p[b->n] = '\0';
    return sz * nm;
}

/* GET (or another method) on the admin port; returns status, body in *out. */
static long http(int port, const char *method, const char *path, char **out) {
    char url[128];
    body_t b = {calloc(1, 1), 0};
    long code = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    *out = b.p;
    return code;
}

static const qb_svc_def_t def_all = {
    .name = "qb-test-svc", .about = "skeleton test", .admin_port = 0,
    .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG | QB_SVC_NEEDS_REDIS};

static void base_env(void) {
    qb_test_env("QB_KAFKA_BROKERS");
    qb_test_env("QB_PG_DSN");
    qb_test_env("QB_REDIS_URL");
    setenv("QB_ADMIN_PORT", "0", 1);
    setenv("QB_ADMIN_BIND", "127.0.0.1", 1);
    setenv("QB_PROBE_INTERVAL_MS", "200", 1);
}

static void test_ready_when_all_up(void **state) {
    (void)state;
    int rc = -1;
    char *body;
    base_env();
    char *argv[] = {"qb-test-svc", NULL};
    qb_svc_t *svc = qb_svc_new(&def_all, 1, argv, &rc);
    assert_non_null(svc);
    int port = qb_svc_admin_port(svc);
    assert_true(port > 0);
    assert_int_equal(qb_svc_check_ready(svc), 1);

    assert_int_equal(http(port, "GET", "/healthz", &body), 200);
    assert_non_null(strstr(body, "\"status\":\"ok\""));
    free(body);

    assert_int_equal(http(port, "GET", "/readyz", &body), 200);
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ready")));
    cJSON *checks = cJSON_GetObjectItem(j, "checks");
    assert_string_equal(cJSON_GetObjectItem(checks, "kafka")->valuestring, "ok");
    assert_string_equal(cJSON_GetObjectItem(checks, "postgres")->valuestring, "ok");
    assert_string_equal(cJSON_GetObjectItem(checks, "redis")->valuestring, "ok");
    cJSON_Delete(j);
    free(body);

    assert_int_equal(http(port, "GET", "/nope", &body), 404);
    assert_non_null(strstr(body, "\"code\":\"not_found\""));
    free(body);
    assert_int_equal(http(port, "POST", "/healthz", &body), 405);
    free(body);

    /* /metrics must be valid Prometheus text: promtool is the judge. */
    qb_counter_add(qb_metrics_counter("qb_test_events_total", "events", "topic=\"md.bars\""), 3);
    qb_hist_observe(qb_metrics_histogram("qb_test_latency_seconds", "latency", NULL), 0.002);
    assert_int_equal(http(port, "GET", "/metrics", &body), 200);
    assert_non_null(strstr(body, "qb_build_info{service=\"qb-test-svc\""));
    assert_non_null(strstr(body, "qb_test_events_total{topic=\"md.bars\"} 3"));
    assert_non_null(strstr(body, "process_resident_memory_bytes"));
    char path[] = "/tmp/qb-metricsXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs(body, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    int prc = system(cmd);
    unlink(path);
    assert_int_equal(prc, 0);
    free(body);
    qb_svc_destroy(svc);
}

static void test_readyz_names_missing_dependency(void **state) {
    (void)state;
    int rc = -1;
    char *body;
    base_env();
    char saved[512];
    snprintf(saved, sizeof(saved), "%s", getenv("QB_REDIS_URL"));
    setenv("QB_REDIS_URL", "redis://127.0.0.1:1/0", 1); /* nothing listens on port 1 */
    char *argv[] = {"qb-test-svc", NULL};
    qb_svc_t *svc = qb_svc_new(&def_all, 1, argv, &rc);
    assert_non_null(svc);
    assert_int_equal(qb_svc_check_ready(svc), 0);
    assert_int_equal(http(qb_svc_admin_port(svc), "GET", "/readyz", &body), 503);
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "ready")));
    cJSON *checks = cJSON_GetObjectItem(j, "checks");
    assert_string_equal(cJSON_GetObjectItem(checks, "postgres")->valuestring, "ok");
    assert_string_equal(cJSON_GetObjectItem(checks, "kafka")->valuestring, "ok");
    assert_string_not_equal(cJSON_GetObjectItem(checks, "redis")->valuestring, "ok");
    cJSON_Delete(j);
    free(body);
    qb_svc_destroy(svc);
    setenv("QB_REDIS_URL", saved, 1);
}

static void test_bad_config_and_help(void **state) {
    (void)state;
    int rc = -1;
    base_env();
    char *argv[] = {"qb-test-svc", NULL};
    setenv("QB_ADMIN_PORT", "70000", 1);
    assert_null(qb_svc_new(&def_all, 1, argv, &rc));
    assert_int_equal(rc, 2);
    setenv("QB_ADMIN_PORT", "0", 1);
    setenv("QB_LOG_LEVEL", "loud", 1);
    assert_null(qb_svc_new(&def_all, 1, argv, &rc));
    assert_int_equal(rc, 2);
    unsetenv("QB_LOG_LEVEL");
    char *hargv[] = {"qb-test-svc", "--help", NULL};
    rc = -1;
    assert_null(qb_svc_new(&def_all, 2, hargv, &rc));
    assert_int_equal(rc, 0);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_when_all_up),
        cmocka_unit_test(test_readyz_names_missing_dependency),
        cmocka_unit_test(test_bad_config_and_help),
    };
    int r = cmocka_run_group_tests_name("svc", tests, NULL, NULL);
    curl_global_cleanup();
    return r;
}
