#!/usr/bin/env bash
# timeout: 120
# make install into a DESTDIR (PREFIX=/usr): the programs of the build under test, man pages, completion,
# the example configuration and the systemd unit land with sane modes and nothing else; a second install
# keeps an operator's modified configuration; the installed example configuration loads (--check); the
# unit passes `systemd-analyze verify` and its ExecStart exists in the DESTDIR; the installed tlsoffd
# speaks Type=notify (READY=1 only once its port listens, RELOADING=1 + MONOTONIC_USEC then READY=1 on
# SIGHUP, a failed reload in STATUS=, STOPPING=1 on SIGTERM) to a NOTIFY_SOCKET this test listens on; make
# uninstall removes everything but the configuration.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need make python3 openssl

D="$T/root"
# The make under test, on the build under test ($B): a `make test` around us must not leak its flags in.
mk() {
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
    make -s --no-print-directory -C "$ROOT" B="$B" PREFIX=/usr DESTDIR="$D" "$@"
}
mode() { stat -c %a "$1"; }

log "make install DESTDIR=\$T/root PREFIX=/usr"
mk install >"$T/install.out" 2>&1 || { cat "$T/install.out"; fail "make install failed"; }

UNIT=usr/lib/systemd/system/tlsoffd.service
CONF=etc/tlsoff/tlsoff.conf
want=(usr/sbin/tlsoffd usr/bin/tlsoffctl usr/share/bash-completion/completions/tlsoffctl "$UNIT" "$CONF")
for m in "$ROOT"/man/*.[0-9]; do want+=("usr/share/man/man${m##*.}/$(basename "$m")"); done
[ ${#want[@]} -ge 8 ] || fail "expected three man pages in man/, found $((${#want[@]} - 5))"
printf '%s\n' "${want[@]}" | sort >"$T/want"
(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$T/got"
diff -u "$T/want" "$T/got" >&2 || fail "installed files differ from the expected list (- expected, + installed)"

for f in usr/sbin/tlsoffd usr/bin/tlsoffctl; do
  [ "$(mode "$D/$f")" = 755 ] || fail "$f: mode $(mode "$D/$f"), want 755"
  [ "$(sha256 "$D/$f")" = "$(sha256 "$B/$(basename "$f")")" ] || fail "$f is not the build under test's ($B)"
done
for f in "${want[@]}"; do
  case $f in usr/sbin/*|usr/bin/*|"$CONF") continue ;; esac
  [ "$(mode "$D/$f")" = 644 ] || fail "$f: mode $(mode "$D/$f"), want 644"
done
case $(mode "$D/$CONF") in 644|640) ;; *) fail "$CONF: mode $(mode "$D/$CONF"), want 644 or 640" ;; esac
"$D/usr/sbin/tlsoffd" --version | grep -q '^tlsoffd ' || fail "the installed tlsoffd does not run"
"$D/usr/bin/tlsoffctl" --help >/dev/null 2>&1 || fail "the installed tlsoffctl does not run"
cmp -s "$ROOT/completion/tlsoffctl.bash" "$D/usr/share/bash-completion/completions/tlsoffctl" ||
  fail "the installed completion differs from completion/tlsoffctl.bash"

log "the unit: installed paths filled in, Type=notify, reload, sandbox"
! grep -n '@[A-Z]*@' "$D/$UNIT" >&2 || fail "the unit has unsubstituted @VARIABLES@"
exec_start=$(sed -n 's/^ExecStart=//p' "$D/$UNIT")
[ "$exec_start" = "/usr/sbin/tlsoffd -f /etc/tlsoff/tlsoff.conf --syslog" ] || fail "ExecStart=$exec_start"
bin=${exec_start%% *}
[ -x "$D$bin" ] || fail "ExecStart's $bin does not exist in the DESTDIR"
conf_arg=$(sed 's/.* -f \([^ ]*\).*/\1/' <<<"$exec_start")
[ -f "$D$conf_arg" ] || fail "ExecStart's configuration $conf_arg does not exist in the DESTDIR"
for l in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' KillSignal=SIGTERM NoNewPrivileges=yes \
         ProtectSystem=strict RuntimeDirectory=tlsoff; do
  grep -qxF "$l" "$D/$UNIT" || fail "the unit has no line $l"
done
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$D/$UNIT")
[ -n "$caps" ] && [ "$caps" = "$(sed -n 's/^AmbientCapabilities=//p' "$D/$UNIT")" ] ||
  fail "CapabilityBoundingSet ($caps) and AmbientCapabilities differ or are empty"
# The drain must finish before systemd's SIGKILL: TimeoutStopSec above tlsoffd's default --drain-timeout.
drain=$("$D/usr/sbin/tlsoffd" --help | sed -n 's/.*--drain-timeout S.*(default \([0-9]*\)).*/\1/p')
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$D/$UNIT")
[ -n "$drain" ] && [ -n "$stop" ] && [ "$stop" -gt "$drain" ] ||
  fail "TimeoutStopSec=$stop must be above the default --drain-timeout ($drain s)"

need systemd-analyze   # scripts/deps installs systemd for it
{
  # verify checks that ExecStart's binary exists and that Documentation='s man pages are found: it reads
  # the unit with ExecStart pointing into the DESTDIR (checked above to be the installed path), and man
  # looks in the DESTDIR's man pages.
  mkdir -p "$T/verify"
  sed "s|^ExecStart=$bin |ExecStart=$D$bin |" "$D/$UNIT" >"$T/verify/tlsoffd.service"
  grep -q "^ExecStart=$D$bin " "$T/verify/tlsoffd.service" || fail "could not point ExecStart into the DESTDIR"
  man_opt=(); command -v man >/dev/null || { man_opt=(--man=no); log "no man(1): Documentation= not checked"; }
  if ! MANPATH="$D/usr/share/man" systemd-analyze verify "${man_opt[@]}" "$T/verify/tlsoffd.service" \
       >"$T/verify.out" 2>&1; then
    cat "$T/verify.out"; fail "systemd-analyze verify failed on the installed unit"
  fi
  [ ! -s "$T/verify.out" ] || { cat "$T/verify.out"; fail "systemd-analyze verify printed warnings"; }
  log "systemd-analyze verify: clean ($(systemd-analyze --version | head -n1))"
}

log "the installed example configuration loads: certificates next to it (relative paths)"
make_cert edge localhost
cp "$T/edge.crt" "$D/etc/tlsoff/cert.pem"; cp "$T/edge.key" "$D/etc/tlsoff/key.pem"
"$D/usr/sbin/tlsoffd" -f "$D/$CONF" --check >"$T/check.out" 2>&1 ||
  { cat "$T/check.out"; fail "tlsoffd --check on the installed example configuration"; }
rm -f "$D/etc/tlsoff/cert.pem" "$D/etc/tlsoff/key.pem"

log "a second install keeps the operator's configuration"
echo "# changed by the operator" >>"$D/$CONF"
chmod 0640 "$D/$CONF"
conf_sum=$(sha256 "$D/$CONF")
rm "$D/usr/sbin/tlsoffd"
mk install >"$T/install2.out" 2>&1 || { cat "$T/install2.out"; fail "the second make install failed"; }
[ "$(sha256 "$D/$CONF")" = "$conf_sum" ] || fail "the second install overwrote the modified configuration"
[ "$(mode "$D/$CONF")" = 640 ] || fail "the second install changed the configuration's mode"
[ -x "$D/usr/sbin/tlsoffd" ] || fail "the second install did not reinstall tlsoffd"

log "Type=notify: the installed tlsoffd and a NOTIFY_SOCKET"
BP=$(free_port); FP=$(free_port)
cat >"$T/notify.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app
CONF
# One line per datagram in $T/notify.log: "<CLOCK_MONOTONIC us at receipt> <assignments joined by |>", and
# for READY=1 whether the frontend's port listened when it arrived.
cat >"$T/notify_listener.py" <<'PY'
import os, socket, subprocess, sys, time
path, port, out = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode()
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        line = "%d %s" % (now, msg.strip("\n").replace("\n", "|"))
        if "READY=1" in msg.split("\n"):
            ss = subprocess.run(["ss", "-Htln", "sport = :" + port], capture_output=True, text=True).stdout
            line += " listening=" + ("yes" if ss.strip() else "no")
        f.write(line + "\n")
PY
python3 "$T/notify_listener.py" "$T/notify.sock" "$FP" "$T/notify.log" 2>"$T/notify_listener.err" &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
[ -S "$T/notify.sock" ] || fail "the notify listener did not start: $(cat "$T/notify_listener.err")"
: >"$T/notify.log"

# notified N REGEX: wait until notify.log has at least N lines and line N matches REGEX
notified() {
  local i
  for i in $(seq 100); do
    [ "$(wc -l <"$T/notify.log")" -ge "$1" ] && break
    sleep 0.1
  done
  sed -n "$1p" "$T/notify.log" | grep -Eq "$2" && return 0
  echo "--- notify.log:"; cat "$T/notify.log"; echo "--- tlsoffd.log:"; tail -n 20 "$T/tlsoffd.log"
  fail "sd_notify message $1: want /$2/"
}

NOTIFY_SOCKET="$T/notify.sock" "$D/usr/sbin/tlsoffd" -f "$T/notify.conf" --control "$T/ctl" --workers 1 \
  --steer off 2>>"$T/tlsoffd.log" &
PID=$!; PIDS+=($PID)
notified 1 '^[0-9]+ READY=1\|STATUS=serving 1 frontend\(s\) listening=yes$'
expect_log 'tlsoffd ready'

log "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1"
echo "frontend add two listen 127.0.0.1:$(free_port) cert $T/edge.crt key $T/edge.key backend app" >>"$T/notify.conf"
kill -HUP "$PID"
notified 2 '^[0-9]+ RELOADING=1\|MONOTONIC_USEC=[0-9]+\|'
notified 3 'STATUS=serving 2 frontend\(s\)'
notified 4 '^[0-9]+ READY=1 listening=yes$'
read -r got usec < <(sed -n '2s/^\([0-9]*\) .*MONOTONIC_USEC=\([0-9]*\).*/\1 \2/p' "$T/notify.log")
[ "$usec" -le "$got" ] && [ $((got - usec)) -lt 5000000 ] ||
  fail "MONOTONIC_USEC=$usec is not the CLOCK_MONOTONIC time of the reload (received at $got)"

log "a failed reload: RELOADING=1, the reason in STATUS=, READY=1"
echo "frontend add broken listen 127.0.0.1:$(free_port) cert $T/missing.crt key $T/missing.key backend app" \
  >>"$T/notify.conf"
kill -HUP "$PID"
notified 5 '^[0-9]+ RELOADING=1\|MONOTONIC_USEC=[0-9]+'
notified 6 '^[0-9]+ STATUS=reload failed: .*missing\.crt.*serving 2 frontend\(s\)'
notified 7 '^[0-9]+ READY=1 '

log "SIGTERM: STOPPING=1 with STATUS=draining, then the daemon exits"
kill -TERM "$PID"
notified 8 '^[0-9]+ STOPPING=1\|STATUS=draining'
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$PID" 2>/dev/null || fail "tlsoffd did not exit after SIGTERM"
wait "$PID" || fail "tlsoffd exited $? after SIGTERM"
[ "$(wc -l <"$T/notify.log")" -eq 8 ] || { cat "$T/notify.log"; fail "unexpected sd_notify messages"; }

log "make uninstall removes everything but the configuration"
mk uninstall >"$T/uninstall.out" 2>&1 || { cat "$T/uninstall.out"; fail "make uninstall failed"; }
left=$(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort)
[ "$left" = "$CONF" ] || fail "after uninstall, left: $(echo $left) (want only $CONF)"
[ "$(sha256 "$D/$CONF")" = "$conf_sum" ] || fail "uninstall changed the configuration"
log "ok"
