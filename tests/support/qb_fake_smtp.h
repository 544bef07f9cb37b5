/* qb_fake_smtp.h — a real SMTP server on loopback for e-mail tests.
 *
 * Speaks enough of RFC 5321 for a client such as libcurl: greeting, EHLO /
 * HELO, STARTTLS (RFC 3207, with a throwaway self-signed certificate made
 * at start for IP 127.0.0.1 and DNS localhost: its PEM is written to
 * qb_fake_smtp_ca_file() so the client can verify it), MAIL FROM, RCPT TO
 * (a recipient whose local part starts with "reject" gets 550), DATA (dot
 * un-stuffed), RSET, NOOP, QUIT. With require_tls, MAIL before STARTTLS gets
 * "530 Must issue a STARTTLS command first".
 *
 * One server thread on 127.0.0.1 and a free port, one connection at a
 * time. Every accepted message is recorded (envelope, data, whether it came
 * over TLS). Ownership: qb_fake_smtp_stop frees the server, its records and
 * removes the CA file; NULL is a no-op. */
#ifndef QB_FAKE_SMTP_H
#define QB_FAKE_SMTP_H

#include <stddef.h>

typedef struct qb_smtp_msg_s {
    char *from;     /* MAIL FROM address, without <> */
    char *rcpt;     /* RCPT TO addresses, comma-separated, without <> */
    char *data;     /* the message as received (CRLF), dot un-stuffed */
    int tls;        /* 1 when sent after STARTTLS */
} qb_smtp_msg_t;

typedef struct qb_fake_smtp_s qb_fake_smtp_t;

/* tls: offer STARTTLS; require_tls: refuse mail without it. Fails the
 * running cmocka test on error. */
qb_fake_smtp_t *qb_fake_smtp_start(int tls, int require_tls);
void qb_fake_smtp_stop(qb_fake_smtp_t *s);
int qb_fake_smtp_port(const qb_fake_smtp_t *s);
/* Path of the PEM certificate (the CA to trust); "" without tls. */
const char *qb_fake_smtp_ca_file(const qb_fake_smtp_t *s);
size_t qb_fake_smtp_count(qb_fake_smtp_t *s);
/* A copy of the i-th message's fields is not made: the pointer stays valid
 * until stop. NULL when i >= count. */
const qb_smtp_msg_t *qb_fake_smtp_msg(qb_fake_smtp_t *s, size_t i);

#endif
