// SPDX-License-Identifier: MIT
/*
 * libaccel - accel_xfer's data path: one-sided puts into a peer's
 * registered memory, and the flush that waits for them.
 */
#include "xfer.h"

#define XF_PUT_MAX	65536u

/* A put completed (in progress, lock held): only its failure matters. */
static void xf_put_cb(void *request, ucs_status_t st, void *user_data)
{
	struct accel_xfer_ep *ep = user_data;

	xf_u.ucp_request_free(request);
	if (st != UCS_OK && st != UCS_ERR_CANCELED && !ep->err) {
		ep->err = xf_errno(st);
		accel_log(ACCEL_LOG_WARNING, "xfer: a put failed: %s", xf_u.ucs_status_string(st));
	}
}

ACCEL_EXPORT int accel_xfer_put(struct accel_xfer_ep *ep, const struct accel_xfer_iov *iov,
				uint32_t n, struct accel_xfer_rkey *rk)
{
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
		.cb.send = xf_put_cb,
		.user_data = ep,
	};
	struct accel_xfer_mem *m;
	struct accel_xfer *x;
	ucs_status_ptr_t sp;
	uint32_t i;
	int ret = 0;

	if (!ep || !iov || !rk || !n || n > XF_PUT_MAX || rk->ep != ep)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if ((!iov[i].local && iov[i].len) || iov[i].remote > rk->len ||
		    iov[i].len > rk->len - iov[i].remote ||
		    (uintptr_t)iov[i].local + iov[i].len < (uintptr_t)iov[i].local)
			return -EINVAL;
	x = ep->x;
	xf_lock(x);
	if (ep->err || ep->closing) {
		ret = ep->err ? ep->err : -EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!iov[i].len)
			continue;
		/* Registered local memory needs no bounce (RDMA transports). */
		m = xf_mem_find(x, iov[i].local, iov[i].len);
		p.op_attr_mask &= ~UCP_OP_ATTR_FIELD_MEMH;
		if (m) {
			p.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
			p.memh = m->memh;
		}
		sp = xf_u.ucp_put_nbx(ep->ep, iov[i].local, iov[i].len, rk->base + iov[i].remote,
				      rk->rkey, &p);
		if (UCS_PTR_IS_ERR(sp)) {
			ret = xf_errno(UCS_PTR_STATUS(sp));
			if (!ep->err)
				ep->err = ret;
			break;
		}
	}
	xf_wake(x);
out:
	xf_unlock(x);
	return ret;
}

ACCEL_EXPORT int accel_xfer_flush(struct accel_xfer_ep *ep, int64_t timeout_ns)
{
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
		.cb.send = xf_req_cb,
	};
	struct accel_xfer *x;
	ucs_status_ptr_t sp;
	struct xf_req *r;
	int ret;

	if (!ep)
		return -EINVAL;
	x = ep->x;
	r = xf_req_new(x);
	if (!r)
		return -ENOMEM;
	p.user_data = r;
	xf_lock(x);
	if (ep->err || ep->closing) {
		ret = ep->err ? ep->err : -EINVAL;
		free(r);
		goto out;
	}
	sp = xf_u.ucp_ep_flush_nbx(ep->ep, &p);
	ret = xf_req_wait(r, sp, ep, timeout_ns);
	if (ep->err)
		ret = ep->err;
out:
	xf_unlock(x);
	return ret;
}
