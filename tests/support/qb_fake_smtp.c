/* qb_fake_smtp.c — see qb_fake_smtp.h. Owns the listening socket, the
 * server thread, the TLS context (key + self-signed certificate made with
 * OpenSSL at start) and the recorded messages. */
#include "qb_fake_smtp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct qb_fake_smtp_s {
    int lfd, port, tls, require_tls;
    volatile int stop;
    pthread_t th;
    SSL_CTX *ctx;
    char ca_file[128];
    pthread_mutex_t mu;
    qb_smtp_msg_t **msgs; /* each allocated alone: pointers stay valid */
    size_t n, cap;
};

/* One client connection, plain or TLS, with a line buffer. */
typedef struct qb_smtp_conn_s {
    qb_fake_smtp_t *s;
    int fd;
    SSL *ssl;
    char buf[8192];
    size_t len;
} qb_smtp_conn_t;

static int qb_smtp_write(qb_smtp_conn_t *c, const char *text) {
    size_t n = strlen(text);
    if (c->ssl) return SSL_write(c->ssl, text, (int)n) == (int)n ? 0 : -1;
    return send(c->fd, text, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* Read one CRLF line (without CRLF) into out; -1 on EOF, error or stop. */
static int qb_smtp_line(qb_smtp_conn_t *c, char *out, size_t cap) {
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t l = (size_t)(nl - c->buf);
            size_t cl = l && c->buf[l - 1] == '\r' ? l - 1 : l;
            if (cl >= cap) cl = cap - 1;
            memcpy(out, c->buf, cl);
            out[cl] = '\0';
            memmove(c->buf, nl + 1, c->len - l - 1);
            c->len -= l + 1;
            return 0;
        }
        if (c->len == sizeof c->buf) return -1;
        if (!c->ssl || SSL_pending(c->ssl) == 0) {
            struct pollfd p = {c->fd, POLLIN, 0};
            int pr;
            while ((pr = poll(&p, 1, 100)) == 0)
                if (c->s->stop) return -1;
            if (pr < 0) return -1;
        }
        int r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len))
                       : (int)recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0) return -1;
        c->len += (size_t)r;
    }
}

static char *qb_smtp_addr(const char *arg) {
    const char *lt = strchr(arg, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!lt || !gt) return strdup(arg);
    return strndup(lt + 1, (size_t)(gt - lt - 1));
}

static void qb_smtp_session(qb_fake_smtp_t *s, int fd) {
    qb_smtp_conn_t c = {.s = s, .fd = fd};
    char line[2048];
    char *from = NULL, *rcpt = NULL;
    qb_smtp_write(&c, "220 qb-fake-smtp ESMTP ready\r\n");
    while (qb_smtp_line(&c, line, sizeof line) == 0) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            qb_smtp_write(&c, "250-qb-fake-smtp\r\n250-8BITMIME\r\n");
            qb_smtp_write(&c, s->tls && !c.ssl ? "250-STARTTLS\r\n250 SIZE 10485760\r\n"
                                                : "250 SIZE 10485760\r\n");
        } else if (strncasecmp(line, "HELO", 4) == 0) {
            qb_smtp_write(&c, "250 qb-fake-smtp\r\n");
        } else if (strncasecmp(line, "STARTTLS", 8) == 0 && s->tls && !c.ssl) {
            qb_smtp_write(&c, "220 2.0.0 Ready to start TLS\r\n");
            c.len = 0;
            c.ssl = SSL_new(s->ctx);
            SSL_set_fd(c.ssl, fd);
            if (SSL_accept(c.ssl) != 1) break;
            free(from);
            free(rcpt);
            from = rcpt = NULL;
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            if (s->require_tls && !c.ssl) {
                qb_smtp_write(&c, "530 5.7.0 Must issue a STARTTLS command first\r\n");
                continue;
            }
            free(from);
            free(rcpt);
            rcpt = NULL;
            from = qb_smtp_addr(line + 10);
            qb_smtp_write(&c, "250 2.1.0 Ok\r\n");
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            char *a = qb_smtp_addr(line + 8);
            if (strncasecmp(a, "reject", 6) == 0) {
                qb_smtp_write(&c, "550 5.1.1 No such user\r\n");
                free(a);
                continue;
            }
            size_t l = (rcpt ? strlen(rcpt) + 1 : 0) + strlen(a) + 1;
            char *nr = malloc(l);
            snprintf(nr, l, "%s%s%s", rcpt ? rcpt : "", rcpt ? "," : "", a);
            free(rcpt);
            free(a);
            rcpt = nr;
            qb_smtp_write(&c, "250 2.1.5 Ok\r\n");
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            if (!from || !rcpt) {
                qb_smtp_write(&c, "503 5.5.1 Need MAIL and RCPT\r\n");
                continue;
            }
            qb_smtp_write(&c, "354 End data with <CR><LF>.<CR><LF>\r\n");
            size_t cap = 4096, len = 0;
            char *data = malloc(cap);
            int ok = 0;
            while (qb_smtp_line(&c, line, sizeof line) == 0) {
                if (strcmp(line, ".") == 0) {
                    ok = 1;
                    break;
                }
                const char *l = line[0] == '.' ? line + 1 : line;
                size_t ll = strlen(l);
                if (len + ll + 3 > cap) {
                    cap = (len + ll + 3) * 2;
                    data = realloc(data, cap);
                }
                memcpy(data + len, l, ll);
                len += ll;
                data[len++] = '\r';
                data[len++] = '\n';
            }
            data[len] = '\0';
            if (!ok) {
                free(data);
                break;
            }
            pthread_mutex_lock(&s->mu);
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 8;
                s->msgs = realloc(s->msgs, s->cap * sizeof *s->msgs);
            }
            qb_smtp_msg_t *m = malloc(sizeof *m);
            *m = (qb_smtp_msg_t){from, rcpt, data, c.ssl != NULL};
            s->msgs[s->n++] = m;
            pthread_mutex_unlock(&s->mu);
            from = rcpt = NULL;
            qb_smtp_write(&c, "250 2.0.0 Ok: queued\r\n");
        } else if (strncasecmp(line, "RSET", 4) == 0) {
            free(from);
            free(rcpt);
            from = rcpt = NULL;
            qb_smtp_write(&c, "250 2.0.0 Ok\r\n");
        } else if (strncasecmp(line, "NOOP", 4) == 0) {
            qb_smtp_write(&c, "250 2.0.0 Ok\r\n");
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            qb_smtp_write(&c, "221 2.0.0 Bye\r\n");
            break;
        } else {
            qb_smtp_write(&c, "502 5.5.2 Command not recognized\r\n");
        }
    }
    free(from);
    free(rcpt);
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    close(fd);
}

static void *qb_smtp_main(void *arg) {
    qb_fake_smtp_t *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) continue;
        qb_smtp_session(s, fd);
    }
    return NULL;
}

/* A P-256 key and a self-signed certificate for 127.0.0.1 / localhost. */
static int qb_smtp_tls_setup(qb_fake_smtp_t *s) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!key || !x) return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid());
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, nm);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", "IP:127.0.0.1,DNS:localhost"},
                             {"basicConstraints", "critical,CA:TRUE"}};
    for (int i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        if (!e) return -1;
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(x, key, EVP_sha256())) return -1;
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (!s->ctx || SSL_CTX_use_certificate(s->ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(s->ctx, key) != 1)
        return -1;
    snprintf(s->ca_file, sizeof s->ca_file, "/tmp/qb-fake-smtp-%d-%d.pem", (int)getpid(),
             s->port);
    FILE *f = fopen(s->ca_file, "w");
    if (!f) return -1;
    PEM_write_X509(f, x);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return 0;
}

qb_fake_smtp_t *qb_fake_smtp_start(int tls, int require_tls) {
    qb_fake_smtp_t *s = calloc(1, sizeof *s);
    if (!s) fail_msg("qb_fake_smtp_start: out of memory");
    s->tls = tls;
    s->require_tls = require_tls;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s->lfd, 16) != 0 || getsockname(s->lfd, (struct sockaddr *)&sa, &sl) != 0)
        fail_msg("qb_fake_smtp_start: socket: %s", strerror(errno));
    s->port = ntohs(sa.sin_port);
    if (tls && qb_smtp_tls_setup(s) != 0) fail_msg("qb_fake_smtp_start: TLS set-up failed");
    if (pthread_create(&s->th, NULL, qb_smtp_main, s) != 0)
        fail_msg("qb_fake_smtp_start: thread");
    return s;
}

void qb_fake_smtp_stop(qb_fake_smtp_t *s) {
    if (!s) return;
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->lfd);
    if (s->ctx) SSL_CTX_free(s->ctx);
    if (s->ca_file[0]) unlink(s->ca_file);
    for (size_t i = 0; i < s->n; i++) {
        free(s->msgs[i]->from);
        free(s->msgs[i]->rcpt);
        free(s->msgs[i]->data);
        free(s->msgs[i]);
    }
    free(s->msgs);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int qb_fake_smtp_port(const qb_fake_smtp_t *s) { return s->port; }
const char *qb_fake_smtp_ca_file(const qb_fake_smtp_t *s) { return s->ca_file; }

size_t qb_fake_smtp_count(qb_fake_smtp_t *s) {
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

const qb_smtp_msg_t *qb_fake_smtp_msg(qb_fake_smtp_t *s, size_t i) {
    pthread_mutex_lock(&s->mu);
    const qb_smtp_msg_t *m = i < s->n ? s->msgs[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return m;
}
