#!/usr/bin/env bash
# timeout: 240
# Session tickets across a fleet (`tickets keys FILE`): two tlsoffd instances sharing one key file resume
# each other's sessions (openssl s_client -sess_out on one, -sess_in on the other: "Reused"), TLS 1.2 and
# 1.3; an instance with another key file does not. Rotation: a new first key with the old one after it is
# picked up when the file changes (logged), old sessions still resume (and are renewed under the new key),
# new ones are issued under it; once the old key is dropped its sessions no longer resume. A broken file is
# logged and the keys in use stay; tlsoffd refuses to start on one (FILE:LINE); SIGHUP switches files.
# On this kernel there is no kTLS: tests/lab/tickets_ktls.sh checks kTLS on the resumed connections.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need openssl od

umask 077                      # key files: owner only
BP=$(free_port); P1=$(free_port); P2=$(free_port); P3=$(free_port)
make_cert edge localhost
newkey() { openssl rand 80 | openssl base64 -A; echo; }
K1=$(newkey); K2=$(newkey); K3=$(newkey)
# keyname KEY: the first 16 bytes of a key line, hex (what a ticket starts with)
keyname() { printf '%s' "$1" | openssl base64 -d -A | head -c 16 | od -An -tx1 | tr -d ' \n'; }
# ticketname OUT: the name of the key that encrypted the newest ticket s_client printed in OUT.txt (the
# first 16 bytes of its "TLS session ticket:" hex dump)
ticketname() { sed -n 's/^ *0000 - \([0-9a-f -]\{47\}\).*/\1/p' "$1.txt" | tail -n1 | tr -d ' -'; }
# keys FILE KEY...: write a key file atomically (a temporary name renamed over it, as operators should)
keys() { local f=$1; shift; { echo "# fleet ticket keys, first encrypts"; printf '%s\n' "$@"; } >"$f.tmp"; mv "$f.tmp" "$f"; }

keys "$T/fleet.keys" "$K1"
keys "$T/other.keys" "$K3"
node_conf() {  # node_conf NAME PORT KEYFILE-AS-WRITTEN
  cat >"$T/$1.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$2 cert $T/edge.crt key $T/edge.key backend app
tickets keys $3
CONF
}
node_conf n1 "$P1" "$T/fleet.keys"
node_conf n2 "$P2" fleet.keys          # relative: to the configuration file's directory
node_conf n3 "$P3" "$T/other.keys"

# start_node NAME PORT: like start_tlsoffd, but each instance logs to $T/NAME.log; sets NAME_PID
start_node() {
  "$B/tlsoffd" -f "$T/$1.conf" --control "$T/$1.ctl" --workers 2 2>>"$T/$1.log" &
  PIDS+=($!); eval "$1_PID=$!"
  wait_port "$2"
}
# expect_in NAME REGEX [SECONDS]: wait until NAME.log has a matching line
expect_in() {
  local i
  for i in $(seq $((${3:-5} * 10))); do grep -Eq "$2" "$T/$1.log" && return 0; sleep 0.1; done
  echo "--- $1.log:"; tail -n 20 "$T/$1.log"
  fail "$1 never logged /$2/"
}
# connect PORT VERSION OUT [s_client args...]: one HTTP request; s_client's output goes to OUT.txt and a new
# session to OUT.pem (s_client writes none for a TLS 1.2 resumption). Prints New or Reused. TLS 1.3 tickets
# come after the handshake, before the response: -ign_eof keeps s_client reading until the server closes,
# so it has them.
connect() {
  local port=$1 v=$2 out=$3; shift 3
  rm -f "$out.pem"
  printf 'GET /bytes/1000/1 HTTP/1.0\r\n\r\n' |
    timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost "-tls$v" -ign_eof \
      -sess_out "$out.pem" "$@" >"$out.txt" 2>&1 || true
  grep -aq '^HTTP/1.[01] 200' "$out.txt" || { cat "$out.txt"; fail "s_client -tls$v to port $port: no HTTP response"; }
  local how
  how=$(grep -m1 -aEo '^(New|Reused),' "$out.txt" | tr -d ,)
  [ "$how" = Reused ] || grep -q 'BEGIN SSL SESSION PARAMETERS' "$out.pem" 2>/dev/null ||
    fail "s_client -tls$v to port $port: no session saved"
  echo "$how"
}
# resume PORT VERSION IN OUT: connect with the session IN.pem; prints New or Reused
resume() { connect "$1" "$2" "$4" -sess_in "$3.pem"; }

start_backend "$BP"
start_node n1 "$P1"
start_node n2 "$P2"
start_node n3 "$P3"
expect_in n1 "ticket keys: loaded 1 key from $T/fleet.keys \(the first encrypts\)"
expect_in n2 "ticket keys: loaded 1 key from $T/fleet.keys"
expect_in n3 "ticket keys: loaded 1 key from $T/other.keys"
grep -q 'readable by every user' "$T/n1.log" && fail "a 0600 key file was reported as readable by every user"

log "a session from instance 1 resumes on instance 2, not on instance 3 (another key file)"
for v in 1_2 1_3; do
  [ "$(connect "$P1" $v "$T/s$v")" = New ] || fail "TLS $v: the first connection was not a full handshake"
  [ "$(ticketname "$T/s$v")" = "$(keyname "$K1")" ] || fail "TLS $v: ticket not issued under the file's key"
  [ "$(resume "$P2" $v "$T/s$v" "$T/r2-$v")" = Reused ] || fail "TLS $v: instance 2 did not resume instance 1's session"
  [ "$(resume "$P1" $v "$T/s$v" "$T/r1-$v")" = Reused ] || fail "TLS $v: instance 1 did not resume its own session"
  [ "$(resume "$P3" $v "$T/s$v" "$T/r3-$v")" = New ] || fail "TLS $v: instance 3 resumed a ticket it has no key for"
done

log "rotation: a new first key, the old one after it"
keys "$T/fleet.keys" "$K2" "$K1"
expect_in n1 "ticket keys: reloaded 2 keys from $T/fleet.keys"
expect_in n2 "ticket keys: reloaded 2 keys from $T/fleet.keys"
for v in 1_2 1_3; do
  [ "$(resume "$P2" $v "$T/s$v" "$T/rot-$v")" = Reused ] || fail "TLS $v: a session of the old key did not resume after the rotation"
  [ "$(ticketname "$T/rot-$v")" = "$(keyname "$K2")" ] || fail "TLS $v: the resumed session was not renewed under the new key"
  [ "$(connect "$P1" $v "$T/n$v")" = New ] || fail "TLS $v: expected a full handshake"
  [ "$(ticketname "$T/n$v")" = "$(keyname "$K2")" ] || fail "TLS $v: a new ticket was not issued under the new first key"
  [ "$(resume "$P2" $v "$T/n$v" "$T/n2-$v")" = Reused ] || fail "TLS $v: a new-key session did not resume on instance 2"
done

log "the old key dropped: its sessions no longer resume; a broken file keeps the keys in use"
keys "$T/fleet.keys" "$K2"
expect_in n2 "ticket keys: reloaded 1 key from $T/fleet.keys"
for v in 1_2 1_3; do
  [ "$(resume "$P2" $v "$T/s$v" "$T/old-$v")" = New ] || fail "TLS $v: a session of a dropped key resumed"
done
printf '%s\n%.64s\n' "$K2" "$K3" >"$T/fleet.keys.tmp"; mv "$T/fleet.keys.tmp" "$T/fleet.keys"
expect_in n2 "error: ticket keys: $T/fleet.keys:2: the key is 48 bytes, expected 80 .*; keeping the 1 key in use"
for v in 1_2 1_3; do
  [ "$(resume "$P2" $v "$T/n$v" "$T/bad-$v")" = Reused ] || fail "TLS $v: the keys in use were lost to a broken file"
done

log "SIGHUP: another key file; a broken one refuses the reload"
node_conf n2 "$P2" other.keys
kill -HUP "$n2_PID"
expect_in n2 "ticket keys: loaded 1 key from $T/other.keys"
expect_in n2 "reload: configuration generation 2"
[ "$(resume "$P2" 1_3 "$T/r3-1_3" "$T/hup")" = Reused ] || fail "after SIGHUP, instance 2 does not use other.keys"
echo "garbage" >"$T/broken.keys"
node_conf n2 "$P2" "$T/broken.keys"
kill -HUP "$n2_PID"
expect_in n2 "reload: $T/broken.keys:1: not a base64 key.*running configuration unchanged"
[ "$(resume "$P2" 1_3 "$T/r3-1_3" "$T/hup2")" = Reused ] || fail "a refused reload changed the keys"
"$B/tlsoffctl" -s "$T/n1.ctl" config dump >"$T/dump" || fail "config dump"
grep -qx "tickets keys $T/fleet.keys" "$T/dump" || { cat "$T/dump"; fail "config dump lacks the tickets line"; }
# the same command over the control socket (what tlsoffctl -batch of a dump sends): instance 1 takes
# other.keys, refuses the broken file with its line, and resumes sessions of the key it now has
"$B/tlsoffctl" -s "$T/n1.ctl" tickets keys "$T/broken.keys" 2>"$T/err" && fail "tlsoffctl tickets keys took a broken file"
grep -q "broken.keys:1: not a base64 key" "$T/err" || fail "tlsoffctl tickets keys: $(cat "$T/err")"
"$B/tlsoffctl" -s "$T/n1.ctl" tickets keys "$T/other.keys" || fail "tlsoffctl tickets keys other.keys"
[ "$(resume "$P1" 1_3 "$T/r3-1_3" "$T/ctl1")" = Reused ] || fail "after tlsoffctl tickets keys, instance 1 does not use other.keys"

log "a broken key file: tlsoffd does not start, and says where"
node_conf bad "$(free_port)" broken.keys
if "$B/tlsoffd" -f "$T/bad.conf" --control none 2>"$T/bad.log"; then fail "tlsoffd started with a broken key file"; fi
grep -q "$T/broken.keys:1: not a base64 key" "$T/bad.log" || { cat "$T/bad.log"; fail "no FILE:LINE for the broken key file"; }
if "$B/tlsoffd" --help | grep -q -- --gen-ticket-key; then   # the tlsoffd.c part: --check and the generator
  if "$B/tlsoffd" -f "$T/bad.conf" --check >/dev/null 2>"$T/check.log"; then fail "--check passed a broken key file"; fi
  grep -q "$T/broken.keys:1: not a base64 key" "$T/check.log" || { cat "$T/check.log"; fail "--check: no FILE:LINE"; }
  { "$B/tlsoffd" --gen-ticket-key; "$B/tlsoffd" --gen-ticket-key; } >"$T/gen.keys"
  [ "$(wc -l <"$T/gen.keys")" = 2 ] && [ "$(head -n1 "$T/gen.keys" | openssl base64 -d -A | wc -c)" = 80 ] ||
    fail "--gen-ticket-key: not one 80-byte base64 line"
  node_conf gen "$(free_port)" gen.keys
  "$B/tlsoffd" -f "$T/gen.conf" --check >/dev/null || fail "--check refused generated keys"
fi
for n in n1 n2 n3; do kill -0 "$(eval echo "\$${n}_PID")" || fail "$n died"; done
log "ok"
