// SPDX-License-Identifier: MIT
/*
 * libaccel - accel_xfer's core: the UCX context and worker, the progress
 * thread, and the waits every blocking call shares.
 *
 * The progress thread drives ucp_worker_progress() until it has nothing to
 * do, arms the worker (ucp_worker_arm()) and sleeps in poll() on the
 * worker's event fd and its own wake eventfd, which every call that hands
 * UCX work writes. Without RDMA, UCX emulates a peer's one-sided puts with
 * messages that this side's worker must process, and a flush on the peer
 * never completes unless something here progresses: that is why the
 * thread exists. poll() also times out every XF_POLL_MS, in case a
 * transport's events are not all wired to the fd.
 */
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "xfer.h"

#define XF_POLL_MS		10
#define XF_PROGRESS_BURST	256
#define XF_DESTROY_NS		1000000000LL

void xf_lock(struct accel_xfer *x)
{
	atomic_fetch_add(&x->waiters, 1);
	pthread_mutex_lock(&x->lock);
	atomic_fetch_sub(&x->waiters, 1);
}

void xf_unlock(struct accel_xfer *x)
{
	pthread_mutex_unlock(&x->lock);
}

static void xf_fd_add(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so it is readable anyway. */
	}
}

static void xf_fd_drain(int fd)
{
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: it was not readable. */
	}
}

void xf_wake(struct accel_xfer *x)
{
	xf_fd_add(x->wake_fd);
}

void xf_user_signal(struct accel_xfer *x)
{
	xf_fd_add(x->user_fd);
	pthread_cond_broadcast(&x->cond);
}

void xf_user_clear(struct accel_xfer *x)
{
	xf_fd_drain(x->user_fd);
}

struct timespec xf_deadline(int64_t timeout_ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ns < 0)
		return ts;
	ts.tv_sec += timeout_ns / 1000000000LL;
	ts.tv_nsec += timeout_ns % 1000000000LL;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/*
 * Wait on x->cond (lock held) until @deadline, or forever for a negative
 * @timeout_ns. Return: 0 (woken: check again) or -ETIMEDOUT.
 */
int xf_cond_wait(struct accel_xfer *x, const struct timespec *deadline, int64_t timeout_ns)
{
	if (timeout_ns < 0) {
		pthread_cond_wait(&x->cond, &x->lock);
		return 0;
	}
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	return pthread_cond_timedwait(&x->cond, &x->lock, deadline) == ETIMEDOUT ? -ETIMEDOUT : 0;
}

struct xf_req *xf_req_new(struct accel_xfer *x)
{
	struct xf_req *r = calloc(1, sizeof(*r));

	if (r)
		r->x = x;
	return r;
}

/* A waited-for request completed (in progress, lock held). */
void xf_req_cb(void *request, ucs_status_t st, void *user_data)
{
	struct xf_req *r = user_data;

	xf_u.ucp_request_free(request);
	if (r->abandoned) {
		free(r->buf);
		free(r);
		return;
	}
	r->st = st;
	r->done = true;
	pthread_cond_broadcast(&r->x->cond);
}

/*
 * Wait for the request @sp that an nbx call returned with @r as its
 * user_data (lock held). @r is freed here, or by xf_req_cb() once the
 * request completes if the wait gave up (timeout, or @ep failed).
 */
int xf_req_wait(struct xf_req *r, ucs_status_ptr_t sp, struct accel_xfer_ep *ep,
		int64_t timeout_ns)
{
	struct accel_xfer *x = r->x;
	struct timespec dl;
	int ret = 0;

	if (sp == NULL || UCS_PTR_IS_ERR(sp)) {
		ret = sp ? xf_errno(UCS_PTR_STATUS(sp)) : 0;
		free(r->buf);
		free(r);
		return ret;
	}
	xf_wake(x);
	dl = xf_deadline(timeout_ns);
	while (!r->done) {
		if (ep && ep->err) {
			ret = ep->err;
			break;
		}
		ret = xf_cond_wait(x, &dl, timeout_ns < 0 ? -1 : (timeout_ns ? timeout_ns : 1));
		if (ret)
			break;
	}
	if (!r->done) {
		r->abandoned = true;
		return ret;
	}
	ret = xf_errno(r->st);
	free(r->buf);
	free(r);
	return ret;
}

static void *xf_progress_main(void *arg)
{
	struct accel_xfer *x = arg;
	struct pollfd pfd[2];
	ucs_status_t st;
	int i, ms;

	pfd[0] = (struct pollfd){ .fd = x->worker_fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = x->wake_fd, .events = POLLIN };
	xf_lock(x);
	while (!x->stop) {
		for (i = 0; i < XF_PROGRESS_BURST; i++)
			if (!xf_u.ucp_worker_progress(x->worker))
				break;
		if (x->rndv_pending)
			xf_rndv_start(x);
		if (x->reap)
			xf_eps_reap(x);
		if (i == XF_PROGRESS_BURST)
			goto again;
		ms = XF_POLL_MS;
		if (x->worker_fd >= 0) {
			st = xf_u.ucp_worker_arm(x->worker);
			if (st == UCS_ERR_BUSY)
				goto again;
			if (st != UCS_OK)
				ms = 1;
		} else {
			ms = 1;
		}
		xf_unlock(x);
		poll(x->worker_fd >= 0 ? pfd : pfd + 1, x->worker_fd >= 0 ? 2 : 1, ms);
		xf_fd_drain(x->wake_fd);
		xf_lock(x);
		continue;
again:
		/* Busy: let the callers waiting for the lock have it. */
		if (atomic_load(&x->waiters)) {
			xf_unlock(x);
			sched_yield();
			xf_lock(x);
		}
	}
	xf_unlock(x);
	return NULL;
}

static void xf_free(struct accel_xfer *x)
{
	if (x->worker)
		xf_u.ucp_worker_destroy(x->worker);
	if (x->ctx)
		xf_u.ucp_cleanup(x->ctx);
	if (x->wake_fd >= 0)
		close(x->wake_fd);
	if (x->user_fd >= 0)
		close(x->user_fd);
	pthread_cond_destroy(&x->cond);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

static int xf_ucx_init(struct accel_xfer *x)
{
	ucp_params_t params = {
		.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
		.features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
		.mt_workers_shared = 0,
	};
	ucp_worker_params_t wp = {
		.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
		.thread_mode = UCS_THREAD_MODE_SERIALIZED,
	};
	ucp_am_handler_param_t am = {
		.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_FLAGS |
			      UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG,
		.flags = UCP_AM_FLAG_WHOLE_MSG,
		.arg = x,
	};
	static const struct {
		unsigned int id;
		ucp_am_recv_callback_t cb;
	} handlers[] = {
		{ XF_AM_MSG, xf_am_msg },
		{ XF_AM_HELLO, xf_am_hello },
		{ XF_AM_ACK, xf_am_ack },
	};
	ucp_config_t *cfg;
	ucs_status_t st;
	size_t i;

	st = xf_u.ucp_config_read(NULL, NULL, &cfg);
	if (st != UCS_OK)
		goto fail;
	st = xf_u.ucp_init_version(UCP_API_MAJOR, UCP_API_MINOR, &params, cfg, &x->ctx);
	xf_u.ucp_config_release(cfg);
	if (st != UCS_OK)
		goto fail;
	st = xf_u.ucp_worker_create(x->ctx, &wp, &x->worker);
	if (st != UCS_OK)
		goto fail;
	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		am.id = handlers[i].id;
		am.cb = handlers[i].cb;
		st = xf_u.ucp_worker_set_am_recv_handler(x->worker, &am);
		if (st != UCS_OK)
			goto fail;
	}
	if (xf_u.ucp_worker_get_efd(x->worker, &x->worker_fd) != UCS_OK) {
		accel_log(ACCEL_LOG_INFO, "xfer: no worker event fd, polling every millisecond");
		x->worker_fd = -1;
	}
	return 0;
fail:
	accel_log(ACCEL_LOG_ERR, "xfer: UCX setup failed: %s", xf_u.ucs_status_string(st));
	return xf_errno(st);
}

ACCEL_EXPORT struct accel_xfer *accel_xfer_create(const struct accel_xfer_opts *opts)
{
	pthread_condattr_t ca;
	struct accel_xfer *x;
	int ret;

	ret = accel_opts_valid(opts, sizeof(*opts));
	if (!ret && opts && (ACCEL_OPTS_GET(opts, flags, 0) || ACCEL_OPTS_GET(opts, pad, 0)))
		ret = -EINVAL;
	if (!ret)
		ret = xf_ucx_load();
	if (ret) {
		errno = -ret;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&x->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&x->cond, &ca);
	pthread_condattr_destroy(&ca);
	x->accept_tail = &x->accept_head;
	x->msg_tail = &x->msg_head;
	x->worker_fd = -1;
	x->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	x->user_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (x->wake_fd < 0 || x->user_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = xf_ucx_init(x);
	if (ret)
		goto fail;
	ret = -pthread_create(&x->thread, NULL, xf_progress_main, x);
	if (ret)
		goto fail;
	x->thread_started = true;
	return x;
fail:
	xf_free(x);
	errno = -ret;
	return NULL;
}

ACCEL_EXPORT void accel_xfer_destroy(struct accel_xfer *x)
{
	struct timespec now, dl;
	struct accel_xfer_ep *ep, **pp;

	if (!x)
		return;
	if (x->thread_started) {
		xf_lock(x);
		x->stop = true;
		xf_unlock(x);
		xf_wake(x);
		pthread_join(x->thread, NULL);
	}
	/* Alone now: this thread progresses the worker itself. */
	if (x->listener) {
		xf_u.ucp_listener_destroy(x->listener);
		x->listener = NULL;
	}
	while (x->mems)
		xf_mem_unmap_locked(x->mems);
	xf_msgs_drop(x, NULL);
	for (ep = x->eps; ep; ep = ep->next) {
		ep->abandoned = true;
		xf_ep_close_locked(ep, true);
	}
	dl = xf_deadline(XF_DESTROY_NS);
	for (;;) {
		for (ep = x->eps; ep && ep->close_done; ep = ep->next)
			;
		if (!ep)
			break;
		xf_u.ucp_worker_progress(x->worker);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > dl.tv_sec || (now.tv_sec == dl.tv_sec && now.tv_nsec > dl.tv_nsec)) {
			accel_log(ACCEL_LOG_WARNING, "xfer: an endpoint did not close in time");
			break;
		}
	}
	xf_msgs_drop(x, NULL);
	/* The worker's destruction ends what is left; then nothing calls back. */
	if (x->worker) {
		xf_u.ucp_worker_destroy(x->worker);
		x->worker = NULL;
	}
	for (pp = &x->eps; (ep = *pp);) {
		*pp = ep->next;
		free(ep);
	}
	xf_free(x);
}

ACCEL_EXPORT int accel_xfer_fd(const struct accel_xfer *x)
{
	return x ? x->user_fd : -EINVAL;
}
