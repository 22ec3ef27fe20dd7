// SPDX-License-Identifier: GPL-2.0-only
/*
 * The scheduler against a model: seeded random arrivals, aborts, partial
 * computes, yields, early finishes, pressure rounds and swap completions
 * (some failing, some late) under each policy; after every step the
 * invariants are checked:
 *   - the token budget and the cap on running requests hold, runs are
 *     distinct, each one's tokens are the request's next ones and its
 *     block table covers them on tier 0;
 *   - every state change the step reports starts from the state the model
 *     holds (so no request is in two states), is a legal transition, and
 *     the model's states equal the scheduler's and its per-state counts;
 *   - the block manager's own consistency check (bm_check);
 *   - priority: no request more than the threshold less urgent than the
 *     most urgent waiting one is admitted while it waits, nor runs in a
 *     step that had room for it (Documentation/scheduler.rst, "Priority
 *     inversion");
 * and at the end, with arrivals stopped, every request finishes.
 * SCHED_MODEL_SEED=N replays a run (the seed is printed), SCHED_MODEL_STEPS=N
 * sets its length per policy (default 2500).
 */
#include <time.h>

#include "sched_common.h"
#include "sched/sched.h"

#define MAXREQ	4096

struct mreq {
	bool live;
	uint32_t state;
	uint64_t tag;
	uint32_t prompt, max_output;
	int32_t prio;
	uint64_t known;		/* prompt + generated */
	uint64_t admitted_step;
	bool preempted_now;
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n ? (uint32_t)(rng_state % n) : 0;
}

static bool legal(uint32_t from, uint32_t to)
{
	static const uint16_t ok[ACCEL_SCHED_NR_STATES] = {
		[ACCEL_SCHED_WAITING] = 1u << ACCEL_SCHED_PREFILLING | 1u << ACCEL_SCHED_ABORTED,
		[ACCEL_SCHED_PREFILLING] = 1u << ACCEL_SCHED_DECODING |
			1u << ACCEL_SCHED_SWAPPING_OUT | 1u << ACCEL_SCHED_SWAPPED |
			1u << ACCEL_SCHED_RECOMPUTE | 1u << ACCEL_SCHED_FINISHED |
			1u << ACCEL_SCHED_ABORTED,
		[ACCEL_SCHED_DECODING] = 1u << ACCEL_SCHED_SWAPPING_OUT |
			1u << ACCEL_SCHED_SWAPPED |
			1u << ACCEL_SCHED_RECOMPUTE | 1u << ACCEL_SCHED_FINISHED |
			1u << ACCEL_SCHED_ABORTED,
		[ACCEL_SCHED_SWAPPING_OUT] = 1u << ACCEL_SCHED_SWAPPED |
			1u << ACCEL_SCHED_RECOMPUTE | 1u << ACCEL_SCHED_ABORTED,
		[ACCEL_SCHED_SWAPPED] = 1u << ACCEL_SCHED_SWAPPING_IN |
			1u << ACCEL_SCHED_PREFILLING |
			1u << ACCEL_SCHED_DECODING | 1u << ACCEL_SCHED_RECOMPUTE |
			1u << ACCEL_SCHED_ABORTED,
		[ACCEL_SCHED_SWAPPING_IN] = 1u << ACCEL_SCHED_PREFILLING |
			1u << ACCEL_SCHED_DECODING | 1u << ACCEL_SCHED_SWAPPED |
			1u << ACCEL_SCHED_ABORTED,
		[ACCEL_SCHED_RECOMPUTE] = 1u << ACCEL_SCHED_PREFILLING | 1u << ACCEL_SCHED_ABORTED,
	};

	return from < ACCEL_SCHED_NR_STATES && to < ACCEL_SCHED_NR_STATES &&
	       (ok[from] >> to & 1);
}

struct run_ctx {
	struct eng e;
	struct accel_sched_config cfg;
	struct mreq m[MAXREQ];
	uint32_t swaps_out[MAXREQ];	/* outstanding swaps: requests */
	uint32_t nr_swaps;
	uint64_t step;
	uint64_t tag;
};

static bool in_queue(uint32_t st)
{
	return st == ACCEL_SCHED_WAITING || st == ACCEL_SCHED_RECOMPUTE;
}

static void check_step(struct run_ctx *c)
{
	struct eng *e = &c->e;
	ACCEL_OPTS(accel_sched_stats, st);
	uint32_t counts[ACCEL_SCHED_NR_STATES] = { 0 };
	static uint8_t seen[MAXREQ];
	uint32_t i, active = 0, total = 0, w = UINT32_MAX;
	uint64_t tokens = 0;
	bool admitted_worse = false, swapping_out = false;
	char why[256];

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < MAXREQ; i++)
		c->m[i].preempted_now = false;
	/* Events: each starts where the model is. */
	assert_int_equal(e->out.events_left, 0);
	for (i = 0; i < e->out.nr_events; i++) {
		const struct accel_sched_event *ev = &e->events[i];
		struct mreq *m = &c->m[ev->req];

		assert_true(ev->req < MAXREQ && m->live);
		if (m->state != ev->from)
			fail_msg("step %llu: request %u goes %u->%u, the model has it in %u",
				 (unsigned long long)c->step, ev->req, ev->from, ev->to, m->state);
		if (!legal(ev->from, ev->to))
			fail_msg("step %llu: request %u: illegal %u->%u",
				 (unsigned long long)c->step, ev->req, ev->from, ev->to);
		m->state = ev->to;
		if (ev->to == ACCEL_SCHED_RECOMPUTE || ev->to == ACCEL_SCHED_SWAPPING_OUT ||
		    ev->to == ACCEL_SCHED_SWAPPED)
			m->preempted_now = true;
		if (ev->to == ACCEL_SCHED_PREFILLING && in_queue(ev->from))
			m->admitted_step = c->step;
		if (ev->to == ACCEL_SCHED_SWAPPING_IN)
			m->admitted_step = c->step;
	}
	/* The model equals the scheduler (every change came as an event). */
	for (i = 0; i < MAXREQ; i++) {
		if (!c->m[i].live)
			continue;
		assert_int_equal(eng_state(e, i), c->m[i].state);
		counts[c->m[i].state]++;
		total++;
		if (c->m[i].state == ACCEL_SCHED_PREFILLING ||
		    c->m[i].state == ACCEL_SCHED_DECODING ||
		    c->m[i].state == ACCEL_SCHED_SWAPPING_IN)
			active++;
		if (c->m[i].state == ACCEL_SCHED_SWAPPING_OUT)
			swapping_out = true;
	}
	assert_int_equal(accel_sched_stats(e->s, &st), 0);
	assert_int_equal(st.requests, total);
	for (i = 0; i < ACCEL_SCHED_NR_STATES; i++)
		assert_int_equal(st.in_state[i], counts[i]);
	assert_true(active <= c->cfg.max_seqs);
	/* Runs: budget, distinct, the next tokens, covered by the table. */
	assert_true(e->out.nr_runs <= c->cfg.max_seqs);
	for (i = 0; i < e->out.nr_runs; i++) {
		const struct accel_sched_run *r = &e->runs[i];
		ACCEL_OPTS(accel_bm_seq_info, si);
		ACCEL_OPTS(accel_sched_req_info, info);
		int32_t tok[64];
		uint32_t k;

		assert_true(r->req < MAXREQ && !seen[r->req]);
		seen[r->req] = 1;
		assert_true(c->m[r->req].state == ACCEL_SCHED_PREFILLING ||
			    c->m[r->req].state == ACCEL_SCHED_DECODING);
		assert_true(r->tokens >= 1);
		if (c->m[r->req].state == ACCEL_SCHED_DECODING)
			assert_int_equal(r->tokens, 1);
		tokens += r->tokens;
		assert_int_equal(accel_sched_req_info(e->s, r->req, &info), 0);
		assert_int_equal(info.computed, r->start);
		assert_true(r->start + r->tokens <= c->m[r->req].known);
		assert_int_equal(!!(r->flags & ACCEL_SCHED_RUN_SAMPLE),
				 r->start + r->tokens == c->m[r->req].known);
		assert_true(r->tokens <= 64);
		assert_int_equal(accel_sched_tokens(e->s, r->req, r->start, r->tokens, tok), 0);
		for (k = 0; k < r->tokens; k++)
			assert_int_equal(tok[k], eng_token(c->m[r->req].tag, r->start + k));
		assert_int_equal(accel_bm_seq_info(e->bm, r->seq, &si), 0);
		assert_int_equal(si.tier, 0);
		assert_true((uint64_t)si.nr_blocks * 4 >= r->start + r->tokens);
	}
	assert_int_equal(tokens, e->out.tokens);
	assert_true(tokens <= c->cfg.max_tokens);
	for (i = 0; i < e->out.nr_swaps; i++) {
		uint32_t q = e->swaps[i].req;

		assert_int_equal(c->m[q].state, e->swaps[i].dir == ACCEL_SCHED_SWAP_OUT ?
				 ACCEL_SCHED_SWAPPING_OUT : ACCEL_SCHED_SWAPPING_IN);
	}
	/* Queues: each queued request where its index says, heaps ordered. */
	for (i = 0; i < MAXREQ; i++) {
		struct accel_sched *s = e->s;
		uint32_t want = 0;

		if (!c->m[i].live)
			continue;
		if (in_queue(c->m[i].state))
			want = 1;
		else if (c->m[i].state == ACCEL_SCHED_SWAPPED)
			want = 2;
		if (s->req[i].inq != want)
			fail_msg("step %llu: request %u in state %u is in queue %u",
				 (unsigned long long)c->step, i, c->m[i].state, s->req[i].inq);
		if (want && c->cfg.policy != ACCEL_SCHED_FAIR) {
			struct squeue *q = want == 1 ? &s->waitq : &s->swapq;

			assert_true(s->req[i].hidx < q->n && q->heap[s->req[i].hidx] == i);
			if (s->req[i].hidx) {
				uint32_t up = q->heap[(s->req[i].hidx - 1) / 2];

				assert_false(s->ops->before(s, &s->req[i], &s->req[up]));
			}
		}
	}
	if (bm_check(e->bm, why, sizeof(why)))
		fail_msg("step %llu: bm_check: %s", (unsigned long long)c->step, why);

	/* Priority inversion (the documented bound). */
	if (c->cfg.policy != ACCEL_SCHED_PRIORITY)
		return;
	for (i = 0; i < MAXREQ; i++) {
		struct mreq *m = &c->m[i];

		if (!m->live || !in_queue(m->state) || m->preempted_now)
			continue;
		if (w == UINT32_MAX || m->prio < c->m[w].prio)
			w = i;
	}
	if (w == UINT32_MAX)
		return;
	for (i = 0; i < MAXREQ; i++) {
		struct mreq *m = &c->m[i];

		if (!m->live || m->admitted_step != c->step || !m->admitted_step)
			continue;
		if ((int64_t)m->prio - c->m[w].prio > (int64_t)c->cfg.priority_threshold)
			admitted_worse = true;
	}
	if (admitted_worse)
		fail_msg("step %llu: priority %d admitted while %u (priority %d) waits",
			 (unsigned long long)c->step, 0, w, c->m[w].prio);
	if (swapping_out || e->out.tokens == c->cfg.max_tokens)
		return;
	for (i = 0; i < MAXREQ; i++) {
		struct mreq *m = &c->m[i];

		if (m->live && m->preempted_now)
			return;	/* a growth preemption: no admission in this step */
	}
	for (i = 0; i < MAXREQ; i++) {
		struct mreq *m = &c->m[i];

		if (!m->live || (m->state != ACCEL_SCHED_PREFILLING &&
				 m->state != ACCEL_SCHED_DECODING))
			continue;
		if ((int64_t)m->prio - c->m[w].prio > (int64_t)c->cfg.priority_threshold) {
			ACCEL_OPTS(accel_sched_req_info, wi);
			ACCEL_OPTS(accel_bm_tier_stats, ts);
			uint32_t k;

			accel_sched_req_info(e->s, w, &wi);
			accel_bm_tier_stats(e->bm, 0, &ts);
			printf("# w: state %u tokens %llu; runs %u tokens %u; "
			       "tier 0 free %u cached %u "
			       "used %u; threshold %u preempt %u\n", wi.state,
			       (unsigned long long)wi.nr_tokens, e->out.nr_runs, e->out.tokens,
			       ts.free, ts.cached, ts.used, c->cfg.priority_threshold,
			       c->cfg.preempt);
			for (k = 0; k < MAXREQ; k++)
				if (c->m[k].live && c->m[k].state != ACCEL_SCHED_FINISHED &&
				    c->m[k].state != ACCEL_SCHED_ABORTED)
					printf("#  %u: state %u prio %d\n", k, c->m[k].state,
					       c->m[k].prio);
			fail_msg("step %llu: %u (priority %d) runs while %u (priority %d) waits",
				 (unsigned long long)c->step, i, m->prio, w, c->m[w].prio);
		}
	}
}

static void engine_compute(struct run_ctx *c, bool calm)
{
	struct eng *e = &c->e;
	uint32_t i;

	for (i = 0; i < e->out.nr_runs; i++) {
		const struct accel_sched_run *r = &e->runs[i];
		struct mreq *m = &c->m[r->req];
		ACCEL_OPTS(accel_sched_result, res, .computed = r->tokens);
		uint32_t dice = calm ? 99 : rnd(100);

		if (dice < 5 && (r->flags & ACCEL_SCHED_RUN_PREFILL)) {
			res.computed = 0;
			res.layers_done = 1 + rnd(3);
			res.flags = ACCEL_SCHED_RES_YIELDED;
		} else if (dice < 10 && r->tokens > 1) {
			res.computed = rnd(r->tokens);	/* part of it, not to the end */
		} else if (r->flags & ACCEL_SCHED_RUN_SAMPLE) {
			res.flags = ACCEL_SCHED_RES_TOKEN;
			res.token = eng_token(m->tag, r->start + r->tokens);
			if (dice < 13)
				res.flags |= ACCEL_SCHED_RES_FINISHED;
		}
		assert_int_equal(accel_sched_update(e->s, r->req, &res, e->now), 0);
		if (res.flags & ACCEL_SCHED_RES_TOKEN)
			m->known++;
	}
}

static void add_one(struct run_ctx *c)
{
	struct eng *e = &c->e;
	uint32_t len = 1 + rnd(40), out = 1 + rnd(20), req, flags = 0;
	uint64_t ttft = 0, tpot = 0;
	int32_t prio = (int32_t)rnd(20);
	int ret;

	if (rnd(4) == 0)
		flags |= ACCEL_SCHED_REQ_OFFLINE;
	if (rnd(2))
		ttft = 1000000ull * (1 + rnd(200));
	if (rnd(2))
		tpot = 1000000ull * (1 + rnd(50));
	c->tag++;
	ret = eng_add(e, c->tag, len, out, prio, rnd(4), flags, ttft, tpot, &req);
	if (ret == -ENOSPC)
		return;
	assert_int_equal(ret, 0);
	assert_true(req < MAXREQ && !c->m[req].live);
	c->m[req] = (struct mreq){ .live = true, .state = ACCEL_SCHED_WAITING, .tag = c->tag,
				   .prompt = len, .max_output = out, .prio = prio, .known = len };
}

static void swaps_progress(struct run_ctx *c, bool calm)
{
	struct eng *e = &c->e;
	uint32_t i;

	for (i = 0; i < e->out.nr_swaps; i++)
		c->swaps_out[c->nr_swaps++] = e->swaps[i].req;
	for (i = 0; i < c->nr_swaps; ) {
		uint32_t q = c->swaps_out[i];
		int status = 0;

		if (!calm && rnd(2)) {
			i++;
			continue;
		}
		if (!calm && rnd(10) == 0)
			status = -EIO;
		assert_int_equal(accel_sched_swap_done(e->s, q, status, e->now), 0);
		c->swaps_out[i] = c->swaps_out[--c->nr_swaps];
	}
}

static void run_policy(uint32_t policy, uint64_t seed, uint32_t steps)
{
	struct run_ctx *c = calloc(1, sizeof(*c));
	uint32_t i, left;

	assert_non_null(c);
	rng_state = seed * 2654435761u + policy + 1;
	c->cfg = (struct accel_sched_config){ .sz = sizeof(c->cfg), .policy = policy,
					      .max_tokens = 48, .max_seqs = 8, .chunk_tokens = 16,
					      .max_requests = MAXREQ, .max_clients = 4,
					      .priority_threshold = rnd(4) };
	c->cfg.preempt = rnd(3);
	c->cfg.victim = rnd(2);
	c->cfg.swap_bw = rnd(2) ? (1ull << 30) * (1 + rnd(100)) : 0;
	c->cfg.step_ns = 1000000;
	eng_init(&c->e, 4, 64, 128, &c->cfg);
	c->e.now = 1000000;
	for (c->step = 1; c->step <= steps; c->step++) {
		uint32_t n = rnd(3);

		while (n--)
			add_one(c);
		if (rnd(50) == 0) {
			for (i = 0; i < 8; i++) {
				uint32_t q = rnd(MAXREQ);

				if (c->m[q].live && c->m[q].state != ACCEL_SCHED_FINISHED &&
				    c->m[q].state != ACCEL_SCHED_ABORTED) {
					int r = accel_sched_abort(c->e.s, q, c->e.now);

					/* -EALREADY: finished at an update (seen next step). */
					assert_true(r == 0 || r == -EALREADY);
					break;
				}
			}
		}
		if (rnd(40) == 0) {
			ACCEL_OPTS(accel_sched_release_out, ro);

			assert_int_equal(accel_sched_release(c->e.s, rnd(2), 1 + rnd(16), c->e.now,
							     &ro), 0);
		}
		/* Forget some finished requests (finished as far as the model knows). */
		for (i = 0; i < MAXREQ; i++)
			if (c->m[i].live && (c->m[i].state == ACCEL_SCHED_FINISHED ||
					     c->m[i].state == ACCEL_SCHED_ABORTED) && rnd(4) == 0) {
				assert_int_equal(accel_sched_remove(c->e.s, i), 0);
				c->m[i].live = false;
			}
		assert_int_equal(eng_step(&c->e), 0);
		check_step(c);
		c->e.now += 1000000;
		engine_compute(c, false);
		swaps_progress(c, false);
	}
	/* Drain: no arrivals, no failures; everything must finish. */
	for (left = 1, i = 0; i < 20000 && left; i++, c->step++) {
		uint32_t q;

		assert_int_equal(eng_step(&c->e), 0);
		check_step(c);
		c->e.now += 1000000;
		engine_compute(c, true);
		swaps_progress(c, true);
		for (left = 0, q = 0; q < MAXREQ; q++)
			left += c->m[q].live && eng_state(&c->e, q) != ACCEL_SCHED_FINISHED &&
				eng_state(&c->e, q) != ACCEL_SCHED_ABORTED;
	}
	for (i = 0, left = 0; i < MAXREQ && left < 20; i++) {
		ACCEL_OPTS(accel_sched_req_info, info);

		if (!c->m[i].live || eng_state(&c->e, i) == ACCEL_SCHED_FINISHED ||
		    eng_state(&c->e, i) == ACCEL_SCHED_ABORTED)
			continue;
		accel_sched_req_info(c->e.s, i, &info);
		if (info.state == ACCEL_SCHED_WAITING || info.state == ACCEL_SCHED_RECOMPUTE)
			continue;
		printf("# stuck %u: state %u prio %d tokens %llu computed %llu "
		       "output %llu max %u\n", i,
		       info.state, info.priority, (unsigned long long)info.nr_tokens,
		       (unsigned long long)info.computed, (unsigned long long)info.output_tokens,
		       c->m[i].max_output);
		left++;
	}
	if (left)
		printf("# pending_free0 %llu pend_swaps %u outstanding %u\n",
		       (unsigned long long)c->e.s->pending_free0, c->e.s->nr_pend_swaps,
		       c->nr_swaps);
	if (left)
		fail_msg("%s: %u requests never finished", accel_sched_policy_name(policy), left);
	printf("# %s: %llu steps, every request finished\n", accel_sched_policy_name(policy),
	       (unsigned long long)c->step);
	eng_fini(&c->e);
	free(c);
}

static uint64_t seed_get(void)
{
	static uint64_t seed;
	const char *env = getenv("SCHED_MODEL_SEED");

	if (!seed) {
		seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
		if (!seed)
			seed = 1;
		printf("# seed %llu (SCHED_MODEL_SEED=%llu replays)\n", (unsigned long long)seed,
		       (unsigned long long)seed);
	}
	return seed;
}

static uint32_t steps_get(void)
{
	const char *env = getenv("SCHED_MODEL_STEPS");

	return env ? (uint32_t)strtoul(env, NULL, 0) : 2500;
}

#define POLICY_TEST(name, pol) \
	static void test_model_##name(void **state) \
	{ \
		(void)state; \
		run_policy(pol, seed_get(), steps_get()); \
	}
POLICY_TEST(fcfs, ACCEL_SCHED_FCFS)
POLICY_TEST(priority, ACCEL_SCHED_PRIORITY)
POLICY_TEST(slo, ACCEL_SCHED_SLO)
POLICY_TEST(fair, ACCEL_SCHED_FAIR)
POLICY_TEST(hybrid, ACCEL_SCHED_HYBRID)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_fcfs),
		cmocka_unit_test(test_model_priority),
		cmocka_unit_test(test_model_slo),
		cmocka_unit_test(test_model_fair),
		cmocka_unit_test(test_model_hybrid),
	};

	seed_get();
	return cmocka_run_group_tests_name("sched_model", tests, NULL, NULL);
}
