/* log.h — levels, stderr or syslog. One line per event; connection summaries use LOG_INFO. */
#ifndef TLSOFF_LOG_H
#define TLSOFF_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG. */
void log_init(const char *ident, int max_level, bool use_syslog);
int log_level_parse(const char *name);      /* "error|warning|notice|info|debug" -> level, -1 if unknown */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool log_enabled(int level);

/* printf into err (at most errlen bytes) and return -1: how parsers report a human-readable error. */
int errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_err(...)    log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
