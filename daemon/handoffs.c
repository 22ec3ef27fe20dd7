// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the hand-off broker: engines hand dma-buf fds of kvaccel
 * regions and spaces to each other through the daemon, without a copy.
 *
 * Two phases: the sender's HANDOFF gives the daemon duplicates of the fds
 * (the sender keeps its own handles); the daemon answers QUEUED, offers the
 * fds to the receiver (now, or when it registers), and keeps its copies
 * until the receiver's ACK says it holds the objects; then DONE goes to the
 * sender, which may let go of its handles. A daemon that dies in between
 * loses nothing: the sender still has everything and sends again after it
 * reconnects; a receiver that already took the hand-off recognises
 * (sender, incarnation, tag) and acknowledges without taking it twice. The
 * incarnation (the sender's REGISTER's) tells a restarted sender, which may
 * use its tags again, from a resend of the same one.
 *
 * Phases end in DONE with the receiver's status, or -ETIMEDOUT when it is
 * not acknowledged within handoff_timeout_ms (a receiver that leaves has
 * its offers put back to wait for it; an answer after the timeout is
 * logged and ignored). An engine may have KVD_HANDOFF_MAX_HELD hand-offs
 * held by the daemon at once (-EBUSY beyond).
 *
 * Tenants: with [tenants] allow rules, a hand-off from an engine to one no
 * rule lets it reach gets -EPERM. What the daemon holds is bounded per user
 * (the sender's uid): max_handoffs_per_user hand-offs (-EDQUOT beyond) and
 * max_handoff_fds_per_user fds (-EMFILE beyond); and for the daemon as a
 * whole, half its RLIMIT_NOFILE in fds (-ENOSPC beyond). Each offer tells
 * a receiver that knows KVD_FEAT_SENDER the sender's uid and pid.
 *
 * Objects are dma-bufs (KVD_OBJ_REGION, KVD_OBJ_SPACE; their fdinfo names an
 * exporter) or sealed memfds (KVD_OBJ_MEMFD: F_SEAL_SHRINK, F_SEAL_GROW and
 * F_SEAL_WRITE, at most KVD_MEMFD_MAX bytes: a request's state sent with
 * its pages; what is sealed cannot change under the receiver).
 *
 * Under a service manager with a file descriptor store (NOTIFY_SOCKET;
 * FileDescriptorStoreMax= in the unit) the hand-offs survive a restart of
 * the daemon: each file it holds is stored once (FDSTORE=1,
 * FDNAME=dmabuf-INODE or memfd-INODE: the store drops duplicates of a
 * file, so names go by file, not by hand-off), and a memfd in the store (FDNAME=handoffs)
 * holds one record per hand-off (ids, names, tag, incarnation, objects,
 * their files' inodes, deadlines), rewritten at each change with a
 * checksum. A file leaves the store (FDSTOREREMOVE=1) when no hand-off
 * holds it any more. At start, kvd_handoff_restore() rebuilds the records
 * from the fds the store gives back; a record whose files are not all
 * there is dropped (its sender resends it anyway).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "kvd.h"
#include "kvdmsg.h"

#define KVD_HANDOFF_MAX_HELD	64

/* Is @fd a dma-buf of @size bytes? (Its fdinfo names an exporter.) */
static int check_dmabuf(int fd, uint64_t size)
{
	char path[64], line[128];
	bool dmabuf = false;
	off_t end;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "exp_name:", 9))
			dmabuf = true;
	fclose(f);
	if (!dmabuf)
		return -EBADF;
	end = lseek(fd, 0, SEEK_END);
	if (end < 0 || (uint64_t)end != size)
		return -EINVAL;
	lseek(fd, 0, SEEK_SET);
	return 0;
}

/*
 * Is @fd a memfd of @size bytes (at most KVD_MEMFD_MAX) sealed against
 * shrinking, growing and writing? -EBADF: not a memfd (no seals); -EPERM:
 * a seal missing; -EINVAL: the size.
 */
static int check_memfd(int fd, uint64_t size)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0)
		return -EBADF;
	if ((seals & need) != need)
		return -EPERM;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return -EBADF;
	if (!size || size > KVD_MEMFD_MAX || (uint64_t)st.st_size != size)
		return -EINVAL;
	return 0;
}

static const char *object_error(unsigned int kind, int ret)
{
	if (kind == KVD_OBJ_MEMFD)
		return ret == -EBADF ? "not a memfd" :
		       ret == -EPERM ? "memfd not sealed (F_SEAL_SHRINK, F_SEAL_GROW and "
				       "F_SEAL_WRITE needed)" :
		       "memfd size does not match, or over KVD_MEMFD_MAX";
	return ret == -EBADF ? "not a dma-buf" : "size does not match";
}

/* ---- the fd store ------------------------------------------------------ */

#define STATE_MAGIC	0x6b76616363656c64ULL	/* "kvacceld" */
#define STATE_VERSION	2	/* 2: the sender's uid and pid */

struct state_hdr {
	uint64_t magic;
	uint32_t version, count;
	uint64_t next_xfer_id;
	uint64_t sum;			/* FNV-1a of the records */
};

struct state_rec {
	uint64_t id, tag, incarnation;
	char from[KVD_NAME_MAX], to[KVD_NAME_MAX];
	uint32_t count;
	uint32_t from_uid;		/* the sender's, for offers (KVD_FEAT_SENDER) and its limits */
	int32_t from_pid;
	uint32_t pad;
	int64_t queued, deadline;	/* CLOCK_MONOTONIC ns: the same clock after a restart */
	struct kvd_obj objs[KVD_HANDOFF_MAX_FDS];
	uint64_t inos[KVD_HANDOFF_MAX_FDS];
};

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h;
}

/* Does a hand-off other than @skip (or @x's objects before @upto) hold the file @ino? */
static bool ino_held(const struct kvd *d, const struct kvd_xfer *skip, uint64_t ino)
{
	const struct kvd_xfer *x;
	uint32_t i;

	for (x = d->xfers; x; x = x->next)
		for (i = 0; x != skip && i < x->count; i++)
			if (x->inos[i] == ino)
				return true;
	return false;
}

/*
 * A held file's key (kvd_xfer.inos): a dma-buf's inode, or a memfd's with
 * KEY_MEMFD set (the two live on different file systems, whose inode
 * numbers may be the same); its fd store name is dmabuf-INODE or
 * memfd-INODE.
 */
#define KEY_MEMFD	((uint64_t)1 << 63)

static uint64_t file_key(unsigned int kind, uint64_t ino)
{
	return kind == KVD_OBJ_MEMFD ? ino | KEY_MEMFD : ino;
}

static void store_name(char *buf, size_t len, const char *what, uint64_t key)
{
	snprintf(buf, len, "%sFDNAME=%s-%" PRIu64, what, key & KEY_MEMFD ? "memfd" : "dmabuf",
		 key & ~KEY_MEMFD);
}

static void store_fd(int fd, uint64_t key)
{
	char msg[96];
	int ret;

	store_name(msg, sizeof(msg), "FDSTORE=1\nFDPOLL=0\n", key);
	ret = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	if (ret <= 0)
		kvd_log(LOG_WARNING, "fd store: %s %" PRIu64 ": %s",
			key & KEY_MEMFD ? "memfd" : "dma-buf", key & ~KEY_MEMFD,
			ret ? strerror(-ret) : "no service manager");
}

/* Record every hand-off in the state memfd (a torn write fails its checksum). */
static void save_state(struct kvd *d)
{
	struct state_hdr h = { .magic = STATE_MAGIC, .version = STATE_VERSION };
	struct state_rec *recs = NULL, *r;
	const struct kvd_xfer *x;
	size_t size;

	if (d->state_fd < 0)
		return;
	for (x = d->xfers; x; x = x->next)
		h.count++;
	recs = calloc(h.count ? h.count : 1, sizeof(*recs));
	if (!recs) {
		kvd_log(LOG_WARNING, "fd store: out of memory for the hand-offs' records");
		return;
	}
	for (x = d->xfers, r = recs; x; x = x->next, r++) {
		r->id = x->id;
		r->tag = x->tag;
		r->incarnation = x->incarnation;
		memcpy(r->from, x->from, sizeof(r->from));
		memcpy(r->to, x->to, sizeof(r->to));
		r->count = x->count;
		r->from_uid = x->from_uid;
		r->from_pid = x->from_pid;
		r->queued = x->queued;
		r->deadline = x->deadline;
		memcpy(r->objs, x->objs, sizeof(r->objs));
		memcpy(r->inos, x->inos, sizeof(r->inos));
	}
	size = h.count * sizeof(*recs);
	h.next_xfer_id = d->next_xfer_id;
	h.sum = fnv(recs, size) ^ fnv(&h, offsetof(struct state_hdr, sum));
	if (pwrite(d->state_fd, recs, size, sizeof(h)) != (ssize_t)size ||
	    pwrite(d->state_fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    ftruncate(d->state_fd, (off_t)(sizeof(h) + size)))
		kvd_log(LOG_WARNING, "fd store: writing the hand-offs' records: %s",
			strerror(errno));
	free(recs);
}

/* A new hand-off: its files into the store (those no other hand-off holds). */
static void store_xfer(struct kvd *d, struct kvd_xfer *x)
{
	uint32_t i, k;

	if (!d->fdstore)
		return;
	for (i = 0; i < x->count; i++) {
		for (k = 0; k < i && x->inos[k] != x->inos[i]; k++)
			;
		if (k == i && !ino_held(d, x, x->inos[i]))
			store_fd(x->fds[i], x->inos[i]);
	}
}

/* @x goes: its files out of the store (those no other hand-off holds). */
static void unstore_xfer(struct kvd *d, struct kvd_xfer *x)
{
	char msg[96];
	uint32_t i, k;

	if (!d->fdstore)
		return;
	for (i = 0; i < x->count; i++) {
		for (k = 0; k < i && x->inos[k] != x->inos[i]; k++)
			;
		if (k < i || ino_held(d, x, x->inos[i]))
			continue;
		store_name(msg, sizeof(msg), "FDSTOREREMOVE=1\n", x->inos[i]);
		sd_notify(0, msg);
	}
}

static void send_done(struct kvd *d, const struct kvd_xfer *x, int status)
{
	struct kvd_conn *s = kvd_conn_by_name(d, x->from);
	struct kvd_handoff_ack m = { 0 };

	if (!s)
		return;	/* the sender left: it resends, and the receiver dedups */
	/* Another instance under the sender's name: the tag is not the same hand-off's. */
	if (x->incarnation && s->incarnation != x->incarnation)
		return;
	kvdmsg_hdr(&m.hdr, KVD_MSG_HANDOFF_DONE, sizeof(m), 0);
	m.id = x->id;
	m.tag = x->tag;
	m.status = status;
	kvd_send(s, &m, NULL, 0);
}

static void offer(struct kvd_xfer *x, struct kvd_conn *to)
{
	union {
		struct kvd_handoff m;
		char bytes[sizeof(struct kvd_handoff) +
			   KVD_HANDOFF_MAX_FDS * sizeof(struct kvd_obj) +
			   sizeof(struct kvd_handoff_ext)];
	} u;
	size_t size = sizeof(u.m) + x->count * sizeof(struct kvd_obj);

	memset(&u, 0, sizeof(u));
	memcpy(u.m.peer, x->from, sizeof(u.m.peer));
	u.m.tag = x->tag;
	u.m.id = x->id;
	u.m.count = x->count;
	memcpy(u.m.objs, x->objs, x->count * sizeof(struct kvd_obj));
	/* The sender's incarnation (and who it is), to a receiver that knows the extension. */
	if (to->features & KVD_FEAT_INCARNATION) {
		struct kvd_handoff_ext ext = { .incarnation = x->incarnation };

		if (to->features & KVD_FEAT_SENDER) {
			ext.uid = x->from_uid;
			ext.pid = x->from_pid > 0 ? (uint32_t)x->from_pid : 0;
			ext.flags = KVD_SENDER_KNOWN;
		}
		memcpy(u.bytes + size, &ext, sizeof(ext));
		size += to->features & KVD_FEAT_SENDER ? sizeof(ext) : KVD_HANDOFF_EXT_V1_SIZE;
	}
	kvdmsg_hdr(&u.m.hdr, KVD_MSG_HANDOFF_OFFER, size, 0);
	if (kvd_send(to, &u.m, x->fds, x->count))
		return;	/* its connection is failing: it waits for the next one */
	x->offered = true;
}

/* Called with d->lock held. */
static void xfer_free(struct kvd *d, struct kvd_xfer *x)
{
	struct kvd_xfer **p;

	for (p = &d->xfers; *p; p = &(*p)->next) {
		if (*p == x) {
			*p = x->next;
			break;
		}
	}
	kvdmsg_close_fds(x->fds, x->count);
	d->held_fds -= x->count;
	if (x->owner) {
		const struct kvd_tenants *t = &d->cfg->tenants;

		x->owner->handoffs--;
		x->owner->fds -= x->count;
		if (x->owner->handoffs < t->max_handoffs)
			x->owner->warned_handoffs = false;
		if (x->owner->fds + KVD_HANDOFF_MAX_FDS <= t->max_fds)
			x->owner->warned_fds = false;
		kvd_user_put(d, x->owner);
	}
	free(x);
}

/* Refuse a hand-off beyond a maximum: count it, log it once, tell the sender. */
static int refuse(struct kvd *d, struct kvd_conn *c, const struct kvd_handoff *m, int *fds,
		  enum kvd_refusal why, int error, bool *warned, const char *what)
{
	kvdmsg_close_fds(fds, m->count);
	kvd_refused(d, why);
	if (!warned || !*warned)
		kvd_log(LOG_WARNING, "engine %s (pid %d uid %u): hand-off to %s refused: %s%s",
			c->name, (int)c->pid, (unsigned int)c->uid, m->peer, what,
			warned ? "; further refusals not logged until it holds less" : "");
	if (warned)
		*warned = true;
	return kvd_send_error(d, c, m->hdr.seq, m->hdr.type, error, false, "%s", what), error;
}

int kvd_handoff_queue(struct kvd *d, struct kvd_conn *c, const struct kvd_handoff *m, int *fds)
{
	struct kvd_handoff_id r = { 0 };
	unsigned int held = 0;
	struct kvd_conn *to;
	uint64_t incarnation = kvdmsg_incarnation(m, m->hdr.size);
	uint64_t inos[KVD_HANDOFF_MAX_FDS];
	struct kvd_xfer *x;
	uint32_t i;
	int ret;

	if (incarnation && incarnation != c->incarnation) {
		kvdmsg_close_fds(fds, m->count);
		return kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -EINVAL, false,
				      "hand-off incarnation %llx is not the engine's (%llx)",
				      (unsigned long long)incarnation,
				      (unsigned long long)c->incarnation), -EINVAL;
	}
	if (!strcmp(m->peer, c->name)) {
		kvdmsg_close_fds(fds, m->count);
		return kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -EINVAL, false,
				      "a hand-off to oneself"), -EINVAL;
	}
	for (i = 0; i < m->count; i++) {
		struct stat st = { 0 };

		ret = m->objs[i].kind == KVD_OBJ_MEMFD ? check_memfd(fds[i], m->objs[i].size) :
		      check_dmabuf(fds[i], m->objs[i].size);
		if (!ret && fstat(fds[i], &st))
			ret = -errno;
		inos[i] = file_key(m->objs[i].kind, st.st_ino);
		if (ret) {
			kvdmsg_close_fds(fds, m->count);
			return kvd_send_error(d, c, m->hdr.seq, m->hdr.type, ret, false,
					      "object %u: %s", i,
					      object_error(m->objs[i].kind, ret)), ret;
		}
	}
	/* The same tag from the same sender (and incarnation): a resend of one still held. */
	for (x = d->xfers; x; x = x->next) {
		if (strcmp(x->from, c->name))
			continue;
		if (x->tag == m->tag && x->incarnation == c->incarnation) {
			kvdmsg_close_fds(fds, m->count);
			goto queued;
		}
		held++;
	}
	if (!kvd_tenant_handoff_allowed(&d->cfg->tenants, c->name, m->peer))
		return refuse(d, c, m, fds, KVD_REFUSED_HANDOFF, -EPERM, NULL,
			      "no [tenants] allow rule lets this engine hand to that one");
	if (c->user->limited && c->user->handoffs >= d->cfg->tenants.max_handoffs)
		return refuse(d, c, m, fds, KVD_REFUSED_HANDOFFS, -EDQUOT,
			      &c->user->warned_handoffs,
			      "this user's hand-offs held by the daemon are at max_handoffs_per_user");
	if (c->user->limited && c->user->fds + m->count > d->cfg->tenants.max_fds)
		return refuse(d, c, m, fds, KVD_REFUSED_FDS, -EMFILE, &c->user->warned_fds,
			      "this user's hand-off fds held by the daemon would pass "
			      "max_handoff_fds_per_user");
	if (d->held_fds + m->count > d->held_fds_max)
		return refuse(d, c, m, fds, KVD_REFUSED_DAEMON_FDS, -ENOSPC, NULL,
			      "the daemon holds as many hand-off fds as it can");
	if (held >= KVD_HANDOFF_MAX_HELD) {
		kvdmsg_close_fds(fds, m->count);
		return kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -EBUSY, false,
				      "%u hand-offs of this engine are in flight already",
				      held), -EBUSY;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		kvdmsg_close_fds(fds, m->count);
		return kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -ENOMEM, false,
				      "out of memory"), -ENOMEM;
	}
	memcpy(x->from, c->name, sizeof(x->from));
	memcpy(x->to, m->peer, sizeof(x->to));
	x->tag = m->tag;
	x->incarnation = c->incarnation;
	x->count = m->count;
	memcpy(x->fds, fds, m->count * sizeof(int));
	memcpy(x->objs, m->objs, m->count * sizeof(struct kvd_obj));
	x->from_uid = c->uid;
	x->from_pid = c->pid;
	memcpy(x->inos, inos, m->count * sizeof(uint64_t));
	x->queued = kvd_now();
	x->deadline = x->queued + (int64_t)d->cfg->handoff_timeout_ms * 1000000;
	pthread_mutex_lock(&d->lock);
	x->owner = c->user;
	x->owner->handoffs++;
	x->owner->fds += x->count;
	d->held_fds += x->count;
	x->id = ++d->next_xfer_id;
	x->next = d->xfers;
	d->xfers = x;
	pthread_mutex_unlock(&d->lock);
	store_xfer(d, x);
	save_state(d);
	kvd_log(LOG_INFO, "hand-off %llu: %s -> %s, tag %llu, %u objects",
		(unsigned long long)x->id, x->from, x->to, (unsigned long long)x->tag, x->count);
queued:
	kvdmsg_hdr(&r.hdr, KVD_MSG_HANDOFF_QUEUED, sizeof(r), m->hdr.seq);
	r.id = x->id;
	r.tag = x->tag;
	kvd_send(c, &r, NULL, 0);
	to = kvd_conn_by_name(d, x->to);
	if (to && !x->offered)
		offer(x, to);
	return 0;
}

int kvd_handoff_ack(struct kvd *d, struct kvd_conn *c, const struct kvd_handoff_ack *m)
{
	struct kvd_xfer *x;

	/* An id never given out, or a tag in an ACK: out of order. */
	if (!m->id || m->id > d->next_xfer_id || m->tag)
		return -EPROTO;
	for (x = d->xfers; x; x = x->next)
		if (x->id == m->id)
			break;
	if (!x) {
		/* Timed out before the answer came: the sender was told so. */
		kvd_log(LOG_INFO, "hand-off %llu: late answer from %s (%s) ignored",
			(unsigned long long)m->id, c->name,
			m->status ? strerror(-m->status) : "done");
		return 0;
	}
	/* Only the receiver it was offered to answers it. */
	if (!x->offered || strcmp(x->to, c->name))
		return -EPROTO;
	send_done(d, x, m->status);
	kvd_log(LOG_INFO, "hand-off %llu: %s -> %s %s%s", (unsigned long long)x->id, x->from,
		x->to, m->status ? "refused: " : "done", m->status ? strerror(-m->status) : "");
	unstore_xfer(d, x);
	pthread_mutex_lock(&d->lock);
	if (m->status)
		d->handoffs_failed++;
	else
		d->handoffs_done++;
	xfer_free(d, x);
	pthread_mutex_unlock(&d->lock);
	save_state(d);
	return 0;
}

void kvd_handoff_offer_waiting(struct kvd *d, struct kvd_conn *c)
{
	struct kvd_xfer *x;

	for (x = d->xfers; x; x = x->next)
		if (!x->offered && !strcmp(x->to, c->name))
			offer(x, c);
}

/* Called with d->lock held. */
void kvd_handoff_conn_gone(struct kvd *d, struct kvd_conn *c)
{
	struct kvd_xfer *x;

	for (x = d->xfers; x; x = x->next)
		if (x->offered && !strcmp(x->to, c->name))
			x->offered = false;
}

void kvd_handoff_expire(struct kvd *d, int64_t now)
{
	struct kvd_xfer *x, *next;

	for (x = d->xfers; x; x = next) {
		next = x->next;
		if (x->deadline > now)
			continue;
		kvd_log(LOG_WARNING, "hand-off %llu: %s -> %s not acknowledged in %u ms: dropped",
			(unsigned long long)x->id, x->from, x->to, d->cfg->handoff_timeout_ms);
		send_done(d, x, -ETIMEDOUT);
		unstore_xfer(d, x);
		pthread_mutex_lock(&d->lock);
		d->handoffs_timed_out++;
		xfer_free(d, x);
		pthread_mutex_unlock(&d->lock);
		save_state(d);
	}
}

/*
 * At stop: the fds closed; the store and its records stay, for a daemon
 * the service manager restarts (it empties the store when the unit stops).
 */
void kvd_handoff_free_all(struct kvd *d)
{
	pthread_mutex_lock(&d->lock);
	while (d->xfers)
		xfer_free(d, d->xfers);
	pthread_mutex_unlock(&d->lock);
}

int64_t kvd_handoff_next_deadline(const struct kvd *d)
{
	const struct kvd_xfer *x;
	int64_t next = INT64_MAX;

	for (x = d->xfers; x; x = x->next)
		if (x->deadline < next)
			next = x->deadline;
	return next;
}

/* The fd store's dma-bufs given back at start, by inode. */
struct stored {
	uint64_t ino;
	int fd;
	bool used;
};

static const struct stored *stored_find(const struct stored *st, unsigned int n, uint64_t ino)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (st[i].ino == ino)
			return &st[i];
	return NULL;
}

/* Rebuild the hand-offs from the state memfd @sfd and the stored files: how many. */
static unsigned int restore_records(struct kvd *d, int sfd, struct stored *st, unsigned int n)
{
	struct state_hdr h;
	struct state_rec *recs;
	unsigned int i, got = 0;
	size_t size;
	uint32_t k;

	if (pread(sfd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.magic != STATE_MAGIC ||
	    h.version != STATE_VERSION || h.count > 1u << 16) {
		kvd_log(LOG_WARNING, "fd store: no hand-off records of this version: none restored");
		return 0;
	}
	size = h.count * sizeof(*recs);
	recs = malloc(size ? size : 1);
	if (!recs || pread(sfd, recs, size, sizeof(h)) != (ssize_t)size ||
	    (fnv(recs, size) ^ fnv(&h, offsetof(struct state_hdr, sum))) != h.sum) {
		kvd_log(LOG_WARNING, "fd store: the hand-off records are torn: none restored");
		free(recs);
		return 0;
	}
	if (h.next_xfer_id > d->next_xfer_id)
		d->next_xfer_id = h.next_xfer_id;
	for (i = 0; i < h.count; i++) {
		const struct state_rec *r = &recs[i];
		struct kvd_xfer *x;

		for (k = 0; k < r->count && k < KVD_HANDOFF_MAX_FDS; k++)
			if (!stored_find(st, n, r->inos[k]))
				break;
		if (!r->count || r->count > KVD_HANDOFF_MAX_FDS || k < r->count ||
		    !kvdmsg_name_ok(r->from) || !kvdmsg_name_ok(r->to)) {
			kvd_log(LOG_WARNING, "fd store: hand-off %" PRIu64 " (%.31s -> %.31s): its "
				"files are not all in the store: dropped", r->id, r->from, r->to);
			continue;
		}
		x = calloc(1, sizeof(*x));
		if (!x)
			break;
		for (k = 0; k < r->count; k++) {
			x->fds[k] = fcntl(stored_find(st, n, r->inos[k])->fd, F_DUPFD_CLOEXEC, 3);
			if (x->fds[k] < 0)
				break;
		}
		if (k < r->count) {
			kvdmsg_close_fds(x->fds, k);
			free(x);
			kvd_log(LOG_WARNING, "fd store: hand-off %" PRIu64 ": %s: dropped", r->id,
				strerror(errno));
			continue;
		}
		for (k = 0; k < r->count; k++)
			((struct stored *)stored_find(st, n, r->inos[k]))->used = true;
		x->id = r->id;
		x->tag = r->tag;
		x->incarnation = r->incarnation;
		memcpy(x->from, r->from, sizeof(x->from));
		memcpy(x->to, r->to, sizeof(x->to));
		x->count = r->count;
		x->from_uid = r->from_uid;
		x->from_pid = r->from_pid;
		memcpy(x->objs, r->objs, sizeof(x->objs));
		memcpy(x->inos, r->inos, sizeof(x->inos));
		x->queued = r->queued;
		x->deadline = r->deadline;
		if (x->id > d->next_xfer_id)
			d->next_xfer_id = x->id;
		pthread_mutex_lock(&d->lock);
		/* Counted against its sender's user and the daemon's fds, as when it came. */
		x->owner = kvd_user_get(d, x->from_uid);
		if (x->owner) {
			x->owner->handoffs++;
			x->owner->fds += x->count;
		}
		d->held_fds += x->count;
		x->next = d->xfers;
		d->xfers = x;
		pthread_mutex_unlock(&d->lock);
		kvd_log(LOG_INFO, "hand-off %llu: %s -> %s, tag %llu, %u objects: restored from the "
			"fd store", (unsigned long long)x->id, x->from, x->to,
			(unsigned long long)x->tag, x->count);
		got++;
	}
	free(recs);
	return got;
}

void kvd_handoff_restore(struct kvd *d, int *fds, char **names, unsigned int n)
{
	struct stored *st = calloc(n ? n : 1, sizeof(*st));
	unsigned int i, ns = 0, got = 0;
	char msg[96];
	int sfd = -1;

	for (i = 0; i < n; i++) {
		const char *name = names && names[i] ? names[i] : "";
		struct stat sb;

		if (!strcmp(name, "handoffs") && sfd < 0) {
			sfd = fds[i];
			continue;
		}
		if (st && (!strncmp(name, "dmabuf-", 7) || !strncmp(name, "memfd-", 6)) &&
		    !fstat(fds[i], &sb)) {
			st[ns].ino = file_key(name[0] == 'm' ? KVD_OBJ_MEMFD : KVD_OBJ_REGION,
					      sb.st_ino);
			st[ns++].fd = fds[i];
			continue;
		}
		kvd_log(LOG_WARNING, "fd store: fd '%s' is not the daemon's: closed", name);
		if (d->fdstore && *name) {
			snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%.64s", name);
			sd_notify(0, msg);
		}
		close(fds[i]);
	}
	if (sfd >= 0 && st)
		got = restore_records(d, sfd, st, ns);
	/* Files no record holds leave the store. */
	for (i = 0; i < ns; i++) {
		if (!st[i].used && d->fdstore) {
			store_name(msg, sizeof(msg), "FDSTOREREMOVE=1\n", st[i].ino);
			sd_notify(0, msg);
		}
		close(st[i].fd);
	}
	free(st);
	if (n)
		kvd_log(LOG_INFO, "fd store: %u hand-offs restored", got);
	/* The records' memfd: the store's own, or a new one put there. */
	if (sfd < 0 && d->fdstore) {
		sfd = memfd_create("kvacceld-handoffs", MFD_CLOEXEC);
		if (sfd < 0 || sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=handoffs", &sfd,
						      1) <= 0) {
			kvd_log(LOG_WARNING, "fd store: cannot store the hand-offs' records: "
				"hand-offs will not survive a restart");
			if (sfd >= 0)
				close(sfd);
			sfd = -1;
		}
	}
	d->state_fd = sfd;
	save_state(d);
}
