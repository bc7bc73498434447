#!/usr/bin/env bash
# timeout: 120
# SIGHUP reloads the configuration file: a replaced certificate is served to new handshakes while an
# established transfer carries on untouched (sha256 equal); an added frontend starts listening, a removed one
# stops; a broken file or a busy port is logged and leaves the running configuration as it was; no
# descriptor leaks across reloads.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl

BP=$(free_port); PA=$(free_port); PB=$(free_port); BUSY=$(free_port)
make_cert one localhost
make_cert two localhost
fp() { openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2; }
served() {   # served PORT: fingerprint of the certificate a new handshake gets
  openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 | cut -d= -f2
}
conf() {     # conf CERT [extra lines...]
  local cert=$1; shift
  { echo "backend add app server 127.0.0.1:$BP"
    echo "frontend add a listen 127.0.0.1:$PA cert $T/$cert.crt key $T/$cert.key backend app"
    for l in "$@"; do echo "$l"; done; } >"$T/tlsoff.conf"
}
conf one
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$PA" --workers 2
[ "$(served "$PA")" = "$(fp "$T/one.crt")" ] || fail "initial certificate not served"
fd0=$(fd_count "$TLSOFFD_PID")

log "an established transfer across a reload that replaces the certificate and adds a frontend"
curl -sS -k --limit-rate 2M -o "$T/slow" "https://127.0.0.1:$PA/bytes/8000000/21" & slow=$!; PIDS+=($slow)
sleep 1
conf two "frontend add b listen 127.0.0.1:$PB cert $T/one.crt key $T/one.key backend app"
kill -HUP "$TLSOFFD_PID"; reloaded 1
expect_log 'reload: configuration generation 2: 2 frontend\(s\), 1 backend\(s\)'
[ "$(served "$PA")" = "$(fp "$T/two.crt")" ] || fail "new handshakes on a did not get the new certificate"
wait_port "$PB"
check_download "https://127.0.0.1:$PB" 100000 22
wait "$slow" || fail "the transfer across the reload failed"
[ "$(sha256 "$T/slow")" = "$("$B/tests/bin/http_backend" --gen 8000000 21 | sha256sum | cut -d' ' -f1)" ] ||
  fail "the transfer across the reload was corrupted"

log "a removed frontend stops listening"
conf two
kill -HUP "$TLSOFFD_PID"; reloaded 2
for _ in $(seq 30); do ss -Htln "sport = :$PB" | grep . >/dev/null || break; sleep 0.1; done
ss -Htln "sport = :$PB" | grep . >/dev/null && fail "frontend b still listens after its removal"
check_download "https://127.0.0.1:$PA" 100000 23

log "a broken file and a busy port leave the running configuration alone"
cp "$T/tlsoff.conf" "$T/good.conf"
echo "frontend add c listen 127.0.0.1:1 cert nope" >>"$T/tlsoff.conf"
kill -HUP "$TLSOFFD_PID"; reloaded 3
expect_log "reload: $T/tlsoff.conf:3: .*running configuration unchanged"
"$B/tests/bin/http_backend" -q "127.0.0.1:$BUSY" & PIDS+=($!)
wait_port "$BUSY"
conf one "frontend add busy listen 127.0.0.1:$BUSY cert $T/one.crt key $T/one.key backend app"
kill -HUP "$TLSOFFD_PID"; reloaded 4
expect_log "reload: frontend busy: listen 127.0.0.1:$BUSY: Address already in use; running configuration unchanged"
[ "$(served "$PA")" = "$(fp "$T/two.crt")" ] || fail "a failed reload changed the served certificate"
check_download "https://127.0.0.1:$PA" 100000 24

sleep 1   # retired generations are freed on the main loop's next pass
fd1=$(fd_count "$TLSOFFD_PID")
[ "$fd1" -eq "$fd0" ] || fail "descriptors: $fd0 before the reloads, $fd1 after"
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log "ok: 4 reloads, $fd0 descriptors before and after"
