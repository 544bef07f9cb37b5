/* qb_md_source.c — dispatch of the source interface; see qb_md_source.h. */
#include "md/qb_md_source.h"

qb_err_t qb_md_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                     const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    if (!src || !req || !sink || !sink->bars || !req->symbol || !req->timeframe)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "fetch: source, request (symbol, timeframe) and sink are required");
    if (req->to && req->to <= req->from)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "fetch %s %s: empty range (to <= from)", req->symbol, req->timeframe);
    return src->ops->fetch(src, req, sink, errstr, errstr_size);
}

const char *qb_md_source_name(const qb_md_source_t *src) {
    return src ? src->ops->name : "";
}

void qb_md_source_destroy(qb_md_source_t *src) {
    if (src) src->ops->destroy(src);
}
