// SPDX-License-Identifier: MIT
/* One logger for every command: stderr (one line per message) and an optional log file. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static const char *log_prog = "ferry";
static int log_verbosity = LOG_WARN;
static FILE *log_file;
static bool log_defer;		/* errors wait for the command's one-line verdict */
static char log_first_err[1024];

void log_init(const char *prog, int verbosity, const char *path)
{
	log_prog = prog;
	log_verbosity = LOG_WARN + verbosity;
	if (path) {
		log_file = fopen(path, "ae");
		if (!log_file)
			fprintf(stderr, "%s: cannot open log file %s: %m\n", prog, path);
		else
			setvbuf(log_file, NULL, _IOLBF, 0);
	}
}

int usage_error(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s (see %s --help)\n", log_prog, buf, log_prog);
	return 2;
}

const char *getopt_problem(char **argv, int optind, int optopt, char *buf, size_t len)
{
	if (optopt > ' ' && optopt < 127)
		snprintf(buf, len, "option -%c %s", optopt, "is unknown or needs a value");
	else
		snprintf(buf, len, "option '%s' is unknown or needs a value", argv[optind - 1]);
	return buf;
}

void log_defer_errors(void)
{
	log_defer = true;
}

const char *log_reason(void)
{
	return log_first_err;
}

void log_reset_reason(void)
{
	log_first_err[0] = 0;
}

bool log_enabled(enum log_level lvl)
{
	return (int)lvl <= log_verbosity || (log_file && lvl <= LOG_DEBUG);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const tags[] = { "error", "warning", "info", "debug" };
	int saved_errno = errno;
	char buf[1024];
	va_list ap;
	struct timespec ts;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	errno = saved_errno;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (lvl == LOG_ERR && !log_first_err[0])
		snprintf(log_first_err, sizeof(log_first_err), "%s", buf);
	if ((int)lvl <= log_verbosity && !(log_defer && lvl == LOG_ERR && log_verbosity <= LOG_WARN))
		fprintf(stderr, "%s: %s%s%s\n", log_prog, lvl <= LOG_WARN ? tags[lvl] : "",
			lvl <= LOG_WARN ? ": " : "", buf);
	if (log_file) {
		clock_gettime(CLOCK_REALTIME, &ts);
		fprintf(log_file, "%ld.%06ld %s[%d] %s: %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000,
			log_prog, getpid(), tags[lvl], buf);
	}
	errno = saved_errno;
}
