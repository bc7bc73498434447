# tests/lib.sh — sourced by tests/host/*.sh and tests/lab/*.sh (run by scripts/run-tests).
# Gives: ROOT, B (build dir), T (this test's private scratch dir), and small helpers.
set -euo pipefail
ROOT=${TLSOFF_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
B=${TLSOFF_BUILD:-$ROOT/build}
T=${TLSOFF_TEST_TMP:-$(mktemp -d)}

log()  { echo "# $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
need() { local c; for c in "$@"; do command -v "$c" >/dev/null || fail "missing command $c (scripts/deps installs it)"; done; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }

# make_cert NAME [CN]: ECDSA P-256 self-signed cert and key in $T/NAME.crt, $T/NAME.key
make_cert() {
  local cn=${2:-localhost}
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$cn" -addext "subjectAltName=DNS:$cn" \
    -keyout "$T/$1.key" -out "$T/$1.crt" 2>/dev/null || fail "openssl req failed"
}

# free_port: a TCP port nobody listens on right now (loopback only)
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
  fail "no free port"
}

# tls_stat NAME: a counter from /proc/net/tls_stat (0 when the file is absent)
tls_stat() { awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }' /proc/net/tls_stat 2>/dev/null || echo 0; }

# wait_port PORT [SECONDS]: wait until something listens on 127.0.0.1:PORT
wait_port() {
  local i
  for i in $(seq $((${2:-10} * 10))); do ss -Htln "sport = :$1" | grep -q . && return 0; sleep 0.1; done
  fail "nothing listens on port $1"
}
