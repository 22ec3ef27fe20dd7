// SPDX-License-Identifier: MIT
/*
 * libaccel - accel_xfer's connections: the listener, connecting (with a
 * handshake, so that only a peer that is an accel_xfer connects), the
 * accept queue, errors and closing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "xfer.h"

#define XF_CLOSE_NS	1000000000LL

struct xf_hello {
	uint32_t magic;
	uint32_t version;
};

static const struct xf_hello xf_hello_msg = { XF_HELLO_MAGIC, 1 };

struct accel_xfer_ep *xf_ep_find(struct accel_xfer *x, ucp_ep_h uep)
{
	struct accel_xfer_ep *ep;

	for (ep = x->eps; ep; ep = ep->next)
		if (ep->ep == uep && !ep->closing)
			return ep;
	return NULL;
}

/* The peer died, closed, or the network dropped (in progress, lock held). */
static void xf_ep_err_cb(void *arg, ucp_ep_h uep, ucs_status_t st)
{
	struct accel_xfer_ep *ep = arg;

	(void)uep;
	if (!ep->err) {
		ep->err = xf_errno(st);
		if (ep->err == -EINPROGRESS || !ep->err)
			ep->err = -ECONNRESET;
		accel_log(ACCEL_LOG_INFO, "xfer: endpoint failed: %s", xf_u.ucs_status_string(st));
	}
	pthread_cond_broadcast(&ep->x->cond);
}

static struct accel_xfer_ep *xf_ep_new(struct accel_xfer *x)
{
	struct accel_xfer_ep *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return NULL;
	ep->x = x;
	return ep;
}

static void xf_ep_link(struct accel_xfer_ep *ep)
{
	ep->next = ep->x->eps;
	ep->x->eps = ep;
}

static void xf_ep_unlink(struct accel_xfer_ep *ep)
{
	struct accel_xfer_ep **pp;

	for (pp = &ep->x->eps; *pp; pp = &(*pp)->next)
		if (*pp == ep) {
			*pp = ep->next;
			return;
		}
}

static void xf_ep_close_cb(void *request, ucs_status_t st, void *user_data)
{
	struct accel_xfer_ep *ep = user_data;

	(void)st;
	xf_u.ucp_request_free(request);
	ep->close_done = true;
	if (ep->abandoned)
		ep->x->reap = true;
	pthread_cond_broadcast(&ep->x->cond);
}

/* Free the endpoints closed by their owner whose close has completed. */
void xf_eps_reap(struct accel_xfer *x)
{
	struct accel_xfer_ep **pp, *ep;

	x->reap = false;
	for (pp = &x->eps; (ep = *pp);) {
		if (ep->abandoned && ep->close_done) {
			*pp = ep->next;
			free(ep);
		} else {
			pp = &ep->next;
		}
	}
}

/* Start closing @ep's UCX endpoint (once); close_done when it is over. */
void xf_ep_close_locked(struct accel_xfer_ep *ep, bool force)
{
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FIELD_FLAGS,
		.cb.send = xf_ep_close_cb,
		.user_data = ep,
		.flags = force || ep->err ? UCP_EP_CLOSE_FLAG_FORCE : 0,
	};
	ucs_status_ptr_t sp;

	if (ep->closing)
		return;
	ep->closing = true;
	xf_rkeys_destroy(ep);
	if (!ep->ep) {
		ep->close_done = true;
		return;
	}
	sp = xf_u.ucp_ep_close_nbx(ep->ep, &p);
	if (sp == NULL || UCS_PTR_IS_ERR(sp))
		ep->close_done = true;
	else
		xf_wake(ep->x);
}

static void xf_conn_cb(ucp_conn_request_h req, void *arg)
{
	struct accel_xfer *x = arg;
	struct accel_xfer_ep *ep = xf_ep_new(x);
	ucp_ep_params_t p = {
		.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST |
			      UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
			      UCP_EP_PARAM_FIELD_ERR_HANDLER,
		.conn_request = req,
		.err_mode = UCP_ERR_HANDLING_MODE_PEER,
		.err_handler = { .cb = xf_ep_err_cb, .arg = ep },
	};
	ucs_status_t st;

	if (!ep) {
		accel_log(ACCEL_LOG_ERR, "xfer: no memory for a connection");
		xf_u.ucp_listener_reject(x->listener, req);
		return;
	}
	st = xf_u.ucp_ep_create(x->worker, &p, &ep->ep);
	if (st != UCS_OK) {
		accel_log(ACCEL_LOG_WARNING, "xfer: cannot accept a connection: %s",
			  xf_u.ucs_status_string(st));
		free(ep);
		return;
	}
	xf_ep_link(ep);
	ep->queued = true;
	*x->accept_tail = ep;
	x->accept_tail = &ep->anext;
	xf_user_signal(x);
}

static int xf_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (!addr) {
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

ACCEL_EXPORT int accel_xfer_listen(struct accel_xfer *x, const char *addr, uint16_t port,
				   uint16_t *bound_port)
{
	struct sockaddr_storage ss;
	ucp_listener_params_t p = {
		.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
			      UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
		.conn_handler = { .cb = xf_conn_cb, .arg = x },
	};
	ucp_listener_attr_t attr = { .field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR };
	socklen_t sl;
	ucs_status_t st;
	int ret;

	if (!x)
		return -EINVAL;
	ret = xf_sockaddr(addr, port, &ss, &sl);
	if (ret)
		return ret;
	p.sockaddr.addr = (struct sockaddr *)&ss;
	p.sockaddr.addrlen = sl;
	xf_lock(x);
	if (x->listener) {
		ret = -EBUSY;
		goto out;
	}
	st = xf_u.ucp_listener_create(x->worker, &p, &x->listener);
	if (st != UCS_OK) {
		x->listener = NULL;
		/* UCX's word for an address in use. */
		ret = st == UCS_ERR_BUSY ? -EADDRINUSE : xf_errno(st);
		accel_log(ACCEL_LOG_ERR, "xfer: cannot listen on %s:%u: %s", addr ? addr : "*",
			  port, xf_u.ucs_status_string(st));
		goto out;
	}
	if (bound_port) {
		st = xf_u.ucp_listener_query(x->listener, &attr);
		if (st != UCS_OK) {
			ret = xf_errno(st);
			xf_u.ucp_listener_destroy(x->listener);
			x->listener = NULL;
			goto out;
		}
		if (attr.sockaddr.ss_family == AF_INET6)
			*bound_port = ntohs(((struct sockaddr_in6 *)&attr.sockaddr)->sin6_port);
		else
			*bound_port = ntohs(((struct sockaddr_in *)&attr.sockaddr)->sin_port);
	}
	xf_wake(x);
out:
	xf_unlock(x);
	return ret;
}

/* The server side of the handshake: answer a hello (in progress). */
ucs_status_t xf_am_hello(void *arg, const void *hdr, size_t hlen, void *data, size_t len,
			 const ucp_am_recv_param_t *param)
{
	ucp_request_param_t p = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
		.flags = UCP_AM_SEND_FLAG_REPLY,
	};
	struct accel_xfer_ep *ep = NULL;
	struct xf_hello h;
	ucs_status_ptr_t sp;

	(void)hdr;
	(void)hlen;
	if (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)
		ep = xf_ep_find(arg, param->reply_ep);
	if (!ep || len != sizeof(h) || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV))
		return UCS_OK;
	memcpy(&h, data, sizeof(h));
	if (h.magic != XF_HELLO_MAGIC || h.version != 1)
		return UCS_OK;
	sp = xf_u.ucp_am_send_nbx(ep->ep, XF_AM_ACK, NULL, 0, &xf_hello_msg,
				  sizeof(xf_hello_msg), &p);
	if (UCS_PTR_IS_PTR(sp))
		xf_u.ucp_request_free(sp);	/* released when done */
	else if (UCS_PTR_IS_ERR(sp))
		accel_log(ACCEL_LOG_WARNING, "xfer: cannot answer a hello: %s",
			  xf_u.ucs_status_string(UCS_PTR_STATUS(sp)));
	return UCS_OK;
}

/* The client side: the server answered. */
ucs_status_t xf_am_ack(void *arg, const void *hdr, size_t hlen, void *data, size_t len,
		       const ucp_am_recv_param_t *param)
{
	struct accel_xfer_ep *ep = NULL;
	struct xf_hello h;

	(void)hdr;
	(void)hlen;
	if (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)
		ep = xf_ep_find(arg, param->reply_ep);
	if (!ep || len != sizeof(h) || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV))
		return UCS_OK;
	memcpy(&h, data, sizeof(h));
	if (h.magic == XF_HELLO_MAGIC && h.version == 1) {
		ep->acked = true;
		pthread_cond_broadcast(&ep->x->cond);
	}
	return UCS_OK;
}

/* Close and free @ep (lock held), waiting at most XF_CLOSE_NS for it. */
static void xf_ep_release(struct accel_xfer_ep *ep, bool force)
{
	struct accel_xfer *x = ep->x;
	struct timespec dl = xf_deadline(XF_CLOSE_NS);

	xf_ep_close_locked(ep, force);
	while (!ep->close_done)
		if (xf_cond_wait(x, &dl, XF_CLOSE_NS))
			break;
	if (ep->close_done) {
		xf_ep_unlink(ep);
		free(ep);
	} else {
		/* Freed when UCX is done with it (xf_eps_reap()). */
		ep->abandoned = true;
	}
}

ACCEL_EXPORT int accel_xfer_connect(struct accel_xfer *x, const char *addr, uint16_t port,
				    int64_t timeout_ns, struct accel_xfer_ep **epp)
{
	ucp_request_param_t rp = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
		.flags = UCP_AM_SEND_FLAG_REPLY,
	};
	ucp_ep_params_t p = {
		.field_mask = UCP_EP_PARAM_FIELD_SOCK_ADDR | UCP_EP_PARAM_FIELD_FLAGS |
			      UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
			      UCP_EP_PARAM_FIELD_ERR_HANDLER,
		.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
		.err_mode = UCP_ERR_HANDLING_MODE_PEER,
	};
	struct sockaddr_storage ss;
	struct accel_xfer_ep *ep;
	struct timespec dl;
	ucs_status_ptr_t sp;
	ucs_status_t st;
	socklen_t sl;
	int ret;

	if (!x || !addr || !epp)
		return -EINVAL;
	ret = xf_sockaddr(addr, port, &ss, &sl);
	if (ret)
		return ret;
	ep = xf_ep_new(x);
	if (!ep)
		return -ENOMEM;
	p.sockaddr.addr = (struct sockaddr *)&ss;
	p.sockaddr.addrlen = sl;
	p.err_handler.cb = xf_ep_err_cb;
	p.err_handler.arg = ep;
	dl = xf_deadline(timeout_ns);
	xf_lock(x);
	st = xf_u.ucp_ep_create(x->worker, &p, &ep->ep);
	if (st != UCS_OK) {
		xf_unlock(x);
		free(ep);
		return xf_errno(st);
	}
	xf_ep_link(ep);
	sp = xf_u.ucp_am_send_nbx(ep->ep, XF_AM_HELLO, NULL, 0, &xf_hello_msg,
				  sizeof(xf_hello_msg), &rp);
	if (UCS_PTR_IS_ERR(sp)) {
		ret = xf_errno(UCS_PTR_STATUS(sp));
		goto fail;
	}
	if (sp)
		xf_u.ucp_request_free(sp);
	xf_wake(x);
	while (!ep->acked) {
		if (ep->err) {
			ret = ep->err;
			goto fail;
		}
		ret = xf_cond_wait(x, &dl, timeout_ns);
		if (ret)
			goto fail;
	}
	xf_unlock(x);
	*epp = ep;
	return 0;
fail:
	/* UCX's word for a refused connection. */
	if (ret == -ENOTCONN)
		ret = -ECONNREFUSED;
	accel_log(ACCEL_LOG_INFO, "xfer: connecting to %s:%u failed: %d", addr, port, ret);
	xf_ep_release(ep, true);
	xf_unlock(x);
	return ret;
}

ACCEL_EXPORT int accel_xfer_accept(struct accel_xfer *x, struct accel_xfer_ep **epp,
				   int64_t timeout_ns)
{
	struct accel_xfer_ep *ep;
	struct timespec dl;
	int ret = 0;

	if (!x || !epp)
		return -EINVAL;
	dl = xf_deadline(timeout_ns);
	xf_lock(x);
	while (!x->accept_head) {
		ret = xf_cond_wait(x, &dl, timeout_ns);
		if (ret) {
			ret = timeout_ns ? ret : -EAGAIN;
			goto out;
		}
	}
	ep = x->accept_head;
	x->accept_head = ep->anext;
	if (!x->accept_head)
		x->accept_tail = &x->accept_head;
	ep->anext = NULL;
	ep->queued = false;
	*epp = ep;
	if (!x->accept_head && !x->msg_head)
		xf_user_clear(x);
out:
	xf_unlock(x);
	return ret;
}

ACCEL_EXPORT int accel_xfer_ep_status(const struct accel_xfer_ep *ep)
{
	int ret;

	if (!ep)
		return -EINVAL;
	xf_lock(ep->x);
	ret = ep->err;
	xf_unlock(ep->x);
	return ret;
}

ACCEL_EXPORT void accel_xfer_ep_close(struct accel_xfer_ep *ep)
{
	struct accel_xfer *x;
	struct accel_xfer_ep **pp;

	if (!ep)
		return;
	x = ep->x;
	xf_lock(x);
	if (ep->queued) {
		for (pp = &x->accept_head; *pp; pp = &(*pp)->anext)
			if (*pp == ep) {
				*pp = ep->anext;
				break;
			}
		x->accept_tail = &x->accept_head;
		while (*x->accept_tail)
			x->accept_tail = &(*x->accept_tail)->anext;
		ep->queued = false;
	}
	xf_msgs_drop(x, ep);
	xf_ep_release(ep, false);
	xf_unlock(x);
}
