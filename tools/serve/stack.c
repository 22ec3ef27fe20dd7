// SPDX-License-Identifier: MIT
/* kvaccel-serve - tiers, block manager, mover and engine, made and freed together. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "forward.h"
#include "stack.h"

int serve_stack_create(struct serve_stack *s, const struct serve_stack_opts *o, char *err,
		       size_t errlen)
{
	uint32_t bt = o->block_tokens ? o->block_tokens : 16;
	uint32_t nb[2] = { o->blocks ? o->blocks : 64, o->swap_blocks ? o->swap_blocks : 64 };
	uint64_t bb = serve_kv_block_bytes(&o->model->cfg, bt);
	uint32_t i;
	int ret;

	memset(s, 0, sizeof(*s));
	if (bb > ACCEL_TIER_BLOCK_MAX) {
		snprintf(err, errlen, "a KV block of %llu bytes is over the tiers' %llu",
			 (unsigned long long)bb, (unsigned long long)ACCEL_TIER_BLOCK_MAX);
		return -EINVAL;
	}
	if (!o->memfd) {
		s->dev = accel_device_open(o->device);
		if (!s->dev) {
			ret = -errno;
			snprintf(err, errlen, "no kvaccel device (%s): load kvaccel.ko, or use --memfd",
				 strerror(errno));
			return ret;
		}
	}
	if (o->moe) {
		if (!s->dev) {
			snprintf(err, errlen, "the expert store needs a kvaccel device (not --memfd)");
			return -EINVAL;
		}
		s->moe = serve_moe_create(s->dev, o->model, o->moe, err, errlen);
		if (!s->moe) {
			ret = -errno;
			goto fail;
		}
	}
	for (i = 0; i < 2; i++) {
		ACCEL_OPTS(accel_tier_opts, to, .block_bytes = bb, .blocks = nb[i],
			   .layers = o->model->cfg.layers);

		if (i == 0 && o->window)
			to.flags |= ACCEL_TIER_WINDOW;

		s->tiers[i] = o->memfd ? accel_tier_create_memfd(&to) :
			accel_tier_create_host(s->dev, &to);
		if (!s->tiers[i]) {
			ret = -errno;
			snprintf(err, errlen, "the %s tier (%u blocks of %llu bytes): %s",
				 i ? "swap" : "compute", nb[i], (unsigned long long)bb,
				 strerror(errno));
			goto fail;
		}
	}
	{
		ACCEL_OPTS(accel_bm_config, cfg, .block_tokens = bt, .nr_tiers = 2,
			   .tier_blocks = nb);

		s->bm = accel_bm_create(&cfg);
	}
	s->mover = s->bm ? accel_mover_create(NULL) : NULL;
	if (!s->bm || !s->mover) {
		ret = -errno;
		snprintf(err, errlen, "the block manager or the mover: %s", strerror(errno));
		goto fail;
	}
	{
		struct serve_engine_opts eo = {
			.model = o->model, .bm = s->bm, .tiers = { s->tiers[0], s->tiers[1] },
			.mover = s->mover, .block_tokens = bt, .threads = o->threads,
			.max_ctx = o->max_ctx, .should_yield = o->should_yield,
			.yield_ctx = o->yield_ctx, .external_kv = o->sched != NULL,
			.moe = s->moe,
		};

		s->engine = serve_engine_create(&eo);
	}
	if (!s->engine) {
		ret = -errno;
		snprintf(err, errlen, "the engine: %s", strerror(errno));
		goto fail;
	}
	if (o->sched) {
		struct serve_driver_opts d = *o->sched;

		d.engine = s->engine;
		d.bm = s->bm;
		d.tiers[0] = s->tiers[0];
		d.tiers[1] = s->tiers[1];
		d.mover = s->mover;
		d.block_bytes = bb;
		if (o->should_yield) {
			d.also_yield = o->should_yield;
			d.also_ctx = o->yield_ctx;
		}
		s->driver = serve_driver_create(&d);
		if (!s->driver) {
			ret = -errno;
			snprintf(err, errlen, "the scheduler: %s", strerror(errno));
			goto fail;
		}
	}
	return 0;
fail:
	serve_stack_destroy(s);
	return ret;
}

void serve_stack_destroy(struct serve_stack *s)
{
	serve_driver_destroy(s->driver);
	serve_engine_destroy(s->engine);
	serve_moe_destroy(s->moe);
	accel_mover_destroy(s->mover);
	accel_bm_destroy(s->bm);
	accel_tier_destroy(s->tiers[0]);
	accel_tier_destroy(s->tiers[1]);
	if (s->dev)
		accel_device_close(s->dev);
	memset(s, 0, sizeof(*s));
}
