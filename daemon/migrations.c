// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the live-migration broker (Documentation/kvacceld.rst): the
 * daemon chooses which running request moves from which engine to which,
 * tells the source (KVD_MSG_MIGRATE), and records the outcome; the engines
 * move the request themselves, through ordinary hand-offs.
 *
 * Engines that announced KVD_FEAT_MIGRATION report their load
 * (KVD_MSG_LOAD): blocks, running and waiting requests and up to
 * KVD_LOAD_REQS_MAX candidates. Every migrate_interval_ms the policy
 * (migrate_policy.c, pure) looks at the last loads and picks migrations
 * within the limits; an admin asks for one (KVD_MSG_MIGRATE_REQ) or drains
 * an engine (KVD_MSG_DRAIN: its candidates go one at a time within the
 * limits, nothing new comes in, and once its load says nothing runs or
 * waits it is sent KVD_MSG_EXIT).
 *
 * A migration is ASKED (MIGRATE sent), RUNNING (the source's
 * MIGRATE_STARTED with 0), then over: DONE or FAILED (the source's
 * MIGRATED, or a refusal in MIGRATE_STARTED), or ABORTED: an engine of it
 * left (the other is sent MIGRATE_ABORT with -ECONNRESET) or it was not
 * over within migration_timeout_ms (both are sent MIGRATE_ABORT with
 * -ETIMEDOUT). Each is logged and counted (metrics.c); the last
 * KVD_MIG_HISTORY finished are listed with those in flight.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "kvd.h"
#include "kvdmsg.h"
#include "migrate_policy.h"

static const char *const reason_names[] = {
	[KVD_MIGRATE_MANUAL] = "manual",
	[KVD_MIGRATE_DRAIN] = "drain",
	[KVD_MIGRATE_PRESSURE] = "pressure",
	[KVD_MIGRATE_BALANCE] = "balance",
};

static const char *reason_name(unsigned int r)
{
	return r <= KVD_MIGRATE_BALANCE && reason_names[r] ? reason_names[r] : "?";
}

static bool mig_capable(const struct kvd_conn *c)
{
	return c && (c->features & KVD_FEAT_MIGRATION);
}

/* Is @m's destination an engine of another node (migrations_remote.c)? */
static bool remote(const struct kvd_mig *m)
{
	return m->to_node[0];
}

static struct kvd_mig *find(struct kvd *d, uint64_t id)
{
	struct kvd_mig *m;

	for (m = d->migs; m; m = m->next)
		if (m->id == id)
			return m;
	return NULL;
}

/* Is @req of engine @from in a migration? */
bool kvd_mig_busy(const struct kvd *d, const char *from, uint64_t req)
{
	const struct kvd_mig *m;

	for (m = d->migs; m; m = m->next)
		if (m->req == req && !strcmp(m->from, from))
			return true;
	return false;
}

bool kvd_mig_backing_off(const struct kvd *d, const char *from, uint64_t req, int64_t now)
{
	const struct kvd_mig *m, *last = NULL;
	unsigned int k = 0;
	int64_t wait_ms;

	for (m = d->migs_done; m; m = m->next) {
		if (m->req != req || strcmp(m->from, from))
			continue;
		if (m->state == KVD_MIG_DONE)
			break;
		if (!last)
			last = m;
		k++;
	}
	if (!k)
		return false;
	wait_ms = k > 7 ? KVD_MIG_BACKOFF_MAX_MS : (int64_t)KVD_MIG_BACKOFF_MS << (k - 1);
	if (wait_ms > KVD_MIG_BACKOFF_MAX_MS)
		wait_ms = KVD_MIG_BACKOFF_MAX_MS;
	return now - last->ended < wait_ms * 1000000;
}

const struct kvd_load_req *kvd_mig_candidate(const struct kvd_conn *c, uint64_t req)
{
	unsigned int i;

	for (i = 0; i < c->nreqs; i++)
		if (c->reqs[i].req == req)
			return &c->reqs[i];
	return NULL;
}

/* The source's candidate @req moved away: not one to pick again before its next load. */
static void forget_candidate(struct kvd_conn *c, uint64_t req)
{
	unsigned int i;

	for (i = 0; i < c->nreqs; i++) {
		if (c->reqs[i].req == req) {
			c->reqs[i] = c->reqs[--c->nreqs];
			return;
		}
	}
}

static void send_abort(struct kvd *d, const struct kvd_mig *m, const char *name, int error)
{
	struct kvd_conn *c = kvd_conn_by_name(d, name);
	struct kvd_migrate_abort a = { 0 };

	if (!mig_capable(c))
		return;
	kvdmsg_hdr(&a.hdr, KVD_MSG_MIGRATE_ABORT, sizeof(a), 0);
	a.id = m->id;
	a.req = m->req;
	a.error = error;
	kvd_send(c, &a, NULL, 0);
}

/* @m is over (@state, @status): off the in-flight list, into the history. */
static void finish(struct kvd *d, struct kvd_mig *m, unsigned int state, int status,
		   enum kvd_mig_fail why)
{
	struct kvd_conn *s = kvd_conn_by_name(d, m->from);
	struct kvd_conn *t = remote(m) ? NULL : kvd_conn_by_name(d, m->to);
	struct kvd_mig **p;

	pthread_mutex_lock(&d->lock);
	for (p = &d->migs; *p; p = &(*p)->next) {
		if (*p == m) {
			*p = m->next;
			break;
		}
	}
	m->state = state;
	m->status = status;
	m->ended = kvd_now();
	if (s && s->mig_out)
		s->mig_out--;
	if (t && t->mig_in)
		t->mig_in--;
	if (state == KVD_MIG_DONE) {
		unsigned int b;

		d->mig.succeeded++;
		for (b = 0; b < KVD_MIG_DOWNTIME_BUCKETS; b++)
			if (m->downtime_us <= kvd_mig_downtime_bounds_us[b])
				break;
		d->mig.downtime_buckets[b]++;
		d->mig.downtime_us_sum += m->downtime_us;
		d->mig.downtime_count++;
		d->mig.blocks_moved += m->blocks;
	} else {
		d->mig.failed[why]++;
	}
	d->mig.bytes_copied += m->bytes_copied;
	m->next = d->migs_done;
	d->migs_done = m;
	if (++d->nmigs_done > KVD_MIG_HISTORY) {
		struct kvd_mig *q = d->migs_done;

		while (q->next && q->next->next)
			q = q->next;
		free(q->next);
		q->next = NULL;
		d->nmigs_done--;
	}
	pthread_mutex_unlock(&d->lock);
}

/*
 * A new migration of @s's @req (@blocks) to engine @to (of node @to_node,
 * "" for this one, whose connection @t then is): recorded ASKED and
 * counted, not yet asked of @s. NULL when memory is short.
 */
struct kvd_mig *kvd_mig_new(struct kvd *d, struct kvd_conn *s, struct kvd_conn *t,
			    const char *to, const char *to_node, uint64_t req, uint32_t blocks,
			    unsigned int reason)
{
	struct kvd_mig *m = calloc(1, sizeof(*m));

	if (!m) {
		kvd_log(LOG_WARNING, "migration of %s's request %llu: out of memory", s->name,
			(unsigned long long)req);
		return NULL;
	}
	m->req = req;
	memcpy(m->from, s->name, sizeof(m->from));
	snprintf(m->to, sizeof(m->to), "%s", to);
	snprintf(m->to_node, sizeof(m->to_node), "%s", to_node);
	m->state = KVD_MIG_ASKED;
	m->reason = reason;
	m->blocks = blocks;
	m->asked = kvd_now();
	m->deadline = m->asked + (int64_t)d->cfg->migration.timeout_ms * 1000000;
	pthread_mutex_lock(&d->lock);
	m->id = ++d->next_mig_id;
	m->next = d->migs;
	d->migs = m;
	s->mig_out++;
	if (t)
		t->mig_in++;
	d->mig.started[reason]++;
	pthread_mutex_unlock(&d->lock);
	kvd_log(LOG_INFO, "migration %llu (%s): request %llu of %s -> %s%s%s, %u blocks",
		(unsigned long long)m->id, reason_name(reason), (unsigned long long)req, s->name,
		to_node, to_node[0] ? "/" : "", to, blocks);
	return m;
}

/* Ask @s to move @req (@blocks) to @t. */
static struct kvd_mig *start(struct kvd *d, struct kvd_conn *s, struct kvd_conn *t,
			     uint64_t req, uint32_t blocks, unsigned int reason)
{
	struct kvd_migrate msg = { 0 };
	struct kvd_mig *m = kvd_mig_new(d, s, t, t->name, "", req, blocks, reason);

	if (!m)
		return NULL;
	kvdmsg_hdr(&msg.hdr, KVD_MSG_MIGRATE, sizeof(msg), 0);
	msg.id = m->id;
	msg.req = req;
	memcpy(msg.to, t->name, sizeof(msg.to));
	msg.reason = reason;
	/* A source whose connection fails is dropped: kvd_mig_conn_gone() aborts it. */
	kvd_send(s, &msg, NULL, 0);
	return m;
}

/* A draining engine with nothing left: EXIT. */
static void maybe_exit(struct kvd *d, struct kvd_conn *c)
{
	struct kvd_hdr h;

	if (!c->draining || c->exit_sent || !c->has_load || c->running || c->waiting ||
	    c->mig_out || c->dead)
		return;
	kvdmsg_hdr(&h, KVD_MSG_EXIT, sizeof(h), 0);
	if (kvd_send(c, &h, NULL, 0))
		return;
	pthread_mutex_lock(&d->lock);
	c->exit_sent = true;
	d->mig.exits_sent++;
	pthread_mutex_unlock(&d->lock);
	kvd_log(LOG_INFO, "drain of %s complete: nothing runs or waits; sent EXIT", c->name);
}

void kvd_mig_load(struct kvd *d, struct kvd_conn *c, const struct kvd_load *m)
{
	bool first = !c->has_load;

	pthread_mutex_lock(&d->lock);
	c->has_load = true;
	c->block_bytes = m->block_bytes;
	c->blocks_total = m->blocks_total;
	c->blocks_free = m->blocks_free;
	c->running = m->running;
	c->waiting = m->waiting;
	c->hol_blocks = m->hol_blocks;
	c->load_flags = m->flags;
	c->nreqs = m->count;
	memcpy(c->reqs, m->reqs, m->count * sizeof(*c->reqs));
	c->load_at = kvd_now();
	pthread_mutex_unlock(&d->lock);
	if (first)
		kvd_log(LOG_INFO, "engine %s: first load: %u of %u blocks free, %u running, "
			"%u waiting, %u candidates", c->name, m->blocks_free, m->blocks_total,
			m->running, m->waiting, m->count);
	/* The policy looks again at the next tick. */
	if (!d->mig_tick_at && (d->cfg->migration.enabled || c->draining))
		d->mig_tick_at = kvd_now() + (int64_t)d->cfg->migration.interval_ms * 1000000;
	maybe_exit(d, c);
}

int kvd_mig_started(struct kvd *d, struct kvd_conn *c, const struct kvd_migrate_started *m)
{
	struct kvd_mig *g;

	g = find(d, m->id);
	if (!g) {
		/* Ended, or asked by this daemon before a restart (its engines outlive it). */
		kvd_log(LOG_INFO, "migration %llu: late MIGRATE_STARTED from %s ignored",
			(unsigned long long)m->id, c->name);
		return 0;
	}
	if (strcmp(g->from, c->name) || g->state != KVD_MIG_ASKED)
		return -EPROTO;
	if (m->status) {
		kvd_log(LOG_INFO, "migration %llu: %s refused to move request %llu to %s: %s",
			(unsigned long long)g->id, g->from, (unsigned long long)g->req, g->to,
			strerror(-m->status));
		finish(d, g, KVD_MIG_FAILED, m->status, KVD_MIG_FAIL_REFUSED);
		return 0;
	}
	pthread_mutex_lock(&d->lock);
	g->state = KVD_MIG_RUNNING;
	pthread_mutex_unlock(&d->lock);
	kvd_log(LOG_INFO, "migration %llu: %s started moving request %llu to %s",
		(unsigned long long)g->id, g->from, (unsigned long long)g->req, g->to);
	return 0;
}

int kvd_mig_migrated(struct kvd *d, struct kvd_conn *c, const struct kvd_migrated *m)
{
	struct kvd_conn *s, *t;
	struct kvd_mig *g;

	g = find(d, m->id);
	if (!g) {
		/* Ended, or asked by this daemon before a restart (its engines outlive it). */
		kvd_log(LOG_INFO, "migration %llu: late MIGRATED from %s (%s) ignored",
			(unsigned long long)m->id, c->name,
			m->status ? strerror(-m->status) : "done");
		return 0;
	}
	if (strcmp(g->from, c->name))
		return -EPROTO;
	pthread_mutex_lock(&d->lock);
	g->downtime_us = m->downtime_us;
	g->total_us = m->total_us;
	g->bytes_copied = m->bytes_copied;
	if (m->blocks)
		g->blocks = m->blocks;
	pthread_mutex_unlock(&d->lock);
	if (m->status) {
		kvd_log(LOG_WARNING, "migration %llu: request %llu of %s -> %s failed: %s "
			"(the source runs it again)", (unsigned long long)g->id,
			(unsigned long long)g->req, g->from, g->to, strerror(-m->status));
		finish(d, g, KVD_MIG_FAILED, m->status, KVD_MIG_FAIL_FAILED);
		return 0;
	}
	kvd_log(LOG_INFO, "migration %llu: request %llu of %s -> %s done: downtime %llu us, "
		"total %llu us, %llu bytes, %u blocks", (unsigned long long)g->id,
		(unsigned long long)g->req, g->from, g->to, (unsigned long long)m->downtime_us,
		(unsigned long long)m->total_us, (unsigned long long)m->bytes_copied, g->blocks);
	/*
	 * Until their next loads: the request is no candidate of the source
	 * any more, and its blocks are no longer free at the destination.
	 */
	s = kvd_conn_by_name(d, g->from);
	t = remote(g) ? NULL : kvd_conn_by_name(d, g->to);
	pthread_mutex_lock(&d->lock);
	if (s)
		forget_candidate(s, g->req);
	if (t)
		t->blocks_free -= g->blocks < t->blocks_free ? g->blocks : t->blocks_free;
	pthread_mutex_unlock(&d->lock);
	finish(d, g, KVD_MIG_DONE, 0, KVD_MIG_FAIL_MAX);
	if (s)
		maybe_exit(d, s);
	return 0;
}

void kvd_mig_info_of(const struct kvd_mig *g, struct kvd_migration_info *i, uint64_t seq,
		     int64_t now)
{
	memset(i, 0, sizeof(*i));
	kvdmsg_hdr(&i->hdr, KVD_MSG_MIGRATION_INFO, sizeof(*i), seq);
	i->id = g->id;
	i->req = g->req;
	memcpy(i->from, g->from, sizeof(i->from));
	memcpy(i->to, g->to, sizeof(i->to));
	memcpy(i->to_node, g->to_node, sizeof(i->to_node));
	i->state = g->state;
	i->reason = g->reason;
	i->status = g->status;
	i->blocks = g->blocks;
	i->downtime_us = g->downtime_us;
	i->total_us = g->total_us;
	i->bytes_copied = g->bytes_copied;
	i->age_ms = now > g->asked ? (uint64_t)(now - g->asked) / 1000000 : 0;
}

int kvd_mig_refuse(struct kvd *d, struct kvd_conn *c, const struct kvd_hdr *h, int error,
		   const char *what, const char *a, const char *b)
{
	kvd_log(LOG_INFO, "admin migrate request (pid %d) refused: %s %s%s%s", (int)c->pid, what,
		a, b ? " " : "", b ? b : "");
	kvd_send_error(d, c, h->seq, h->type, error, false, "%s %s%s%s", what, a, b ? " " : "",
		       b ? b : "");
	return error;
}

static int request(struct kvd *d, struct kvd_conn *c, const struct kvd_migrate_req *m)
{
	const struct kvd_migration_config *mc = &d->cfg->migration;
	struct kvd_conn *s = kvd_conn_by_name(d, m->engine), *t;
	const struct kvd_load_req *r;
	struct kvd_migration_info info;
	struct kvd_mig *g;
	char req[24];

	snprintf(req, sizeof(req), "%llu", (unsigned long long)m->req);
	if (!s)
		return kvd_mig_refuse(d, c, &m->hdr, -ENOENT, "no engine", m->engine, NULL);
	if (m->to_node[0])
		return kvd_mig_request_remote(d, c, s, m);
	if (!strcmp(m->engine, m->to))
		return kvd_mig_refuse(d, c, &m->hdr, -EINVAL, "a migration to itself:", m->engine, NULL);
	t = kvd_conn_by_name(d, m->to);
	if (!t)
		return kvd_mig_refuse(d, c, &m->hdr, -ENOENT, "no engine", m->to, NULL);
	if (!mig_capable(s))
		return kvd_mig_refuse(d, c, &m->hdr, -EOPNOTSUPP, "no migrations from", s->name,
			      "(it has not announced them)");
	if (!mig_capable(t) || !t->has_load)
		return kvd_mig_refuse(d, c, &m->hdr, -EOPNOTSUPP, "no migrations into", t->name,
			      mig_capable(t) ? "(it has reported no load)" :
			      "(it has not announced them)");
	if (t->draining || (t->load_flags & KVD_LOAD_NO_INBOUND))
		return kvd_mig_refuse(d, c, &m->hdr, -EOPNOTSUPP, "no migrations into", t->name,
			      t->draining ? "(it is draining)" : "(it takes none in now)");
	r = kvd_mig_candidate(s, m->req);
	if (!r) {
		char of[KVD_NAME_MAX + 8];

		snprintf(of, sizeof(of), "of %s", s->name);
		return kvd_mig_refuse(d, c, &m->hdr, -ENOENT, "no candidate request", req, of);
	}
	if (kvd_mig_busy(d, s->name, m->req))
		return kvd_mig_refuse(d, c, &m->hdr, -EBUSY, "request migrating already:", req, NULL);
	if (t->blocks_free < r->blocks)
		return kvd_mig_refuse(d, c, &m->hdr, -ENOSPC, "no room for the request's blocks in",
			      t->name, NULL);
	if (s->mig_out >= mc->max_out)
		return kvd_mig_refuse(d, c, &m->hdr, -EBUSY, "at max_migrations_out:", s->name, NULL);
	if (t->mig_in >= mc->max_in)
		return kvd_mig_refuse(d, c, &m->hdr, -EBUSY, "at max_migrations_in:", t->name, NULL);
	g = start(d, s, t, m->req, r->blocks, KVD_MIGRATE_MANUAL);
	if (!g)
		return kvd_mig_refuse(d, c, &m->hdr, -ENOMEM, "out of memory for", req, NULL);
	kvd_mig_info_of(g, &info, m->hdr.seq, kvd_now());
	kvd_send(c, &info, NULL, 0);
	return 0;
}

void kvd_mig_request(struct kvd *d, struct kvd_conn *c, const struct kvd_migrate_req *m)
{
	request(d, c, m);
}

void kvd_mig_drain(struct kvd *d, struct kvd_conn *c, const struct kvd_drain *m)
{
	struct kvd_conn *e = kvd_conn_by_name(d, m->engine);
	struct kvd_hdr end;

	if (!e) {
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -ENOENT, false, "no engine %s",
			       m->engine);
		return;
	}
	if (!mig_capable(e)) {
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -EOPNOTSUPP, false,
			       "engine %s has not announced migrations: it cannot be drained",
			       e->name);
		return;
	}
	pthread_mutex_lock(&d->lock);
	e->draining = !(m->flags & KVD_DRAIN_CANCEL);
	if (!e->draining)
		e->exit_sent = false;
	pthread_mutex_unlock(&d->lock);
	kvd_log(LOG_INFO, "engine %s: drain %s (%u candidates, %u running, %u waiting)",
		e->name, e->draining ? "started" : "cancelled", e->nreqs, e->running, e->waiting);
	kvdmsg_hdr(&end, KVD_MSG_END, sizeof(end), m->hdr.seq);
	kvd_send(c, &end, NULL, 0);
	/* Now rather than at the next tick. */
	if (e->draining)
		d->mig_tick_at = kvd_now();
}

void kvd_mig_list(struct kvd *d, struct kvd_conn *c, uint64_t seq)
{
	struct kvd_migration_info info;
	int64_t now = kvd_now();
	const struct kvd_mig *g;
	const struct kvd_conn *e;
	struct kvd_hdr end;

	for (g = d->migs; g; g = g->next) {
		kvd_mig_info_of(g, &info, seq, now);
		if (kvd_send(c, &info, NULL, 0))
			return;
	}
	for (g = d->migs_done; g; g = g->next) {
		kvd_mig_info_of(g, &info, seq, now);
		if (kvd_send(c, &info, NULL, 0))
			return;
	}
	for (e = d->conns; e; e = e->next) {
		unsigned int i;

		if (!e->registered || !e->draining)
			continue;
		memset(&info, 0, sizeof(info));
		kvdmsg_hdr(&info.hdr, KVD_MSG_MIGRATION_INFO, sizeof(info), seq);
		memcpy(info.from, e->name, sizeof(info.from));
		info.state = KVD_MIG_DRAINING;
		info.reason = KVD_MIGRATE_DRAIN;
		info.req = e->nreqs;
		for (i = 0; i < e->nreqs; i++)
			info.blocks += e->reqs[i].blocks;
		if (kvd_send(c, &info, NULL, 0))
			return;
	}
	kvdmsg_hdr(&end, KVD_MSG_END, sizeof(end), seq);
	kvd_send(c, &end, NULL, 0);
}

void kvd_mig_conn_gone(struct kvd *d, const char *name)
{
	struct kvd_mig *g, *next;

	for (g = d->migs; g; g = next) {
		bool src = !strcmp(g->from, name);

		next = g->next;
		if (!src && (remote(g) || strcmp(g->to, name)))
			continue;
		kvd_log(LOG_WARNING, "migration %llu: request %llu of %s -> %s aborted: %s left",
			(unsigned long long)g->id, (unsigned long long)g->req, g->from, g->to,
			src ? "the source" : "the destination");
		send_abort(d, g, src ? g->to : g->from, -ECONNRESET);
		finish(d, g, KVD_MIG_ABORTED, -ECONNRESET, KVD_MIG_FAIL_PEER_GONE);
	}
}

/* One policy tick over the engines' last loads. */
static void policy_tick(struct kvd *d)
{
	const struct kvd_migration_config *mc = &d->cfg->migration;
	struct kvd_pol_config pc = {
		.enabled = mc->enabled,
		.max_out = mc->max_out,
		.max_in = mc->max_in,
		.balance_threshold = mc->balance_threshold,
		.order = mc->longest_first ? KVD_POL_LONGEST : KVD_POL_SHORTEST,
		.headroom = mc->headroom_blocks,
		.high_priority = mc->high_priority,
	};
	struct kvd_pol_choice out[64];
	int64_t now = kvd_now();
	struct kvd_pol_engine *pe;
	struct kvd_pol_req *pr;
	struct kvd_conn **cs, *c;
	unsigned int n = 0, i, k, got;

	for (c = d->conns; c; c = c->next)
		n += c->registered && !c->dead && mig_capable(c) && c->has_load;
	if (n < 2)
		return;
	pe = calloc(n, sizeof(*pe));
	cs = calloc(n, sizeof(*cs));
	pr = calloc((size_t)n * KVD_LOAD_REQS_MAX, sizeof(*pr));
	if (!pe || !cs || !pr)
		goto out;
	i = 0;
	for (c = d->conns; c && i < n; c = c->next) {
		struct kvd_pol_engine *e = &pe[i];

		if (!c->registered || c->dead || !mig_capable(c) || !c->has_load)
			continue;
		cs[i] = c;
		e->feature = true;
		e->loaded = true;
		e->draining = c->draining;
		e->no_inbound = c->load_flags & KVD_LOAD_NO_INBOUND;
		e->total = c->blocks_total;
		e->free = c->blocks_free;
		e->hol_blocks = c->hol_blocks;
		e->running = c->running;
		e->waiting = c->waiting;
		e->out = c->mig_out;
		e->in = c->mig_in;
		e->reqs = &pr[(size_t)i * KVD_LOAD_REQS_MAX];
		e->nreqs = c->nreqs;
		for (k = 0; k < c->nreqs; k++) {
			struct kvd_pol_req *r = &pr[(size_t)i * KVD_LOAD_REQS_MAX + k];

			r->req = c->reqs[k].req;
			r->tokens = c->reqs[k].tokens;
			r->blocks = c->reqs[k].blocks;
			r->priority = c->reqs[k].priority;
			r->busy = kvd_mig_busy(d, c->name, r->req) ||
				  kvd_mig_backing_off(d, c->name, r->req, now);
		}
		i++;
	}
	got = kvd_pol_pick(&pc, pe, i, out, sizeof(out) / sizeof(out[0]));
	for (k = 0; k < got; k++)
		start(d, cs[out[k].from], cs[out[k].to], out[k].req, out[k].blocks,
		      out[k].reason);

out:
	free(pr);
	free(cs);
	free(pe);
}

void kvd_mig_tick(struct kvd *d, int64_t now)
{
	struct kvd_mig *g, *next;
	struct kvd_conn *c;
	bool any = false;

	for (g = d->migs; g; g = next) {
		next = g->next;
		if (g->deadline > now)
			continue;
		kvd_log(LOG_WARNING, "migration %llu: request %llu of %s -> %s not over in %u ms: "
			"aborted", (unsigned long long)g->id, (unsigned long long)g->req, g->from,
			g->to, d->cfg->migration.timeout_ms);
		send_abort(d, g, g->from, -ETIMEDOUT);
		if (!remote(g))
			send_abort(d, g, g->to, -ETIMEDOUT);
		finish(d, g, KVD_MIG_ABORTED, -ETIMEDOUT, KVD_MIG_FAIL_TIMEOUT);
	}
	if (!d->mig_tick_at || d->mig_tick_at > now)
		return;
	policy_tick(d);
	/* Drains this node could not take: to other nodes' engines, where allowed. */
	if (d->cfg->migration.drain_remote)
		kvd_mig_drain_remote(d, now);
	for (c = d->conns; c; c = c->next) {
		if (!c->registered || !mig_capable(c) || !c->has_load)
			continue;
		maybe_exit(d, c);
		any |= c->draining;
	}
	/* Ticks go on while there is something to look at: loads, and a policy or a drain. */
	for (c = d->conns; c && !any; c = c->next)
		any = c->registered && mig_capable(c) && c->has_load && d->cfg->migration.enabled;
	d->mig_tick_at = any ? now + (int64_t)d->cfg->migration.interval_ms * 1000000 : 0;
}

int64_t kvd_mig_next_deadline(const struct kvd *d)
{
	const struct kvd_mig *g;
	int64_t next = d->mig_tick_at ? d->mig_tick_at : INT64_MAX;

	for (g = d->migs; g; g = g->next)
		if (g->deadline < next)
			next = g->deadline;
	return next;
}

void kvd_mig_free_all(struct kvd *d)
{
	pthread_mutex_lock(&d->lock);
	while (d->migs) {
		struct kvd_mig *g = d->migs;

		d->migs = g->next;
		free(g);
	}
	while (d->migs_done) {
		struct kvd_mig *g = d->migs_done;

		d->migs_done = g->next;
		free(g);
	}
	d->nmigs_done = 0;
	pthread_mutex_unlock(&d->lock);
}
