#!/usr/bin/env bash
# gen_python.sh — generate the Python modules of the Quantbus schemas.
#
# Usage: tests/e2e/gen_python.sh OUTDIR
#
# Runs `protoc --python_out=OUTDIR -Iproto proto/qb/v1/*.proto` (Debian's
# protobuf-compiler; the modules need python3-protobuf at run time) and makes
# OUTDIR/qb and OUTDIR/qb/v1 regular packages, so that with OUTDIR on
# sys.path (PYTHONPATH=OUTDIR):
#     from qb.v1 import market_pb2
#     bar = market_pb2.Bar.FromString(data)
# Used by end-to-end tests that decode messages with /usr/bin/python3, an
# implementation independent of our C code. Works from any directory.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

command -v protoc >/dev/null || { echo "gen_python.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
shopt -s nullglob
protos=("$root"/proto/qb/v1/*.proto)
[ ${#protos[@]} -gt 0 ] || { echo "gen_python.sh: no .proto files in $root/proto/qb/v1" >&2; exit 1; }

mkdir -p "$out"
protoc --python_out="$out" -I"$root/proto" "${protos[@]}"
touch "$out/qb/__init__.py" "$out/qb/v1/__init__.py"
