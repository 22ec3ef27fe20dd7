// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - libaccel's scheduler driving the engine (driver.h).
 *
 * A request is a driver slot (its handle, the scheduler's tag), a
 * scheduler request and, from the first step that saw it, an engine
 * request. serve_driver_add() may run on any thread: it checks the
 * request, fills a slot and adds it to the scheduler, which may make the
 * prefills running now yield; the engine thread creates the engine's
 * request after the step that may schedule it. Swaps run on the data
 * mover while the step computes (a swap-out's blocks stay reserved until
 * its completion is reported, a swapping-in request is not runnable); a
 * reaper thread reports each swap's end the moment the mover has it.
 *
 * Locking: d->lock guards the slots' allocation and their add-side fields
 * (used, pending, prompt); everything else belongs to the engine thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "driver_int.h"
#include "steplog.h"

static void *reap_main(void *arg);

static bool yield_hook(void *ctx, uint32_t id, uint32_t layer, uint32_t phase)
{
	struct serve_driver *d = ctx;

	if (d->o.also_yield && d->o.also_yield(d->o.also_ctx, id, layer, phase))
		return true;
	return accel_sched_should_yield(d->sched) > 0;
}

/* The driver's arrays and the driver. */
static void free_arrays(struct serve_driver *d)
{
	free(d->slot);
	free(d->runs);
	free(d->swaps);
	free(d->comp);
	free(d->offsets);
	free(d->ids);
	free(d->plan_runs);
	free(d->swap_t0);
	free(d->swap_blocks);
	free(d);
}

struct serve_driver *serve_driver_create(const struct serve_driver_opts *o)
{
	struct serve_driver *d;
	int err = ENOMEM;

	if (!o || !o->engine || !o->bm || !o->tiers[0] || !o->tiers[1] || !o->mover) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	d->o = *o;
	d->nr_slots = o->max_requests ? o->max_requests : 1024;
	/* A run takes a token of the budget at least: no step has more runs than that. */
	d->max_runs = o->max_tokens ? o->max_tokens : 256;
	if (o->max_seqs && o->max_seqs < d->max_runs)
		d->max_runs = o->max_seqs;
	d->max_ids = d->max_runs * 64;
	d->slot = calloc(d->nr_slots, sizeof(*d->slot));
	d->runs = calloc(d->max_runs, sizeof(*d->runs));
	d->swaps = calloc(d->nr_slots, sizeof(*d->swaps));
	d->comp = calloc(d->max_runs, sizeof(*d->comp));
	d->offsets = calloc(d->max_runs + 1, sizeof(*d->offsets));
	d->ids = calloc(d->max_ids, sizeof(*d->ids));
	if (!d->slot || !d->runs || !d->swaps || !d->comp || !d->offsets || !d->ids)
		goto fail;
	if (o->step_log) {
		d->log_t0 = now_ns();
		d->log_idle = true;
		d->swap_t0 = calloc(d->nr_slots, sizeof(*d->swap_t0));
		d->swap_blocks = calloc(d->nr_slots, sizeof(*d->swap_blocks));
		if (!d->swap_t0 || !d->swap_blocks)
			goto fail;
	}
	pthread_mutex_init(&d->lock, NULL);
	{
		ACCEL_OPTS(accel_sched_config, cfg, .bm = o->bm, .policy = o->policy,
			   .max_tokens = o->max_tokens ? o->max_tokens : 256,
			   .max_seqs = o->max_seqs, .chunk_tokens = o->chunk_tokens,
			   .max_requests = d->nr_slots, .preempt = o->preempt, .victim = o->victim,
			   .priority_threshold = o->priority_threshold,
			   .block_bytes = o->block_bytes, .max_clients = o->max_clients);

		d->sched = accel_sched_create(&cfg);
	}
	if (!d->sched) {
		err = errno;
		pthread_mutex_destroy(&d->lock);
		goto fail;
	}
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = d->stop_fd < 0 ? errno : pthread_create(&d->reaper, NULL, reap_main, d);
	if (err) {
		if (d->stop_fd >= 0)
			close(d->stop_fd);
		accel_sched_destroy(d->sched);
		pthread_mutex_destroy(&d->lock);
		goto fail;
	}
	d->reaper_started = true;
	if (o->yields)
		serve_engine_set_yield(o->engine, yield_hook, d);
	return d;
fail:
	free_arrays(d);
	errno = err;
	return NULL;
}

/* A swap's end, in the step log: its start and direction, its blocks, its time. */
static void log_swap(struct serve_driver *d, uint32_t req, int status)
{
	uint64_t t0 = d->swap_t0[req], blocks = d->swap_blocks[req];

	serve_steplog_write_swap(d->o.step_log, d->log_t0, t0 >> 63, blocks,
				 blocks * d->o.block_bytes, t0 & ~(1ull << 63), now_ns(), status);
}

/*
 * The reaper: waits on the mover's fd and reports each finished swap to the
 * scheduler at once (the cost model's bandwidth is measured to that
 * moment, and the request is runnable at the next step, whose poll the
 * report wakes). The only caller of accel_mover_poll().
 */
static void *reap_main(void *arg)
{
	struct serve_driver *d = arg;
	struct accel_mover_done done[16];
	struct pollfd p[2] = {
		{ .fd = accel_mover_fd(d->o.mover), .events = POLLIN },
		{ .fd = d->stop_fd, .events = POLLIN },
	};
	bool stopping = false;
	int got, i;

	for (;;) {
		got = accel_mover_poll(d->o.mover, done, 16, 0);
		for (i = 0; i < got; i++) {
			uint32_t req = (uint32_t)done[i].user_data;

			if (d->o.step_log && req < d->nr_slots)
				log_swap(d, req, done[i].status);
			accel_sched_swap_done(d->sched, (uint32_t)done[i].user_data, done[i].status,
					      now_ns());
			atomic_fetch_sub(&d->swaps_in_flight, 1);
			atomic_fetch_add(&d->swaps_ended, 1);
		}
		if (got > 0)
			continue;
		if (p[1].revents) {
			stopping = true;
			p[1].fd = -1;	/* from now on only the swaps still in flight */
		}
		if (stopping && !atomic_load(&d->swaps_in_flight))
			return NULL;
		while (poll(p, 2, -1) < 0 && errno == EINTR)
			;
	}
}

void serve_driver_destroy(struct serve_driver *d)
{
	uint32_t i;

	if (!d)
		return;
	if (d->reaper_started) {
		uint64_t one = 1;

		/* It ends once every swap in flight has ended. */
		if (write(d->stop_fd, &one, sizeof(one)) < 0)
			perror("kvaccel-serve: eventfd");
		pthread_join(d->reaper, NULL);
		close(d->stop_fd);
	}
	serve_engine_set_yield(d->o.engine, NULL, NULL);
	accel_sched_destroy(d->sched);
	for (i = 0; i < d->nr_slots; i++) {
		if (d->slot[i].eid)
			serve_engine_release(d->o.engine, d->slot[i].eid);
		free(d->slot[i].prompt);
	}
	pthread_mutex_destroy(&d->lock);
	free_arrays(d);
}

int serve_driver_add(struct serve_driver *d, const int32_t *prompt, uint32_t n,
		     const struct serve_params *p, uint32_t *h)
{
	struct dslot *s = NULL;
	int32_t *copy;
	uint32_t i;
	int ret;

	if (!d || !h)
		return -EINVAL;
	ret = serve_engine_check(d->o.engine, prompt, n, p);
	if (ret)
		return ret;
	copy = malloc(n * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, prompt, n * sizeof(*copy));
	pthread_mutex_lock(&d->lock);
	s = slot_new_locked(d, &i);
	if (!s) {
		pthread_mutex_unlock(&d->lock);
		free(copy);
		return -ENOSPC;
	}
	*s = (struct dslot) { .used = true, .pending = true, .prompt = copy, .n_prompt = n,
			      .p = *p, .gen = s->gen };
	{
		ACCEL_OPTS(accel_sched_req_opts, ro, .tag = tag_of(s, i + 1), .prompt = prompt,
			   .prompt_len = n, .max_output = p->max_tokens, .priority = p->priority,
			   .client = p->client, .arrival_ns = now_ns(),
			   .ttft_slo_ns = p->ttft_slo_us * 1000,
			   .tpot_slo_ns = p->tpot_slo_us * 1000,
			   .flags = p->offline ? ACCEL_SCHED_REQ_OFFLINE : 0);

		/* Under the lock: the slot is whole once the scheduler has it. */
		ret = accel_sched_add(d->sched, &ro, &s->sreq);
	}
	if (ret) {
		free(copy);
		*s = (struct dslot) { .gen = s->gen };
	} else {
		*h = i + 1;
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

int serve_driver_abort(struct serve_driver *d, uint32_t h)
{
	struct dslot *s;
	uint32_t sreq;
	uint8_t migr;

	if (!d)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	s = slot_of(d, h);
	sreq = s ? s->sreq : 0;
	migr = s ? s->migr : 0;
	pthread_mutex_unlock(&d->lock);
	if (!s)
		return -ENOENT;
	if (migr)
		return migr == SLOT_MIGR_GONE ? -EALREADY : -EBUSY;
	return accel_sched_abort(d->sched, sreq, now_ns());
}

int serve_driver_release(struct serve_driver *d, uint32_t h)
{
	struct dslot *s = d ? slot_of(d, h) : NULL;
	int ret;

	if (!s)
		return -ENOENT;
	if (s->migr == SLOT_MIGR_OUT)
		return -EBUSY;	/* its migration decides first */
	ret = s->migr ? 0 : accel_sched_remove(d->sched, s->sreq);
	if (ret)
		return ret;
	if (s->eid)
		serve_engine_release(d->o.engine, s->eid);
	pthread_mutex_lock(&d->lock);
	free(s->prompt);
	*s = (struct dslot) { .gen = s->gen };
	while (d->max_h && !d->slot[d->max_h - 1].used)
		d->max_h--;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Every slot added so far gets its engine request (the engine thread's). */
static void materialize(struct serve_driver *d)
{
	uint32_t i, max;

	pthread_mutex_lock(&d->lock);
	max = d->max_h;
	for (i = 0; i < max; i++) {
		struct dslot *s = &d->slot[i];

		if (!s->used || !s->pending)
			continue;
		s->pending = false;
		if (serve_engine_add(d->o.engine, s->prompt, s->n_prompt, &s->p, &s->eid)) {
			s->eid = 0;
			s->failed = true;
			accel_sched_abort(d->sched, s->sreq, now_ns());
		}
		free(s->prompt);
		s->prompt = NULL;
	}
	pthread_mutex_unlock(&d->lock);
}

static int grow_plan_runs(struct serve_driver *d, uint32_t n)
{
	struct accel_bm_run *r;

	if (n <= d->max_plan_runs)
		return 0;
	r = realloc(d->plan_runs, n * sizeof(*r));
	if (!r)
		return -ENOMEM;
	d->plan_runs = r;
	d->max_plan_runs = n;
	return 0;
}

/* Hand a swap's plan to the mover; one that cannot start is reported failed at once. */
static void start_swap(struct serve_driver *d, const struct accel_sched_swap *w,
		       struct serve_driver_step *st)
{
	ACCEL_OPTS(accel_mover_submit_opts, so, .user_data = w->req);
	uint64_t job;
	int ret = 0, n = 0;

	if (w->dir == ACCEL_SCHED_SWAP_OUT) {
		st->swaps_out++;
		st->swap_out_blocks += w->blocks;
	} else {
		st->swaps_in++;
		st->swap_in_blocks += w->blocks;
	}
	if (w->nr_runs) {
		ret = grow_plan_runs(d, w->nr_runs);
		if (!ret)
			n = accel_bm_plan_runs(d->o.bm, w->plan_id, 0, d->plan_runs, w->nr_runs);
		if (n < 0)
			ret = n;
	}
	if (!ret && n) {
		/* Counted first: the reaper may see it end before submit returns. */
		if (d->o.step_log && w->req < d->nr_slots) {
			/* The direction in the start's top bit (a monotonic time never has it). */
			d->swap_t0[w->req] = now_ns() |
					     (uint64_t)(w->dir == ACCEL_SCHED_SWAP_IN) << 63;
			d->swap_blocks[w->req] = w->blocks;
		}
		atomic_fetch_add(&d->swaps_in_flight, 1);
		ret = accel_mover_submit(d->o.mover, d->o.tiers, 2, d->plan_runs, (uint32_t)n, &so,
					 &job);
		if (!ret)
			return;
		atomic_fetch_sub(&d->swaps_in_flight, 1);
	}
	accel_sched_swap_done(d->sched, w->req, ret, now_ns());
}

static void on_events(struct serve_driver *d, const struct accel_sched_event *ev, uint32_t n,
		      struct serve_driver_step *st)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		struct dslot *s = slot_of_tag(d, ev[i].tag);

		if (ev[i].to != ACCEL_SCHED_FINISHED && ev[i].to != ACCEL_SCHED_ABORTED)
			continue;
		if (!s)
			continue;	/* the slot's request was released: its event is stale */
		st->finished += ev[i].to == ACCEL_SCHED_FINISHED;
		if (s->eid)
			serve_engine_finish(d->o.engine, s->eid);
	}
}

/*
 * The runs could not be computed: each is aborted (its update ends it), so
 * that the scheduler is not left waiting for them and the clients hear.
 */
static void fail_runs(struct serve_driver *d, uint32_t first, uint32_t n)
{
	uint32_t i;

	for (i = first; i < n; i++) {
		ACCEL_OPTS(accel_sched_result, res, .flags = ACCEL_SCHED_RES_FINISHED);

		accel_sched_abort(d->sched, d->runs[i].req, now_ns());
		accel_sched_update(d->sched, d->runs[i].req, &res, now_ns());
	}
}

/* The step's runs: block tables, the engine's compute, each result reported. */
static int compute(struct serve_driver *d, uint32_t n, struct serve_driver_step *st)
{
	uint32_t i;
	int ret;

	ret = accel_sched_block_tables(d->sched, d->runs, n, d->offsets, d->ids, d->max_ids);
	if (ret == -ENOBUFS) {
		uint32_t *ids = realloc(d->ids, d->offsets[n] * sizeof(*ids));

		if (!ids) {
			fail_runs(d, 0, n);
			return -ENOMEM;
		}
		d->ids = ids;
		d->max_ids = d->offsets[n];
		ret = accel_sched_block_tables(d->sched, d->runs, n, d->offsets, d->ids,
					       d->max_ids);
	}
	if (ret < 0) {
		fail_runs(d, 0, n);
		return ret;
	}
	for (i = 0; i < n; i++) {
		const struct accel_sched_run *r = &d->runs[i];
		struct dslot *s = slot_of_tag(d, r->tag);

		if (!s || !s->eid) {
			fail_runs(d, 0, n);
			return -EIO;
		}
		d->comp[i] = (struct serve_compute) {
			.id = s->eid, .n_tokens = r->tokens, .start = r->start,
			.table = d->ids + d->offsets[i],
			.nr_blocks = d->offsets[i + 1] - d->offsets[i],
			.resume_layer = r->flags & ACCEL_SCHED_RUN_RESUME ? r->start_layer : 0,
		};
	}
	ret = serve_engine_compute(d->o.engine, d->comp, n);
	if (ret) {
		fail_runs(d, 0, n);
		return ret;
	}
	for (i = 0; i < n; i++) {
		const struct serve_compute *c = &d->comp[i];
		ACCEL_OPTS(accel_sched_result, res);

		if (c->yielded) {
			res.layers_done = c->layers_done;
			res.flags = ACCEL_SCHED_RES_YIELDED;
			st->yielded++;
		} else {
			res.computed = c->n_tokens;
			st->tokens += c->n_tokens;
			if (c->sampled) {
				res.token = c->token;
				res.flags = ACCEL_SCHED_RES_TOKEN;
				st->sampled++;
			}
		}
		ret = accel_sched_update(d->sched, d->runs[i].req, &res, now_ns());
		if (ret) {
			/* Refused (a bug of ours): end it rather than stall the scheduler. */
			fail_runs(d, i, n);
			return ret;
		}
	}
	return 0;
}

/* The step's line (a step that ran something); a step that returned 0 marks the next line. */
static void log_step(struct serve_driver *d, struct serve_steplog_step *lg,
		     const struct serve_driver_step *st, uint64_t t_start, int ret)
{
	if (lg->runs) {
		lg->t_ns = t_start - d->log_t0;
		lg->step_ns = now_ns() - t_start;
		lg->yielded = st->yielded;
		lg->computed = st->tokens;
		lg->after_idle = d->log_idle;
		d->log_idle = false;
		serve_steplog_write_step(d->o.step_log, lg);
	}
	if (!ret)
		d->log_idle = true;
}

int serve_driver_step(struct serve_driver *d, struct serve_driver_step *stp)
{
	struct serve_driver_step st = { 0 };
	struct serve_steplog_step lg = { 0 };
	uint32_t i, tries, more = 0, changed = 0, reaped;
	uint64_t t_start = 0;
	int ret = 0;

	if (!d)
		return -EINVAL;
	if (d->o.step_log)
		t_start = now_ns();
	/*
	 * A step without runs may have paced decodes for a prefill that could
	 * not start, or only moved requests between states: step again.
	 */
	for (tries = 0; tries < 3; tries++) {
		ACCEL_OPTS(accel_sched_out, out, .runs = d->runs, .max_runs = d->max_runs,
			   .swaps = d->swaps, .max_swaps = d->nr_slots, .events = d->ev,
			   .max_events = 256);

		ret = accel_sched_step(d->sched, now_ns(), &out);
		if (ret)
			break;
		materialize(d);
		on_events(d, d->ev, out.nr_events, &st);
		for (i = 0; i < out.nr_swaps; i++)
			start_swap(d, &d->swaps[i], &st);
		st.runs = out.nr_runs;
		if (out.nr_runs && d->o.step_log) {
			for (i = 0; i < out.nr_runs; i++)
				serve_steplog_add_run(&lg, &d->runs[i]);
			lg.compute_ns = now_ns();
		}
		if (out.nr_runs)
			ret = compute(d, out.nr_runs, &st);
		if (out.nr_runs && d->o.step_log)
			lg.compute_ns = now_ns() - lg.compute_ns;
		more = out.events_left;
		changed += out.nr_events;
		if (ret || out.nr_runs || atomic_load(&d->swaps_in_flight) || out.nr_swaps)
			break;
	}
	if (stp)
		*stp = st;
	if (ret)
		return ret;
	/* A swap that finished may have made a request runnable. */
	reaped = atomic_exchange(&d->swaps_ended, 0);
	ret = st.runs || atomic_load(&d->swaps_in_flight) || st.swaps_in || st.swaps_out ||
	      st.finished || more || reaped || changed;
	if (d->o.step_log)
		log_step(d, &lg, &st, t_start, ret);
	return ret;
}

void serve_driver_wait(struct serve_driver *d, const int *fds, uint32_t n, int timeout_ms)
{
	/* A swap's end wakes the scheduler's fd (the reaper reports it). */
	struct pollfd p[5] = { { .fd = accel_sched_fd(d->sched), .events = POLLIN } };
	uint32_t i;

	for (i = 0; i < n && i < 4; i++)
		p[1 + i] = (struct pollfd) { .fd = fds[i], .events = POLLIN };
	while (poll(p, 1 + i, timeout_ms) < 0 && errno == EINTR)
		;
}

/* Requests neither finished nor aborted (in @ss, may be NULL), or -errno. */
static int64_t alive(struct serve_driver *d, struct accel_sched_stats *ss)
{
	struct accel_sched_stats own = { .sz = sizeof(own) };
	int ret;

	if (!ss)
		ss = &own;
	ret = accel_sched_stats(d->sched, ss);
	if (ret)
		return ret;
	return (int64_t)ss->requests - ss->in_state[ACCEL_SCHED_FINISHED] -
	       ss->in_state[ACCEL_SCHED_ABORTED];
}

int serve_driver_idle_ms(struct serve_driver *d)
{
	struct accel_sched_stats ss = { .sz = sizeof(ss) };
	uint64_t ms;

	if (alive(d, &ss) <= 0)
		return -1;
	ms = (ss.step_ns + 999999) / 1000000;
	return ms < 1 ? 1 : ms > 100 ? 100 : (int)ms;
}

int serve_driver_run_all(struct serve_driver *d, uint64_t *steps)
{
	uint32_t idle = 0;
	uint64_t n = 0;
	int64_t left;
	int ret;

	for (;;) {
		struct serve_driver_step st;

		ret = serve_driver_step(d, &st);
		if (ret < 0)
			break;
		n++;
		if (ret && !st.runs && atomic_load(&d->swaps_in_flight))
			serve_driver_wait(d, NULL, 0, 100);	/* a swap's end wakes it */
		if (ret) {
			idle = 0;
			continue;
		}
		left = alive(d, NULL);
		if (left <= 0) {
			ret = (int)left;
			break;
		}
		/* Alive but nothing to do now: the clock may change that (slo's pacing). */
		if (++idle > 1000) {
			ret = -EDEADLK;
			break;
		}
		serve_driver_wait(d, NULL, 0, serve_driver_idle_ms(d));
	}
	if (steps)
		*steps = n;
	return ret;
}

static uint32_t state_of(uint32_t st)
{
	switch (st) {
	case ACCEL_SCHED_PREFILLING:
	case ACCEL_SCHED_DECODING:
	case ACCEL_SCHED_SWAPPING_OUT:
		return SERVE_RUNNING;
	case ACCEL_SCHED_SWAPPED:
	case ACCEL_SCHED_SWAPPING_IN:
		return SERVE_SWAPPED;
	case ACCEL_SCHED_FINISHED:
	case ACCEL_SCHED_ABORTED:
		return SERVE_FINISHED;
	default:
		return SERVE_WAITING;
	}
}

int serve_driver_info(struct serve_driver *d, uint32_t h, struct serve_driver_info *info)
{
	struct dslot *s = d ? slot_of(d, h) : NULL;
	int ret = 0;

	if (!s || !info)
		return -ENOENT;
	memset(info, 0, sizeof(*info));
	info->sched.sz = sizeof(info->sched);
	if (s->migr)
		info->sched = s->sinfo;	/* out of the scheduler: its last word */
	else
		ret = accel_sched_req_info(d->sched, s->sreq, &info->sched);
	if (!s->migr && ret)
		return ret;
	if (s->eid) {
		ret = serve_engine_info(d->o.engine, s->eid, &info->req);
		if (ret)
			return ret;
	} else {
		info->req.n_prompt = s->n_prompt;
		info->req.n_tokens = s->n_prompt;
		info->req.max_tokens = s->p.max_tokens;
		info->req.priority = s->p.priority;
	}
	info->req.state = !s->migr ? state_of(info->sched.state) :
			  s->migr == SLOT_MIGR_OUT ? SERVE_RUNNING :
			  s->failed ? SERVE_FINISHED : SERVE_MIGRATED;
	info->req.swaps_out = info->sched.swaps_out;
	info->req.drops = info->sched.recomputes;
	info->req.yields = info->sched.yields;
	info->req.recomputed_tokens = info->sched.recomputed_tokens;
	return 0;
}

uint32_t serve_driver_next(struct serve_driver *d, uint32_t h)
{
	uint32_t next = 0;

	pthread_mutex_lock(&d->lock);
	for (h++; h <= d->max_h && !next; h++)
		if (d->slot[h - 1].used)
			next = h;
	pthread_mutex_unlock(&d->lock);
	return next;
}

int serve_driver_stats(struct serve_driver *d, struct accel_sched_stats *st)
{
	return accel_sched_stats(d->sched, st);
}

void serve_driver_usage(struct serve_driver *d, uint32_t tier, uint32_t *used, uint32_t *total)
{
	ACCEL_OPTS(accel_bm_tier_stats, ts);

	*used = *total = 0;
	if (accel_bm_tier_stats(d->o.bm, tier, &ts))
		return;
	*used = ts.used;
	*total = ts.blocks;
}

struct serve_engine *serve_driver_engine(struct serve_driver *d)
{
	return d->o.engine;
}

struct accel_sched *serve_driver_sched(struct serve_driver *d)
{
	return d->sched;
}

int serve_driver_pressure(struct serve_driver *d, uint64_t bytes, uint64_t *released)
{
	ACCEL_OPTS(accel_sched_release_out, ro);
	uint64_t bb = d->o.block_bytes ? d->o.block_bytes : 1;
	int ret;

	ret = accel_sched_release(d->sched, SERVE_TIER_COMPUTE, (bytes + bb - 1) / bb, now_ns(),
				  &ro);
	if (released)
		*released = ret ? 0 : (ro.freed + ro.pending) * bb;
	return ret;
}
