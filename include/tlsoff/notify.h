/* notify.h — tell the service manager what the daemon is doing (systemd's sd_notify protocol, Type=notify
 * units: packaging/tlsoffd.service.in). Every call is a no-op when NOTIFY_SOCKET is unset (not started by
 * systemd, or by a unit of another Type): one getenv, nothing formatted, nothing sent. Main thread only. */
#ifndef TLSOFF_NOTIFY_H
#define TLSOFF_NOTIFY_H

/* READY=1 (and STATUS=status unless NULL): listeners are listening, the daemon serves. Also ends a reload. */
void notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC (what Type=notify-reload wants): a SIGHUP reload begins; READY=1 ends it. */
void notify_reloading(void);
/* STOPPING=1, STATUS=draining: no new connections, the open ones are given --drain-timeout to finish. */
void notify_stopping(void);
/* STATUS=...: one line for `systemctl status` (newlines in the text become spaces). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* MAINPID=pid and STATUS=status: a seamless upgrade handed the service over to the process pid (the new
 * tlsoffd, in the unit's cgroup), which then sends READY=1 itself. Sent by the old main process, so the
 * default NotifyAccess=main accepts it. */
void notify_mainpid(int pid, const char *status);

#endif
