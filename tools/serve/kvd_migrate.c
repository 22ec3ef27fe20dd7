// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - kvacceld's live migrations (pressure.h): the daemon's
 * migrate, abort and exit callbacks, the hand-offs that carry a node's
 * migration messages (migrate_node.h), and the load the policy reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvd_int.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int kvd_send(void *arg, const char *to, uint64_t tag, const int *fds,
		    const enum accel_handoff_kind *kinds, unsigned int n)
{
	struct serve_kvd *k = arg;
	int ret = accel_engine_handoff(k->e, to, tag, fds, kinds, n);

	/*
	 * The daemon went away (or did not answer): libaccel keeps the hand-off
	 * and sends it again once it is back (the receiver takes it once), so it
	 * is on its way, not refused; its end comes through handoff_done.
	 */
	return ret == -ECONNRESET || ret == -ETIMEDOUT ? 0 : ret;
}

static struct kvd_departure *departure_of(struct serve_kvd *k, uint64_t id)
{
	for (uint32_t i = 0; i < k->nr_out; i++)
		if (k->out[i].id == id)
			return &k->out[i];
	return NULL;
}

static void kvd_done(void *arg, uint64_t id, int status, const struct serve_nmig_stats *st)
{
	struct serve_kvd *k = arg;
	struct kvd_departure *dp = departure_of(k, id);
	ACCEL_OPTS(accel_engine_migration_stats, ms, .downtime_us = st->downtime_us,
		   .total_us = st->total_us, .bytes_copied = st->bytes_copied,
		   .blocks = st->blocks);

	if (dp) {
		dp->status = status;
		dp->st = *st;
	}
	fprintf(stderr, "kvaccel-serve: migration %llu of request %u to %s: %s "
		"(%llu pages changed hands, %llu bytes copied, downtime %.2f ms, %.2f ms in all)\n",
		(unsigned long long)id, dp ? dp->h : 0, dp ? dp->to : "?",
		status ? strerror(-status) : "done", (unsigned long long)st->pages,
		(unsigned long long)st->bytes_copied, st->downtime_us / 1e3, st->total_us / 1e3);
	accel_engine_migrated(k->e, id, status, &ms);
}

int serve_kvd_arrival_add(struct serve_kvd *k, uint32_t h, const char *from,
			  const struct serve_migr_hdr *hdr, const struct serve_nmig_stats *st)
{
	struct kvd_arrival *v = realloc(k->in, (k->nr_in + 1) * sizeof(*v));
	size_t len = sizeof(*hdr) + ((size_t)hdr->n_prompt + hdr->n_gen) * sizeof(int32_t);

	if (!v)
		return -ENOMEM;
	k->in = v;
	v = &k->in[k->nr_in];
	memset(v, 0, sizeof(*v));
	v->hdr = malloc(len);
	if (!v->hdr)
		return -ENOMEM;
	memcpy(v->hdr, hdr, len);
	v->h = h;
	v->source = hdr->source;
	if (st)
		v->st = *st;
	snprintf(v->from, sizeof(v->from), "%s", from);
	k->nr_in++;
	return 0;
}

static void kvd_arrived(void *arg, uint64_t id, uint32_t h, const char *from,
			const struct serve_migr_hdr *hdr, const struct serve_nmig_stats *st)
{
	if (serve_kvd_arrival_add(arg, h, from, hdr, st))
		return;
	fprintf(stderr, "kvaccel-serve: migration %llu: request %llu of %s is request %u here "
		"(%u tokens, %llu pages taken over, downtime %.2f ms)\n", (unsigned long long)id,
		(unsigned long long)hdr->source, from, h, hdr->n_prompt + hdr->n_gen,
		(unsigned long long)st->pages, st->downtime_us / 1e3);
}

static int kvd_migrate(void *arg, uint64_t id, uint64_t req, const char *to)
{
	struct serve_kvd *k = arg;
	struct kvd_departure *v;
	int ret;

	if (req > UINT32_MAX)
		return -ENOENT;
	v = realloc(k->out, (k->nr_out + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	k->out = v;
	serve_nmig_hook("migrate", id);
	ret = serve_nmig_start(k->n, id, (uint32_t)req, to);
	if (ret)
		return ret;
	v = &k->out[k->nr_out++];
	*v = (struct kvd_departure) { .id = id, .h = (uint32_t)req, .status = 1 };
	snprintf(v->to, sizeof(v->to), "%s", to);
	return 0;
}

static void kvd_abort(void *arg, uint64_t id)
{
	serve_nmig_abort(((struct serve_kvd *)arg)->n, id);
}

static void kvd_exit(void *arg)
{
	((struct serve_kvd *)arg)->exit_asked = true;
}

int serve_kvd_receive(void *arg, const struct accel_handoff *h)
{
	struct serve_kvd *k = arg;
	int ret;

	if (serve_moe_peer_is_msg(h))
		return serve_moe_peer_receive(k->mp, k->d ? serve_engine_moe(serve_driver_engine(k->d)) :
					      NULL, h);
	if (!k->n || !h->count || h->kinds[0] != ACCEL_HANDOFF_MEMFD)
		return -EOPNOTSUPP;
	ret = serve_nmig_receive(k->n, h->from, h->fds, h->kinds, h->count);
	if (ret)
		return ret;	/* refused: the library closes the fds */
	for (unsigned int i = 0; i < h->count; i++)
		close(h->fds[i]);
	return 0;
}

void serve_kvd_handoff_done(void *arg, uint64_t tag, int status)
{
	struct serve_kvd *k = arg;

	if (serve_moe_peer_sent(k->mp, tag, status))
		return;
	if (k->n)
		serve_nmig_sent(k->n, tag, status);
}

int serve_kvd_migrations(struct serve_kvd *k, struct accel_tier *tier0)
{
	static const struct serve_nmig_ops nops = { .send = kvd_send, .done = kvd_done,
						    .arrived = kvd_arrived };
	ACCEL_OPTS(accel_engine_migration_ops, mops, .migrate = kvd_migrate,
		   .migrate_abort = kvd_abort, .exit = kvd_exit,
		   .migrate_remote = k && k->xn ? serve_kvd_migrate_remote : NULL);
	ACCEL_OPTS(accel_tier_info, ti);
	int ret;

	if (!k || k->n)
		return -EINVAL;
	/* The block size in the loads: destinations on other nodes must have the same. */
	if (!accel_tier_info(tier0, &ti))
		k->block_bytes = ti.block_bytes;
	k->n = serve_nmig_create(k->d, tier0, &nops, k);
	if (!k->n)
		return -errno;
	ret = accel_engine_set_migration_ops(k->e, &mops, k);
	if (ret) {
		serve_nmig_destroy(k->n);
		k->n = NULL;
	} else {
		serve_kvd_xfer_announce(k);
	}
	return ret;
}

/* The load the daemon's policy reads: the compute tier, the queues, the decodes it could move. */
static void report_load(struct serve_kvd *k)
{
	struct accel_engine_load_req reqs[ACCEL_ENGINE_LOAD_REQS_MAX];
	ACCEL_OPTS(accel_sched_stats, st);
	ACCEL_OPTS(accel_engine_load, ld);
	uint32_t used, total, h = 0, n = 0, hol = 0;
	uint32_t bt = serve_engine_block_tokens(serve_driver_engine(k->d));

	serve_driver_usage(k->d, 0, &used, &total);
	serve_driver_stats(k->d, &st);
	while ((h = serve_driver_next(k->d, h))) {
		struct serve_driver_info in;

		if (serve_driver_info(k->d, h, &in))
			continue;
		if (in.sched.state == ACCEL_SCHED_WAITING && !hol)
			hol = in.req.n_prompt / bt + 1;
		if (in.sched.state != ACCEL_SCHED_DECODING || n == ACCEL_ENGINE_LOAD_REQS_MAX)
			continue;
		reqs[n++] = (struct accel_engine_load_req) {
			.req = h, .tokens = in.req.n_tokens, .blocks = in.req.blocks,
			.priority = -in.req.priority,	/* the daemon's: higher is more important */
		};
	}
	ld.block_bytes = k->block_bytes;
	ld.blocks_total = total;
	ld.blocks_free = used < total ? total - used : 0;
	ld.running = st.in_state[ACCEL_SCHED_PREFILLING] + st.in_state[ACCEL_SCHED_DECODING] +
		     st.in_state[ACCEL_SCHED_SWAPPING_OUT] + st.in_state[ACCEL_SCHED_SWAPPING_IN];
	ld.waiting = st.in_state[ACCEL_SCHED_WAITING] + st.in_state[ACCEL_SCHED_RECOMPUTE] +
		     st.in_state[ACCEL_SCHED_SWAPPED];
	ld.hol_blocks = ld.waiting ? (hol ? hol : 1) : 0;
	if (ld.hol_blocks > total)
		ld.hol_blocks = total;
	ld.reqs = reqs;
	ld.nreqs = n;
	for (uint32_t i = 0; i < n; i++)
		if (reqs[i].blocks > total)
			reqs[i].blocks = total;
	accel_engine_report_load(k->e, &ld);
}

void serve_kvd_step(struct serve_kvd *k)
{
	uint64_t now;

	if (!k)
		return;
	now = mono_ns();
	if (accel_engine_fd(k->e) < 0 && now - k->last_reconnect_ns >= 100000000ull) {
		/* The daemon went away: back when it is (hand-offs pending are sent again). */
		k->last_reconnect_ns = now;
		if (!accel_engine_reconnect(k->e))
			fprintf(stderr, "kvaccel-serve: kvacceld is back: registered again\n");
	}
	serve_moe_peer_step(k->mp);
	if (!k->n)
		return;
	serve_nmig_step(k->n);
	serve_kvd_xstep(k);
	if (now - k->last_load_ns >= 50000000ull) {
		k->last_load_ns = now;
		report_load(k);
	}
}

bool serve_kvd_exit_asked(const struct serve_kvd *k)
{
	return k && k->exit_asked;
}

unsigned int serve_kvd_pending(const struct serve_kvd *k)
{
	return k ? serve_nmig_pending(k->n) + serve_kvd_xpending(k) + serve_moe_peer_pending(k->mp) :
		   0;
}

uint32_t serve_kvd_arrival(const struct serve_kvd *k, uint32_t i, const char **from,
			   const struct serve_migr_hdr **hdr, const struct serve_nmig_stats **st)
{
	if (!k || i >= k->nr_in)
		return 0;
	*from = k->in[i].from;
	*hdr = k->in[i].hdr;
	*st = &k->in[i].st;
	return k->in[i].h;
}

const char *serve_kvd_departure(const struct serve_kvd *k, uint32_t h, int *status,
				const struct serve_nmig_stats **st)
{
	for (uint32_t i = k ? k->nr_out : 0; i--;) {	/* its latest migration */
		if (k->out[i].h == h && k->out[i].status != 1) {
			*status = k->out[i].status;
			*st = &k->out[i].st;
			return k->out[i].to;
		}
	}
	return NULL;
}

void serve_kvd_migrations_end(struct serve_kvd *k)
{
	serve_kvd_xfer_end(k);
	serve_nmig_destroy(k->n);
	k->n = NULL;
	for (uint32_t i = 0; i < k->nr_in; i++)
		free(k->in[i].hdr);
	free(k->in);
	free(k->out);
	k->in = NULL;
	k->out = NULL;
	k->nr_in = k->nr_out = 0;
}
