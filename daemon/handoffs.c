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
 */
#include <errno.h>
#include <fcntl.h>
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
		ret = check_dmabuf(fds[i], m->objs[i].size);
		if (ret) {
			kvdmsg_close_fds(fds, m->count);
			return kvd_send_error(d, c, m->hdr.seq, m->hdr.type, ret, false,
					      "object %u: %s", i, ret == -EBADF ?
					      "not a dma-buf" : "size does not match"), ret;
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
	pthread_mutex_lock(&d->lock);
	if (m->status)
		d->handoffs_failed++;
	else
		d->handoffs_done++;
	xfer_free(d, x);
	pthread_mutex_unlock(&d->lock);
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
		pthread_mutex_lock(&d->lock);
		d->handoffs_timed_out++;
		xfer_free(d, x);
		pthread_mutex_unlock(&d->lock);
	}
}

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
