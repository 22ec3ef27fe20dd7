/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - the parts an engine runs on, made in one call: the
 * compute and swap tiers (host tiers in kvaccel regions of a device, or
 * memfd tiers), the block manager over them, the data mover, the engine.
 */
#ifndef SERVE_STACK_H
#define SERVE_STACK_H

#include "driver.h"
#include "engine.h"

struct serve_stack_opts {
	const struct serve_model *model;
	uint32_t block_tokens;		/* 0: 16 */
	uint32_t blocks, swap_blocks;	/* 0: 64 each */
	bool memfd;			/* no kvaccel device */
	/** The compute tier a window tier (ACCEL_TIER_WINDOW: a node's zero-copy migration). */
	bool window;
	const char *device;		/* NULL: the first one */
	uint32_t threads, max_ctx;
	serve_yield_fn should_yield;
	void *yield_ctx;
	/** Non-NULL: libaccel's scheduler drives the engine (stack.driver; engine fields unset). */
	const struct serve_driver_opts *sched;
	/** Non-NULL: the MoE experts in an expert store on the device (stack.moe). */
	const struct serve_moe_opts *moe;
};

struct serve_stack {
	struct accel_device *dev;
	struct accel_tier *tiers[2];
	struct accel_bm *bm;
	struct accel_mover *mover;
	struct serve_engine *engine;
	struct serve_driver *driver;	/* with opts.sched */
	struct serve_moe *moe;		/* with opts.moe */
};

/** 0, or -errno with a message in @err. */
int serve_stack_create(struct serve_stack *s, const struct serve_stack_opts *o, char *err,
		       size_t errlen);
void serve_stack_destroy(struct serve_stack *s);

#endif /* SERVE_STACK_H */
