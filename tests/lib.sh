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

# free_port: a TCP port nobody uses right now, below the kernel's ephemeral range (32768-60999) so no
# client connection can take it before the test binds it, and never the same one twice in a test.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((10000 + RANDOM % 22000))
    grep -qx "$p" "$T/.ports" 2>/dev/null && continue
    ss -Htan "sport = :$p" | grep . >/dev/null && continue
    echo "$p" >>"$T/.ports"; echo "$p"; return
  done
  fail "no free port"
}

# tls_stat NAME: a counter from /proc/net/tls_stat (0 when the file is absent)
tls_stat() { awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }' /proc/net/tls_stat 2>/dev/null || echo 0; }

# wait_port PORT [SECONDS]: wait until something listens on 127.0.0.1:PORT
wait_port() {
  local i
  for i in $(seq $((${2:-10} * 10))); do ss -Htln "sport = :$1" | grep . >/dev/null && return 0; sleep 0.1; done
  fail "nothing listens on port $1"
}

# ---- tlsoffd and its test backend -------------------------------------------------------------------
# Processes started here are killed when the test exits.
PIDS=()
cleanup_pids() { local p; for p in "${PIDS[@]-}"; do [ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup_pids EXIT

# start_backend PORT: the HTTP test backend (tests/bin/http_backend) on 127.0.0.1:PORT
start_backend() {
  "$B/tests/bin/http_backend" -q "127.0.0.1:$1" 2>>"$T/backend.log" &
  PIDS+=($!)
  wait_port "$1"
}

# start_tls_backend PORT NAME [TLS-MAX]: the test backend over TLS (userspace OpenSSL, never kTLS) with
# certificate $T/NAME.crt (make_cert NAME first), at most TLS-MAX (1.2 or 1.3, the default)
start_tls_backend() {
  "$B/tests/bin/http_backend" -q --tls "$T/$2.crt" "$T/$2.key" --tls-max "${3:-1.3}" "127.0.0.1:$1" 2>>"$T/backend.log" &
  PIDS+=($!)
  wait_port "$1"
}

# start_tlsoffd CONFIG PORT [ARGS...]: tlsoffd -f CONFIG, log in $T/tlsoffd.log; sets TLSOFFD_PID and CTL
# (its control socket, a fresh one per daemon so several can run; `ctl ARGS` runs tlsoffctl against it).
NCTL=0
start_tlsoffd() {
  local conf=$1 port=$2; shift 2
  NCTL=$((NCTL + 1)); CTL="$T/ctl.$NCTL"
  "$B/tlsoffd" -f "$conf" --control "$CTL" "$@" 2>>"$T/tlsoffd.log" &
  TLSOFFD_PID=$!
  PIDS+=("$TLSOFFD_PID")
  wait_port "$port"
}

# ctl ARGS...: tlsoffctl against the daemon start_tlsoffd started last
ctl() { "$B/tlsoffctl" -s "$CTL" "$@"; }

# fd_count PID: open file descriptors of a process
fd_count() { ls "/proc/$1/fd" | wc -l; }

# expect_log REGEX [SECONDS]: wait until tlsoffd's log has a matching line
expect_log() {
  local i
  for i in $(seq $((${2:-5} * 10))); do grep -Eq "$1" "$T/tlsoffd.log" && return 0; sleep 0.1; done
  echo "--- tlsoffd.log:"; tail -n 20 "$T/tlsoffd.log"
  fail "tlsoffd never logged /$1/"
}

# reloaded N: wait for tlsoffd's Nth reload outcome line in $T/tlsoffd.log (applied or unchanged)
reloaded() {
  for _ in $(seq 50); do
    [ "$(grep -cE 'reload: (configuration generation|.*running configuration unchanged)' "$T/tlsoffd.log" || true)" -ge "$1" ] && return
    sleep 0.1
  done
  fail "no reload outcome logged"
}

# gen_file BYTES SEED FILE: the bytes the backend serves at /bytes/BYTES/SEED
gen_file() { "$B/tests/bin/http_backend" --gen "$1" "$2" >"$3"; }

# check_download URL BYTES SEED [CURL ARGS...]: body's sha256 equals what the backend generated
check_download() {
  local url=$1 n=$2 seed=$3; shift 3
  local got want
  got=$(curl -sS --fail -k "$@" "$url/bytes/$n/$seed" | sha256sum | cut -d' ' -f1) || fail "curl $* $url/bytes/$n/$seed"
  want=$("$B/tests/bin/http_backend" --gen "$n" "$seed" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "download $n bytes ($*): sha256 $got, want $want"
}

# check_upload URL FILE [CURL ARGS...]: the backend's sha256 of the body equals the file's
check_upload() {
  local url=$1 file=$2; shift 2
  local got want
  got=$(curl -sS --fail -k "$@" -T "$file" "$url/sha256") || fail "curl upload $* $file"
  want="$(sha256 "$file") $(stat -c %s "$file")"
  [ "$got" = "$want" ] || fail "upload $(stat -c %s "$file") bytes ($*): backend saw '$got', want '$want'"
}

# edge_tlsoffd DATAPATH [TLSOFFD ARGS...]: the test backend and tlsoffd with one frontend "edge" (cert for
# localhost) in front of it, on fresh ports; sets BP (backend) and FP (frontend).
edge_tlsoffd() {
  local dp=$1; shift
  BP=$(free_port); FP=$(free_port)
  make_cert edge localhost
  cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app datapath $dp
CONF
  start_backend "$BP"
  start_tlsoffd "$T/tlsoff.conf" "$FP" "$@"
}

# check_s_client PORT: GET through `openssl s_client`, TLS 1.2 then 1.3; the body's sha256 must match
check_s_client() {
  local v out want
  want=$("$B/tests/bin/http_backend" --gen 5000 3 | sha256sum | cut -d' ' -f1)
  for v in -tls1_2 -tls1_3; do
    out=$(printf 'GET /bytes/5000/3 HTTP/1.0\r\n\r\n' |
          timeout 30 openssl s_client -quiet "$v" -connect "127.0.0.1:$1" -servername localhost 2>/dev/null |
          sed '1,/^\r$/d' | sha256sum | cut -d' ' -f1)
    [ "$out" = "$want" ] || fail "s_client $v: body sha256 $out, want $want"
  done
}

# check_proxy_v2 PORT: through a frontend whose backend has proxy-protocol v2 (alpn http/1.1), the backend's
# GET /whoami must report the client's own address and port, ALPN and SNI
check_proxy_v2() {
  local lp who
  lp=$(free_port)
  who=$(curl -sS --fail --local-port "$lp" --resolve "localhost:$1:127.0.0.1" --cacert "$T/edge.crt" "https://localhost:$1/whoami")
  [ "$who" = "src=127.0.0.1:$lp dst=127.0.0.1:$1 alpn=http/1.1 authority=localhost" ] || fail "PROXY v2 header said: $who"
}
