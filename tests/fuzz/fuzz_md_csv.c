/* fuzz_md_csv.c — libFuzzer target for the CSV source (libs/md/qb_md_csv.c).
 *
 * The fuzz build links libs/core (and libs/proto) only, so the two md
 * sources the CSV source needs are compiled in here. Input: the first byte
 * picks the options (format, delimiter, time format, timeframe, batch
 * size), the rest is the file, read from memory without a terminating NUL
 * (ASan catches any read past the end). Checks: the fetch never crashes,
 * every bar handed to the sink has a line number within the input and a
 * timestamp on a sane range, every reject has a "name:LINE" where and a
 * reason starting with a known reason code.
 * Build: make fuzz; run: ./build-fuzz/fuzz_md_csv -max_total_time=60 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md/qb_md_csv.c"
#include "md/qb_md_source.c"
#include "md/qb_md_validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_s {
    qb_md_source_t *src;
    size_t nlines; /* upper bound on line numbers */
    size_t bars, rejects;
} fz_t;

static const char *const fz_codes[] = {"bad_time", "bad_number", "null_value", "missing_value",
                                       "column_count", "bad_quote", "line_too_long"};

static qb_err_t fz_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                        size_t errstr_size) {
    fz_t *f = opaque;
    for (size_t i = 0; i < n; i++) {
        int64_t line = qb_md_csv_line_of(f->src, i);
        if (line < 1 || (size_t)line > f->nlines) abort();
        if (bars[i].symbol.s[0] != 'F') abort();
    }
    if (qb_md_csv_line_of(f->src, n) != 0) abort();
    f->bars += n;
    return QB_OK;
}

static void fz_reject(void *opaque, const char *where, const char *reason) {
    fz_t *f = opaque;
    if (strncmp(where, "fz:", 3) != 0) abort();
    int known = 0;
    for (size_t i = 0; i < sizeof fz_codes / sizeof fz_codes[0]; i++) {
        size_t l = strlen(fz_codes[i]);
        if (strncmp(reason, fz_codes[i], l) == 0 && reason[l] == ':') known = 1;
    }
    if (!known) abort();
    f->rejects++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t sel = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    qb_md_csv_opts_t o;
    memset(&o, 0, sizeof o);
    o.format = (sel & 1) ? QB_MD_CSV_GENERIC : QB_MD_CSV_YAHOO;
    static const char delims[4] = {',', ';', '\t', '|'};
    o.delimiter = delims[(sel >> 1) & 3];
    o.time_format = (qb_md_csv_time_t)((sel >> 3) & 3);
    o.batch = (sel & 0x20) ? 2 : 0;
    if (o.format == QB_MD_CSV_GENERIC && (sel & 0x40)) {
        o.names[0] = "t";
        o.names[1] = "o";
        o.names[2] = "h";
        o.names[3] = "l";
        o.names[4] = "c";
        o.index[5] = 5;
    }
    char *copy = malloc(len ? len : 1); /* exact size: no NUL after the data */
    if (!copy) return 0;
    if (len) memcpy(copy, text, len);
    char err[256];
    qb_md_source_t *src = qb_md_csv_source_new_buffer("fz", copy, len, &o, err, sizeof err);
    if (!src) abort();
    fz_t f = {src, 1, 0, 0};
    for (size_t i = 0; i < len; i++)
        if (copy[i] == '\n') f.nlines++;
    qb_md_request_t req = {"F", (sel & 0x80) ? "1m" : "1d", 0, 0, 0};
    qb_md_sink_t sink = {fz_bars, fz_reject, &f};
    memset(err, 'x', sizeof err);
    qb_err_t rc = qb_md_fetch(src, &req, &sink, err, sizeof err);
    if (rc != QB_OK && !memchr(err, '\0', sizeof err)) abort();
    qb_md_source_destroy(src);
    free(copy);
    return 0;
}
