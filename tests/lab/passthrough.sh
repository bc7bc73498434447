#!/usr/bin/env bash
# timeout: 600
# TLS passthrough on a real kernel: openssl s_client through tlsoffd's passthrough frontend to openssl
# s_server backends chosen by SNI, TLS 1.2 and 1.3, bytes equal both ways (the upload with Python's ssl,
# also OpenSSL: s_client drops what it has not sent yet when its input ends). tlsoffd holds no keys for these
# connections: no kTLS session is opened (/proc/net/tls_stat), conn show reports ktls none and datapath
# sockmap. On kTLS kernels the daemon's CPU for the same download through a kTLS + splice frontend is
# measured beside it and the ratio printed (not asserted: see the end).
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need openssl curl python3
case "${TLSOFF_LAB_KERNEL:-}" in
  6.1|latest) ;;   # the issue's kernels; host-native tests cover passthrough on the build machines' kernel
  *) skip "passthrough lab test runs on 6.1 and latest (this is ${TLSOFF_LAB_KERNEL:-?})" ;;
esac
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
N=$((16 * 1024 * 1024))

make_cert s12 v12.test; make_cert s13 v13.test; make_cert edge localhost
head -c "$N" /dev/urandom >"$T/file.bin"
S12=$(free_port); S13=$(free_port); UP=$(free_port); PT=$(free_port); BP=$(free_port); KF=$(free_port)
# s_server stops when its stdin ends: keep it open
(cd "$T" && sleep 600 | exec openssl s_server -quiet -WWW -tls1_2 -accept "$S12" -cert s12.crt -key s12.key) >/dev/null 2>&1 & PIDS+=($!)
(cd "$T" && sleep 600 | exec openssl s_server -quiet -WWW -tls1_3 -accept "$S13" -cert s13.crt -key s13.key) >/dev/null 2>&1 & PIDS+=($!)
wait_port "$S12"; wait_port "$S13"
cat >"$T/tlsoff.conf" <<CONF
backend add b12 server 127.0.0.1:$S12
backend add b13 server 127.0.0.1:$S13
backend add bup server 127.0.0.1:$UP
backend add app server 127.0.0.1:$BP
frontend add pt listen 127.0.0.1:$PT passthrough sni v12.test=b12 sni v13.test=b13 sni up.test=bup
frontend add kt listen 127.0.0.1:$KF cert $T/edge.crt key $T/edge.key backend app datapath splice
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$PT" --workers 2
tls0=$(tls_stat TlsTxSw)

# downloads: each version from its own server, picked by SNI
want=$(sha256 "$T/file.bin")
c0=$(cpu_ticks "$TLSOFFD_PID")
for v in 12 13; do
  printf 'GET /file.bin HTTP/1.0\r\n\r\n' |
    timeout 300 openssl s_client -quiet -connect "127.0.0.1:$PT" -servername "v$v.test" >"$T/resp.$v" 2>/dev/null
  got=$(python3 -c "import sys,hashlib; d=open(sys.argv[1],'rb').read(); print(hashlib.sha256(d.split(b'\r\n\r\n',1)[1]).hexdigest())" "$T/resp.$v") ||
    fail "download through passthrough (TLS 1.${v#1}): no HTTP response"
  [ "$got" = "$want" ] || fail "TLS 1.${v#1} download: sha256 $got, want $want"
done
c1=$(cpu_ticks "$TLSOFFD_PID")
# an upload through passthrough into an s_server that writes what it receives
(cd "$T" && sleep 600 | exec timeout 300 openssl s_server -quiet -naccept 1 -accept "$UP" -cert s13.crt -key s13.key) >"$T/recv.bin" 2>/dev/null & SRV=$!
wait_port "$UP"
timeout 300 python3 - "$PT" "$T/file.bin" <<'PY' || fail "upload through passthrough"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="up.test")
s.sendall(open(sys.argv[2], "rb").read()); s.unwrap(); s.close()
PY
for _ in $(seq 100); do [ "$(stat -c %s "$T/recv.bin")" -ge "$N" ] && break; sleep 0.2; done
kill $SRV 2>/dev/null || true
[ "$(sha256 "$T/recv.bin")" = "$want" ] || fail "upload: the server received $(stat -c %s "$T/recv.bin") bytes, sha256 differs"

# no keys here: no kTLS session was opened by any of these, and each was logged as sockmap
[ "$(tls_stat TlsTxSw)" = "$tls0" ] || fail "a kTLS session was opened for a passthrough connection"
expect_log "close frontend=pt .*sni=v12.test datapath=sockmap ktls=none"
expect_log "close frontend=pt .*sni=v13.test datapath=sockmap ktls=none"
expect_log "close frontend=pt .*sni=up.test datapath=sockmap ktls=none"

# the daemon's CPU beside a kTLS + splice frontend for the same number of bytes (kTLS kernels)
if "$B/tlsoffd" --probe -j | grep -q '"ulp":true'; then
  check_download "https://localhost:$KF" "$N" 3 --resolve "localhost:$KF:127.0.0.1" --cacert "$T/edge.crt"
  check_download "https://localhost:$KF" "$N" 4 --resolve "localhost:$KF:127.0.0.1" --cacert "$T/edge.crt"
  c2=$(cpu_ticks "$TLSOFFD_PID")
  pt=$((c1 - c0)); sp=$((c2 - c1))
  log "daemon CPU for 2 x 16 MB: passthrough (sockmap) $pt ticks, kTLS + splice $sp ticks (ratio $(python3 -c "print(round($pt / max($sp, 1), 3))"))"
  # Printed, not asserted: a timed threshold is a benchmark's job, and here it measured wrong. In the
  # one-vCPU TCG guest the loopback TCP work of both legs runs in softirq and is charged to whichever
  # process is current, often the daemon: the ratio came out 0.45 to 0.52 run to run on 6.1 and latest
  # with the same build. The host test (tests/host/sockmap_frontends.sh) asserts the daemon's own CPU.
fi
log "passthrough: TLS 1.2 and 1.3 to openssl s_server by SNI, both ways intact, no keys in tlsoffd"
