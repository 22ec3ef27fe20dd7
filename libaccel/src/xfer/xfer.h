/* SPDX-License-Identifier: MIT */
/*
 * libaccel - accel_xfer's internals: the objects, the UCX entry points
 * (loaded at run time, ucx.c) and the helpers the files share.
 *
 * Locking: x->lock guards everything in struct accel_xfer and the objects
 * hanging off it, and every UCX call. UCX invokes our callbacks from
 * ucp_worker_progress(), which only the progress thread calls (and
 * accel_xfer_destroy() once that thread is gone), always under x->lock:
 * callbacks never take it.
 */
#ifndef ACCEL_XFER_INTERNAL_H
#define ACCEL_XFER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include <ucp/api/ucp.h>
#include <ucs/debug/log_def.h>

#include "../internal.h"

/* The UCX functions libaccel calls, resolved by xf_ucx_load(). */
#define XF_UCX_FNS(X)							\
	X(ucp, ucp_config_read) X(ucp, ucp_config_release)		\
	X(ucp, ucp_init_version) X(ucp, ucp_cleanup)			\
	X(ucp, ucp_get_version)						\
	X(ucp, ucp_worker_create) X(ucp, ucp_worker_destroy)		\
	X(ucp, ucp_worker_progress) X(ucp, ucp_worker_get_efd)		\
	X(ucp, ucp_worker_arm) X(ucp, ucp_worker_set_am_recv_handler)	\
	X(ucp, ucp_listener_create) X(ucp, ucp_listener_destroy)	\
	X(ucp, ucp_listener_query) X(ucp, ucp_listener_reject)		\
	X(ucp, ucp_ep_create) X(ucp, ucp_ep_close_nbx)			\
	X(ucp, ucp_ep_flush_nbx) X(ucp, ucp_put_nbx)			\
	X(ucp, ucp_am_send_nbx) X(ucp, ucp_am_recv_data_nbx)		\
	X(ucp, ucp_am_data_release) X(ucp, ucp_request_free)		\
	X(ucp, ucp_mem_map) X(ucp, ucp_mem_unmap)			\
	X(ucp, ucp_rkey_pack) X(ucp, ucp_rkey_buffer_release)		\
	X(ucp, ucp_ep_rkey_unpack) X(ucp, ucp_rkey_destroy)		\
	X(ucs, ucs_status_string) X(ucs, ucs_log_push_handler)

struct xf_ucx {
#define XF_UCX_PTR(lib, name) __typeof__(name) *name;
	XF_UCX_FNS(XF_UCX_PTR)
#undef XF_UCX_PTR
};

/* ucx.c */
extern struct xf_ucx xf_u;
int xf_ucx_load(void);
int xf_errno(ucs_status_t st);

/* Active message ids. */
enum {
	XF_AM_MSG = 1,		/* a control message (accel_xfer_send) */
	XF_AM_HELLO = 2,	/* the client's handshake */
	XF_AM_ACK = 3,		/* the server's answer */
};

#define XF_HELLO_MAGIC	0x4b565846u	/* "FXVK" */

struct xf_msg {
	struct xf_msg *next;
	struct accel_xfer_ep *ep;
	void *data;
	size_t len;
	void *desc;		/* a rendezvous not started yet */
	bool started;		/* its rendezvous is in flight */
	bool ready;		/* data complete */
	bool dropped;		/* out of the queue: the rendezvous frees it */
	int err;		/* the rendezvous failed: dropped */
};

struct accel_xfer_rkey {
	struct accel_xfer_rkey *next;
	struct accel_xfer_ep *ep;
	ucp_rkey_h rkey;
	uint64_t base, len;
};

struct accel_xfer_ep {
	struct accel_xfer *x;
	struct accel_xfer_ep *next;	/* x->eps */
	struct accel_xfer_ep *anext;	/* x's accept queue */
	ucp_ep_h ep;
	int err;			/* sticky: 0 or -errno */
	bool queued;			/* waits in the accept queue */
	bool acked;			/* the server answered our hello */
	bool closing;			/* ucp_ep_close_nbx() called */
	bool close_done;
	bool abandoned;			/* closed by the user: free on close_done */
	struct accel_xfer_rkey *rkeys;
};

struct accel_xfer_mem {
	struct accel_xfer *x;
	struct accel_xfer_mem *next;
	ucp_mem_h memh;
	void *addr;
	size_t len;
	void *rkey_buf;
	size_t rkey_len;
};

struct accel_xfer {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* CLOCK_MONOTONIC; broadcast on any completion */
	atomic_int waiters;		/* callers waiting for the lock */
	ucp_context_h ctx;
	ucp_worker_h worker;
	ucp_listener_h listener;
	int worker_fd;			/* ucp_worker_get_efd(), -1 if none */
	int wake_fd;			/* eventfd: wakes the progress thread */
	int user_fd;			/* eventfd: accel_xfer_fd() */
	pthread_t thread;
	bool thread_started, stop;
	bool rndv_pending;		/* a message's rendezvous to start */
	bool reap;			/* a closed endpoint to free */
	struct accel_xfer_ep *eps;
	struct accel_xfer_ep *accept_head, **accept_tail;
	struct xf_msg *msg_head, **msg_tail;
	struct accel_xfer_mem *mems;
};

/* A waited-for UCX request: freed by whoever comes last. */
struct xf_req {
	struct accel_xfer *x;
	bool done, abandoned;
	ucs_status_t st;
	void *buf;			/* owned: a message's copy */
};

/* core.c */
void xf_lock(struct accel_xfer *x);
void xf_unlock(struct accel_xfer *x);
void xf_wake(struct accel_xfer *x);
void xf_user_signal(struct accel_xfer *x);
void xf_user_clear(struct accel_xfer *x);
struct timespec xf_deadline(int64_t timeout_ns);
int xf_cond_wait(struct accel_xfer *x, const struct timespec *deadline, int64_t timeout_ns);
struct xf_req *xf_req_new(struct accel_xfer *x);
void xf_req_cb(void *request, ucs_status_t st, void *user_data);
int xf_req_wait(struct xf_req *r, ucs_status_ptr_t sp, struct accel_xfer_ep *ep,
		int64_t timeout_ns);

/* conn.c */
struct accel_xfer_ep *xf_ep_find(struct accel_xfer *x, ucp_ep_h uep);
void xf_ep_close_locked(struct accel_xfer_ep *ep, bool force);
void xf_eps_reap(struct accel_xfer *x);
ucs_status_t xf_am_hello(void *arg, const void *hdr, size_t hlen, void *data, size_t len,
			 const ucp_am_recv_param_t *param);
ucs_status_t xf_am_ack(void *arg, const void *hdr, size_t hlen, void *data, size_t len,
		       const ucp_am_recv_param_t *param);

/* msg.c */
ucs_status_t xf_am_msg(void *arg, const void *hdr, size_t hlen, void *data, size_t len,
		       const ucp_am_recv_param_t *param);
void xf_rndv_start(struct accel_xfer *x);
void xf_msgs_drop(struct accel_xfer *x, struct accel_xfer_ep *ep);

/* mem.c */
struct accel_xfer_mem *xf_mem_find(struct accel_xfer *x, const void *addr, uint64_t len);
void xf_mem_unmap_locked(struct accel_xfer_mem *m);
void xf_rkeys_destroy(struct accel_xfer_ep *ep);

#endif /* ACCEL_XFER_INTERNAL_H */
