// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - pressure rounds. The kernel sends a pressure event when node
 * usage rises above the high watermark (and another when it falls below
 * the low one). A round then asks registered engines, lowest priority class
 * first (the larger user first within a class), one at a time, to release
 * memory: RELEASE names the bytes still above the low watermark and a
 * deadline. The next engine is asked when the last one answers RELEASED or
 * lets its deadline pass (reported, counted); the round ends when the
 * kernel says usage is below the low watermark or every engine has been
 * asked. While the kernel still reports pressure, another round starts
 * after a pause of ten deadlines.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "kvd.h"
#include "kvdmsg.h"
#include "kvnl.h"

static int dev_cb(const struct kvnl_msg *m, void *arg)
{
	struct kvd_dev *s = arg;

	kvnl_u64(m, KVACCEL_A_LIMIT, &s->limit);
	kvnl_u64(m, KVACCEL_A_USAGE, &s->usage);
	kvnl_u64(m, KVACCEL_A_LOW_WM, &s->low_wm);
	kvnl_u8(m, KVACCEL_A_PRESSURE, &s->pressure);
	return 0;
}

int kvd_dev_read(struct kvd *d, struct kvd_dev *s)
{
	memset(s, 0, sizeof(*s));
	return kvnl_exec(d->nl, kvnl_request(d->nl, KVACCEL_CMD_DEVICE_GET, false), dev_cb, s);
}

static int64_t deadline_ns(const struct kvd *d)
{
	return (int64_t)d->cfg->release_deadline_ms * 1000000;
}

static void round_end(struct kvd *d, const char *how)
{
	struct kvd_conn *c;

	kvd_log(LOG_INFO, "pressure round %llu: %s", (unsigned long long)d->round, how);
	pthread_mutex_lock(&d->lock);
	d->round_active = false;
	if (!d->pressure)
		d->rounds_resolved++;
	/* An engine still working on its request may answer late: that is fine. */
	for (c = d->conns; c; c = c->next)
		c->asked_this_round = false;
	pthread_mutex_unlock(&d->lock);
	d->round_retry = d->pressure ? kvd_now() + 10 * deadline_ns(d) : 0;
}

/* Ask the next engine, or end the round. */
static void round_step(struct kvd *d)
{
	struct kvd_dev s;
	struct kvd_conn *c, *best = NULL;
	struct kvd_procs ps = { 0 };
	uint64_t best_usage = 0;
	struct kvd_release m = { 0 };

	for (c = d->conns; c; c = c->next)
		if (c->release_round == d->round)
			return;	/* one at a time */
	if (kvd_dev_read(d, &s)) {
		/* Retried after the pause, while the kernel still says pressure. */
		round_end(d, "could not read the device's state");
		return;
	}
	if (!s.pressure || s.usage <= s.low_wm) {
		d->pressure = s.pressure;
		round_end(d, "usage below the low watermark");
		return;
	}
	/* One dump for every engine's usage. */
	if (kvd_procs_read(d->nl, &ps)) {
		kvd_procs_free(&ps);
		round_end(d, "could not read the processes' usage");
		return;
	}
	for (c = d->conns; c; c = c->next) {
		const struct kvd_proc *p = kvd_procs_find(&ps, c->pid);

		if (!c->registered || c->asked_this_round || !p || !p->usage)
			continue;
		if (!best || c->priority < best->priority ||
		    (c->priority == best->priority && p->usage > best_usage)) {
			best = c;
			best_usage = p->usage;
		}
	}
	kvd_procs_free(&ps);
	if (!best) {
		round_end(d, "every engine asked, usage still above the low watermark");
		return;
	}
	kvdmsg_hdr(&m.hdr, KVD_MSG_RELEASE, sizeof(m), 0);
	m.round = d->round;
	m.bytes = s.usage - s.low_wm;
	m.deadline_ms = d->cfg->release_deadline_ms;
	pthread_mutex_lock(&d->lock);
	best->asked_this_round = true;
	best->release_round = d->round;
	best->release_deadline = kvd_now() + deadline_ns(d);
	best->releases_asked++;
	d->releases_asked++;
	pthread_mutex_unlock(&d->lock);
	kvd_log(LOG_INFO, "pressure round %llu: asking engine %s (priority %u, %" PRIu64
		" bytes) to release %" PRIu64 " bytes", (unsigned long long)d->round, best->name,
		best->priority, best_usage, (uint64_t)m.bytes);
	if (kvd_send(best, &m, NULL, 0)) {
		/* Its socket is failing: it is dropped after this event; ask the next. */
		best->release_round = 0;
		round_step(d);
	}
}

static void round_start(struct kvd *d)
{
	pthread_mutex_lock(&d->lock);
	d->round++;
	d->rounds++;
	d->round_active = true;
	pthread_mutex_unlock(&d->lock);
	d->round_retry = 0;
	kvd_log(LOG_INFO, "pressure round %llu: started", (unsigned long long)d->round);
	round_step(d);
}

void kvd_pressure_event(struct kvd *d, bool on, uint64_t usage)
{
	(void)usage;	/* logged with the event */
	d->pressure = on;
	if (on && !d->round_active)
		round_start(d);
	else if (!on && d->round_active)
		round_end(d, "usage below the low watermark");
	else if (!on)
		d->round_retry = 0;
}

int kvd_pressure_released(struct kvd *d, struct kvd_conn *c, const struct kvd_released *m)
{
	/* A round that never was: out of order. */
	if (!m->round || m->round > d->round)
		return -EPROTO;
	if (m->round != c->release_round) {
		/* Late (its deadline or its round passed): fine, nothing to do. */
		kvd_log(LOG_INFO, "pressure round %llu: engine %s answered late, %llu bytes released",
			(unsigned long long)m->round, c->name, (unsigned long long)m->bytes);
		return 0;
	}
	kvd_log(LOG_INFO, "pressure round %llu: engine %s released %llu bytes",
		(unsigned long long)m->round, c->name, (unsigned long long)m->bytes);
	pthread_mutex_lock(&d->lock);
	c->release_round = 0;
	c->released_bytes += m->bytes;
	pthread_mutex_unlock(&d->lock);
	if (d->round_active && m->round == d->round)
		round_step(d);
	return 0;
}

void kvd_pressure_conn_gone(struct kvd *d)
{
	if (d->round_active)
		round_step(d);
}

void kvd_pressure_tick(struct kvd *d, int64_t now)
{
	struct kvd_conn *c;
	bool expired = false;

	for (c = d->conns; c; c = c->next) {
		if (!c->release_round || c->release_deadline > now)
			continue;
		if (!d->round_active || c->release_round != d->round) {
			/* Its round is over: no answer needed any more. */
			c->release_round = 0;
			continue;
		}
		kvd_log(LOG_WARNING, "pressure round %llu: engine %s (pid %d) ignored the release "
			"request past its %u ms deadline", (unsigned long long)c->release_round,
			c->name, (int)c->pid, d->cfg->release_deadline_ms);
		pthread_mutex_lock(&d->lock);
		c->release_round = 0;
		c->releases_ignored++;
		d->releases_ignored++;
		pthread_mutex_unlock(&d->lock);
		expired = true;
	}
	if (expired && d->round_active)
		round_step(d);
	if (!d->round_active && d->pressure && d->round_retry && d->round_retry <= now)
		round_start(d);
}

int64_t kvd_pressure_next_deadline(const struct kvd *d)
{
	const struct kvd_conn *c;
	int64_t next = INT64_MAX;

	for (c = d->conns; c; c = c->next)
		if (c->release_round && c->release_deadline < next)
			next = c->release_deadline;
	if (!d->round_active && d->pressure && d->round_retry && d->round_retry < next)
		next = d->round_retry;
	return next;
}
