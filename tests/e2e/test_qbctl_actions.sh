#!/usr/bin/env bash
# test_qbctl_actions.sh — `qbctl actions import|list` and `qbctl bars
# --adjust` as an operator uses them, against the harness PostgreSQL
# (QB_PG_DSN) in a database of its own:
#  - tests/fixtures/md/actions_bad.csv: exit 1, one "FILE:LINE: reason" per
#    bad line (3 bad_ratio, 5 duplicate of line 4, 6 bad_kind, 7
#    column_count) and NOTHING stored (all or nothing);
#  - tests/fixtures/md/actions_good.csv (2:1 split ex 2024-01-04, 0.25
#    dividend ex 2024-01-08): exit 0, twice (idempotent), `actions list`
#    prints it back;
#  - `bars --adjust raw|split|total` over six hand-written daily bars: the
#    split halves prices and doubles volume before 2024-01-04; total also
#    applies f = 1 - 0.25/53.5 (53.5 = the close before 2024-01-08);
#    --from/--to select bar open times in [from, to);
#  - md.bars is unchanged by all of it (md5 before/after);
#  - unknown symbol exit 1, bad usage exit 2.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
QBCTL="$ROOT/$B/bin/qbctl"
FIX="$ROOT/tests/fixtures/md"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
T=$(mktemp -d)
DB="qbact_$$_$RANDOM"
fail() { echo "FAIL: $*" >&2; for f in "$T"/out "$T"/err; do [ -f "$f" ] && sed 's/^/  | /' "$f" >&2; done; exit 1; }
cleanup() { psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
run() { set +e; QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" "$QBCTL" "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e; }
md5bars() { q "SELECT md5(coalesce(string_agg(b::text, '|' ORDER BY asset_id, timeframe, ts), '')) FROM md.bars b"; }

run migrate
[ $rc -eq 0 ] || fail "migrate exited $rc"

# raw bars: 2:1 split between 01-03 and 01-04 (the price halves)
cat >"$T/bars.csv" <<'EOF'
Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,100,104,98,102,102,1000
2024-01-03,102,106,101,105,105,1201
2024-01-04,52.5,53,51.25,52,52,2500
2024-01-05,52,54,51.75,53.5,53.5,2200
2024-01-08,53,54,52,53,53,2000
2024-01-09,53,54,52.5,53.5,53.5,1800
EOF
run import --csv "$T/bars.csv" --symbol ACT --no-publish
[ $rc -eq 0 ] || fail "bars import exited $rc"

# a file with bad lines: reported with FILE:LINE, nothing stored
run actions import --csv "$FIX/actions_bad.csv" --symbol ACT
[ $rc -eq 1 ] || fail "import of actions_bad.csv exited $rc, want 1"
for want in "actions_bad.csv:3: bad_ratio: split ratio 'two-for-one'" \
            "actions_bad.csv:5: duplicate: dividend on 2024-01-08 already on line 4" \
            "actions_bad.csv:6: bad_kind: 'bonus' (want split or dividend)" \
            "actions_bad.csv:7: column_count: 2 columns, want 3 (date,kind,value)"; do
  grep -qF "$want" "$T/err" || fail "stderr lacks '$want'"
done
[ "$(grep -c 'actions_bad.csv:[0-9]*: ' "$T/err")" = 4 ] || fail "want exactly 4 reject lines"
grep -q "nothing stored" "$T/err" || fail "no 'nothing stored' note"
[ "$(q "SELECT count(*) FROM md.corporate_actions")" = 0 ] || fail "a rejected file stored actions"

# the good file, twice
run actions import --csv "$FIX/actions_good.csv" --symbol act
[ $rc -eq 0 ] || fail "import of actions_good.csv exited $rc"
grep -q "actions 2 (splits 1, dividends 1), rejected 0, stored 2" "$T/out" || fail "import counts"
run actions import --csv "$FIX/actions_good.csv" --symbol ACT --source vendor
[ $rc -eq 0 ] || fail "second import exited $rc"
[ "$(q "SELECT count(*) || ' ' || min(source) FROM md.corporate_actions")" = "2 vendor" ] || fail "not idempotent"

run actions list ACT
[ $rc -eq 0 ] || fail "actions list exited $rc"
printf 'date,kind,value\n2024-01-04,split,2:1\n2024-01-08,dividend,0.25\n' | diff - "$T/out" >/dev/null \
  || fail "actions list output"

before=$(md5bars)

# raw: the stored bars
run bars ACT --from 2024-01-02 --to 2024-01-10
[ $rc -eq 0 ] || fail "bars (raw) exited $rc"
[ "$(sed -n 2p "$T/out")" = "2024-01-02,100,104,98,102,1000" ] || fail "raw first bar"
[ "$(wc -l <"$T/out")" = 7 ] || fail "raw: want header + 6 bars"

# split: before 01-04 prices / 2, volume * 2; on/after unchanged
run bars ACT --from 2024-01-02 --to 2024-01-10 --timeframe 1d --adjust split
[ $rc -eq 0 ] || fail "bars --adjust split exited $rc"
cat >"$T/want" <<'EOF'
time,open,high,low,close,volume
2024-01-02,50,52,49,51,2000
2024-01-03,51,53,50.5,52.5,2402
2024-01-04,52.5,53,51.25,52,2500
2024-01-05,52,54,51.75,53.5,2200
2024-01-08,53,54,52,53,2000
2024-01-09,53,54,52.5,53.5,1800
EOF
diff "$T/want" "$T/out" >&2 || fail "bars --adjust split output"

# total: also * f = 53.25/53.5 before 01-08, each value rounded once
# (half-even, 1e-8): 01-02 open 100/2*f = 49.766355140.. -> 49.76635514,
# 01-05 close 53.5*f = 53.25 exactly; volume is split-adjusted only
run bars ACT --from 2024-01-02 --to 2024-01-09 --adjust total
[ $rc -eq 0 ] || fail "bars --adjust total exited $rc"
cat >"$T/want" <<'EOF'
time,open,high,low,close,volume
2024-01-02,49.76635514,51.75700935,48.77102804,50.76168224,2000
2024-01-03,50.76168224,52.75233645,50.26401869,52.2546729,2402
2024-01-04,52.2546729,52.75233645,51.01051402,51.75700935,2500
2024-01-05,51.75700935,53.74766355,51.50817757,53.25,2200
2024-01-08,53,54,52,53,2000
EOF
diff "$T/want" "$T/out" >&2 || fail "bars --adjust total output"

# a range that starts on the dividend's ex-date: skipped with a warning
run bars ACT --from 2024-01-08 --adjust total
[ $rc -eq 0 ] || fail "bars from the ex-date exited $rc"
grep -q "warning: 1 dividend on the first bar skipped" "$T/err" || fail "no warning for the dividend without a previous close"

# the raw table is untouched by every read
[ "$(md5bars)" = "$before" ] || fail "md.bars changed by adjusted reads"

# errors and usage
run bars NOSUCH
[ $rc -eq 1 ] || fail "unknown symbol exited $rc, want 1"
run actions list NOSUCH
[ $rc -eq 1 ] || fail "actions list of an unknown symbol exited $rc, want 1"
run bars ACT --adjust dividends
[ $rc -eq 2 ] || fail "bad --adjust exited $rc, want 2"
run bars ACT --from 2024-13-01
[ $rc -eq 2 ] || fail "bad --from exited $rc, want 2"
run actions import --symbol ACT
[ $rc -eq 2 ] || fail "missing --csv exited $rc, want 2"
run actions frobnicate
[ $rc -eq 2 ] || fail "unknown subcommand exited $rc, want 2"
run actions import --csv "$T/nonexistent.csv" --symbol ACT
[ $rc -eq 1 ] || fail "missing file exited $rc, want 1"
grep -q "nonexistent.csv" "$T/err" || fail "missing file not named"
echo "ok"
