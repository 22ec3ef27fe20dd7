// SPDX-License-Identifier: GPL-2.0-only
/*
 * The engine socket's message checks (libaccel/ctl/kvdmsg.c), natively
 * with cmocka, ASan and UBSan: every well-formed message passes; each kind
 * of malformation is refused with its errno; send and receive over a
 * socketpair with fds, an oversized message and too many fds refused with
 * the fds closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "kvdmsg.h"

static union kvdmsg_buf buf;

static size_t reg(const char *name, uint32_t prio)
{
	struct kvd_register *m = (void *)&buf;

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&m->hdr, KVD_MSG_REGISTER, sizeof(*m), 7);
	memcpy(m->name, name, strlen(name));
	m->priority = prio;
	return sizeof(*m);
}

static size_t handoff(uint32_t count)
{
	struct kvd_handoff *m = (void *)&buf;
	size_t size = sizeof(*m) + count * sizeof(struct kvd_obj);
	uint32_t i;

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&m->hdr, KVD_MSG_HANDOFF, size, 1);
	memcpy(m->peer, "dec-0", 5);
	m->count = count;
	for (i = 0; i < count && i < KVD_HANDOFF_MAX_FDS; i++) {
		m->objs[i].kind = i % 2 ? KVD_OBJ_SPACE : KVD_OBJ_REGION;
		m->objs[i].size = 1 << 21;
	}
	return size;
}

static int check(size_t len, unsigned int nfds)
{
	const char *why = NULL;
	int ret = kvdmsg_check(&buf, len, nfds, &why);

	if (ret)
		assert_non_null(why);
	return ret;
}

static void valid_messages(void **state)
{
	struct kvd_hdr *h = &buf.hdr;

	(void)state;
	assert_int_equal(0, check(reg("prefill-0", 7), 0));
	assert_int_equal(0, check(reg("a.b_c-D9", 0), 0));
	assert_int_equal(0, check(handoff(1), 1));
	assert_int_equal(0, check(handoff(KVD_HANDOFF_MAX_FDS), KVD_HANDOFF_MAX_FDS));
	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(h, KVD_MSG_LIST_ENGINES, sizeof(*h), 1);
	assert_int_equal(0, check(sizeof(*h), 0));
	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(h, KVD_MSG_HANDOFF_ACK, sizeof(struct kvd_handoff_ack), 0);
	((struct kvd_handoff_ack *)(void *)&buf)->status = -ENOMEM;
	assert_int_equal(0, check(sizeof(struct kvd_handoff_ack), 0));
}

static void bad_headers(void **state)
{
	size_t len;

	(void)state;
	len = reg("x", 0);
	assert_int_equal(-EBADMSG, check(3, 0));
	buf.hdr.version = 2;
	assert_int_equal(-EPROTO, check(len, 0));
	len = reg("x", 0);
	buf.hdr.type = 0;
	assert_int_equal(-EPROTO, check(len, 0));
	buf.hdr.type = KVD_MSG_TYPE_MAX + 1;
	assert_int_equal(-EPROTO, check(len, 0));
	len = reg("x", 0);
	buf.hdr.size = (uint32_t)len + 8;
	assert_int_equal(-EBADMSG, check(len, 0));
	buf.hdr.size = 40;
	assert_int_equal(-EBADMSG, check(40, 0));		/* truncated */
	len = reg("x", 0);
	buf.hdr.size = (uint32_t)len + 8;
	buf.bytes[len + 3] = 1;
	assert_int_equal(-EPROTO, check(len + 8, 0));		/* too long, unknown bytes */
	len = reg("x", 0);
	assert_int_equal(-EBADMSG, check(len, 1));		/* fds */
}

/*
 * Issue 13: messages grow at their end. Revision 0's shorter REGISTER and
 * REGISTERED are taken (what they lack reads as 0); a longer message is
 * taken when its extra bytes are zero and refused with -EPROTO otherwise.
 */
static void messages_grow_at_their_end(void **state)
{
	struct kvd_register *r = (void *)&buf;
	struct kvd_handoff *m = (void *)&buf;
	size_t len, v0 = offsetof(struct kvd_register, revision);

	(void)state;
	assert_int_equal(56, v0);
	len = reg("x", 0);
	r->revision = KVD_PROTO_REVISION;
	r->features = KVD_FEATURES | (1ull << 40);	/* unknown features are ignored */
	r->incarnation = 0x1234;
	assert_int_equal(0, check(len, 0));
	buf.hdr.size = (uint32_t)v0;
	assert_int_equal(0, check(v0, 0));			/* revision 0 */
	buf.hdr.size = 48;
	assert_int_equal(-EBADMSG, check(48, 0));		/* shorter than revision 0 */
	buf.hdr.size = (uint32_t)v0 + 4;
	assert_int_equal(-EBADMSG, check(v0 + 4, 0));		/* not a multiple of 8 */
	len = reg("x", 0);
	buf.hdr.size = (uint32_t)len + 64;
	assert_int_equal(0, check(len + 64, 0));		/* a newer peer's, zeros */
	buf.bytes[len + 63] = 7;
	assert_int_equal(-EPROTO, check(len + 64, 0));
	len = reg("x", 0);
	r->pad = 1;
	assert_int_equal(-EBADMSG, check(len, 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&buf.hdr, KVD_MSG_REGISTERED, 32, 2);
	assert_int_equal(0, check(32, 0));
	buf.hdr.size = sizeof(struct kvd_registered);
	assert_int_equal(0, check(sizeof(struct kvd_registered), 0));
	buf.hdr.size = 24;
	assert_int_equal(-EBADMSG, check(24, 0));
	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&buf.hdr, KVD_MSG_QUOTA, sizeof(struct kvd_quota) + 8, 2);
	assert_int_equal(0, check(sizeof(struct kvd_quota) + 8, 0));
	buf.bytes[sizeof(struct kvd_quota)] = 1;
	assert_int_equal(-EPROTO, check(sizeof(struct kvd_quota) + 8, 0));

	/* Hand-offs: the objects, the extension (incarnation), zeros. */
	len = handoff(2);
	assert_int_equal(0, kvdmsg_incarnation(m, len));
	((struct kvd_handoff_ext *)(void *)(buf.bytes + len))->incarnation = 0xabcdef;
	buf.hdr.size = (uint32_t)(len + KVD_HANDOFF_EXT_V1_SIZE);
	assert_int_equal(0, check(len + KVD_HANDOFF_EXT_V1_SIZE, 2));
	assert_int_equal(0xabcdef, kvdmsg_incarnation(m, len + KVD_HANDOFF_EXT_V1_SIZE));
	assert_int_equal(0, kvdmsg_incarnation(m, len));
	buf.hdr.size = (uint32_t)(len + sizeof(struct kvd_handoff_ext) + 16);
	assert_int_equal(0, check(len + sizeof(struct kvd_handoff_ext) + 16, 2));
	buf.bytes[len + sizeof(struct kvd_handoff_ext) + 9] = 1;
	assert_int_equal(-EPROTO, check(len + sizeof(struct kvd_handoff_ext) + 16, 2));
}

/* KVD_FEAT_SENDER: an offer's extension says who sent it; a HANDOFF's may not. */
static void handoff_sender_ext(void **state)
{
	struct kvd_handoff *m = (void *)&buf;
	struct kvd_handoff_ext *x, got;
	size_t len;

	(void)state;
	len = handoff(1);
	x = (void *)(buf.bytes + len);
	x->incarnation = 7;
	x->uid = 1234;
	x->pid = 99;
	x->flags = KVD_SENDER_KNOWN;
	buf.hdr.size = (uint32_t)(len + sizeof(*x));
	/* In an offer: taken. */
	buf.hdr.type = KVD_MSG_HANDOFF_OFFER;
	m->id = 5;
	assert_int_equal(0, check(len + sizeof(*x), 1));
	kvdmsg_handoff_ext(m, len + sizeof(*x), &got);
	assert_int_equal(7, got.incarnation);
	assert_int_equal(1234, got.uid);
	assert_int_equal(99, got.pid);
	assert_int_equal(KVD_SENDER_KNOWN, got.flags);
	/* Revision 1's 8 bytes: the rest reads as unknown. */
	buf.hdr.size = (uint32_t)(len + KVD_HANDOFF_EXT_V1_SIZE);
	kvdmsg_handoff_ext(m, len + KVD_HANDOFF_EXT_V1_SIZE, &got);
	assert_int_equal(7, got.incarnation);
	assert_int_equal(0, got.uid);
	assert_int_equal(0, got.flags);
	buf.hdr.size = (uint32_t)(len + sizeof(*x));
	x->flags = 2;
	assert_int_equal(-EBADMSG, check(len + sizeof(*x), 1));
	x->flags = KVD_SENDER_KNOWN;
	x->pad = 1;
	assert_int_equal(-EBADMSG, check(len + sizeof(*x), 1));
	x->pad = 0;
	/* In a HANDOFF: the sender may not name itself. */
	buf.hdr.type = KVD_MSG_HANDOFF;
	m->id = 0;
	assert_int_equal(-EBADMSG, check(len + sizeof(*x), 1));
	x->uid = 0;
	x->pid = 0;
	x->flags = 0;
	assert_int_equal(0, check(len + sizeof(*x), 1));
}

static void bad_register(void **state)
{
	size_t len;

	(void)state;
	assert_int_equal(-EBADMSG, check(reg("", 0), 0));
	assert_int_equal(-EBADMSG, check(reg("a b", 0), 0));
	assert_int_equal(-EBADMSG, check(reg("a/b", 0), 0));
	assert_int_equal(-EBADMSG, check(reg("x", KVD_PRIORITY_MAX + 1), 0));
	len = reg("x", 0);
	memset(((struct kvd_register *)(void *)&buf)->name, 'n', KVD_NAME_MAX);
	assert_int_equal(-EBADMSG, check(len, 0));		/* unterminated */
	len = reg("x", 0);
	((struct kvd_register *)(void *)&buf)->name[5] = 'h';	/* bytes after the NUL */
	assert_int_equal(-EBADMSG, check(len, 0));
	len = reg("x", 0);
	((struct kvd_register *)(void *)&buf)->flags = 1;
	assert_int_equal(-EBADMSG, check(len, 0));
}

static void bad_handoffs(void **state)
{
	struct kvd_handoff *m = (void *)&buf;
	size_t len;

	(void)state;
	assert_int_equal(-EBADMSG, check(handoff(0), 0));
	assert_int_equal(-EBADMSG, check(handoff(KVD_HANDOFF_MAX_FDS + 1), KVD_HANDOFF_MAX_FDS));
	assert_int_equal(-EBADMSG, check(handoff(2), 1));
	len = handoff(2);
	assert_int_equal(-EBADMSG, check(len - 1, 2));
	len = handoff(1);
	m->objs[0].kind = KVD_OBJ_MEMFD + 1;
	assert_int_equal(-EBADMSG, check(len, 1));
	len = handoff(1);
	m->objs[0].pad = 1;
	assert_int_equal(-EBADMSG, check(len, 1));
	len = handoff(1);
	m->pad = 1;
	assert_int_equal(-EBADMSG, check(len, 1));
	len = handoff(1);
	m->id = 4;
	assert_int_equal(-EBADMSG, check(len, 1));		/* only the daemon sets it */
	len = handoff(1);
	m->hdr.type = KVD_MSG_HANDOFF_OFFER;
	m->id = 4;
	assert_int_equal(0, check(len, 1));
}

static void bad_acks(void **state)
{
	struct kvd_handoff_ack *m = (void *)&buf;

	(void)state;
	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&m->hdr, KVD_MSG_HANDOFF_ACK, sizeof(*m), 0);
	m->status = 1;
	assert_int_equal(-EBADMSG, check(sizeof(*m), 0));
	m->status = -5000;
	assert_int_equal(-EBADMSG, check(sizeof(*m), 0));
	m->status = 0;
	m->pad = 9;
	assert_int_equal(-EBADMSG, check(sizeof(*m), 0));
}

static int nr_open_fds(void)
{
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static void send_recv_with_fds(void **state)
{
	int sv[2], fds[KVD_HANDOFF_MAX_FDS], got[KVD_HANDOFF_MAX_FDS], many[KVD_HANDOFF_MAX_FDS + 4];
	union kvdmsg_buf in;
	unsigned int nfds, i;
	int before;
	long n;

	(void)state;
	assert_int_equal(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	for (i = 0; i < 2; i++)
		fds[i] = sv[0];
	handoff(2);
	assert_int_equal(0, kvdmsg_send(sv[0], &buf, fds, 2));
	n = kvdmsg_recv(sv[1], &in, got, &nfds, 0);
	assert_int_equal((long)buf.hdr.size, n);
	assert_int_equal(2, nfds);
	assert_int_equal(0, kvdmsg_check(&in, (size_t)n, nfds, &(const char *){ NULL }));
	assert_true(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	kvdmsg_close_fds(got, nfds);
	assert_int_equal(-EINVAL, kvdmsg_send(sv[0], &buf, fds, KVD_HANDOFF_MAX_FDS + 1));

	/* Oversized: refused, nothing leaks. */
	before = nr_open_fds();
	memset(&buf, 0, sizeof(buf));
	assert_int_equal((ssize_t)sizeof(buf.bytes), send(sv[0], buf.bytes, sizeof(buf.bytes), 0));
	assert_int_equal(-EMSGSIZE, kvdmsg_recv(sv[1], &in, got, &nfds, 0));
	assert_int_equal(0, nfds);

	/* Too many fds: all closed. */
	for (i = 0; i < KVD_HANDOFF_MAX_FDS + 4; i++)
		many[i] = sv[0];
	{
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(many))];
		} cbuf;
		struct iovec iov = { .iov_base = buf.bytes, .iov_len = 16 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
				      .msg_controllen = sizeof(cbuf.buf) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(many));
		memcpy(CMSG_DATA(c), many, sizeof(many));
		assert_int_equal(16, sendmsg(sv[0], &msg, 0));
	}
	assert_int_equal(-EMSGSIZE, kvdmsg_recv(sv[1], &in, got, &nfds, 0));
	assert_int_equal(before, nr_open_fds());
	close(sv[1]);
	reg("x", 0);
	assert_int_equal(-EPIPE, kvdmsg_send(sv[0], &buf, NULL, 0));
	close(sv[0]);
}

/* Send @len bytes with @n copies of @fd as SCM_RIGHTS, bypassing kvdmsg_send(). */
static void send_raw(int sock, const void *data, size_t len, int fd, unsigned int n)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 128)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
			      .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	unsigned int i;

	assert_true(n >= 1 && n <= 128);
	memset(&cbuf, 0, sizeof(cbuf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	for (i = 0; i < n; i++)
		memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	assert_int_equal((ssize_t)len, sendmsg(sock, &msg, 0));
}

/*
 * Issue 13: a packet of 0 bytes with fds is not the end of the stream but a
 * protocol error, and its fds are closed; so are those of a packet whose
 * control data (more fds than a receive takes) or payload was truncated.
 */
static void recv_closes_fds_on_every_error(void **state)
{
	static char big[KVD_MSG_MAX + 64];
	int sv[2], got[KVD_HANDOFF_MAX_FDS], before, i;
	union kvdmsg_buf in;
	unsigned int nfds;

	(void)state;
	assert_int_equal(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	before = nr_open_fds();
	for (i = 0; i < 1000; i++) {
		send_raw(sv[0], NULL, 0, sv[0], 3);
		nfds = 99;
		assert_int_equal(-EPROTO, kvdmsg_recv(sv[1], &in, got, &nfds, 0));
		assert_int_equal(0, nfds);
	}
	assert_int_equal(before, nr_open_fds());
	/* More fds than the control buffer holds: MSG_CTRUNC. */
	send_raw(sv[0], big, 16, sv[0], KVDMSG_RECV_FDS + 20);
	assert_int_equal(-EMSGSIZE, kvdmsg_recv(sv[1], &in, got, &nfds, 0));
	assert_int_equal(0, nfds);
	assert_int_equal(before, nr_open_fds());
	/* A payload larger than the buffer: MSG_TRUNC. */
	send_raw(sv[0], big, sizeof(big), sv[0], 2);
	assert_int_equal(-EMSGSIZE, kvdmsg_recv(sv[1], &in, got, &nfds, 0));
	assert_int_equal(before, nr_open_fds());
	/* A plain 0-byte packet is still the end of the stream. */
	assert_int_equal(0, send(sv[0], big, 0, 0));
	assert_int_equal(0, kvdmsg_recv(sv[1], &in, got, &nfds, 0));
	assert_int_equal(0, nfds);
	/* What a message lacks reads as zero (an older peer's shorter message). */
	memset(&in, 0xff, sizeof(in));
	memset(big, 0, 16);
	kvdmsg_hdr((struct kvd_hdr *)(void *)big, KVD_MSG_END, 16, 1);
	assert_int_equal(16, send(sv[0], big, 16, 0));
	assert_int_equal(16, kvdmsg_recv(sv[1], &in, got, &nfds, 0));
	for (i = 16; i < (int)sizeof(in.bytes); i++)
		assert_int_equal(0, in.bytes[i]);
	close(sv[0]);
	close(sv[1]);
}

static size_t load(uint32_t count)
{
	struct kvd_load *m = (void *)&buf;
	size_t size = sizeof(*m) + count * sizeof(struct kvd_load_req);
	uint32_t i;

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&m->hdr, KVD_MSG_LOAD, size, 0);
	m->block_bytes = 1 << 21;
	m->blocks_total = 100;
	m->blocks_free = 40;
	m->running = count;
	m->count = count;
	for (i = 0; i < count && i < KVD_LOAD_REQS_MAX; i++) {
		m->reqs[i].req = 100 + i;
		m->reqs[i].tokens = 10 * i;
		m->reqs[i].blocks = 1;
		m->reqs[i].priority = -1;
	}
	return size;
}

/* LOAD and the migration messages: every field checked. */
static void migration_messages(void **state)
{
	struct kvd_load *l = (void *)&buf;
	struct kvd_migrate *mg = (void *)&buf;
	struct kvd_migrate_started *st = (void *)&buf;
	struct kvd_migrated *md = (void *)&buf;
	struct kvd_migrate_abort *ab = (void *)&buf;
	struct kvd_migrate_req *rq = (void *)&buf;
	struct kvd_drain *dr = (void *)&buf;
	size_t len;

	(void)state;
	assert_int_equal(0, check(load(0), 0));
	assert_int_equal(0, check(load(KVD_LOAD_REQS_MAX), 0));
	assert_int_equal(0, check(load(3), 0));
	assert_int_equal(-EBADMSG, check(load(3), 1));			/* fds */
	len = load(3);
	l->pad = 1;
	assert_int_equal(-EBADMSG, check(len, 0));
	len = load(3);
	l->flags = 2;
	assert_int_equal(-EBADMSG, check(len, 0));
	len = load(3);
	l->blocks_free = 101;
	assert_int_equal(-EBADMSG, check(len, 0));
	len = load(3);
	l->hol_blocks = 4;						/* nothing waits */
	assert_int_equal(-EBADMSG, check(len, 0));
	l->waiting = 1;
	assert_int_equal(0, check(len, 0));
	len = load(3);
	l->reqs[1].flags = 1;
	assert_int_equal(-EBADMSG, check(len, 0));
	len = load(3);
	l->reqs[2].req = l->reqs[0].req;
	assert_int_equal(-EBADMSG, check(len, 0));
	len = load(3);
	l->reqs[2].blocks = 101;
	assert_int_equal(-EBADMSG, check(len, 0));
	len = load(3);
	l->count = 2;							/* size does not match */
	assert_int_equal(-EBADMSG, check(len, 0));
	/* One more than the most. */
	len = load(KVD_LOAD_REQS_MAX);
	l->count = KVD_LOAD_REQS_MAX + 1;
	len += sizeof(struct kvd_load_req);
	l->hdr.size = (uint32_t)len;
	assert_int_equal(-EBADMSG, check(len, 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&mg->hdr, KVD_MSG_MIGRATE, sizeof(*mg), 0);
	mg->id = 1;
	mg->req = 7;
	memcpy(mg->to, "dec-1", 5);
	mg->reason = KVD_MIGRATE_BALANCE;
	assert_int_equal(0, check(sizeof(*mg), 0));
	mg->reason = 9;
	assert_int_equal(-EBADMSG, check(sizeof(*mg), 0));
	mg->reason = KVD_MIGRATE_DRAIN;
	mg->pad = 1;
	assert_int_equal(-EBADMSG, check(sizeof(*mg), 0));
	mg->pad = 0;
	mg->id = 0;
	assert_int_equal(-EBADMSG, check(sizeof(*mg), 0));
	mg->id = 1;
	mg->to[0] = '/';
	assert_int_equal(-EBADMSG, check(sizeof(*mg), 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&st->hdr, KVD_MSG_MIGRATE_STARTED, sizeof(*st), 0);
	st->id = 1;
	assert_int_equal(0, check(sizeof(*st), 0));
	st->status = -ENOENT;
	assert_int_equal(0, check(sizeof(*st), 0));
	st->status = 1;
	assert_int_equal(-EBADMSG, check(sizeof(*st), 0));
	st->status = 0;
	st->pad = 1;
	assert_int_equal(-EBADMSG, check(sizeof(*st), 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&md->hdr, KVD_MSG_MIGRATED, sizeof(*md), 0);
	md->id = 3;
	md->downtime_us = 1500;
	assert_int_equal(0, check(sizeof(*md), 0));
	md->status = -5000;
	assert_int_equal(-EBADMSG, check(sizeof(*md), 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&ab->hdr, KVD_MSG_MIGRATE_ABORT, sizeof(*ab), 0);
	ab->id = 3;
	ab->error = -ETIMEDOUT;
	assert_int_equal(0, check(sizeof(*ab), 0));
	ab->error = 0;
	assert_int_equal(-EBADMSG, check(sizeof(*ab), 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&rq->hdr, KVD_MSG_MIGRATE_REQ, sizeof(*rq), 1);
	memcpy(rq->engine, "a", 1);
	memcpy(rq->to, "b", 1);
	assert_int_equal(0, check(sizeof(*rq), 0));
	rq->to[0] = 0;
	assert_int_equal(-EBADMSG, check(sizeof(*rq), 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&dr->hdr, KVD_MSG_DRAIN, sizeof(*dr), 1);
	memcpy(dr->engine, "a", 1);
	assert_int_equal(0, check(sizeof(*dr), 0));
	dr->flags = KVD_DRAIN_CANCEL;
	assert_int_equal(0, check(sizeof(*dr), 0));
	dr->flags = 2;
	assert_int_equal(-EBADMSG, check(sizeof(*dr), 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&buf.hdr, KVD_MSG_EXIT, sizeof(buf.hdr), 0);
	assert_int_equal(0, check(sizeof(buf.hdr), 0));
	kvdmsg_hdr(&buf.hdr, KVD_MSG_LIST_MIGRATIONS, sizeof(buf.hdr), 1);
	assert_int_equal(0, check(sizeof(buf.hdr), 0));

	/* The cluster view: the request is a header; each INFO checked. */
	kvdmsg_hdr(&buf.hdr, KVD_MSG_LIST_CLUSTER, sizeof(buf.hdr), 1);
	assert_int_equal(0, check(sizeof(buf.hdr), 0));
	assert_int_equal(-EBADMSG, check(sizeof(buf.hdr) + 8, 0));
	{
		struct kvd_cluster_info *ci = (void *)&buf;

		memset(&buf, 0, sizeof(buf));
		kvdmsg_hdr(&ci->hdr, KVD_MSG_CLUSTER_INFO, sizeof(*ci), 1);
		ci->kind = KVD_CLUSTER_NODE;
		ci->flags = KVD_CLUSTER_SELF | KVD_CLUSTER_PRESSURE;
		memcpy(ci->node, "n1", 2);
		memcpy(ci->ucx_address, "10.0.0.1:13337", 14);
		assert_int_equal(0, check(sizeof(*ci), 0));
		assert_int_equal(-EBADMSG, check(sizeof(*ci) - 8, 0));
		ci->kind = 0;
		assert_int_equal(-EBADMSG, check(sizeof(*ci), 0));
		ci->kind = KVD_CLUSTER_ENGINE + 1;
		assert_int_equal(-EBADMSG, check(sizeof(*ci), 0));
		ci->kind = KVD_CLUSTER_ENGINE;
		ci->load_ppm = 1000000;
		assert_int_equal(0, check(sizeof(*ci), 0));
		ci->load_ppm = 1000001;
		assert_int_equal(-EBADMSG, check(sizeof(*ci), 0));
		ci->load_ppm = 0;
		ci->flags = KVD_CLUSTER_FLAGS + 1;
		assert_int_equal(-EBADMSG, check(sizeof(*ci), 0));
		ci->flags = 0;
		ci->pad = 1;
		assert_int_equal(-EBADMSG, check(sizeof(*ci), 0));
		ci->pad = 0;
		memset(ci->node, 'a', sizeof(ci->node));
		assert_int_equal(-EBADMSG, check(sizeof(*ci), 0));
		memset(ci->node, 0, sizeof(ci->node));
		memset(ci->error, 'e', sizeof(ci->error));
		assert_int_equal(-EBADMSG, check(sizeof(*ci), 0));
		memset(ci->error, 0, sizeof(ci->error));
		memset(ci->models, 'm', sizeof(ci->models));
		assert_int_equal(-EBADMSG, check(sizeof(*ci), 0));
		memset(ci->models, 0, sizeof(ci->models));
		ci->kind = KVD_CLUSTER_STATUS;
		ci->flags = KVD_CLUSTER_STALE | KVD_CLUSTER_PUBLISHED;
		ci->age_ms = -1;
		assert_int_equal(0, check(sizeof(*ci), 0));
	}

	/* A sealed-memfd object: its size bounded. */
	len = handoff(1);
	((struct kvd_handoff *)(void *)&buf)->objs[0].kind = KVD_OBJ_MEMFD;
	assert_int_equal(0, check(len, 1));
	((struct kvd_handoff *)(void *)&buf)->objs[0].size = KVD_MEMFD_MAX + 1;
	assert_int_equal(-EBADMSG, check(len, 1));
	((struct kvd_handoff *)(void *)&buf)->objs[0].kind = 4;
	((struct kvd_handoff *)(void *)&buf)->objs[0].size = 4096;
	assert_int_equal(-EBADMSG, check(len, 1));
}

/* Migrations to other nodes: transfer addresses, node names, MIGRATE_REMOTE. */
static void xmigration_messages(void **state)
{
	static const char *const good[] = { "10.0.0.1:7701", "node-a.example:1", "[::1]:65535",
					     "h:65535" };
	static const char *const badaddr[] = { "10.0.0.1", ":7701", "h:", "h:0", "h:65536",
						"h:123456", "h:7x", "h p:1", "h;:1", "h/x:1" };
	struct kvd_xfer_addr *xa = (void *)&buf;
	struct kvd_migrate_remote *mr = (void *)&buf;
	struct kvd_migrate_req *rq = (void *)&buf;
	char node[KVD_NODE_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&buf, 0, sizeof(buf));
		kvdmsg_hdr(&xa->hdr, KVD_MSG_XFER_ADDR, sizeof(*xa), 0);
		strcpy(xa->addr, good[i]);
		assert_int_equal(0, check(sizeof(*xa), 0));
	}
	for (i = 0; i < sizeof(badaddr) / sizeof(badaddr[0]); i++) {
		memset(&buf, 0, sizeof(buf));
		kvdmsg_hdr(&xa->hdr, KVD_MSG_XFER_ADDR, sizeof(*xa), 0);
		strcpy(xa->addr, badaddr[i]);
		assert_int_equal(-EBADMSG, check(sizeof(*xa), 0));
	}
	/* "" withdraws the address; nothing may follow it. */
	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&xa->hdr, KVD_MSG_XFER_ADDR, sizeof(*xa), 0);
	assert_int_equal(0, check(sizeof(*xa), 0));
	xa->addr[5] = 'x';
	assert_int_equal(-EBADMSG, check(sizeof(*xa), 0));
	memset(xa->addr, 'a', sizeof(xa->addr));	/* no NUL */
	assert_int_equal(-EBADMSG, check(sizeof(*xa), 0));

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&mr->hdr, KVD_MSG_MIGRATE_REMOTE, sizeof(*mr), 0);
	mr->id = 3;
	mr->req = 9;
	strcpy(mr->node, "n2");
	strcpy(mr->to, "b");
	strcpy(mr->addr, "10.78.2.2:7701");
	mr->reason = KVD_MIGRATE_DRAIN;
	assert_int_equal(0, check(sizeof(*mr), 0));
	mr->reason = KVD_MIGRATE_BALANCE + 1;
	assert_int_equal(-EBADMSG, check(sizeof(*mr), 0));
	mr->reason = KVD_MIGRATE_DRAIN;
	mr->pad = 1;
	assert_int_equal(-EBADMSG, check(sizeof(*mr), 0));
	mr->pad = 0;
	mr->id = 0;
	assert_int_equal(-EBADMSG, check(sizeof(*mr), 0));
	mr->id = 3;
	strcpy(mr->node, "..");
	assert_int_equal(-EBADMSG, check(sizeof(*mr), 0));
	strcpy(mr->node, "n/2");
	assert_int_equal(-EBADMSG, check(sizeof(*mr), 0));
	mr->node[0] = 0;
	assert_int_equal(-EBADMSG, check(sizeof(*mr), 0));
	strcpy(mr->node, "n2");
	strcpy(mr->addr, "10.78.2.2");
	assert_int_equal(-EBADMSG, check(sizeof(*mr), 0));
	strcpy(mr->addr, "10.78.2.2:7701");
	mr->to[0] = 0;
	assert_int_equal(-EBADMSG, check(sizeof(*mr), 0));

	/* A manual migration to another node's engine. */
	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&rq->hdr, KVD_MSG_MIGRATE_REQ, sizeof(*rq), 1);
	memcpy(rq->engine, "a", 1);
	memcpy(rq->to, "b", 1);
	strcpy(rq->to_node, "n2");
	assert_int_equal(0, check(sizeof(*rq), 0));
	strcpy(rq->to_node, "bad node");
	assert_int_equal(-EBADMSG, check(sizeof(*rq), 0));
	memset(node, 'n', sizeof(node) - 1);
	node[sizeof(node) - 1] = 0;
	memcpy(rq->to_node, node, sizeof(node));	/* 63 characters: the longest */
	assert_int_equal(0, check(sizeof(*rq), 0));
	memset(rq->to_node, 0, sizeof(rq->to_node));
	rq->to_node[1] = 'x';				/* bytes after "" */
	assert_int_equal(-EBADMSG, check(sizeof(*rq), 0));
	/* A shorter MIGRATE_REQ (before to_node) reads as one to this node. */
	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&rq->hdr, KVD_MSG_MIGRATE_REQ, offsetof(struct kvd_migrate_req, to_node), 1);
	memcpy(rq->engine, "a", 1);
	memcpy(rq->to, "b", 1);
	assert_int_equal(0, check(offsetof(struct kvd_migrate_req, to_node), 0));
	kvdmsg_hdr(&rq->hdr, KVD_MSG_MIGRATE_REQ, offsetof(struct kvd_migrate_req, to_node) - 8, 1);
	assert_int_equal(-EBADMSG, check(offsetof(struct kvd_migrate_req, to_node) - 8, 0));
}

/* The control buffers are aligned for struct cmsghdr. */
static void cmsg_buffer_aligned(void **state)
{
	union kvdmsg_cmsg c;

	(void)state;
	assert_true(_Alignof(union kvdmsg_cmsg) >= _Alignof(struct cmsghdr));
	assert_int_equal(0, (uintptr_t)c.buf % _Alignof(struct cmsghdr));
	assert_true(sizeof(c.buf) >= CMSG_SPACE(sizeof(int) * KVD_HANDOFF_MAX_FDS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_messages),
		cmocka_unit_test(bad_headers),
		cmocka_unit_test(messages_grow_at_their_end),
		cmocka_unit_test(handoff_sender_ext),
		cmocka_unit_test(bad_register),
		cmocka_unit_test(bad_handoffs),
		cmocka_unit_test(bad_acks),
		cmocka_unit_test(migration_messages),
		cmocka_unit_test(xmigration_messages),
		cmocka_unit_test(send_recv_with_fds),
		cmocka_unit_test(recv_closes_fds_on_every_error),
		cmocka_unit_test(cmsg_buffer_aligned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
