// SPDX-License-Identifier: MIT
/*
 * libaccel - UCX, loaded at run time (libucp.so.0 and libucs.so.0, Debian's
 * libucx0), so that libaccel links and runs without it and a process that
 * never creates an accel_xfer never maps UCX (whose libucs installs error
 * signal handlers when it loads); UCX's status codes as errnos; UCX's log
 * messages through libaccel's log callback.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "xfer.h"

struct xf_ucx xf_u;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_err;

int xf_errno(ucs_status_t st)
{
	switch (st) {
	case UCS_OK:
		return 0;
	case UCS_INPROGRESS:
		return -EINPROGRESS;
	case UCS_ERR_NO_MESSAGE:
		return -ENOMSG;
	case UCS_ERR_NO_RESOURCE:
	case UCS_ERR_NO_PROGRESS:
		return -EAGAIN;
	case UCS_ERR_IO_ERROR:
	case UCS_ERR_SHMEM_SEGMENT:
		return -EIO;
	case UCS_ERR_NO_MEMORY:
		return -ENOMEM;
	case UCS_ERR_INVALID_PARAM:
	case UCS_ERR_INVALID_ADDR:
		return -EINVAL;
	case UCS_ERR_UNREACHABLE:
		return -EHOSTUNREACH;
	case UCS_ERR_NOT_IMPLEMENTED:
	case UCS_ERR_UNSUPPORTED:
		return -EOPNOTSUPP;
	case UCS_ERR_MESSAGE_TRUNCATED:
		return -EMSGSIZE;
	case UCS_ERR_NO_ELEM:
		return -ENOENT;
	case UCS_ERR_SOME_CONNECTS_FAILED:
	case UCS_ERR_REJECTED:
		return -ECONNREFUSED;
	case UCS_ERR_NO_DEVICE:
		return -ENODEV;
	case UCS_ERR_BUSY:
		return -EBUSY;
	case UCS_ERR_CANCELED:
		return -ECANCELED;
	case UCS_ERR_BUFFER_TOO_SMALL:
		return -ENOBUFS;
	case UCS_ERR_OUT_OF_RANGE:
		return -ERANGE;
	case UCS_ERR_TIMED_OUT:
	case UCS_ERR_ENDPOINT_TIMEOUT:
		return -ETIMEDOUT;
	case UCS_ERR_EXCEEDS_LIMIT:
		return -E2BIG;
	case UCS_ERR_ALREADY_EXISTS:
		return -EEXIST;
	case UCS_ERR_NOT_CONNECTED:
		return -ENOTCONN;
	case UCS_ERR_CONNECTION_RESET:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

/* UCX's messages (warnings and errors at UCX's default UCX_LOG_LEVEL). */
static ucs_log_func_rc_t xf_ucs_log(const char *file, unsigned int line, const char *function,
				    ucs_log_level_t level,
				    const ucs_log_component_config_t *comp_conf,
				    const char *message, va_list ap)
{
	enum accel_log_level l;
	char msg[200];

	(void)file;
	(void)line;
	(void)function;
	(void)comp_conf;
	if (level <= UCS_LOG_LEVEL_ERROR)
		l = ACCEL_LOG_ERR;
	else if (level == UCS_LOG_LEVEL_WARN)
		l = ACCEL_LOG_WARNING;
	else if (level <= UCS_LOG_LEVEL_INFO)
		l = ACCEL_LOG_INFO;
	else
		l = ACCEL_LOG_DEBUG;
	vsnprintf(msg, sizeof(msg), message, ap);
	accel_log(l, "xfer: ucx: %s", msg);
	return UCS_LOG_FUNC_RC_STOP;
}

static void xf_ucx_load_once(void)
{
	static const char *const libs[] = { "libucp.so.0", "libucs.so.0" };
	void *h[2];
	unsigned int major, minor, release;
	void *p;
	int i;

	for (i = 0; i < 2; i++) {
		/* NODELETE: UCX's threads and handlers outlive any unload. */
		h[i] = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
		if (!h[i]) {
			accel_log(ACCEL_LOG_ERR, "xfer: cannot load %s (libucx0): %s",
				  libs[i], dlerror());
			load_err = -ENOPKG;
			return;
		}
	}
#define XF_UCX_SYM(lib, name)							\
	p = dlsym(h[#lib[2] == 'p' ? 0 : 1], #name);				\
	if (!p) {								\
		accel_log(ACCEL_LOG_ERR, "xfer: UCX has no %s", #name);		\
		load_err = -ENOPKG;						\
		return;								\
	}									\
	memcpy(&xf_u.name, &p, sizeof(p));
	XF_UCX_FNS(XF_UCX_SYM)
#undef XF_UCX_SYM
	xf_u.ucp_get_version(&major, &minor, &release);
	if (major != UCP_API_MAJOR || minor < 13) {
		accel_log(ACCEL_LOG_ERR, "xfer: UCX %u.%u.%u: 1.13 or later is needed",
			  major, minor, release);
		load_err = -ENOPKG;
		return;
	}
	/* Process-wide: UCX's own messages go to libaccel's log, not stderr. */
	xf_u.ucs_log_push_handler(xf_ucs_log);
	accel_log(ACCEL_LOG_DEBUG, "xfer: UCX %u.%u.%u loaded", major, minor, release);
}

int xf_ucx_load(void)
{
	pthread_once(&load_once, xf_ucx_load_once);
	return load_err;
}
