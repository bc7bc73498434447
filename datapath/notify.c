/* notify.c — sd_notify(3) messages to the service manager: READY, RELOADING, STOPPING and STATUS. Without
 * NOTIFY_SOCKET in the environment every call returns after one getenv. See include/tlsoff/notify.h. */
#include "tlsoff/notify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "tlsoff/log.h"

static bool enabled(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	return s && *s;
}

/* msg is "A=x\nB=y": newline-separated assignments, as sd_notify wants. A failure is logged once: a
 * Type=notify unit whose READY=1 never arrives is killed at TimeoutStartSec, and this says why. */
static void send_msg(const char *msg)
{
	static bool warned;
	int rc = sd_notify(0, msg);
	if (rc < 0 && !warned) {
		warned = true;
		log_warn("sd_notify to the service manager (NOTIFY_SOCKET=%s) failed: %s", getenv("NOTIFY_SOCKET"),
			 strerror(-rc));
	}
}

/* A status is one line: a newline in it would start another assignment. */
static void one_line(char *p)
{
	for (; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void notify_ready(const char *status)
{
	if (!enabled())
		return;
	char msg[512] = "READY=1";
	if (status) {
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
		one_line(msg + strlen("READY=1\n"));
	}
	send_msg(msg);
}

void notify_reloading(void)
{
	if (!enabled())
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[128];
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	send_msg(msg);
}

void notify_stopping(void)
{
	if (!enabled())
		return;
	send_msg("STOPPING=1\nSTATUS=draining: no new connections, waiting for the open ones to finish");
}

void notify_status(const char *fmt, ...)
{
	if (!enabled())
		return;
	char msg[512] = "STATUS=";
	size_t n = strlen(msg);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	va_end(ap);
	one_line(msg + n);
	send_msg(msg);
}

void notify_mainpid(int pid, const char *status)
{
	if (!enabled())
		return;
	char msg[512];
	snprintf(msg, sizeof(msg), "MAINPID=%d\nSTATUS=%s", pid, status);
	one_line(msg + strlen("MAINPID=\n") + (size_t)snprintf(NULL, 0, "%d", pid));
	send_msg(msg);
}
