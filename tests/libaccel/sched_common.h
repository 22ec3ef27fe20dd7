/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What sched_unit.c and sched_model.c share: a block manager and a
 * scheduler, and a toy engine that computes every run it is given
 * (tokens: a function of the request and the position).
 */
#ifndef SCHED_COMMON_H
#define SCHED_COMMON_H

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "accel.h"
#include "bm/bm.h"

#define ENG_MAX		4096

struct eng {
	struct accel_bm *bm;
	struct accel_sched *s;
	struct accel_sched_run runs[ENG_MAX];
	struct accel_sched_swap swaps[ENG_MAX];
	struct accel_sched_event events[ENG_MAX];
	struct accel_sched_out out;
	uint64_t now;
};

static inline int32_t eng_token(uint64_t tag, uint64_t pos)
{
	return (int32_t)((tag * 2654435761u + pos * 40503u) % 50000);
}

static inline void eng_init(struct eng *e, uint32_t bt, uint32_t dev_blocks,
			    uint32_t host_blocks, struct accel_sched_config *cfg)
{
	uint32_t blocks[2] = { dev_blocks, host_blocks };
	ACCEL_OPTS(accel_bm_config, bc, .block_tokens = bt, .nr_tiers = host_blocks ? 2 : 1,
		   .tier_blocks = blocks);

	memset(e, 0, sizeof(*e));
	e->bm = accel_bm_create(&bc);
	assert_non_null(e->bm);
	cfg->sz = sizeof(*cfg);
	cfg->bm = e->bm;
	e->s = accel_sched_create(cfg);
	assert_non_null(e->s);
	e->now = 1000;
}

static inline void eng_fini(struct eng *e)
{
	char why[256];

	accel_sched_destroy(e->s);
	assert_int_equal(bm_check(e->bm, why, sizeof(why)), 0);
	accel_bm_destroy(e->bm);
}

static inline int eng_add(struct eng *e, uint64_t tag, uint32_t len, uint32_t max_output,
			  int32_t prio, uint32_t client, uint32_t flags, uint64_t ttft,
			  uint64_t tpot, uint32_t *req)
{
	int32_t *p = malloc(len * sizeof(*p));
	uint32_t i;
	int ret;

	assert_non_null(p);
	for (i = 0; i < len; i++)
		p[i] = eng_token(tag, i);
	ACCEL_OPTS(accel_sched_req_opts, o, .tag = tag, .prompt = p, .prompt_len = len,
		   .max_output = max_output, .priority = prio, .client = client,
		   .flags = flags, .arrival_ns = e->now, .ttft_slo_ns = ttft,
		   .tpot_slo_ns = tpot);
	ret = accel_sched_add(e->s, &o, req);
	free(p);
	return ret;
}

static inline int eng_step(struct eng *e)
{
	e->out = (struct accel_sched_out){ .sz = sizeof(e->out), .runs = e->runs,
					   .max_runs = ENG_MAX, .swaps = e->swaps,
					   .max_swaps = ENG_MAX, .events = e->events,
					   .max_events = ENG_MAX };
	return accel_sched_step(e->s, e->now, &e->out);
}

/* Compute every run in full: a token where one is to be sampled. */
static inline void eng_compute(struct eng *e)
{
	uint32_t i;

	for (i = 0; i < e->out.nr_runs; i++) {
		const struct accel_sched_run *r = &e->runs[i];
		ACCEL_OPTS(accel_sched_result, res, .computed = r->tokens);

		if (r->flags & ACCEL_SCHED_RUN_SAMPLE) {
			res.flags = ACCEL_SCHED_RES_TOKEN;
			res.token = eng_token(r->tag, r->start + r->tokens);
		}
		assert_int_equal(accel_sched_update(e->s, r->req, &res, e->now), 0);
	}
}

/* Complete every swap of the last step (@status). */
static inline void eng_swaps(struct eng *e, int status)
{
	uint32_t i;

	for (i = 0; i < e->out.nr_swaps; i++)
		assert_int_equal(accel_sched_swap_done(e->s, e->swaps[i].req, status, e->now), 0);
}

static inline uint32_t eng_state(struct eng *e, uint32_t req)
{
	ACCEL_OPTS(accel_sched_req_info, info);

	assert_int_equal(accel_sched_req_info(e->s, req, &info), 0);
	return info.state;
}

/* The run of @req in the last step, or NULL. */
static inline const struct accel_sched_run *eng_run(struct eng *e, uint32_t req)
{
	uint32_t i;

	for (i = 0; i < e->out.nr_runs; i++)
		if (e->runs[i].req == req)
			return &e->runs[i];
	return NULL;
}

/* Step, compute, swaps done, @n times (time advances 1 ms a step). */
static inline void eng_run_steps(struct eng *e, int n)
{
	while (n--) {
		assert_int_equal(eng_step(e), 0);
		e->now += 1000000;
		eng_compute(e);
		eng_swaps(e, 0);
	}
}

#endif
