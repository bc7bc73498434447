# shellcheck shell=bash
# tests/keylog_lib.sh — sourced after tests/lib.sh by the key hygiene tests: openssl s_client peers that log
# their secrets to $T/keys.log (NSS key log) and hold their connection open, and checks on what tlsoffd
# keeps of those secrets in its memory (tests/bin/mem_scan) and in its log.

SC_PIDS=()
# sc_open I VERSION PORT BYTES SEED: peer I (1-9) starts `openssl s_client VERSION` (-tls1_2, -tls1_3) to
# 127.0.0.1:PORT and sends GET /bytes/BYTES/SEED over HTTP/1.1 (keep-alive: the connection stays open);
# sc_wait I BYTES waits until the whole response is in $T/sc$I.out. Several peers start before the first
# wait: process starts are slow under TCG, and they overlap.
sc_open() {
  local i=$1 v=$2 port=$3 n=$4 seed=$5
  mkfifo "$T/sc$i.in"
  # Without the other peers' stdin descriptors: a peer holding one would keep that peer from its EOF.
  ( for f in 21 22 23 24 25 26 27 28 29; do eval "exec $f>&-"; done
    exec openssl s_client -quiet -no_ign_eof "$v" -connect "127.0.0.1:$port" -servername localhost \
      -keylogfile "$T/keys.log" <"$T/sc$i.in" >"$T/sc$i.out" 2>"$T/sc$i.err" ) &
  SC_PIDS[i]=$!; PIDS+=($!)
  eval "exec $((20 + i))>\"\$T/sc$i.in\""   # stdin stays open until sc_close
  printf 'GET /bytes/%s/%s HTTP/1.1\r\nHost: localhost\r\n\r\n' "$n" "$seed" >&$((20 + i))
}
sc_wait() {
  local i=$1 n=$2
  for _ in $(seq 300); do [ "$(stat -c %s "$T/sc$i.out")" -gt "$n" ] && return 0; sleep 0.1; done
  cat "$T/sc$i.err"
  fail "s_client $i: response incomplete ($(stat -c %s "$T/sc$i.out") bytes of more than $n)"
}

# sc_close I...: end the peers' stdin (each sends close_notify and exits) and wait for them;
# sc_check I BYTES SEED: peer I's body's sha256 must match.
sc_close() {
  local i
  for i in "$@"; do eval "exec $((20 + i))>&-"; done
  for i in "$@"; do wait "${SC_PIDS[$i]}" || true; done
}
sc_check() {
  local i=$1
  sed '1,/^\r$/d' "$T/sc$i.out" >"$T/sc$i.body"
  [ "$(sha256 "$T/sc$i.body")" = "$("$B/tests/bin/http_backend" --gen "$2" "$3" | sha256sum | cut -d' ' -f1)" ] ||
    fail "s_client $i: body sha256 differs ($(stat -c %s "$T/sc$i.body") bytes, want $2)"
}

# no_secret_in_log KEYFILE LOGFILE: neither the private key (its scalar as hex, or its bytes, or a line of
# its PEM) nor any secret of $T/keys.log is in LOGFILE. One grep per form: process starts are slow in TCG.
no_secret_in_log() {
  local key=$1 logf=$2 priv
  priv=$(openssl pkey -in "$key" -noout -text | sed -n '/^priv:/,/^pub:/p' | sed '1d;$d' | tr -d ' :\n')
  [ "${#priv}" = 66 ] && priv=${priv#00}
  [ "${#priv}" -ge 60 ] || fail "cannot read the private scalar of $key"
  { echo "$priv"; awk '{ print $3 }' "$T/keys.log"; } | tr 'A-F' 'a-f' >"$T/secrets.hex"
  od -An -v -tx1 "$logf" | tr -d ' \n' >"$T/log.hex"
  grep -v '^-----' "$key" >"$T/key.b64"
  ! grep -iF -f "$T/secrets.hex" "$logf" || fail "a secret (or the private key) in hex is in $logf"
  ! grep -qF -f "$T/secrets.hex" "$T/log.hex" || fail "the bytes of a secret (or of the private key) are in $logf"
  ! grep -F -f "$T/key.b64" "$logf" || fail "a line of the PEM private key is in $logf"
}
