/* log.c — stderr (with a timestamp and level) or syslog. Thread-safe: one write(2) per line. */
#include "tlsoff/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int max_level = LOG_INFO;
static bool to_syslog;

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "error",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_init(const char *ident, int level, bool use_syslog)
{
	max_level = level;
	to_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int log_level_parse(const char *name)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	return -1;
}

bool log_enabled(int level)
{
	return level <= max_level;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;
	if (level > max_level)
		return;
	va_start(ap, fmt);
	if (to_syslog) {
		vsyslog(level, fmt, ap);
	} else {
		char line[2048];
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
			      level_names[level]);
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
		n = m < 0 ? n : (n + m > (int)sizeof(line) - 2 ? (int)sizeof(line) - 2 : n + m);
		line[n++] = '\n';
		ssize_t w = write(STDERR_FILENO, line, (size_t)n);
		(void)w;
	}
	va_end(ap);
}

int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
