// SPDX-License-Identifier: MIT
/*
 * libaccel - the log callback. The library never prints.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static accel_log_fn log_fn;
static void *log_arg;
static enum accel_log_level log_max = ACCEL_LOG_ERR;

ACCEL_EXPORT void accel_set_log(accel_log_fn fn, void *arg, enum accel_log_level max_level)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_arg = arg;
	log_max = max_level;
	pthread_mutex_unlock(&log_lock);
}

void accel_log(enum accel_log_level level, const char *fmt, ...)
{
	accel_log_fn fn;
	char msg[256];
	va_list ap;
	void *arg;

	pthread_mutex_lock(&log_lock);
	fn = level <= log_max ? log_fn : NULL;
	arg = log_arg;
	pthread_mutex_unlock(&log_lock);
	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(arg, level, msg);
}
