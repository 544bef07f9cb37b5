#!/usr/bin/env bash
# Install the Debian packages Quantbus needs to build, test and run.
# Idempotent: does nothing when every package is already installed.
# Works as root, or through sudo for a normal user.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  librdkafka-dev libpq-dev libhiredis-dev libmicrohttpd-dev libcjson-dev
  libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libssl-dev uuid-dev libcmocka-dev
  postgresql redis-server kcat prometheus curl procps tzdata
  python3 python3-confluent-kafka python3-protobuf
  valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
