// SPDX-License-Identifier: MIT
/*
 * kvdmsg - the engine socket's messages on the wire (kvdmsg.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvdmsg.h"

void kvdmsg_hdr(struct kvd_hdr *hdr, unsigned int type, size_t size, uint64_t seq)
{
	hdr->version = KVD_PROTO_VERSION;
	hdr->type = (uint16_t)type;
	hdr->size = (uint32_t)size;
	hdr->seq = seq;
}

bool kvdmsg_name_ok(const char name[KVD_NAME_MAX])
{
	size_t i;

	for (i = 0; i < KVD_NAME_MAX && name[i]; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return false;
	}
	if (!i || i == KVD_NAME_MAX)
		return false;
	/* Everything after the NUL is zero too: no hidden bytes. */
	for (; i < KVD_NAME_MAX; i++)
		if (name[i])
			return false;
	return true;
}

/* The size of each type as this side knows it; 0: unknown. */
static size_t kvdmsg_size(unsigned int type)
{
	switch (type) {
	case KVD_MSG_REGISTER: return sizeof(struct kvd_register);
	case KVD_MSG_REGISTERED: return sizeof(struct kvd_registered);
	case KVD_MSG_QUOTA:
	case KVD_MSG_QUOTA_GRANTED: return sizeof(struct kvd_quota);
	case KVD_MSG_RELEASE: return sizeof(struct kvd_release);
	case KVD_MSG_RELEASED: return sizeof(struct kvd_released);
	case KVD_MSG_HANDOFF:
	case KVD_MSG_HANDOFF_OFFER: return sizeof(struct kvd_handoff);
	case KVD_MSG_HANDOFF_QUEUED: return sizeof(struct kvd_handoff_id);
	case KVD_MSG_HANDOFF_ACK:
	case KVD_MSG_HANDOFF_DONE: return sizeof(struct kvd_handoff_ack);
	case KVD_MSG_LIST_ENGINES:
	case KVD_MSG_LIST_HANDOFFS:
	case KVD_MSG_END: return sizeof(struct kvd_hdr);
	case KVD_MSG_ENGINE_INFO: return sizeof(struct kvd_engine_info);
	case KVD_MSG_HANDOFF_INFO: return sizeof(struct kvd_handoff_info);
	case KVD_MSG_ERROR: return sizeof(struct kvd_error);
	case KVD_MSG_LOAD: return sizeof(struct kvd_load);
	case KVD_MSG_MIGRATE: return sizeof(struct kvd_migrate);
	case KVD_MSG_MIGRATE_STARTED: return sizeof(struct kvd_migrate_started);
	case KVD_MSG_MIGRATED: return sizeof(struct kvd_migrated);
	case KVD_MSG_MIGRATE_ABORT: return sizeof(struct kvd_migrate_abort);
	case KVD_MSG_EXIT:
	case KVD_MSG_LIST_MIGRATIONS: return sizeof(struct kvd_hdr);
	case KVD_MSG_MIGRATE_REQ: return sizeof(struct kvd_migrate_req);
	case KVD_MSG_DRAIN: return sizeof(struct kvd_drain);
	case KVD_MSG_MIGRATION_INFO: return sizeof(struct kvd_migration_info);
	case KVD_MSG_LIST_CLUSTER: return sizeof(struct kvd_hdr);
	case KVD_MSG_CLUSTER_INFO: return sizeof(struct kvd_cluster_info);
	case KVD_MSG_XFER_ADDR: return sizeof(struct kvd_xfer_addr);
	case KVD_MSG_MIGRATE_REMOTE: return sizeof(struct kvd_migrate_remote);
	}
	return 0;
}

/* The size of each type in protocol revision 0: the shortest accepted. */
static size_t kvdmsg_min_size(unsigned int type)
{
	switch (type) {
	case KVD_MSG_REGISTER: return offsetof(struct kvd_register, revision);
	case KVD_MSG_REGISTERED: return offsetof(struct kvd_registered, revision);
	/* Before migrations to other nodes: to this node's engines only. */
	case KVD_MSG_MIGRATE_REQ: return offsetof(struct kvd_migrate_req, to_node);
	case KVD_MSG_MIGRATION_INFO: return offsetof(struct kvd_migration_info, to_node);
	}
	return kvdmsg_size(type);
}

bool kvdmsg_node_ok(const char *name)
{
	size_t i;

	for (i = 0; i < KVD_NODE_MAX && name[i]; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return i && i < KVD_NODE_MAX && strcmp(name, ".") && strcmp(name, "..");
}

bool kvdmsg_addr_ok(const char *addr)
{
	const char *colon;
	unsigned long port = 0;
	size_t i, n = strnlen(addr, KVD_XFER_ADDR_MAX);

	if (!n || n == KVD_XFER_ADDR_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = addr[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':' ||
		      c == '[' || c == ']'))
			return false;
	}
	colon = strrchr(addr, ':');
	if (!colon || colon == addr || !colon[1] || strlen(colon + 1) > 5)
		return false;
	for (i = 1; colon[i]; i++) {
		if (colon[i] < '0' || colon[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(colon[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

static int bad(const char **why, const char *what, int err)
{
	*why = what;
	return err;
}

static bool str_ok(const char *s, size_t n)
{
	return memchr(s, 0, n) != NULL;
}

/* Are bytes @from to @len of @msg zero (fields of a newer revision left unused)? */
static bool zero_from(const void *msg, size_t from, size_t len)
{
	const unsigned char *p = msg;

	for (; from < len; from++)
		if (p[from])
			return false;
	return true;
}

void kvdmsg_handoff_ext(const struct kvd_handoff *m, size_t len, struct kvd_handoff_ext *ext)
{
	size_t at = sizeof(*m) + m->count * sizeof(struct kvd_obj);

	memset(ext, 0, sizeof(*ext));
	if (len <= at)
		return;
	len -= at;
	memcpy(ext, (const char *)m + at, len < sizeof(*ext) ? len : sizeof(*ext));
}

uint64_t kvdmsg_incarnation(const struct kvd_handoff *m, size_t len)
{
	struct kvd_handoff_ext ext;

	kvdmsg_handoff_ext(m, len, &ext);
	return ext.incarnation;
}

static int check_handoff(const struct kvd_handoff *m, size_t len, unsigned int nfds,
			 const char **why)
{
	size_t base;
	uint32_t i;

	if (len < sizeof(*m))
		return bad(why, "truncated message", -EBADMSG);
	if (!m->count || m->count > KVD_HANDOFF_MAX_FDS)
		return bad(why, "hand-off object count out of range", -EBADMSG);
	/*
	 * The objects, then (from revision 1) the extension: its incarnation at
	 * least, the sender's credentials with KVD_FEAT_SENDER; then zeros.
	 */
	base = sizeof(*m) + m->count * sizeof(struct kvd_obj);
	if (len < base || (len > base && len < base + KVD_HANDOFF_EXT_V1_SIZE))
		return bad(why, "hand-off size does not match its count", -EBADMSG);
	if (!zero_from(m, base + sizeof(struct kvd_handoff_ext), len))
		return bad(why, "hand-off longer than this side knows, with non-zero bytes",
			   -EPROTO);
	if (nfds != m->count)
		return bad(why, "hand-off fds do not match its count", -EBADMSG);
	if (m->pad)
		return bad(why, "non-zero pad", -EBADMSG);
	if (!kvdmsg_name_ok(m->peer))
		return bad(why, "bad engine name", -EBADMSG);
	if (m->hdr.type == KVD_MSG_HANDOFF && m->id)
		return bad(why, "hand-off id set by the sender", -EBADMSG);
	{
		struct kvd_handoff_ext ext;

		kvdmsg_handoff_ext(m, len, &ext);
		if (ext.pad || (ext.flags & ~KVD_SENDER_FLAGS))
			return bad(why, "bad hand-off extension", -EBADMSG);
		/* The daemon says who sent an offer; a sender does not say it itself. */
		if (m->hdr.type == KVD_MSG_HANDOFF && (ext.uid || ext.pid || ext.flags))
			return bad(why, "sender credentials in a hand-off", -EBADMSG);
	}
	for (i = 0; i < m->count; i++) {
		if (m->objs[i].kind != KVD_OBJ_REGION && m->objs[i].kind != KVD_OBJ_SPACE &&
		    m->objs[i].kind != KVD_OBJ_MEMFD)
			return bad(why, "unknown object kind", -EBADMSG);
		if (m->objs[i].kind == KVD_OBJ_MEMFD &&
		    (!m->objs[i].size || m->objs[i].size > KVD_MEMFD_MAX))
			return bad(why, "memfd object size out of range", -EBADMSG);
		if (m->objs[i].pad)
			return bad(why, "non-zero pad", -EBADMSG);
	}
	return 0;
}

static bool status_ok(int32_t status)
{
	return status <= 0 && status >= -4095;
}

/* LOAD: exactly @count candidates after the fixed part; counts and pads checked. */
static int check_load(const struct kvd_load *m, size_t len, unsigned int nfds, const char **why)
{
	uint32_t i;

	if (len < sizeof(*m))
		return bad(why, "truncated message", -EBADMSG);
	if (m->count > KVD_LOAD_REQS_MAX)
		return bad(why, "load: more candidates than KVD_LOAD_REQS_MAX", -EBADMSG);
	if (len != sizeof(*m) + m->count * sizeof(struct kvd_load_req))
		return bad(why, "load size does not match its count", -EBADMSG);
	if (nfds)
		return bad(why, "fds with a message that carries none", -EBADMSG);
	if (m->pad)
		return bad(why, "non-zero pad", -EBADMSG);
	if (m->flags & ~KVD_LOAD_FLAGS)
		return bad(why, "unknown flags", -EBADMSG);
	if (m->blocks_free > m->blocks_total)
		return bad(why, "load: more blocks free than total", -EBADMSG);
	if (!m->waiting && m->hol_blocks)
		return bad(why, "load: head-of-line demand with nothing waiting", -EBADMSG);
	for (i = 0; i < m->count; i++) {
		const struct kvd_load_req *r = &m->reqs[i];
		uint32_t k;

		if (r->flags & ~KVD_LOAD_REQ_FLAGS)
			return bad(why, "load: unknown candidate flags", -EBADMSG);
		if (r->blocks > m->blocks_total)
			return bad(why, "load: a candidate holds more blocks than the total",
				   -EBADMSG);
		for (k = 0; k < i; k++)
			if (m->reqs[k].req == r->req)
				return bad(why, "load: a candidate listed twice", -EBADMSG);
	}
	return 0;
}

int kvdmsg_check(const void *msg, size_t len, unsigned int nfds, const char **why)
{
	const struct kvd_hdr *h = msg;
	size_t want;

	if (len < sizeof(*h))
		return bad(why, "truncated header", -EBADMSG);
	if (h->version != KVD_PROTO_VERSION)
		return bad(why, "unsupported protocol version", -EPROTO);
	want = kvdmsg_size(h->type);
	if (!want)
		return bad(why, "unknown message type", -EPROTO);
	if (h->size != len)
		return bad(why, "size field does not match the message", -EBADMSG);
	if (len % 8)
		return bad(why, "size is not a multiple of 8 bytes", -EBADMSG);
	if (h->type == KVD_MSG_HANDOFF || h->type == KVD_MSG_HANDOFF_OFFER)
		return check_handoff(msg, len, nfds, why);
	if (h->type == KVD_MSG_LOAD)
		return check_load(msg, len, nfds, why);
	if (len < kvdmsg_min_size(h->type))
		return bad(why, "truncated message", -EBADMSG);
	if (!zero_from(msg, want, len))
		return bad(why, "message longer than its type, with non-zero bytes this side "
			   "does not know", -EPROTO);
	if (nfds)
		return bad(why, "fds with a message that carries none", -EBADMSG);
	switch (h->type) {
	case KVD_MSG_REGISTER: {
		const struct kvd_register *m = msg;

		if (!kvdmsg_name_ok(m->name))
			return bad(why, "bad engine name", -EBADMSG);
		if (m->priority > KVD_PRIORITY_MAX)
			return bad(why, "priority out of range", -EBADMSG);
		if (m->flags & ~KVD_REGISTER_FLAGS)
			return bad(why, "unknown flags", -EBADMSG);
		if (m->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		break;
	}
	case KVD_MSG_REGISTERED:
		if (((const struct kvd_registered *)msg)->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		break;
	case KVD_MSG_RELEASE:
		if (((const struct kvd_release *)msg)->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		break;
	case KVD_MSG_HANDOFF_ACK:
	case KVD_MSG_HANDOFF_DONE: {
		const struct kvd_handoff_ack *m = msg;

		if (m->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		if (m->status > 0 || m->status < -4095)
			return bad(why, "status is not 0 or -errno", -EBADMSG);
		break;
	}
	case KVD_MSG_ENGINE_INFO: {
		const struct kvd_engine_info *m = msg;

		if (m->pad || !str_ok(m->name, sizeof(m->name)))
			return bad(why, "bad engine info", -EBADMSG);
		break;
	}
	case KVD_MSG_HANDOFF_INFO: {
		const struct kvd_handoff_info *m = msg;

		if (!str_ok(m->from, sizeof(m->from)) || !str_ok(m->to, sizeof(m->to)))
			return bad(why, "bad hand-off info", -EBADMSG);
		break;
	}
	case KVD_MSG_ERROR: {
		const struct kvd_error *m = msg;

		if (m->pad || !str_ok(m->message, sizeof(m->message)))
			return bad(why, "bad error message", -EBADMSG);
		break;
	}
	case KVD_MSG_MIGRATE: {
		const struct kvd_migrate *m = msg;

		if (m->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		if (!m->id)
			return bad(why, "migration id 0", -EBADMSG);
		if (!kvdmsg_name_ok(m->to))
			return bad(why, "bad engine name", -EBADMSG);
		if (m->reason < KVD_MIGRATE_MANUAL || m->reason > KVD_MIGRATE_BALANCE)
			return bad(why, "unknown migration reason", -EBADMSG);
		break;
	}
	case KVD_MSG_MIGRATE_STARTED: {
		const struct kvd_migrate_started *m = msg;

		if (m->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		if (!m->id)
			return bad(why, "migration id 0", -EBADMSG);
		if (!status_ok(m->status))
			return bad(why, "status is not 0 or -errno", -EBADMSG);
		break;
	}
	case KVD_MSG_MIGRATED: {
		const struct kvd_migrated *m = msg;

		if (!m->id)
			return bad(why, "migration id 0", -EBADMSG);
		if (!status_ok(m->status))
			return bad(why, "status is not 0 or -errno", -EBADMSG);
		break;
	}
	case KVD_MSG_MIGRATE_ABORT: {
		const struct kvd_migrate_abort *m = msg;

		if (m->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		if (!m->id)
			return bad(why, "migration id 0", -EBADMSG);
		if (!status_ok(m->error) || !m->error)
			return bad(why, "abort error is not -errno", -EBADMSG);
		break;
	}
	case KVD_MSG_MIGRATE_REQ: {
		const struct kvd_migrate_req *m = msg;

		if (!kvdmsg_name_ok(m->engine) || !kvdmsg_name_ok(m->to))
			return bad(why, "bad engine name", -EBADMSG);
		if (m->to_node[0] && !kvdmsg_node_ok(m->to_node))
			return bad(why, "bad node name", -EBADMSG);
		if (!m->to_node[0] && !zero_from(m->to_node, 0, sizeof(m->to_node)))
			return bad(why, "bytes after an empty node name", -EBADMSG);
		break;
	}
	case KVD_MSG_DRAIN: {
		const struct kvd_drain *m = msg;

		if (m->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		if (m->flags & ~KVD_DRAIN_FLAGS)
			return bad(why, "unknown flags", -EBADMSG);
		if (!kvdmsg_name_ok(m->engine))
			return bad(why, "bad engine name", -EBADMSG);
		break;
	}
	case KVD_MSG_MIGRATION_INFO: {
		const struct kvd_migration_info *m = msg;

		if (!str_ok(m->from, sizeof(m->from)) || !str_ok(m->to, sizeof(m->to)) ||
		    !str_ok(m->to_node, sizeof(m->to_node)) || !status_ok(m->status))
			return bad(why, "bad migration info", -EBADMSG);
		break;
	}
	case KVD_MSG_CLUSTER_INFO: {
		const struct kvd_cluster_info *m = msg;

		if (m->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		if (m->kind < KVD_CLUSTER_STATUS || m->kind > KVD_CLUSTER_ENGINE)
			return bad(why, "unknown cluster info kind", -EBADMSG);
		if (m->flags & ~KVD_CLUSTER_FLAGS)
			return bad(why, "unknown flags", -EBADMSG);
		if (!str_ok(m->node, sizeof(m->node)) || !str_ok(m->name, sizeof(m->name)) ||
		    !str_ok(m->cluster, sizeof(m->cluster)) ||
		    !str_ok(m->ucx_address, sizeof(m->ucx_address)) ||
		    !str_ok(m->models, sizeof(m->models)) || !str_ok(m->error, sizeof(m->error)))
			return bad(why, "unterminated string in cluster info", -EBADMSG);
		if (m->load_ppm > 1000000)
			return bad(why, "load over 1", -EBADMSG);
		break;
	}
	case KVD_MSG_XFER_ADDR: {
		const struct kvd_xfer_addr *m = msg;

		if (m->addr[0] && !kvdmsg_addr_ok(m->addr))
			return bad(why, "bad transfer address (HOST:PORT)", -EBADMSG);
		if (!m->addr[0] && !zero_from(m->addr, 0, sizeof(m->addr)))
			return bad(why, "bytes after an empty address", -EBADMSG);
		break;
	}
	case KVD_MSG_MIGRATE_REMOTE: {
		const struct kvd_migrate_remote *m = msg;

		if (m->pad)
			return bad(why, "non-zero pad", -EBADMSG);
		if (!m->id)
			return bad(why, "migration id 0", -EBADMSG);
		if (!kvdmsg_node_ok(m->node))
			return bad(why, "bad node name", -EBADMSG);
		if (!kvdmsg_name_ok(m->to))
			return bad(why, "bad engine name", -EBADMSG);
		if (!kvdmsg_addr_ok(m->addr))
			return bad(why, "bad transfer address (HOST:PORT)", -EBADMSG);
		if (m->reason < KVD_MIGRATE_MANUAL || m->reason > KVD_MIGRATE_BALANCE)
			return bad(why, "unknown migration reason", -EBADMSG);
		break;
	}
	}
	return 0;
}

int kvdmsg_send(int sock, const void *data, const int *fds, unsigned int nfds)
{
	union kvdmsg_cmsg cbuf;
	const struct kvd_hdr *h = data;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = h->size };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > KVD_HANDOFF_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == h->size ? 0 : -EMSGSIZE;
}

void kvdmsg_close_fds(int *fds, unsigned int n)
{
	while (n)
		close(fds[--n]);
}

long kvdmsg_recv(int sock, union kvdmsg_buf *buf, int *fds, unsigned int *nfds, int flags)
{
	union kvdmsg_cmsg cbuf;
	struct iovec iov = { .iov_base = buf->bytes, .iov_len = sizeof(buf->bytes) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
	unsigned int got = 0;
	struct cmsghdr *c;
	bool over = false;
	ssize_t n;

	*nfds = 0;
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* Every fd that came is ours now: kept in @fds or closed, never left open. */
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t i, k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (got < KVD_HANDOFF_MAX_FDS) {
				fds[got++] = fd;
			} else {
				close(fd);
				over = true;
			}
		}
	}
	if (over || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || n > KVD_MSG_MAX) {
		kvdmsg_close_fds(fds, got);
		return -EMSGSIZE;
	}
	/* SOCK_SEQPACKET: 0 bytes is the end of the stream, unless fds came (a bad packet). */
	if (!n && got) {
		kvdmsg_close_fds(fds, got);
		return -EPROTO;
	}
	memset(buf->bytes + n, 0, sizeof(buf->bytes) - (size_t)n);
	*nfds = got;
	return n;
}
