#!/usr/bin/env bash
# timeout: 240
# TLS 1.3 KeyUpdate from the client in the middle of transfers both ways, on the splice datapath.
# Kernels with kTLS rekey (6.14+, here: latest) install the next keys (RX, and TX when the client asks) and
# the bytes still match; older kTLS kernels end that connection cleanly with the reason logged, and the
# daemon goes on serving; without kTLS (5.10) OpenSSL handles KeyUpdate on the userspace datapath.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"

edge_tlsoffd splice --workers 1
client() { "$B/tests/bin/tls_client" --tls 1.3 --key-update 250000 "127.0.0.1:$FP" "$@"; }   # ~15 per transfer
rekey=$("$B/tlsoffd" --probe -j | grep -o '"rekey":[a-z]*' | cut -d: -f2)
ok0=$(tls_stat TlsRxRekeyOk)

case "${TLSOFF_LAB_KERNEL:-}" in
  5.10)
    client get 4000000 11 || fail "KeyUpdate on the userspace datapath failed (download)"
    client put 4000000 12 || fail "KeyUpdate on the userspace datapath failed (upload)"
    expect_log 'close .*datapath=userspace \(kernel has no TLS ULP\).*reason="done'
    ;;
  *)
    if [ "$rekey" = true ]; then
      client get 4000000 11 >"$T/get.out" || fail "download with KeyUpdates every MB failed"
      client put 4000000 12 >"$T/put.out" || fail "upload with KeyUpdates every MB failed"
      cat "$T/get.out" "$T/put.out"
      sent=$(cat "$T/get.out" "$T/put.out" | sed -n 's/.* \([0-9][0-9]*\) key updates sent/\1/p' | awk '{ s += $1 } END { print s + 0 }')
      [ "$sent" -ge 2 ] || fail "the client sent only $sent KeyUpdates"
      n=$(grep -c 'close .*datapath=splice ktls=tx+rx kmode=tx:sw,rx:sw rekeys=[1-9][0-9]* .*reason="done' "$T/tlsoffd.log" || true)
      [ "$n" -eq 2 ] || { grep close "$T/tlsoffd.log"; fail "expected 2 spliced connections that rekeyed, got $n"; }
      d=$(( $(tls_stat TlsRxRekeyOk) - ok0 ))
      [ "$d" -eq "$sent" ] || fail "TlsRxRekeyOk rose by $d for $sent KeyUpdates the client sent"
      kill -USR1 "$TLSOFFD_PID"
      expect_log "stats: .* rekeys=$sent rekey_unsupported=0"
      log "rekeyed: $sent KeyUpdates sent, TlsRxRekeyOk +$d, counted"
    else
      # An upload: its KeyUpdates arrive while the client's direction is still needed.
      if client put 4000000 12; then fail "KeyUpdate succeeded on a kernel that cannot rekey kTLS?"; fi
      expect_log 'close .*datapath=splice ktls=tx\+rx .*reason="client sent KeyUpdate: this kernel cannot rekey kTLS \(needs 6.14\+\)"'
      kill -USR1 "$TLSOFFD_PID"
      expect_log 'stats: .* rekey_unsupported=1( |$)'
      log "connection ended cleanly on a kernel without kTLS rekey, and counted"
    fi
    # Either way the daemon goes on: a plain transfer afterwards works.
    "$B/tests/bin/tls_client" --tls 1.3 "127.0.0.1:$FP" get 1000000 13 || fail "transfer after the KeyUpdate case failed"
    ;;
esac
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log ok
