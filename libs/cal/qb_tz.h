/* qb_tz.h — time zones from the system tzdata, without libc's TZ state.
 *
 * Why: exchange sessions are defined in local time (NYSE opens 09:30
 * America/New_York) while every Quantbus timestamp is ns UTC. libc's
 * localtime/mktime read the process-wide TZ variable and are not safe to
 * switch per call across threads, so this module reads the zone files
 * itself and converts with pure functions.
 *
 * Where the data comes from: /usr/share/zoneinfo/<name> (Debian package
 * `tzdata`), in the TZif format of RFC 8536:
 *   - a 44-byte header: "TZif", a version byte ('\0' = 1, '2', '3', '4'),
 *     15 reserved bytes, then six big-endian uint32 counts: isutcnt,
 *     isstdcnt, leapcnt, timecnt, typecnt, charcnt;
 *   - a data block: timecnt transition times (int32 in version 1, int64 in
 *     the second block), timecnt uint8 type indices, typecnt 6-byte local
 *     time types {int32 utoff, uint8 isdst, uint8 abbreviation index},
 *     charcnt bytes of NUL-terminated abbreviations, leapcnt leap-second
 *     records, isstdcnt and isutcnt indicator bytes (unused: they only
 *     matter for POSIX-style rule files without transitions);
 *   - version 2+: a second header and data block with 64-bit times (the one
 *     this module uses; a version 1 file falls back to the 32-bit block),
 *     then a footer "\n<POSIX TZ string>\n".
 * Local time before the first transition is type 0 (RFC 8536 §3.2). From
 * the last transition on, the footer's POSIX TZ string rules (Debian's
 * "fat" files list transitions up to 2037; "slim" files stop at the last
 * rule change and rely on the footer for everything after). An empty
 * footer means the last transition's type holds forever. Files with leap
 * second records ("right/..." zones) are refused: Quantbus time is Unix
 * time, without leap seconds.
 *
 * The POSIX TZ string (footer, or qb_tz_from_posix): std offset [dst
 * [offset] [,start[/time],end[/time]]], e.g. "EST5EDT,M3.2.0,M11.1.0" or
 * "GMT0BST,M3.5.0/1,M10.5.0". Names are 3+ letters or <quoted> (e.g.
 * "<+0530>"); an offset is [+|-]hh[:mm[:ss]] WEST of Greenwich (so EST5 is
 * UTC-5); the DST offset defaults to one hour ahead of standard; a date is
 * Mm.w.d (month m, week w 1..5 with 5 = last, weekday d 0 = Sunday), Jn
 * (day 1..365, Feb 29 never counted) or n (day 0..365, Feb 29 counted); a
 * time is [+|-]hh[:mm[:ss]] of LOCAL time then in force (hours up to 167,
 * RFC 8536's extension), default 02:00; DST without rules uses the US rules
 * "M3.2.0,M11.1.0".
 *
 * Local -> UTC at DST transitions (qb_tz_from_local):
 *   - a skipped wall time (spring forward: 2024-03-10 02:30 in New York
 *     does not exist) or a repeated one (fall back: 2024-11-03 01:30 in
 *     New York happens at 05:30Z and again at 06:30Z) is resolved by a
 *     qb_tz_disamb_t rule. QB_TZ_COMPATIBLE (the default, as in RFC 5545
 *     and JavaScript Temporal) takes the EARLIER instant of a repeated time
 *     and, for a skipped time, applies the offset in force BEFORE the
 *     transition, i.e. moves forward by the length of the gap
 *     (02:30 -> 03:30 EDT = 07:30Z).
 *
 * Ownership and threads: zones from qb_tz_get are loaded once per process,
 * kept in a cache behind a mutex, immutable, and never freed (do not
 * destroy them); the pointer stays valid for the life of the process and
 * may be used from any thread. qb_tz_load_file and qb_tz_from_posix return
 * an uncached zone that the caller frees with qb_tz_destroy (NULL is a
 * no-op). All conversion functions are pure and thread-safe. */
#ifndef QB_TZ_H
#define QB_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_time.h"

#define QB_TZ_DIR "/usr/share/zoneinfo"
#define QB_TZ_NAME_MAX 63 /* characters of a zone name, NUL not included */
#define QB_TZ_ABBR_MAX 15 /* characters of an abbreviation ("EST", "+0530") */

typedef struct qb_tz_s qb_tz_t;

/* Local time at an instant. */
typedef struct qb_tz_local_s {
    qb_civil_t civil;   /* wall clock (year..nsec) */
    int32_t utc_offset; /* seconds east of UTC: -18000 for EST, 3600 for BST */
    int is_dst;         /* 1 in daylight saving time */
    char abbr[QB_TZ_ABBR_MAX + 1]; /* "EDT"; "" when the data has none */
} qb_tz_local_t;

/* How qb_tz_from_local resolves a skipped or repeated wall time. */
typedef enum qb_tz_disamb_e {
    QB_TZ_COMPATIBLE = 0, /* repeated: earlier; skipped: later (see above) */
    QB_TZ_EARLIER = 1,    /* the earlier instant in both cases (skipped: the
                             offset after the transition, 02:30 -> 06:30Z) */
    QB_TZ_LATER = 2,      /* the later instant in both cases */
    QB_TZ_REJECT = 3      /* QB_ERR_RANGE for a skipped or repeated time */
} qb_tz_disamb_t;

/* The zone `name` ("America/New_York", "Europe/London", "UTC"), loaded from
 * QB_TZ_DIR on first use and cached. Names are relative paths of letters,
 * digits and "/_-+", without "." components. "UTC" and "Etc/UTC" work even
 * without tzdata. Errors (with a message naming the file):
 *   QB_ERR_NOT_FOUND  no such zone file (is the package tzdata installed?)
 *   QB_ERR_INVALID    a bad name
 *   QB_ERR_PARSE      the file is not a TZif file we can use
 *   QB_ERR_IO, QB_ERR_NOMEM */
qb_err_t qb_tz_get(const char *name, const qb_tz_t **out, char *errstr,
                   size_t errstr_size);

/* Parse a TZif file at `path` (uncached; `name` is what qb_tz_name will
 * return). Free with qb_tz_destroy. Errors as qb_tz_get. */
qb_err_t qb_tz_load_file(const char *path, const char *name, qb_tz_t **out,
                         char *errstr, size_t errstr_size);

/* A zone made only of a POSIX TZ string (no transition table), e.g.
 * "EST5EDT,M3.2.0,M11.1.0". QB_ERR_PARSE with a message when malformed.
 * Free with qb_tz_destroy. */
qb_err_t qb_tz_from_posix(const char *spec, qb_tz_t **out, char *errstr,
                          size_t errstr_size);

/* Frees a zone from qb_tz_load_file / qb_tz_from_posix; NULL is a no-op.
 * Never pass a zone from qb_tz_get. */
void qb_tz_destroy(qb_tz_t *tz);

/* The name given at load ("America/New_York"), or the POSIX string. */
const char *qb_tz_name(const qb_tz_t *tz);

/* The zone's footer rule ("EST5EDT,M3.2.0,M11.1.0"); "" when none. */
const char *qb_tz_posix_rule(const qb_tz_t *tz);

/* Number of transitions in the file's table and the last one (UTC ns;
 * 0 when the table is empty). Instants at or after the last transition
 * are computed from the POSIX rule. For tests and diagnostics. */
size_t qb_tz_transition_count(const qb_tz_t *tz);
qb_time_t qb_tz_last_transition(const qb_tz_t *tz);

/* Offset (seconds east of UTC) in force at instant t. */
int32_t qb_tz_offset_at(const qb_tz_t *tz, qb_time_t t);

/* UTC -> local. QB_ERR_RANGE when the local time leaves the qb_time_t
 * span (within hours of year 1678 or 2262). */
qb_err_t qb_tz_to_local(const qb_tz_t *tz, qb_time_t t, qb_tz_local_t *out);

/* Local wall time (local->year..nsec, validated like qb_time_from_civil)
 * -> UTC, resolving a skipped or repeated time per `rule` (see the top of
 * this file). *out is written only on success. Errors: QB_ERR_PARSE for a
 * bad field, QB_ERR_RANGE for a skipped/repeated time under QB_TZ_REJECT
 * or a year outside 1678..2261, QB_ERR_INVALID for a bad rule. */
qb_err_t qb_tz_from_local(const qb_tz_t *tz, const qb_civil_t *local,
                          qb_tz_disamb_t rule, qb_time_t *out, char *errstr,
                          size_t errstr_size);

#endif
