// SPDX-License-Identifier: MIT
/*
 * libaccel - accel_xfer's control messages: UCX active messages, queued
 * for accel_xfer_recv() in the order they arrive. Large ones come by
 * rendezvous: their entry waits in the queue, not ready, until the data is
 * in, and a later message of the same endpoint is not delivered before it.
 */
#include <stdlib.h>
#include <string.h>

#include "xfer.h"

static void xf_msg_free(struct xf_msg *m)
{
	free(m->data);
	free(m);
}

/* A message arrived (in progress, lock held). */
ucs_status_t xf_am_msg(void *arg, const void *hdr, size_t hlen, void *data, size_t len,
		       const ucp_am_recv_param_t *param)
{
	struct accel_xfer *x = arg;
	bool rndv = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV;
	struct accel_xfer_ep *ep = NULL;
	struct xf_msg *m;

	(void)hdr;
	(void)hlen;
	if (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)
		ep = xf_ep_find(x, param->reply_ep);
	if (!ep) {
		accel_log(ACCEL_LOG_DEBUG, "xfer: a message of no known endpoint dropped");
		return rndv ? UCS_ERR_REJECTED : UCS_OK;
	}
	if (len > ACCEL_XFER_MSG_MAX) {
		accel_log(ACCEL_LOG_WARNING, "xfer: a %zu-byte message dropped (over %u)", len,
			  ACCEL_XFER_MSG_MAX);
		return rndv ? UCS_ERR_EXCEEDS_LIMIT : UCS_OK;
	}
	m = calloc(1, sizeof(*m));
	if (m)
		m->data = malloc(len ? len : 1);
	if (!m || !m->data) {
		free(m);
		accel_log(ACCEL_LOG_ERR, "xfer: no memory for a %zu-byte message", len);
		return rndv ? UCS_ERR_NO_MEMORY : UCS_OK;
	}
	m->ep = ep;
	m->len = len;
	*x->msg_tail = m;
	x->msg_tail = &m->next;
	if (rndv) {
		/* Received once the callback has returned (xf_rndv_start()). */
		m->desc = data;
		x->rndv_pending = true;
		return UCS_INPROGRESS;
	}
	memcpy(m->data, data, len);
	m->ready = true;
	xf_user_signal(x);
	return UCS_OK;
}

static void xf_rndv_done(void *request, ucs_status_t st, size_t length, void *user_data)
{
	struct xf_msg *m = user_data;

	xf_u.ucp_request_free(request);
	if (m->dropped) {
		xf_msg_free(m);
		return;
	}
	if (st != UCS_OK || length != m->len) {
		accel_log(ACCEL_LOG_WARNING, "xfer: a message's rendezvous failed: %s",
			  xf_u.ucs_status_string(st));
		m->err = st != UCS_OK ? xf_errno(st) : -EIO;
	}
	m->ready = true;
	xf_user_signal(m->ep->x);
}

/* Start the rendezvous of the messages that wait for one (lock held). */
void xf_rndv_start(struct accel_xfer *x)
{
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
		.cb.recv_am = xf_rndv_done,
	};
	ucs_status_ptr_t sp;
	struct xf_msg *m;

	x->rndv_pending = false;
	for (m = x->msg_head; m; m = m->next) {
		if (!m->desc)
			continue;
		p.user_data = m;
		sp = xf_u.ucp_am_recv_data_nbx(x->worker, m->desc, m->data, m->len, &p);
		m->desc = NULL;
		if (UCS_PTR_IS_PTR(sp)) {
			m->started = true;
			continue;
		}
		if (UCS_PTR_IS_ERR(sp))
			m->err = xf_errno(UCS_PTR_STATUS(sp));
		m->ready = true;
		xf_user_signal(x);
	}
}

/* Drop the queued messages of @ep (all of them for NULL; lock held). */
void xf_msgs_drop(struct accel_xfer *x, struct accel_xfer_ep *ep)
{
	struct xf_msg **pp, *m;

	for (pp = &x->msg_head; (m = *pp);) {
		if (ep && m->ep != ep) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		if (m->desc)
			xf_u.ucp_am_data_release(x->worker, m->desc);
		if (m->started && !m->ready)
			m->dropped = true;	/* xf_rndv_done() frees it */
		else
			xf_msg_free(m);
	}
	x->msg_tail = &x->msg_head;
	while (*x->msg_tail)
		x->msg_tail = &(*x->msg_tail)->next;
	if (!x->msg_head && !x->accept_head)
		xf_user_clear(x);
}

ACCEL_EXPORT int accel_xfer_send(struct accel_xfer_ep *ep, const void *msg, size_t len,
				 int64_t timeout_ns)
{
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FIELD_FLAGS,
		.cb.send = xf_req_cb,
		.flags = UCP_AM_SEND_FLAG_REPLY,
	};
	struct accel_xfer *x;
	ucs_status_ptr_t sp;
	struct xf_req *r;
	int ret;

	if (!ep || (!msg && len))
		return -EINVAL;
	if (len > ACCEL_XFER_MSG_MAX)
		return -EMSGSIZE;
	x = ep->x;
	r = xf_req_new(x);
	if (!r)
		return -ENOMEM;
	/* A copy: a send that times out may still read it. */
	r->buf = malloc(len ? len : 1);
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	if (len)
		memcpy(r->buf, msg, len);
	p.user_data = r;
	xf_lock(x);
	if (ep->err || ep->closing) {
		ret = ep->err ? ep->err : -EINVAL;
		free(r->buf);
		free(r);
		goto out;
	}
	sp = xf_u.ucp_am_send_nbx(ep->ep, XF_AM_MSG, NULL, 0, r->buf, len, &p);
	ret = xf_req_wait(r, sp, ep, timeout_ns);
	if (!ret && ep->err)
		ret = ep->err;
out:
	xf_unlock(x);
	return ret;
}

/* The first message that may be delivered: ready, none of its endpoint before it. */
static struct xf_msg **xf_msg_next(struct accel_xfer *x)
{
	struct xf_msg **pp, *m, *o;

	for (pp = &x->msg_head; (m = *pp); pp = &m->next) {
		if (!m->ready)
			continue;
		for (o = x->msg_head; o != m; o = o->next)
			if (o->ep == m->ep)
				break;
		if (o == m)
			return pp;
	}
	return NULL;
}

ACCEL_EXPORT int accel_xfer_recv(struct accel_xfer *x, struct accel_xfer_ep **from, void *buf,
				 size_t *len, int64_t timeout_ns)
{
	struct xf_msg **pp, *m;
	struct timespec dl;
	int ret;

	if (!x || !len || (!buf && *len))
		return -EINVAL;
	dl = xf_deadline(timeout_ns);
	xf_lock(x);
	for (;;) {
		pp = xf_msg_next(x);
		if (pp) {
			m = *pp;
			*pp = m->next;
			if (!*pp)
				x->msg_tail = pp;
			if (m->err) {
				/* Its data never came: the next one. */
				xf_msg_free(m);
				continue;
			}
			break;
		}
		ret = xf_cond_wait(x, &dl, timeout_ns);
		if (ret) {
			ret = timeout_ns ? ret : -EAGAIN;
			goto out;
		}
	}
	if (m->len > *len) {
		ret = -EMSGSIZE;
	} else {
		memcpy(buf, m->data, m->len);
		if (from)
			*from = m->ep;
		ret = 0;
	}
	*len = m->len;
	xf_msg_free(m);
out:
	if (!x->msg_head && !x->accept_head)
		xf_user_clear(x);
	xf_unlock(x);
	return ret;
}
