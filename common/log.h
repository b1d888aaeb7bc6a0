/* SPDX-License-Identifier: MIT */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Levels: errors always print; -v enables info, -vv debug. */
enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_init(const char *prog, int verbosity, const char *log_file);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool log_enabled(enum log_level lvl);
/*
 * For commands that end with a one-line verdict: without -v, errors are not
 * printed as they come; the first one is kept for the verdict (log_reason).
 */
void log_defer_errors(void);
const char *log_reason(void);
/* The next error becomes the verdict: it explains the ones before it. */
void log_reset_reason(void);

/* Bad command line: one line "prog: reason (see prog --help)"; returns 2 (the exit code). */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What getopt (with opterr = 0) found wrong, for usage_error. */
const char *getopt_problem(char **argv, int optind, int optopt, char *buf, size_t len);

#define pr_err(fmt, ...)   log_msg(LOG_ERR, fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)  log_msg(LOG_WARN, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)  log_msg(LOG_INFO, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) log_msg(LOG_DEBUG, fmt, ##__VA_ARGS__)
/* pr_perror: like pr_err, appending strerror(errno). */
#define pr_perror(fmt, ...) log_msg(LOG_ERR, fmt ": %m", ##__VA_ARGS__)

#endif
