// SPDX-License-Identifier: MIT
/*
 * libaccel - the engine side of kvacceld's socket (uapi/kvacceld.h):
 * registering, quota, release requests, two-phase hand-offs.
 *
 * Requests wait for their reply (matched by seq) and handle whatever the
 * daemon starts meanwhile (release requests, offers, hand-offs done), so
 * two engines handing each other objects from one thread each do not wait
 * on each other. The callbacks may make requests of their own (nested in
 * the one waiting): every request waiting is on a stack of waiters, and a
 * reply is kept for the waiter whose seq it carries, whichever request
 * happens to read it.
 *
 * Hand-offs not yet done are kept (with duplicates of their
 * fds) and sent again by accel_engine_reconnect(); offers taken are
 * remembered by (sender, incarnation, tag) so a resend is acknowledged, not
 * taken twice, while a restarted sender (a new incarnation) may use its
 * tags again. The incarnation is a random id chosen once per engine object
 * (kept across reconnects).
 *
 * Live migrations: with migration ops set (accel_engine_set_migration_ops())
 * the engine announces KVD_FEAT_MIGRATION, reports its load (at most every
 * LOAD_INTERVAL_MS; a report in between is kept and sent later) and gets
 * MIGRATE (answered MIGRATE_STARTED with the callback's status),
 * MIGRATE_ABORT and EXIT. With a migrate_remote callback too it announces
 * KVD_FEAT_XMIGRATION, gets MIGRATE_REMOTE (answered the same way) and
 * sends its transfer address (accel_engine_set_xfer_addr()) again after
 * each registration.
 */
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kvdmsg.h"

/* How long a request waits for its reply. */
#define REPLY_TIMEOUT_MS	10000
/* Offers remembered, and finished hand-offs kept for accel_engine_handoff_wait(). */
#define SEEN_MAX		256
#define FINISHED_MAX		64
/* Load reports at most this often, unless forced. */
#define LOAD_INTERVAL_MS	50

/* A LOAD message with room for every candidate. */
union load_msg {
	struct kvd_load m;
	char bytes[sizeof(struct kvd_load) + KVD_LOAD_REQS_MAX * sizeof(struct kvd_load_req)];
};

struct pending {
	uint64_t tag;
	uint64_t id;			/* the daemon's, from QUEUED (0: not yet) */
	char to[KVD_NAME_MAX];
	unsigned int count;
	int fds[KVD_HANDOFF_MAX_FDS];
	struct kvd_obj objs[KVD_HANDOFF_MAX_FDS];
};

/* A request waiting for its reply (on the stack of its call). */
struct waiter {
	struct waiter *next;
	uint64_t seq;
	union kvdmsg_buf *reply;
	bool done;
};

struct accel_engine {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char name[KVD_NAME_MAX];
	unsigned int priority;
	struct accel_engine_ops ops;
	void *arg;
	uint64_t seq, id, quota;
	/* The daemon's KVD_PROTO_REVISION and the features both sides use (its REGISTERED). */
	uint32_t revision;
	uint64_t features;
	/* This engine object's random id, in REGISTER and every HANDOFF. */
	uint64_t incarnation;
	/* Requests waiting, innermost first; callbacks running (nesting depth). */
	struct waiter *waiters;
	unsigned int in_callback;
	struct pending *pend;
	unsigned int npend, maxpend;
	/* Offers taken, by (sender, its incarnation, tag); incarnation 0: an old sender. */
	struct { char from[KVD_NAME_MAX]; uint64_t incarnation, tag; } seen[SEEN_MAX];
	unsigned int nseen, seen_next;
	struct { uint64_t tag; int status; } finished[FINISHED_MAX];
	unsigned int nfinished, finished_next;
	/* Live migration: the ops (set: KVD_FEAT_MIGRATION announced), the loads sent and kept. */
	bool mig_set;
	struct accel_engine_migration_ops mig;
	void *mig_arg;
	union load_msg load_sent, load_next;	/* hdr.size 0: none */
	int64_t load_sent_ms;
	/* Where it takes other nodes' migrations in ("": nowhere), sent after each REGISTERED. */
	char xfer_addr[KVD_XFER_ADDR_MAX];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void copy_name(char dst[KVD_NAME_MAX], const char *src)
{
	size_t n = strnlen(src, KVD_NAME_MAX - 1);

	memset(dst, 0, KVD_NAME_MAX);
	memcpy(dst, src, n);
}

static bool seen(const struct accel_engine *e, const char *from, uint64_t incarnation,
		 uint64_t tag)
{
	unsigned int i;

	for (i = 0; i < e->nseen; i++)
		if (e->seen[i].tag == tag && e->seen[i].incarnation == incarnation &&
		    !strcmp(e->seen[i].from, from))
			return true;
	return false;
}

static void remember(struct accel_engine *e, const char *from, uint64_t incarnation,
		     uint64_t tag)
{
	copy_name(e->seen[e->seen_next].from, from);
	e->seen[e->seen_next].incarnation = incarnation;
	e->seen[e->seen_next].tag = tag;
	e->seen_next = (e->seen_next + 1) % SEEN_MAX;
	if (e->nseen < SEEN_MAX)
		e->nseen++;
}

static int send_msg(struct accel_engine *e, void *msg, size_t size, unsigned int type,
		    uint64_t seq, const int *fds, unsigned int nfds)
{
	int ret;

	if (e->fd < 0)
		return -ECONNRESET;
	kvdmsg_hdr(msg, type, size, seq);
	ret = kvdmsg_send(e->fd, msg, fds, nfds);
	return ret == -EPIPE ? -ECONNRESET : ret;
}

/*
 * The hand-off a receive callback gets, with what accel_handoff_sender()
 * reads: the caller sees only @h (struct accel_handoff is 0.1's, unchanged).
 */
#define OFFER_MAGIC	0x6b76646f66666572ull	/* "kvdoffer" */
struct offer {
	struct accel_handoff h;
	uint64_t magic;
	struct kvd_handoff_ext ext;
};

ACCEL_EXPORT int accel_handoff_sender(const struct accel_handoff *h,
				      struct accel_handoff_sender *sender)
{
	const struct offer *o;
	int ret;

	if (!h || !sender)
		return -EINVAL;
	ret = accel_opts_valid(sender, sizeof(*sender));
	if (ret)
		return ret;
	o = (const struct offer *)(const void *)((const char *)h - offsetof(struct offer, h));
	if (o->magic != OFFER_MAGIC)
		return -EINVAL;
	ACCEL_OPTS_SET(sender, incarnation, o->ext.incarnation);
	ACCEL_OPTS_SET(sender, uid, o->ext.flags & KVD_SENDER_KNOWN ? o->ext.uid : 0);
	ACCEL_OPTS_SET(sender, pid, o->ext.flags & KVD_SENDER_KNOWN ? o->ext.pid : 0);
	return o->ext.flags & KVD_SENDER_KNOWN ? 0 : -ENODATA;
}

static void on_offer(struct accel_engine *e, const struct kvd_handoff *m, size_t len, int *fds)
{
	struct kvd_handoff_ack ack = { 0 };
	enum accel_handoff_kind kinds[KVD_HANDOFF_MAX_FDS];
	uint64_t sizes[KVD_HANDOFF_MAX_FDS];
	struct offer o = { .magic = OFFER_MAGIC };
	struct accel_handoff *h = &o.h;
	uint64_t incarnation;
	unsigned int i;
	int status;

	kvdmsg_handoff_ext(m, len, &o.ext);
	incarnation = o.ext.incarnation;
	if (seen(e, m->peer, incarnation, m->tag)) {
		/* Taken before (a resend after the daemon restarted). */
		kvdmsg_close_fds(fds, m->count);
		status = 0;
	} else if (!e->ops.receive) {
		kvdmsg_close_fds(fds, m->count);
		status = -EOPNOTSUPP;
	} else {
		for (i = 0; i < m->count; i++) {
			kinds[i] = (enum accel_handoff_kind)m->objs[i].kind;
			sizes[i] = m->objs[i].size;
		}
		h->from = m->peer;
		h->tag = m->tag;
		h->count = m->count;
		h->fds = fds;
		h->kinds = kinds;
		h->sizes = sizes;
		e->in_callback++;
		status = e->ops.receive(e->arg, h);
		e->in_callback--;
		o.magic = 0;
		if (status > 0 || status < -4095)
			status = -EINVAL;
		if (status)
			kvdmsg_close_fds(fds, m->count);
		else
			remember(e, m->peer, incarnation, m->tag);
	}
	ack.id = m->id;
	ack.status = status;
	send_msg(e, &ack, sizeof(ack), KVD_MSG_HANDOFF_ACK, 0, NULL, 0);
}

static void on_done(struct accel_engine *e, const struct kvd_handoff_ack *m)
{
	unsigned int i;

	for (i = 0; i < e->npend; i++) {
		/* The id tells this hand-off from an earlier one under the same tag. */
		if (e->pend[i].tag != m->tag || (e->pend[i].id && m->id && e->pend[i].id != m->id))
			continue;
		kvdmsg_close_fds(e->pend[i].fds, e->pend[i].count);
		e->pend[i] = e->pend[--e->npend];
		e->finished[e->finished_next].tag = m->tag;
		e->finished[e->finished_next].status = m->status;
		e->finished_next = (e->finished_next + 1) % FINISHED_MAX;
		if (e->nfinished < FINISHED_MAX)
			e->nfinished++;
		if (e->ops.handoff_done) {
			e->in_callback++;
			e->ops.handoff_done(e->arg, m->tag, m->status);
			e->in_callback--;
		}
		return;
	}
	/* Not ours any more (finished before a reconnect): nothing to do. */
}

static void on_release(struct accel_engine *e, const struct kvd_release *m)
{
	struct kvd_released r = { 0 };
	uint64_t released = 0;

	if (e->ops.release) {
		e->in_callback++;
		e->ops.release(e->arg, m->bytes, &released);
		e->in_callback--;
	}
	r.round = m->round;
	r.bytes = released;
	send_msg(e, &r, sizeof(r), KVD_MSG_RELEASED, 0, NULL, 0);
}

/* Answer MIGRATE or MIGRATE_REMOTE @id with the callback's @status (-EOPNOTSUPP: none). */
static void answer_started(struct accel_engine *e, uint64_t id, int status)
{
	struct kvd_migrate_started r = { 0 };

	if (status > 0 || status < -4095)
		status = -EINVAL;
	r.id = id;
	r.status = status;
	send_msg(e, &r, sizeof(r), KVD_MSG_MIGRATE_STARTED, 0, NULL, 0);
}

static void on_migrate(struct accel_engine *e, const struct kvd_migrate *m)
{
	int status = -EOPNOTSUPP;

	if (e->mig_set && e->mig.migrate) {
		e->in_callback++;
		status = e->mig.migrate(e->mig_arg, m->id, m->req, m->to);
		e->in_callback--;
	}
	answer_started(e, m->id, status);
}

static void on_migrate_remote(struct accel_engine *e, const struct kvd_migrate_remote *m)
{
	int status = -EOPNOTSUPP;

	if (e->mig_set && e->mig.migrate_remote) {
		e->in_callback++;
		status = e->mig.migrate_remote(e->mig_arg, m->id, m->req, m->node, m->to,
					       m->addr);
		e->in_callback--;
	}
	answer_started(e, m->id, status);
}

static void on_migrate_abort(struct accel_engine *e, const struct kvd_migrate_abort *m)
{
	accel_log(ACCEL_LOG_INFO, "engine %s: migration %llu (request %llu) aborted: %s",
		  e->name, (unsigned long long)m->id, (unsigned long long)m->req,
		  strerror(-m->error));
	if (e->mig_set && e->mig.migrate_abort) {
		e->in_callback++;
		e->mig.migrate_abort(e->mig_arg, m->id);
		e->in_callback--;
	}
}

static void on_exit_msg(struct accel_engine *e)
{
	accel_log(ACCEL_LOG_INFO, "engine %s: drained: kvacceld asks it to exit", e->name);
	if (e->mig_set && e->mig.exit) {
		e->in_callback++;
		e->mig.exit(e->mig_arg);
		e->in_callback--;
	}
}

static void flush_load(struct accel_engine *e, bool force);

static int send_xfer_addr(struct accel_engine *e)
{
	struct kvd_xfer_addr m = { 0 };

	memcpy(m.addr, e->xfer_addr, sizeof(m.addr));
	return send_msg(e, &m, sizeof(m), KVD_MSG_XFER_ADDR, 0, NULL, 0);
}

static void lost(struct accel_engine *e, const char *why)
{
	if (e->fd >= 0) {
		accel_log(ACCEL_LOG_WARNING, "engine %s: connection to kvacceld lost: %s",
			  e->name, why);
		close(e->fd);
	}
	e->fd = -1;
}

/* A reply: to the waiter whose request it answers (kept for it), or to nobody (too late). */
static void deliver(struct accel_engine *e, const union kvdmsg_buf *buf)
{
	struct waiter *w;

	for (w = e->waiters; w; w = w->next) {
		if (w->seq == buf->hdr.seq && !w->done) {
			*w->reply = *buf;
			w->done = true;
			return;
		}
	}
	accel_log(ACCEL_LOG_DEBUG, "engine %s: a reply (type %u, seq %llu) nobody waits for",
		  e->name, buf->hdr.type, (unsigned long long)buf->hdr.seq);
}

/*
 * Receive one message, waiting up to @timeout_ms. Daemon-started messages
 * are handled here (2); a reply goes to its waiter (1). 0: nothing came;
 * -ECONNRESET: the connection is gone.
 */
static int receive_one(struct accel_engine *e, union kvdmsg_buf *buf, int timeout_ms)
{
	struct pollfd pfd = { .fd = e->fd, .events = POLLIN };
	int fds[KVD_HANDOFF_MAX_FDS];
	unsigned int nfds;
	const char *why;
	long n;
	int ret;

	if (e->fd < 0)
		return -ECONNRESET;
	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	if (!ret)
		return 0;
	n = kvdmsg_recv(e->fd, buf, fds, &nfds, MSG_DONTWAIT);
	if (n == -EAGAIN)
		return 0;
	if (n <= 0) {
		lost(e, n ? strerror((int)-n) : "closed by the daemon");
		return -ECONNRESET;
	}
	ret = kvdmsg_check(buf, (size_t)n, nfds, &why);
	if (ret) {
		kvdmsg_close_fds(fds, nfds);
		lost(e, why);
		return -ECONNRESET;
	}
	/* Only an offer's fds are ours to keep (a HANDOFF is well formed, but not for us). */
	if (buf->hdr.type != KVD_MSG_HANDOFF_OFFER)
		kvdmsg_close_fds(fds, nfds);
	switch (buf->hdr.type) {
	case KVD_MSG_RELEASE:
		on_release(e, (const void *)buf);
		return 2;
	case KVD_MSG_HANDOFF_OFFER:
		on_offer(e, (const void *)buf, (size_t)n, fds);
		return 2;
	case KVD_MSG_HANDOFF_DONE:
		on_done(e, (const void *)buf);
		return 2;
	case KVD_MSG_MIGRATE:
		on_migrate(e, (const void *)buf);
		return 2;
	case KVD_MSG_MIGRATE_REMOTE:
		on_migrate_remote(e, (const void *)buf);
		return 2;
	case KVD_MSG_MIGRATE_ABORT:
		on_migrate_abort(e, (const void *)buf);
		return 2;
	case KVD_MSG_EXIT:
		on_exit_msg(e);
		return 2;
	case KVD_MSG_ERROR: {
		const struct kvd_error *m = (const void *)buf;

		accel_log(ACCEL_LOG_WARNING, "engine %s: kvacceld: %s (%s)", e->name,
			  m->message, strerror(-m->error));
		if (buf->hdr.seq)
			deliver(e, buf);
		if (m->closing) {
			lost(e, "the daemon closed it");
			return buf->hdr.seq ? 1 : -ECONNRESET;
		}
		return buf->hdr.seq ? 1 : 2;
	}
	default:
		deliver(e, buf);
		return 1;
	}
}

/*
 * Send a request and wait for its reply of type @want (or an error). Called
 * from a callback too: a reply read by a nested request is kept for us.
 */
static int request(struct accel_engine *e, void *msg, size_t size, unsigned int type,
		   const int *fds, unsigned int nfds, unsigned int want, union kvdmsg_buf *reply)
{
	uint64_t seq = ++e->seq;
	int64_t end = now_ms() + REPLY_TIMEOUT_MS;
	struct waiter w = { .seq = seq, .reply = reply };
	union kvdmsg_buf scratch;
	int ret;

	if (e->fd < 0)
		return -ECONNRESET;
	kvdmsg_hdr(msg, type, size, seq);
	ret = kvdmsg_send(e->fd, msg, fds, nfds);
	if (ret) {
		if (ret == -EPIPE || ret == -ECONNRESET || ret == -ENOTCONN) {
			lost(e, strerror(-ret));
			return -ECONNRESET;
		}
		return ret;
	}
	w.next = e->waiters;
	e->waiters = &w;
	for (;;) {
		int64_t left = end - now_ms();

		if (w.done)
			break;
		if (left <= 0) {
			ret = -ETIMEDOUT;
			goto out;
		}
		ret = receive_one(e, &scratch, (int)left);
		if (ret < 0 && !w.done)
			goto out;
	}
	if (reply->hdr.type == KVD_MSG_ERROR)
		ret = ((const struct kvd_error *)(const void *)reply)->error;
	else
		ret = reply->hdr.type == want ? 0 : -EPROTO;
out:
	/* Waiters leave in the order they came (nested calls return first). */
	e->waiters = w.next;
	return ret;
}

/* Connect and send REGISTER of @size bytes (the current one, or revision 0's). */
static int register_as(struct accel_engine *e, size_t size, union kvdmsg_buf *reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct kvd_register m = { 0 };
	int ret;

	e->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (e->fd < 0)
		return -errno;
	memcpy(sa.sun_path, e->path, sizeof(sa.sun_path));
	if (connect(e->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		close(e->fd);
		e->fd = -1;
		return ret;
	}
	copy_name(m.name, e->name);
	m.priority = e->priority;
	m.revision = KVD_PROTO_REVISION;
	/*
	 * Migrations only for an engine that handles them; other nodes' only
	 * with a callback. KVD_FEAT_CLUSTER is an admin client's business (the
	 * daemon's LIST_CLUSTER): an engine has no use for it.
	 */
	m.features = KVD_FEATURES & ~KVD_FEAT_CLUSTER;
	if (!e->mig_set)
		m.features &= ~(KVD_FEAT_MIGRATION | KVD_FEAT_XMIGRATION);
	else if (!e->mig.migrate_remote)
		m.features &= ~KVD_FEAT_XMIGRATION;
	m.incarnation = e->incarnation;
	ret = request(e, &m, size, KVD_MSG_REGISTER, NULL, 0, KVD_MSG_REGISTERED, reply);
	if (ret && e->fd >= 0) {
		close(e->fd);
		e->fd = -1;
	}
	return ret;
}

static int do_register(struct accel_engine *e)
{
	const struct kvd_registered *r;
	union kvdmsg_buf reply;
	int ret;

	ret = register_as(e, sizeof(struct kvd_register), &reply);
	if (ret == -EBADMSG) {
		/* A daemon of revision 0 takes only its own REGISTER. */
		accel_log(ACCEL_LOG_DEBUG, "engine %s: kvacceld refused REGISTER of revision %u: "
			  "registering with revision 0", e->name, KVD_PROTO_REVISION);
		ret = register_as(e, offsetof(struct kvd_register, revision), &reply);
	}
	if (ret)
		return ret;
	/* A shorter reply (revision 0) has these as 0: kvdmsg_recv() zeroes the rest. */
	r = (const void *)&reply;
	e->id = r->engine_id;
	e->quota = r->quota;
	e->revision = r->revision;
	e->features = r->features & KVD_FEATURES;
	if (e->xfer_addr[0] && (e->features & KVD_FEAT_XMIGRATION))
		send_xfer_addr(e);
	return 0;
}

/* A random non-zero id for an engine object (getrandom; a mix of clock and pid without it). */
static uint64_t new_incarnation(void)
{
	uint64_t id = 0;
	struct timespec ts;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		id = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
		     ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&ts;
		id *= 0x9e3779b97f4a7c15ull;
	}
	return id ? id : 1;
}

ACCEL_EXPORT struct accel_engine *accel_engine_connect(const char *path, const char *name,
						       unsigned int priority,
						       const struct accel_engine_ops *ops,
						       void *arg)
{
	char check[KVD_NAME_MAX];
	struct accel_engine *e;
	int ret;

	if (!path)
		path = getenv("KVACCELD_SOCKET");
	if (!path)
		path = KVD_SOCKET_PATH;
	if (!name || strlen(name) >= KVD_NAME_MAX || strlen(path) >= sizeof(e->path) ||
	    priority > KVD_PRIORITY_MAX) {
		errno = EINVAL;
		return NULL;
	}
	copy_name(check, name);
	if (!kvdmsg_name_ok(check)) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		errno = ENOMEM;
		return NULL;
	}
	snprintf(e->path, sizeof(e->path), "%s", path);
	copy_name(e->name, name);
	e->priority = priority;
	if (ops)
		e->ops = *ops;
	e->arg = arg;
	e->incarnation = new_incarnation();
	ret = do_register(e);
	if (ret) {
		accel_log(ACCEL_LOG_ERR, "engine %s: registering with kvacceld at %s: %s", name,
			  path, strerror(-ret));
		free(e);
		errno = -ret;
		return NULL;
	}
	accel_log(ACCEL_LOG_INFO, "engine %s: registered with kvacceld (id %llu, revision %u, "
		  "features 0x%llx)", name, (unsigned long long)e->id, e->revision,
		  (unsigned long long)e->features);
	return e;
}

ACCEL_EXPORT void accel_engine_close(struct accel_engine *e)
{
	unsigned int i;

	if (!e)
		return;
	if (e->fd >= 0)
		close(e->fd);
	for (i = 0; i < e->npend; i++)
		kvdmsg_close_fds(e->pend[i].fds, e->pend[i].count);
	free(e->pend);
	free(e);
}

ACCEL_EXPORT int accel_engine_fd(const struct accel_engine *e)
{
	if (!e)
		return -EINVAL;
	return e->fd >= 0 ? e->fd : -ECONNRESET;
}

static int timeout_ms(int64_t timeout_ns)
{
	if (timeout_ns < 0)
		return -1;
	if (timeout_ns > (int64_t)INT32_MAX * 1000000)
		return INT32_MAX;
	return (int)((timeout_ns + 999999) / 1000000);
}

ACCEL_EXPORT int accel_engine_dispatch(struct accel_engine *e, int64_t timeout_ns)
{
	union kvdmsg_buf buf;
	int handled = 0, ret, wait;

	if (!e)
		return -EINVAL;
	wait = timeout_ms(timeout_ns);
	/* A load report kept back by the rate limit, and when the next may go. */
	flush_load(e, false);
	if (e->load_next.m.hdr.size) {
		int64_t left = e->load_sent_ms + LOAD_INTERVAL_MS - now_ms();

		if (left < 1)
			left = 1;
		if (wait < 0 || wait > left)
			wait = (int)left;
	}
	/* Wait for the first message, then take what is there without waiting. */
	for (;;) {
		ret = receive_one(e, &buf, wait);
		if (ret < 0)
			return handled ? handled : ret;
		if (!ret)
			return handled;
		handled++;
		wait = 0;
	}
}

ACCEL_EXPORT int accel_engine_quota(struct accel_engine *e, uint64_t bytes, uint64_t *granted)
{
	struct kvd_quota m = { 0 };
	union kvdmsg_buf reply;
	int ret;

	if (!e || !bytes || bytes % (1ULL << 20))
		return -EINVAL;
	m.bytes = bytes;
	ret = request(e, &m, sizeof(m), KVD_MSG_QUOTA, NULL, 0, KVD_MSG_QUOTA_GRANTED, &reply);
	if (ret)
		return ret;
	e->quota = ((const struct kvd_quota *)(const void *)&reply)->bytes;
	if (granted)
		*granted = e->quota;
	return 0;
}

ACCEL_EXPORT uint64_t accel_engine_quota_now(const struct accel_engine *e)
{
	return e ? e->quota : 0;
}

/* Send hand-off @p (a copy: callbacks run meanwhile may move e->pend) and note its id. */
static int send_handoff(struct accel_engine *e, const struct pending *p)
{
	union {
		struct kvd_handoff m;
		char bytes[sizeof(struct kvd_handoff) +
			   KVD_HANDOFF_MAX_FDS * sizeof(struct kvd_obj) +
			   sizeof(struct kvd_handoff_ext)];
	} u;
	size_t size = sizeof(u.m) + p->count * sizeof(struct kvd_obj);
	union kvdmsg_buf reply;
	unsigned int i;
	int ret;

	memset(&u, 0, sizeof(u));
	memcpy(u.m.peer, p->to, sizeof(u.m.peer));
	u.m.tag = p->tag;
	u.m.count = p->count;
	memcpy(u.m.objs, p->objs, p->count * sizeof(struct kvd_obj));
	/* Revision 1's extension: the incarnation; who sent it is the daemon's to say. */
	if (e->features & KVD_FEAT_INCARNATION) {
		struct kvd_handoff_ext ext = { .incarnation = e->incarnation };

		memcpy(u.bytes + size, &ext, KVD_HANDOFF_EXT_V1_SIZE);
		size += KVD_HANDOFF_EXT_V1_SIZE;
	}
	ret = request(e, &u.m, size, KVD_MSG_HANDOFF, p->fds, p->count, KVD_MSG_HANDOFF_QUEUED,
		      &reply);
	if (ret)
		return ret;
	for (i = 0; i < e->npend; i++)
		if (e->pend[i].tag == p->tag)
			e->pend[i].id = ((const struct kvd_handoff_id *)(const void *)&reply)->id;
	return 0;
}

/* A new hand-off under @tag: what an earlier one under it ended with is stale now. */
static void forget_finished(struct accel_engine *e, uint64_t tag)
{
	unsigned int i;

	for (i = 0; i < e->nfinished; i++)
		if (e->finished[i].tag == tag)
			e->finished[i].status = 1;	/* no status: not found */
}

ACCEL_EXPORT int accel_engine_handoff(struct accel_engine *e, const char *to, uint64_t tag,
				      const int *fds, const enum accel_handoff_kind *kinds,
				      unsigned int count)
{
	struct pending p = { .tag = tag, .count = count };
	unsigned int i;
	int ret;

	if (!e || !to || !fds || !kinds || !count || count > KVD_HANDOFF_MAX_FDS ||
	    strlen(to) >= KVD_NAME_MAX)
		return -EINVAL;
	copy_name(p.to, to);
	if (!kvdmsg_name_ok(p.to))
		return -EINVAL;
	for (i = 0; i < e->npend; i++)
		if (e->pend[i].tag == tag)
			return -EEXIST;
	forget_finished(e, tag);
	for (i = 0; i < count; i++) {
		off_t end;

		if (kinds[i] != ACCEL_HANDOFF_REGION && kinds[i] != ACCEL_HANDOFF_SPACE &&
		    kinds[i] != ACCEL_HANDOFF_MEMFD) {
			ret = -EINVAL;
			goto err_close;
		}
		/* A dma-buf's (or memfd's) size; its offset means nothing, but put it back. */
		end = lseek(fds[i], 0, SEEK_END);
		lseek(fds[i], 0, SEEK_SET);
		if (end <= 0) {
			ret = -EBADF;
			goto err_close;
		}
		p.fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (p.fds[i] < 0) {
			ret = -errno;
			goto err_close;
		}
		p.objs[i].kind = kinds[i];
		p.objs[i].size = (uint64_t)end;
	}
	if (e->npend == e->maxpend) {
		unsigned int max = e->maxpend ? e->maxpend * 2 : 8;
		struct pending *np = realloc(e->pend, max * sizeof(*np));

		if (!np) {
			ret = -ENOMEM;
			goto err_close;
		}
		e->pend = np;
		e->maxpend = max;
	}
	e->pend[e->npend++] = p;
	ret = send_handoff(e, &p);
	if (ret && ret != -ECONNRESET && ret != -ETIMEDOUT) {
		/* Refused: not pending. */
		for (i = 0; i < e->npend; i++) {
			if (e->pend[i].tag == tag) {
				kvdmsg_close_fds(e->pend[i].fds, e->pend[i].count);
				e->pend[i] = e->pend[--e->npend];
				break;
			}
		}
	}
	return ret;

err_close:
	kvdmsg_close_fds(p.fds, i);
	return ret;
}

ACCEL_EXPORT int accel_engine_handoff_wait(struct accel_engine *e, uint64_t tag,
					   int64_t timeout_ns)
{
	int64_t end = timeout_ns < 0 ? INT64_MAX : now_ms() + timeout_ms(timeout_ns);

	if (!e)
		return -EINVAL;
	for (;;) {
		union kvdmsg_buf buf;
		unsigned int i;
		bool pending = false;
		int64_t left;
		int ret;

		/* Pending first: a finished entry under a reused tag is an earlier hand-off's. */
		for (i = 0; i < e->npend; i++)
			pending |= e->pend[i].tag == tag;
		if (!pending) {
			/* The latest finished under @tag (the ring is filled from finished_next). */
			for (i = 1; i <= e->nfinished; i++) {
				unsigned int k = (e->finished_next + FINISHED_MAX - i) % FINISHED_MAX;

				if (e->finished[k].tag == tag)
					return e->finished[k].status > 0 ? -ENOENT :
					       e->finished[k].status;
			}
			return -ENOENT;
		}
		left = end == INT64_MAX ? 1000 : end - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		ret = receive_one(e, &buf, (int)(left > 1000 ? 1000 : left));
		if (ret < 0)
			return ret;
	}
}

ACCEL_EXPORT int accel_engine_pending(const struct accel_engine *e)
{
	return e ? (int)e->npend : -EINVAL;
}

ACCEL_EXPORT int accel_engine_reconnect(struct accel_engine *e)
{
	unsigned int i, n;
	uint64_t *tags;
	int ret;

	if (!e)
		return -EINVAL;
	/* The requests waiting in the callers' frames would wait on a new connection. */
	if (e->in_callback || e->waiters)
		return -EDEADLK;
	if (e->fd >= 0) {
		close(e->fd);
		e->fd = -1;
	}
	ret = do_register(e);
	if (ret)
		return ret;
	accel_log(ACCEL_LOG_INFO, "engine %s: registered again; resending %u hand-offs",
		  e->name, e->npend);
	/* By tag, on copies: callbacks run while we wait may change e->pend. */
	n = e->npend;
	tags = malloc((n ? n : 1) * sizeof(*tags));
	if (!tags)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		tags[i] = e->pend[i].tag;
	for (i = 0; i < n; i++) {
		struct pending p;
		unsigned int k;

		for (k = 0; k < e->npend && e->pend[k].tag != tags[i]; k++)
			;
		if (k == e->npend)
			continue;	/* finished meanwhile */
		p = e->pend[k];
		ret = send_handoff(e, &p);
		if (ret == -ECONNRESET)
			break;
		if (ret) {
			/* Refused now: finished. */
			struct kvd_handoff_ack done = { .tag = p.tag, .status = ret };

			on_done(e, &done);
		}
		ret = 0;
	}
	free(tags);
	return ret;
}

/* ---- live migration ----------------------------------------------------- */

ACCEL_EXPORT int accel_engine_set_migration_ops(struct accel_engine *e,
						const struct accel_engine_migration_ops *ops,
						void *arg)
{
	bool want = ops != NULL, want_x;
	int ret, tries;

	if (!e)
		return -EINVAL;
	ret = accel_opts_valid(ops, sizeof(*ops));
	if (ret)
		return ret;
	if (e->in_callback || e->waiters)
		return -EDEADLK;
	memset(&e->mig, 0, sizeof(e->mig));
	e->mig.sz = sizeof(e->mig);
	e->mig.migrate = ACCEL_OPTS_GET(ops, migrate, NULL);
	e->mig.migrate_abort = ACCEL_OPTS_GET(ops, migrate_abort, NULL);
	e->mig.exit = ACCEL_OPTS_GET(ops, exit, NULL);
	e->mig.migrate_remote = ACCEL_OPTS_GET(ops, migrate_remote, NULL);
	e->mig_arg = arg;
	want_x = want && e->mig.migrate_remote;
	if (e->mig_set == want && e->fd >= 0 &&
	    !!(e->features & KVD_FEAT_XMIGRATION) == want_x)
		return 0;
	e->mig_set = want;
	e->load_sent.m.hdr.size = 0;
	e->load_next.m.hdr.size = 0;
	/*
	 * The features are the REGISTER's: register again. The daemon may not
	 * have seen the old connection close yet (-EEXIST): a few tries.
	 */
	for (tries = 0;; tries++) {
		ret = accel_engine_reconnect(e);
		if (ret != -EEXIST || tries == 50)
			break;
		usleep(20000);
	}
	if (ret)
		return ret;
	if (want && !(e->features & KVD_FEAT_MIGRATION))
		return -EOPNOTSUPP;
	return 0;
}

ACCEL_EXPORT int accel_engine_set_xfer_addr(struct accel_engine *e, const char *addr)
{
	char a[KVD_XFER_ADDR_MAX] = { 0 };

	if (!e || !addr || strlen(addr) >= sizeof(a))
		return -EINVAL;
	memcpy(a, addr, strlen(addr));
	if (a[0] && !kvdmsg_addr_ok(a))
		return -EINVAL;
	if (e->in_callback || e->waiters)
		return -EDEADLK;
	if (!(e->features & KVD_FEAT_XMIGRATION))
		return -EOPNOTSUPP;
	memcpy(e->xfer_addr, a, sizeof(a));
	return e->fd < 0 ? -ECONNRESET : send_xfer_addr(e);
}

/* Send the kept report if it may go now (or @force). */
static void flush_load(struct accel_engine *e, bool force)
{
	union load_msg *n = &e->load_next;
	int ret;

	if (!n->m.hdr.size || e->fd < 0)
		return;
	if (!force && now_ms() - e->load_sent_ms < LOAD_INTERVAL_MS)
		return;
	ret = send_msg(e, &n->m, n->m.hdr.size, KVD_MSG_LOAD, 0, NULL, 0);
	if (ret)
		return;
	memcpy(&e->load_sent, n, n->m.hdr.size);
	e->load_sent_ms = now_ms();
	n->m.hdr.size = 0;
}

ACCEL_EXPORT int accel_engine_report_load(struct accel_engine *e,
					  const struct accel_engine_load *load)
{
	union load_msg *n;
	unsigned int i, count;
	uint32_t flags;
	size_t size;
	int ret;

	if (!e || !load)
		return -EINVAL;
	ret = accel_opts_valid(load, sizeof(*load));
	if (ret)
		return ret;
	if (!e->mig_set)
		return -EOPNOTSUPP;
	if (e->fd < 0)
		return -ECONNRESET;
	count = ACCEL_OPTS_GET(load, nreqs, 0);
	flags = ACCEL_OPTS_GET(load, flags, 0);
	if (count > ACCEL_ENGINE_LOAD_REQS_MAX)
		return -E2BIG;
	if ((count && !ACCEL_OPTS_GET(load, reqs, NULL)) ||
	    (flags & ~(ACCEL_ENGINE_LOAD_NO_INBOUND | ACCEL_ENGINE_LOAD_FORCE)) ||
	    ACCEL_OPTS_GET(load, blocks_free, 0) > ACCEL_OPTS_GET(load, blocks_total, 0) ||
	    (!ACCEL_OPTS_GET(load, waiting, 0) && ACCEL_OPTS_GET(load, hol_blocks, 0)))
		return -EINVAL;
	n = &e->load_next;
	size = sizeof(struct kvd_load) + count * sizeof(struct kvd_load_req);
	memset(n, 0, size);
	n->m.block_bytes = ACCEL_OPTS_GET(load, block_bytes, 0);
	n->m.blocks_total = ACCEL_OPTS_GET(load, blocks_total, 0);
	n->m.blocks_free = ACCEL_OPTS_GET(load, blocks_free, 0);
	n->m.running = ACCEL_OPTS_GET(load, running, 0);
	n->m.waiting = ACCEL_OPTS_GET(load, waiting, 0);
	n->m.hol_blocks = ACCEL_OPTS_GET(load, hol_blocks, 0);
	n->m.flags = flags & ACCEL_ENGINE_LOAD_NO_INBOUND;
	n->m.count = count;
	for (i = 0; i < count; i++) {
		const struct accel_engine_load_req *r = &load->reqs[i];
		unsigned int k;

		if (r->flags || r->blocks > n->m.blocks_total) {
			n->m.hdr.size = 0;
			return -EINVAL;
		}
		for (k = 0; k < i; k++) {
			if (load->reqs[k].req == r->req) {
				n->m.hdr.size = 0;
				return -EINVAL;
			}
		}
		n->m.reqs[i].req = r->req;
		n->m.reqs[i].tokens = r->tokens;
		n->m.reqs[i].blocks = r->blocks;
		n->m.reqs[i].priority = r->priority;
	}
	kvdmsg_hdr(&n->m.hdr, KVD_MSG_LOAD, size, 0);
	/* The same as the last one sent: nothing to say (the kept one, if any, is older). */
	if (e->load_sent.m.hdr.size == size && !memcmp(&e->load_sent, n, size) &&
	    !(flags & ACCEL_ENGINE_LOAD_FORCE)) {
		n->m.hdr.size = 0;
		return 0;
	}
	flush_load(e, flags & ACCEL_ENGINE_LOAD_FORCE);
	return e->fd < 0 ? -ECONNRESET : 0;
}

ACCEL_EXPORT int accel_engine_migrated(struct accel_engine *e, uint64_t id, int status,
				       const struct accel_engine_migration_stats *st)
{
	struct kvd_migrated m = { 0 };
	int ret;

	if (!e || !id || status > 0 || status < -4095)
		return -EINVAL;
	ret = accel_opts_valid(st, sizeof(*st));
	if (ret)
		return ret;
	m.id = id;
	m.status = status;
	m.blocks = ACCEL_OPTS_GET(st, blocks, 0);
	m.downtime_us = ACCEL_OPTS_GET(st, downtime_us, 0);
	m.total_us = ACCEL_OPTS_GET(st, total_us, 0);
	m.bytes_copied = ACCEL_OPTS_GET(st, bytes_copied, 0);
	ret = send_msg(e, &m, sizeof(m), KVD_MSG_MIGRATED, 0, NULL, 0);
	if (ret == -ECONNRESET)
		lost(e, "sending MIGRATED failed");
	return ret;
}
