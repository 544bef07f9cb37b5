/* api_sse.c — live streams: Kafka topics bridged to Server-Sent Events.
 *
 * One reader thread per streamed topic (qb_reader: every partition, from
 * the end, no consumer group, nothing committed) turns each message into
 * one SSE event and appends it to the HUB: a ring of the last
 * QB_API_SSE_BUFFER events shared by every client, each with a sequence
 * number. Events look like
 *
 *     id: <boot>-<seq>
 *     event: bars
 *     data: {"stream":"bars","topic":"md.bars","type":"qb.v1.Bar","key":"AAPL",
 *            "message":{...the protobuf message as JSON (libs/proto qb_pbjson)...}}
 *
 * Streams: bars (md.bars), features, signals, orders (orders and
 * exec.reports), risk (risk.events), backtests (backtest.events),
 * notifications. A client picks streams (topics=), symbols (symbols=; an
 * event without a symbol, e.g. a backtest event, is not filtered by it) and
 * for backtests one run (run=).
 *
 * Each client is a cursor into the ring, so memory does not depend on how
 * many clients there are or how slow they are. A client with nothing to
 * send is suspended (MHD_suspend_connection, under the hub's lock, on the
 * hub's waiting list) and costs no thread; appending an event the client
 * wants resumes it (a waiting client that does not want the event just has
 * its cursor moved past it), and a timer thread resumes the ones whose
 * heartbeat is due. Resuming happens outside the hub's lock, so the only
 * lock order is hub -> libmicrohttpd. A client that falls a whole
 * ring behind (it reads slower than events come) is dropped (the stream
 * ends; qb_api_sse_dropped_total{reason="lapped"}); a client that reads
 * nothing at all stops the connection's writes and libmicrohttpd closes it
 * after QB_API_CONN_TIMEOUT_S without progress
 * (qb_api_connections_timed_out_total). Idle streams get a comment line
 * every QB_API_SSE_HEARTBEAT_MS so proxies keep them open.
 *
 * Resume: a reconnecting client sends Last-Event-ID (EventSource does it by
 * itself). When the id is from this process (same boot) and still in the
 * ring, the stream continues right after it, nothing missed. Otherwise the
 * first event is `event: reset` with the reason (restarted gateway, or the
 * client was away longer than the ring covers), and the stream goes on
 * live: the client should re-read the state it shows through the REST
 * routes. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "proto/qb_pbjson.h"

#define SSE_MAX_EVENT (60 * 1024)
#define SSE_OUT_CAP (64 * 1024)

typedef struct stream_def_s {
    const char *name;
    const char *topics[2];
} stream_def_t;

static const stream_def_t STREAMS[] = {
    {"bars", {"md.bars", NULL}},
    {"features", {"features", NULL}},
    {"signals", {"signals", NULL}},
    {"orders", {"orders", "exec.reports"}},
    {"risk", {"risk.events", NULL}},
    {"backtests", {"backtest.events", NULL}},
    {"notifications", {"notifications", NULL}},
};
#define NSTREAMS (int)(sizeof STREAMS / sizeof STREAMS[0])

typedef struct ev_s {
    uint64_t seq;
    int stream;
    char symbol[33];
    char key[101];
    char *text; /* the whole SSE event */
    size_t len;
} ev_t;

typedef struct reader_th_s {
    api_hub_t *hub;
    int stream;
    const char *topic;
    pthread_t th;
    int started;
} reader_th_t;

struct api_hub_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ev_t *ring;
    uint64_t cap;
    uint64_t next_seq;  /* seq of the next event appended (first is 1) */
    char boot[24];
    volatile int stop;
    int64_t heartbeat_ms;
    int64_t max_clients;
    int nclients;                 /* atomic */
    struct sse_client_s *waiting; /* suspended clients (doubly linked) */
    pthread_t hb_th;
    int hb_started;
    reader_th_t readers[NSTREAMS * 2];
    int nreaders;
    qb_counter_t *events, *dropped_lapped, *too_big, *resets;
    qb_gauge_t *clients;
};

typedef struct sse_client_s {
    api_hub_t *hub;
    struct MHD_Connection *conn;
    struct sse_client_s *wprev, *wnext;
    int64_t hb_due_ms;      /* a heartbeat is written when idle until then */
    unsigned streams;       /* bit per STREAMS index */
    char **symbols;
    int nsymbols;
    char run[101];
    uint64_t cursor;        /* last seq seen */
    char *out;              /* pending bytes */
    size_t out_len, out_off;
    int64_t last_write_ms;
} sse_client_t;

/* ---- the hub ---------------------------------------------------------------------------------- */
static int64_t now_ms(void) { return qb_time_mono_ns() / 1000000; }
static int client_wants(const struct sse_client_s *c, const ev_t *e);

/* waiting list; hub lock held */
static void wait_add(api_hub_t *h, sse_client_t *c) {
    c->wprev = NULL;
    c->wnext = h->waiting;
    if (h->waiting) h->waiting->wprev = c;
    h->waiting = c;
}

static void wait_del(api_hub_t *h, sse_client_t *c) {
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        h->waiting = c->wnext;
    if (c->wnext) c->wnext->wprev = c->wprev;
    c->wprev = c->wnext = NULL;
}

/* Take the waiting clients `pick` selects off the list (hub lock held);
 * they are resumed by resume_all after the lock is released. */
typedef struct wake_s {
    struct MHD_Connection *v[64];
    size_t n;
    struct MHD_Connection **more;
    size_t nmore, capmore;
} wake_t;

static void wake_add(wake_t *w, struct MHD_Connection *c) {
    if (w->n < 64) {
        w->v[w->n++] = c;
        return;
    }
    if (w->nmore == w->capmore) {
        size_t cap = w->capmore ? w->capmore * 2 : 256;
        struct MHD_Connection **nm = realloc(w->more, cap * sizeof *nm);
        if (!nm) abort(); /* a suspended client left behind would hang its stream */
        w->more = nm;
        w->capmore = cap;
    }
    w->more[w->nmore++] = c;
}

static void wake_run(wake_t *w) {
    for (size_t i = 0; i < w->n; i++) MHD_resume_connection(w->v[i]);
    for (size_t i = 0; i < w->nmore; i++) MHD_resume_connection(w->more[i]);
    free(w->more);
}

/* Heartbeats for suspended clients: resume those whose heartbeat is due. */
static void *hb_main(void *arg) {
    api_hub_t *h = arg;
    int64_t tick = h->heartbeat_ms / 4;
    if (tick > 250) tick = 250;
    if (tick < 10) tick = 10;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += tick * 1000000L;
        while (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        wake_t w = {.n = 0};
        int64_t now = now_ms();
        for (sse_client_t *c = h->waiting, *nx; c; c = nx) {
            nx = c->wnext;
            if (h->stop || c->hb_due_ms <= now) {
                wait_del(h, c);
                wake_add(&w, c->conn);
            }
        }
        pthread_mutex_unlock(&h->mu);
        wake_run(&w);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void hub_append(api_hub_t *h, int stream, const char *symbol, const char *key,
                       const char *json, size_t json_len) {
    size_t cap = json_len + 200;
    char *text = malloc(cap);
    if (!text) return;
    pthread_mutex_lock(&h->mu);
    uint64_t seq = h->next_seq++;
    int n = snprintf(text, cap, "id: %s-%" PRIu64 "\nevent: %s\ndata: ", h->boot, seq,
                     STREAMS[stream].name);
    memcpy(text + n, json, json_len);
    memcpy(text + n + json_len, "\n\n", 3);
    ev_t *e = &h->ring[seq % h->cap];
    free(e->text);
    e->seq = seq;
    e->stream = stream;
    snprintf(e->symbol, sizeof e->symbol, "%s", symbol ? symbol : "");
    snprintf(e->key, sizeof e->key, "%s", key ? key : "");
    e->text = text;
    e->len = (size_t)n + json_len + 2;
    wake_t w = {.n = 0};
    for (sse_client_t *c = h->waiting, *nx; c; c = nx) {
        nx = c->wnext;
        if (client_wants(c, e)) {
            wait_del(h, c);
            wake_add(&w, c->conn);
        } else if (c->cursor + 1 == seq) {
            c->cursor = seq; /* filtered out: it has seen everything up to here */
        }
    }
    pthread_mutex_unlock(&h->mu);
    wake_run(&w);
    qb_counter_inc(h->events);
}

static void *reader_main(void *arg) {
    reader_th_t *rt = arg;
    api_hub_t *h = rt->hub;
    qb_reader_t *rd = NULL;
    char err[512];
    int warned = 0;
    while (!h->stop) {
        if (!rd) {
            rd = qb_reader_new(rt->topic, 0, 2000, err, sizeof err);
            if (!rd) {
                if (!warned++) QB_WARN("stream %s: %s (retrying)", rt->topic, err);
                for (int i = 0; i < 10 && !h->stop; i++) usleep(100000);
                continue;
            }
            if (warned) QB_INFO("stream %s: reading", rt->topic);
            warned = 0;
        }
        qb_bus_msg_t m;
        const char *derr = NULL;
        qb_err_t e = qb_reader_next(rd, 200, &m, &derr);
        if (e == QB_ERR_TIMEOUT) continue;
        if (e != QB_OK) {
            QB_WARN("stream %s: reader failed (%s); reopening", rt->topic, qb_err_str(e));
            qb_reader_destroy(rd);
            rd = NULL;
            continue;
        }
        if (!m.msg) continue; /* undecodable: the services dead-letter those */
        cJSON *msg = qb_pbjson_to_cjson(m.msg, 0);
        if (!msg) continue;
        cJSON *sym = cJSON_GetObjectItemCaseSensitive(msg, "symbol");
        char symbol[33] = "";
        if (cJSON_IsString(sym)) snprintf(symbol, sizeof symbol, "%s", sym->valuestring);
        char key[101] = "";
        if (m.key && m.key_len) snprintf(key, sizeof key, "%.*s", (int)m.key_len, (const char *)m.key);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "stream", STREAMS[rt->stream].name);
        cJSON_AddStringToObject(o, "topic", m.topic);
        cJSON_AddStringToObject(o, "type", m.type ? m.type : "");
        cJSON_AddStringToObject(o, "key", key);
        cJSON_AddItemToObject(o, "message", msg);
        char *txt = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!txt) continue;
        size_t len = strlen(txt);
        if (len > SSE_MAX_EVENT)
            qb_counter_inc(h->too_big);
        else
            hub_append(h, rt->stream, symbol, key, txt, len);
        free(txt);
    }
    qb_reader_destroy(rd);
    return NULL;
}

api_hub_t *api_hub_new(const api_cfg_t *cfg, char *errstr, size_t errstr_size) {
    api_hub_t *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->cap = (uint64_t)cfg->sse_buffer;
    h->ring = calloc(h->cap, sizeof(ev_t));
    if (!h->ring) {
        free(h);
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "QB_API_SSE_BUFFER: out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    h->next_seq = 1;
    snprintf(h->boot, sizeof h->boot, "%" PRIx64, (uint64_t)(qb_time_now() / 1000000));
    h->heartbeat_ms = cfg->sse_heartbeat_ms;
    h->max_clients = cfg->sse_max_clients;
    h->events = qb_metrics_counter("qb_api_sse_events_total",
                                   "Events taken from the bus into the stream hub", NULL);
    h->dropped_lapped = qb_metrics_counter(
        "qb_api_sse_dropped_total", "Stream clients dropped", "reason=\"lapped\"");
    h->too_big = qb_metrics_counter("qb_api_sse_oversized_total",
                                    "Messages too large to stream (skipped)", NULL);
    h->resets = qb_metrics_counter("qb_api_sse_resets_total",
                                   "Reconnects that could not resume (reset sent)", NULL);
    h->clients = qb_metrics_gauge("qb_api_sse_clients", "Stream clients connected", NULL);
    for (int s = 0; s < NSTREAMS; s++)
        for (int t = 0; t < 2 && STREAMS[s].topics[t]; t++) {
            reader_th_t *rt = &h->readers[h->nreaders++];
            rt->hub = h;
            rt->stream = s;
            rt->topic = STREAMS[s].topics[t];
        }
    for (int i = 0; i < h->nreaders; i++)
        if (pthread_create(&h->readers[i].th, NULL, reader_main, &h->readers[i]) == 0)
            h->readers[i].started = 1;
    if (pthread_create(&h->hb_th, NULL, hb_main, h) == 0) h->hb_started = 1;
    return h;
}

void api_hub_stop(api_hub_t *h) {
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    wake_t w = {.n = 0};
    while (h->waiting) { /* every stream ends: sse_read sees stop */
        sse_client_t *c = h->waiting;
        wait_del(h, c);
        wake_add(&w, c->conn);
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    wake_run(&w);
}

void api_hub_destroy(api_hub_t *h) {
    if (!h) return;
    api_hub_stop(h);
    for (int i = 0; i < h->nreaders; i++)
        if (h->readers[i].started) pthread_join(h->readers[i].th, NULL);
    if (h->hb_started) pthread_join(h->hb_th, NULL);
    for (uint64_t i = 0; i < h->cap; i++) free(h->ring[i].text);
    free(h->ring);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* ---- a client ------------------------------------------------------------------------------- */
static int client_wants(const sse_client_t *c, const ev_t *e) {
    if (!(c->streams & (1u << e->stream))) return 0;
    if (c->nsymbols && e->symbol[0]) {
        int hit = 0;
        for (int i = 0; i < c->nsymbols && !hit; i++) hit = !strcmp(c->symbols[i], e->symbol);
        if (!hit) return 0;
    }
    if (c->run[0] && !strcmp(STREAMS[e->stream].name, "backtests") && strcmp(c->run, e->key))
        return 0;
    return 1;
}

static void out_put(sse_client_t *c, const char *s, size_t n) {
    if (c->out_len + n > SSE_OUT_CAP) return; /* cannot happen: events are capped */
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

/* libmicrohttpd asks for more of the stream (on its event-loop thread). */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse_client_t *c = cls;
    api_hub_t *h = c->hub;
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        pthread_mutex_lock(&h->mu);
        if (h->stop) {
            pthread_mutex_unlock(&h->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        uint64_t oldest = h->next_seq > h->cap ? h->next_seq - h->cap : 1;
        if (c->cursor + 1 < oldest) { /* lapped: events it never saw are gone */
            pthread_mutex_unlock(&h->mu);
            qb_counter_inc(h->dropped_lapped);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        while (c->cursor + 1 < h->next_seq) {
            const ev_t *e = &h->ring[(c->cursor + 1) % h->cap];
            if (client_wants(c, e)) {
                if (c->out_len + e->len > SSE_OUT_CAP) break;
                out_put(c, e->text, e->len);
            }
            c->cursor++;
        }
        int64_t now = now_ms();
        if (!c->out_len) {
            if (now < c->hb_due_ms) { /* nothing to say yet: wait without a thread */
                wait_add(h, c);
                MHD_suspend_connection(c->conn);
                pthread_mutex_unlock(&h->mu);
                return 0;
            }
            out_put(c, ": heartbeat\n\n", 13);
        }
        c->hb_due_ms = now + h->heartbeat_ms;
        pthread_mutex_unlock(&h->mu);
    }
    size_t n = c->out_len - c->out_off;
    if (n > max) n = max;
    memcpy(buf, c->out + c->out_off, n);
    c->out_off += n;
    return (ssize_t)n;
}

/* The stream's connection closed. Never while suspended (a waiting client is
 * resumed before the daemon stops), so it is on no list; no hub lock taken
 * here, as libmicrohttpd may hold its own locks when it frees a response. */
static void sse_free(void *cls) {
    sse_client_t *c = cls;
    api_hub_t *h = c->hub;
    __atomic_sub_fetch(&h->nclients, 1, __ATOMIC_SEQ_CST);
    qb_gauge_add(h->clients, -1);
    for (int i = 0; i < c->nsymbols; i++) free(c->symbols[i]);
    free(c->symbols);
    free(c->out);
    free(c);
}

/* comma list -> stream bit mask; -1 naming an unknown one */
static int parse_streams(const char *list, unsigned *mask, char *bad, size_t badn) {
    *mask = 0;
    if (!list) {
        *mask = (1u << NSTREAMS) - 1;
        return 0;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int hit = -1;
        for (int s = 0; s < NSTREAMS; s++)
            if (!strcmp(STREAMS[s].name, t)) hit = s;
        if (hit < 0) {
            snprintf(bad, badn, "%s", t);
            return -1;
        }
        *mask |= 1u << hit;
    }
    return 0;
}

void h_stream(api_req_t *r) {
    api_hub_t *h = api_hub(r->api);
    char bad[80];
    unsigned mask;
    if (parse_streams(api_q_str(r, "topics"), &mask, bad, sizeof bad)) {
        api_error(r, 400, "topics",
                  "topics: unknown stream '%s' (bars, features, signals, orders, risk, "
                  "backtests, notifications)",
                  bad);
        return;
    }
    if (__atomic_add_fetch(&h->nclients, 1, __ATOMIC_SEQ_CST) > h->max_clients) {
        __atomic_sub_fetch(&h->nclients, 1, __ATOMIC_SEQ_CST);
        api_error(r, 503, NULL, "too many stream clients (QB_API_SSE_MAX_CLIENTS)");
        return;
    }
    qb_gauge_add(h->clients, 1);
    sse_client_t *c = calloc(1, sizeof *c);
    if (c) c->out = malloc(SSE_OUT_CAP);
    if (!c || !c->out) {
        if (c) free(c);
        __atomic_sub_fetch(&h->nclients, 1, __ATOMIC_SEQ_CST);
        qb_gauge_add(h->clients, -1);
        api_error(r, 503, NULL, "out of memory");
        return;
    }
    c->hub = h;
    c->conn = r->conn;
    c->hb_due_ms = now_ms() + h->heartbeat_ms;
    c->streams = mask;
    const char *syms = api_q_str(r, "symbols");
    if (syms) {
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", syms);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char **ns = realloc(c->symbols, sizeof(char *) * (size_t)(c->nsymbols + 1));
            if (!ns) break;
            c->symbols = ns;
            char *up = strdup(t);
            if (!up) break;
            for (char *p = up; *p; p++)
                if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
            c->symbols[c->nsymbols++] = up;
        }
    }
    const char *run = api_q_str(r, "run");
    if (run) snprintf(c->run, sizeof c->run, "%s", run);
    const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!last) last = api_q_str(r, "last_event_id");
    out_put(c, "retry: 2000\n\n", 13);
    pthread_mutex_lock(&h->mu);
    c->cursor = h->next_seq - 1; /* live from now */
    const char *reason = NULL;
    if (last && *last) {
        size_t bl = strlen(h->boot);
        char *end = NULL;
        uint64_t seq = 0;
        if (!strncmp(last, h->boot, bl) && last[bl] == '-')
            seq = strtoull(last + bl + 1, &end, 10);
        uint64_t oldest = h->next_seq > h->cap ? h->next_seq - h->cap : 1;
        if (!end || *end || seq >= h->next_seq)
            reason = "the gateway restarted since that event (or the id is not one of ours)";
        else if (seq + 1 < oldest)
            reason = "away too long: the events after that id are no longer buffered";
        else
            c->cursor = seq;
    }
    pthread_mutex_unlock(&h->mu);
    if (reason) {
        qb_counter_inc(h->resets);
        char ev[256];
        int n = snprintf(ev, sizeof ev, "event: reset\ndata: {\"reason\":\"%s\"}\n\n", reason);
        out_put(c, ev, (size_t)n);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, c, sse_free);
    if (!resp) {
        sse_free(c);
        api_error(r, 503, NULL, "out of memory");
        return;
    }
    r->stream = resp;
    r->status = 200;
}

const api_route_t api_routes_stream[] = {
    {"GET", "/api/v1/stream", QB_ROLE_VIEWER, h_stream, "stream",
     "Server-Sent Events from the bus: bars, features, signals, orders, risk, backtests, "
     "notifications; Last-Event-ID resumes",
     200, NULL, NULL,
     {{"topics", API_P_LIST, 0, 0, 7, NULL,
       "streams: bars,features,signals,orders,risk,backtests,notifications (default all)"},
      {"symbols", API_P_LIST, 0, 0, 200, NULL, "only events of these symbols"},
      {"run", API_P_STRING, 0, 0, 100, NULL, "backtests: only this run id"},
      {"last_event_id", API_P_STRING, 0, 0, 64, NULL,
       "resume after this event id (as the Last-Event-ID header)"}},
     API_R_STREAM | API_R_INLINE},
    {0}};
