// SPDX-License-Identifier: MIT
/*
 * kvnl - client of the "kvaccel" generic netlink family (kvnl.h).
 */
#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/socket.h>

#include "kvnl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct kvnl {
	struct nl_sock *sk;
	int family;
	/* State of the request in progress. */
	int error;
	bool done;
	kvnl_cb cb;
	void *arg;
	int cb_ret;
	char errmsg[256];
};

/* libnl's NLE_* codes, for the few calls that return them, as errnos. */
static int kvnl_errno(int nle)
{
	switch (-nle) {
	case NLE_NOMEM: return -ENOMEM;
	case NLE_PERM: return -EPERM;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_INVAL: return -EINVAL;
	case NLE_AGAIN: return -EAGAIN;
	case NLE_INTR: return -EINTR;
	case NLE_NOACCESS: return -EACCES;
	case NLE_BUSY: return -EBUSY;
	case NLE_EXIST: return -EEXIST;
	case NLE_RANGE: return -ERANGE;
	case NLE_MSGSIZE: return -EMSGSIZE;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
	case NLE_NODEV: return -ENODEV;
	default: return -EIO;
	}
}

int kvnl_open(struct kvnl **out)
{
	struct kvnl *nl;
	int one = 1, ret;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		free(nl);
		return -ENOMEM;
	}
	ret = genl_connect(nl->sk);
	if (ret < 0) {
		ret = kvnl_errno(ret);
		goto err;
	}
	/* Best effort: older kernels simply send no extended ack. */
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	nl->family = genl_ctrl_resolve(nl->sk, KVACCEL_GENL_NAME);
	if (nl->family < 0) {
		ret = kvnl_errno(nl->family);
		goto err;
	}
	*out = nl;
	return 0;

err:
	nl_socket_free(nl->sk);
	free(nl);
	return ret;
}

void kvnl_close(struct kvnl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk);
	free(nl);
}

const char *kvnl_errmsg(const struct kvnl *nl)
{
	return nl->errmsg;
}

struct nl_msg *kvnl_request(struct kvnl *nl, int cmd, bool dump)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 dump ? NLM_F_DUMP : 0, cmd, KVACCEL_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int kvnl_valid(struct nl_msg *m, void *arg)
{
	struct kvnl *nl = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(m);
	struct kvnl_msg msg;

	if (nl->cb_ret < 0 || !nl->cb)
		return NL_SKIP;
	memset(&msg, 0, sizeof(msg));
	msg.cmd = ((struct genlmsghdr *)nlmsg_data(nlh))->cmd;
	if (genlmsg_parse(nlh, 0, msg.tb, KVACCEL_A_MAX, NULL) < 0)
		return NL_SKIP;
	nl->cb_ret = nl->cb(&msg, nl->arg);
	return NL_OK;
}

static int kvnl_finish(struct nl_msg *m, void *arg)
{
	struct kvnl *nl = arg;

	(void)m;
	nl->done = true;
	return NL_STOP;
}

/* Keep the error and, if the kernel sent one, its extended-ack message. */
static int kvnl_err(struct sockaddr_nl *who, struct nlmsgerr *err, void *arg)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)err - NLMSG_HDRLEN);
	struct kvnl *nl = arg;
	struct nlattr *tlv;
	int len, rem;

	(void)who;
	nl->error = err->error;
	nl->done = true;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NL_STOP;
	/* The TLVs follow the error and, unless capped, the request. */
	len = sizeof(*err);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		len += err->msg.nlmsg_len - NLMSG_HDRLEN;
	tlv = (struct nlattr *)((char *)err + NLMSG_ALIGN(len));
	rem = (int)nlh->nlmsg_len - NLMSG_HDRLEN - NLMSG_ALIGN(len);
	for (; rem >= (int)sizeof(*tlv) && tlv->nla_len >= sizeof(*tlv) &&
	       tlv->nla_len <= rem;
	     rem -= NLA_ALIGN(tlv->nla_len),
	     tlv = (struct nlattr *)((char *)tlv + NLA_ALIGN(tlv->nla_len))) {
		if ((tlv->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
			snprintf(nl->errmsg, sizeof(nl->errmsg), "%.*s",
				 (int)(tlv->nla_len - sizeof(*tlv)),
				 (char *)tlv + sizeof(*tlv));
	}
	return NL_STOP;
}

static struct nl_cb *kvnl_callbacks(struct kvnl *nl)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);

	if (!cb)
		return NULL;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, kvnl_valid, nl);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, kvnl_finish, nl);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, kvnl_finish, nl);
	nl_cb_err(cb, NL_CB_CUSTOM, kvnl_err, nl);
	return cb;
}

int kvnl_exec(struct kvnl *nl, struct nl_msg *msg, kvnl_cb fn, void *arg)
{
	struct nl_cb *cb;
	int ret;

	if (!msg)
		return -ENOMEM;
	nl->error = 0;
	nl->done = false;
	nl->cb = fn;
	nl->arg = arg;
	nl->cb_ret = 0;
	nl->errmsg[0] = '\0';

	cb = kvnl_callbacks(nl);
	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	ret = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	while (ret >= 0 && !nl->done) {
		ret = nl_recvmsgs(nl->sk, cb);
		if (ret < 0 && nl->done)
			ret = 0;	/* the error callback stopped it */
	}
	nl_cb_put(cb);
	if (ret < 0)
		return kvnl_errno(ret);
	if (nl->error)
		return nl->error;
	return nl->cb_ret < 0 ? nl->cb_ret : 0;
}

int kvnl_subscribe(struct kvnl *nl)
{
	int grp, ret;

	grp = genl_ctrl_resolve_grp(nl->sk, KVACCEL_GENL_NAME, KVACCEL_GENL_MCGRP_EVENTS);
	if (grp < 0)
		return kvnl_errno(grp);
	ret = nl_socket_add_membership(nl->sk, grp);
	if (ret < 0)
		return kvnl_errno(ret);
	/* Room for bursts (hundreds of engines starting); admins may force it. */
	{
		int size = 4 << 20, fd = nl_socket_get_fd(nl->sk);

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	return 0;
}

/* Events carry no sequence numbers of ours. */
static int kvnl_no_seq_check(struct nl_msg *m, void *arg)
{
	(void)m;
	(void)arg;
	return NL_OK;
}

int kvnl_wait_events(struct kvnl *nl, int timeout_ms, kvnl_cb fn, void *arg)
{
	struct pollfd pfd = { .fd = nl_socket_get_fd(nl->sk), .events = POLLIN };
	struct nl_cb *cb;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (!ret)
		return 0;

	nl->cb = fn;
	nl->arg = arg;
	nl->cb_ret = 0;
	cb = kvnl_callbacks(nl);
	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, kvnl_no_seq_check, NULL);
	ret = nl_recvmsgs(nl->sk, cb);
	nl_cb_put(cb);
	if (ret < 0)
		return kvnl_errno(ret);
	return nl->cb_ret < 0 ? nl->cb_ret : 1;
}

int kvnl_fd(const struct kvnl *nl)
{
	return nl_socket_get_fd(nl->sk);
}

const char *kvnl_event_name(int cmd)
{
	switch (cmd) {
	case KVACCEL_CMD_CLIENT_OPEN_NTF: return "client-open";
	case KVACCEL_CMD_CLIENT_CLOSE_NTF: return "client-close";
	case KVACCEL_CMD_REGION_CREATE_NTF: return "region-create";
	case KVACCEL_CMD_REGION_DESTROY_NTF: return "region-destroy";
	case KVACCEL_CMD_PRESSURE_NTF: return "pressure";
	case KVACCEL_CMD_COPY_ERROR_NTF: return "copy-error";
	default: return NULL;
	}
}

static const struct nlattr *kvnl_attr(const struct kvnl_msg *m, int attr, int len)
{
	const struct nlattr *a;

	if (attr < 0 || attr > KVACCEL_A_MAX)
		return NULL;
	a = m->tb[attr];
	return a && nla_len(a) == len ? a : NULL;
}

bool kvnl_u64(const struct kvnl_msg *m, int attr, uint64_t *v)
{
	const struct nlattr *a = kvnl_attr(m, attr, 8);

	if (a)
		memcpy(v, nla_data(a), 8);
	return a;
}

bool kvnl_u32(const struct kvnl_msg *m, int attr, uint32_t *v)
{
	const struct nlattr *a = kvnl_attr(m, attr, 4);

	if (a)
		memcpy(v, nla_data(a), 4);
	return a;
}

bool kvnl_s32(const struct kvnl_msg *m, int attr, int32_t *v)
{
	const struct nlattr *a = kvnl_attr(m, attr, 4);

	if (a)
		memcpy(v, nla_data(a), 4);
	return a;
}

bool kvnl_u8(const struct kvnl_msg *m, int attr, uint8_t *v)
{
	const struct nlattr *a = kvnl_attr(m, attr, 1);

	if (a)
		memcpy(v, nla_data(a), 1);
	return a;
}

const char *kvnl_str(const struct kvnl_msg *m, int attr)
{
	const struct nlattr *a;

	if (attr < 0 || attr > KVACCEL_A_MAX || !m->tb[attr])
		return NULL;
	a = m->tb[attr];
	if (nla_len(a) < 1 || ((const char *)nla_data(a))[nla_len(a) - 1])
		return NULL;
	return nla_data(a);
}
