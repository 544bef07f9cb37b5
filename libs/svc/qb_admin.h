/* qb_admin.h — the admin HTTP server of a service (libmicrohttpd, its own
 * thread): /healthz, /readyz, /metrics. Internal to libs/svc; services use
 * qb_svc.h. The server is owned by the qb_svc_t that started it. */
#ifndef QB_ADMIN_H
#define QB_ADMIN_H

#include <stddef.h>

typedef struct qb_admin_s qb_admin_t;
struct qb_svc_s;

/* Bind and start serving. port 0 = any free port (see qb_admin_port).
 * Returns NULL with errstr set when the address cannot be bound. */
qb_admin_t *qb_admin_start(struct qb_svc_s *svc, const char *bind_addr, int port,
                           char *errstr, size_t errstr_size);
int qb_admin_port(const qb_admin_t *a);
/* Stop serving and free. NULL is a no-op. */
void qb_admin_stop(qb_admin_t *a);

/* Implemented in qb_svc.c: the /readyz body (malloc'd) and whether ready. */
int qb_svc_ready_json(struct qb_svc_s *svc, char **body);
/* Implemented in qb_svc.c: routes added by the service; 1 when taken. */
int qb_svc_admin_dispatch(struct qb_svc_s *svc, const char *method, const char *url,
                          int *status, char **body);

#endif
