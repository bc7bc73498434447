#!/usr/bin/env bash
# ktls_openssl_peer — the kTLS side (tlsoff's ktls_install, plain read/write) against the real openssl
# command-line tools, not our own peer code: `openssl s_client` talks to `ktls_selftest --serve`, and
# `ktls_selftest --connect` talks to `openssl s_server`. Each side's bytes are compared by sha256 with what
# the other side sent, and /proc/net/tls_stat must count one TX and one RX install per connection.
# On 5.10 (no CONFIG_TLS) the kTLS side must refuse to run and say that kTLS is unavailable.
# timeout: 420
source "${TLSOFF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
need openssl ss sha256sum

bin="$B/tests/bin/ktls_selftest"
[ -x "$bin" ] || fail "$bin is not built (make all)"
kernel=${TLSOFF_LAB_KERNEL:-}
[ -n "$kernel" ] || skip "TLSOFF_LAB_KERNEL unset: run inside the lab (scripts/run-tests --only lab)"

make_cert srv
# Sizes that are not multiples of the 16 KiB record: the last record of each direction is a short one.
head -c 1000003 /dev/urandom >"$T/in"
head -c 1500007 /dev/urandom >"$T/resp"
in_sum=$(sha256 "$T/in") resp_sum=$(sha256 "$T/resp") in_len=$(stat -c %s "$T/in")

if [ "$kernel" = 5.10 ]; then
  port=$(free_port) rc=0
  timeout 20 "$bin" --serve "$port" --expect-bytes 1 --send-file "$T/resp" >"$T/srv.out" 2>&1 || rc=$?
  cat "$T/srv.out"
  [ "$rc" -ne 0 ] || fail "--serve exited 0 on a kernel without kTLS"
  grep -q '^UNAVAILABLE kTLS' "$T/srv.out" || fail "--serve did not report kTLS unavailable"
  log "5.10: kTLS absent, --serve refuses with the reason"
  exit 0
fi

errs=0
bad() { echo "FAIL [$case]: $*" >&2; errs=$((errs + 1)); }

# check_side OUT: the kTLS side's report must show both directions installed and the right hashes.
check_side() {
  local out=$1 want_v=$2 want_c=$3
  grep -q "^NEGOTIATED $want_v $want_c " "$out" || bad "negotiated: $(grep '^NEGOTIATED' "$out" || echo none)"
  grep -q '^INSTALLED TX+RX$' "$out" || bad "install: $(grep '^INSTALLED' "$out" || echo none)"
  grep -q "^RECEIVED bytes=$in_len sha256=$in_sum " "$out" || bad "kTLS side received wrong bytes"
  grep -q "^SENT bytes=$(stat -c %s "$T/resp") sha256=$resp_sum$" "$out" || bad "kTLS side sent wrong bytes"
  grep -q '^PASS$' "$out" || bad "kTLS side: $(grep '^FAIL' "$out" || echo 'no PASS line')"
}

# The kTLS side checks its own connection's counters exactly (TLS_STAT line: +1 install each way,
# TlsCurr* +1 while open, back after close). From outside, its capability probe's installs add to the
# totals, so only "at least one more" and "nothing left open" are checked here.
stat_before() { tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw) ctx0=$(tls_stat TlsCurrTxSw) crx0=$(tls_stat TlsCurrRxSw); }
stat_after() {
  local tx=$(tls_stat TlsTxSw) rx=$(tls_stat TlsRxSw)
  grep -Eq '^TLS_STAT OK TlsTxSw \+1 TlsRxSw \+1 ' "$1" || bad "kTLS side's tls_stat: $(grep '^TLS_STAT' "$1" || echo none)"
  [ $((tx - tx0)) -ge 1 ] && [ $((rx - rx0)) -ge 1 ] || bad "tls_stat TlsTxSw +$((tx - tx0)) TlsRxSw +$((rx - rx0)), expected >= +1 each"
  [ "$(tls_stat TlsCurrTxSw)" -eq "$ctx0" ] && [ "$(tls_stat TlsCurrRxSw)" -eq "$crx0" ] ||
    bad "TlsCurr{Tx,Rx}Sw did not return to $ctx0/$crx0 after close"
}

# --- openssl s_client -> ktls_selftest --serve ---------------------------------------------------
# s_client -quiet implies -ign_eof: it keeps reading after its stdin ends and exits when the server
# closes (our close_notify); -nocommands keeps random bytes from being taken as Q/R/K commands.
s_client_case() {  # VERSION_FLAG CIPHER_FLAG CIPHER_NAME  EXPECT_VERSION EXPECT_KERNEL_CIPHER
  case="s_client $1 $3"
  local port t0 rc=0 src=0
  port=$(free_port); stat_before; t0=$(date +%s.%N)
  "$bin" --serve "$port" --expect-bytes "$in_len" --send-file "$T/resp" >"$T/srv.out" 2>&1 &
  local spid=$!
  wait_port "$port"
  timeout 60 openssl s_client -connect "127.0.0.1:$port" -servername localhost "$1" "$2" "$3" \
    -quiet -nocommands <"$T/in" >"$T/got" 2>"$T/sc.err" || src=$?
  wait "$spid" || rc=$?
  sed "s/^/  [$case] /" "$T/srv.out"
  [ "$rc" -eq 0 ] || bad "ktls_selftest --serve exited $rc"
  [ "$src" -eq 0 ] || { bad "s_client exited $src"; sed 's/^/  s_client: /' "$T/sc.err" | tail -n 5 >&2; }
  check_side "$T/srv.out" "$4" "$5"
  [ "$(sha256 "$T/got")" = "$resp_sum" ] || bad "s_client got $(stat -c %s "$T/got") bytes, not the kTLS side's file"
  grep -q '^PEER_CLOSE_NOTIFY yes$' "$T/srv.out" || bad "s_client's close_notify did not come through kTLS RX"
  stat_after "$T/srv.out"
  log "$case: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
}
s_client_case -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384        tls1.3 AES-256-GCM
s_client_case -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256  tls1.3 CHACHA20-POLY1305
s_client_case -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305       tls1.2 CHACHA20-POLY1305
s_client_case -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256       tls1.2 AES-128-GCM

# --- ktls_selftest --connect -> openssl s_server -------------------------------------------------
# s_server sends its stdin and prints what it receives; at stdin EOF with -quiet it would spin on an
# empty read, so its stdin is a FIFO we hold open until the connection is over. In TLS 1.3 s_server's
# NewSessionTickets reach the kTLS client's RX as handshake records, which it must skip.
s_server_case() {  # VERSION_FLAG CIPHER_FLAG CIPHER_NAME  EXPECT_VERSION EXPECT_KERNEL_CIPHER
  case="s_server $1 $3"
  local port rc=0 t0
  port=$(free_port); stat_before; t0=$(date +%s.%N)
  rm -f "$T/sin"; mkfifo "$T/sin"
  exec 3<>"$T/sin"
  openssl s_server -accept "127.0.0.1:$port" -cert "$T/srv.crt" -key "$T/srv.key" "$1" "$2" "$3" \
    -naccept 1 -quiet <"$T/sin" >"$T/got" 2>"$T/ss.err" &
  local sspid=$!
  wait_port "$port"
  cat "$T/in" >&3 &
  local catpid=$!
  timeout 60 "$bin" --connect "$port" --expect-bytes "$in_len" --send-file "$T/resp" >"$T/cli.out" 2>&1 || rc=$?
  timeout 20 tail --pid="$sspid" -f /dev/null || { kill "$sspid" 2>/dev/null; bad "s_server did not exit"; }
  kill "$catpid" 2>/dev/null || true
  exec 3>&-
  sed "s/^/  [$case] /" "$T/cli.out"
  [ "$rc" -eq 0 ] || bad "ktls_selftest --connect exited $rc"
  check_side "$T/cli.out" "$4" "$5"
  [ "$(sha256 "$T/got")" = "$resp_sum" ] || bad "s_server got $(stat -c %s "$T/got") bytes, not the kTLS side's file"
  if [ "$4" = tls1.3 ]; then
    grep -Eq '^RECEIVED .* new-session-tickets=[1-9]' "$T/cli.out" || bad "no NewSessionTicket seen through kTLS RX"
  fi
  stat_after "$T/cli.out"
  log "$case: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
}
s_server_case -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256  tls1.3 AES-128-GCM
s_server_case -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384 tls1.2 AES-256-GCM

[ "$errs" -eq 0 ] || fail "$errs check(s) failed on kernel $kernel"
log "kernel $kernel: s_client and s_server interoperate with tlsoff's kTLS both ways"
