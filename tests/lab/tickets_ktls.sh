#!/usr/bin/env bash
# timeout: 400
# Session tickets across a fleet on a real kTLS kernel: two tlsoffd instances with `datapath splice` and the
# same `tickets keys FILE`; a session saved from the first (openssl s_client -sess_out) resumes on the second
# (-sess_in: "Reused"), TLS 1.2 and 1.3, and the resumed connection runs on kTLS: its close line in the
# second instance's log says `datapath=splice ktls=tx+rx`, and the body arrives intact. Then the same after
# a rotation ([new, old]): the old ticket is decrypted by the second key and renewed, which in TLS 1.2 puts
# a NewSessionTicket into the abbreviated handshake, before the keys go to the kernel. On a kernel without
# kTLS there is nothing to check here (tests/host/tickets_fleet.sh covers resumption itself).
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need openssl od

"$B/tlsoffd" --probe -j | grep -q '"ulp":true' || skip "no kTLS on kernel $(uname -r): resumption alone is tests/host/tickets_fleet.sh"

umask 077
BP=$(free_port); P1=$(free_port); P2=$(free_port)
make_cert edge localhost
newkey() { openssl rand 80 | openssl base64 -A; echo; }
keyname() { printf '%s' "$1" | openssl base64 -d -A | head -c 16 | od -An -tx1 | tr -d ' \n'; }
ticketname() { sed -n 's/^ *0000 - \([0-9a-f -]\{47\}\).*/\1/p' "$1.txt" | tail -n1 | tr -d ' -'; }
keys() { local f=$1; shift; printf '%s\n' "$@" >"$f.tmp"; mv "$f.tmp" "$f"; }
K1=$(newkey); K2=$(newkey)
keys "$T/fleet.keys" "$K1"
for n in 1 2; do
  port=$P1; [ $n = 2 ] && port=$P2
  cat >"$T/n$n.conf" <<CONF
tickets keys fleet.keys
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$port cert $T/edge.crt key $T/edge.key backend app datapath splice
CONF
done
start_node() {  # start_node N PORT: log in $T/nN.log
  "$B/tlsoffd" -f "$T/n$1.conf" --control "$T/n$1.ctl" --workers 2 2>>"$T/n$1.log" &
  PIDS+=($!)
  wait_port "$2"
}
expect_in() {   # expect_in N REGEX [SECONDS]
  local i
  for i in $(seq $((${3:-10} * 10))); do grep -Eq "$2" "$T/n$1.log" && return 0; sleep 0.1; done
  echo "--- n$1.log:"; tail -n 20 "$T/n$1.log"
  fail "instance $1 never logged /$2/"
}
# connect PORT VERSION OUT LPORT BYTES SEED [s_client args]: GET /bytes/BYTES/SEED from local port LPORT;
# s_client's output in OUT.txt, a new session in OUT.pem; the body must be intact. Prints New or Reused.
connect() {
  local port=$1 v=$2 out=$3 lp=$4 n=$5 seed=$6 got want how; shift 6
  rm -f "$out.pem"
  printf 'GET /bytes/%s/%s HTTP/1.0\r\n\r\n' "$n" "$seed" |
    timeout 60 openssl s_client -connect "127.0.0.1:$port" -bind "127.0.0.1:$lp" -servername localhost "-tls$v" \
      -ign_eof -sess_out "$out.pem" "$@" >"$out.txt" 2>&1 || true
  sed '1,/^\r$/d' "$out.txt" >"$out.body"   # a file: head closing a pipe early would SIGPIPE sed (pipefail)
  got=$(head -c "$n" "$out.body" | sha256sum | cut -d' ' -f1)
  want=$("$B/tests/bin/http_backend" --gen "$n" "$seed" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || { grep -a -v '^    [0-9a-f]\{4\} - ' "$out.txt" | head -c 3000; fail "s_client -tls$v to port $port: body sha256 $got, want $want"; }
  how=$(grep -m1 -aEo '^(New|Reused),' "$out.txt" | tr -d ,)
  [ "$how" = Reused ] || grep -q 'BEGIN SSL SESSION PARAMETERS' "$out.pem" 2>/dev/null ||
    fail "s_client -tls$v to port $port: no session saved"
  echo "$how"
}
# on_ktls N LPORT VERSION: instance N logged the connection from LPORT as TLS VERSION on kTLS TX+RX
on_ktls() {
  expect_in "$1" " close .*client=127.0.0.1:$2 " 10
  grep " close .*client=127.0.0.1:$2 " "$T/n$1.log" | grep -q "tls=TLSv$3 .*datapath=splice ktls=tx+rx " ||
    { grep " close .*client=127.0.0.1:$2 " "$T/n$1.log"; fail "instance $1: the connection from port $2 was not TLSv$3 on splice with kTLS TX+RX"; }
}

start_backend "$BP"
start_node 1 "$P1"
start_node 2 "$P2"
expect_in 1 "ticket keys: loaded 1 key from $T/fleet.keys"
expect_in 2 "ticket keys: loaded 1 key from $T/fleet.keys"

for v in 1.2 1.3; do
  s=${v/./_}
  log "TLS $v: full handshake on instance 1, resumed on instance 2 with kTLS"
  lp=$(free_port)
  [ "$(connect "$P1" "$s" "$T/full$s" "$lp" 200000 1)" = New ] || fail "TLS $v: expected a full handshake on instance 1"
  on_ktls 1 "$lp" "$v"
  lp=$(free_port)
  [ "$(connect "$P2" "$s" "$T/res$s" "$lp" 300000 2 -sess_in "$T/full$s.pem")" = Reused ] ||
    fail "TLS $v: instance 2 did not resume instance 1's session"
  on_ktls 2 "$lp" "$v"
done

log "rotation: [new, old] on both; the old tickets resume on instance 2, renewed, still on kTLS"
keys "$T/fleet.keys" "$K2" "$K1"
expect_in 1 "ticket keys: reloaded 2 keys from $T/fleet.keys"
expect_in 2 "ticket keys: reloaded 2 keys from $T/fleet.keys"
for v in 1.2 1.3; do
  s=${v/./_}
  lp=$(free_port)
  [ "$(connect "$P2" "$s" "$T/rot$s" "$lp" 300000 3 -sess_in "$T/full$s.pem")" = Reused ] ||
    fail "TLS $v: the old key's session did not resume after the rotation"
  [ "$(ticketname "$T/rot$s")" = "$(keyname "$K2")" ] || fail "TLS $v: the session was not renewed under the new key"
  on_ktls 2 "$lp" "$v"
done

n=$(grep -c ' close .*datapath=splice ktls=tx+rx ' "$T/n2.log" || true)
[ "$n" -eq 4 ] || { grep ' close ' "$T/n2.log"; fail "instance 2: $n of 4 resumed connections on kTLS TX+RX"; }
log "ok"
