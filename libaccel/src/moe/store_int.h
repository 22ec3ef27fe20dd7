/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the expert store's internals, shared by store.c (windows,
 * tables, steps) and exec.c (the executor).
 */
#ifndef ACCEL_MOE_STORE_INT_H
#define ACCEL_MOE_STORE_INT_H

#include "../internal.h"
#include "accel_moe.h"
#include "store_logic.h"

/**
 * struct moe_copy - one expert's bytes on one device: a region of
 * blocks_per_expert blocks on the device's node.
 * @refs: window slots bound to it.
 * @fence: its copy in flight (NULL: none).
 * @started: its copy was submitted; @ready: its bytes are there.
 * @shared: its region is another instance's too (taken from one, or
 *	exported to one): never written again and never kept as a spare.
 */
struct moe_copy {
	struct accel_region *region;
	uint32_t device, expert, refs;
	struct accel_fence *fence;
	bool started, ready, shared;
	struct moe_copy *next;
};

/**
 * struct moe_table - a layer's table at one version: used by steps of
 * version @since and later (until the next table's @since).
 * @phy2log: [num_slots] the placement.
 * @win: [num_slots] the window slot each physical slot reads through.
 * @rep_first: [experts + 1], @rep: [num_slots] log2phy, each expert's
 *	physical slots ascending at rep[rep_first[e] .. rep_first[e + 1]).
 */
struct moe_table {
	uint64_t since;
	int32_t *phy2log;
	uint32_t *win, *rep_first, *rep;
};

/**
 * struct moe_layer - one MoE layer.
 * @space: its window, 2 * num_slots expert slots of blocks_per_expert
 *	space slots: the current table's slots and room for a switch's new ones.
 * @tab: the current table (@cur) and the one before (live while @prev_live:
 *	a step that began before the switch may still read it).
 * @wslot: [2 * num_slots] the copy each window slot is bound to (NULL: free).
 * @copies: every copy of the layer.
 */
struct moe_layer {
	struct accel_space *space;
	char *base;
	struct moe_table tab[2];
	uint32_t cur;
	bool prev_live;
	struct moe_copy **wslot;
	struct moe_copy *copies;
};

/**
 * struct accel_moe_store - see accel_moe.h.
 * @lock: the executor's state (copies, window slots, the job) and the
 *	calls that change it; a step never takes it (in thread mode).
 * @ep_lock: the steps in flight (@ep) and @version, which a switch bumps:
 *	taking a version and counting the step is one act against a reclaim.
 * @tab_lock: lookups (read) against a table switch or retirement (write).
 * @version: the version the next step gets.
 * @job_*: the rebalance in progress: its target, the layer it is at, the
 *	wave being prepared there (@job_wave_on).
 * @st: the counters (under @lock); @pub: their copy as of the executor's
 *	last call, which stats reads (under @pub_lock) without waiting for it.
 * @spare: per device, regions of retired copies a wave's new copies take
 *	before making regions (the copy overwrites every byte); they count as
 *	live copies, at most K per device, freed when the rebalance ends.
 * @thread: the executor's own thread (ACCEL_MOE_STORE_THREAD), woken by
 *	@kick; @stop ends it.
 */
struct accel_moe_store {
	struct accel_device *dev;
	uint32_t layers, experts, devices, spd, num_slots, wslots;
	uint32_t bs, bpe, k, flags;
	uint64_t expert_bytes, stride;
	int node[ACCEL_MOE_STORE_MAX_DEVICES];
	pthread_mutex_t lock, ep_lock, pub_lock;
	pthread_rwlock_t tab_lock;
	struct moe_layer *layer;
	struct moe_epochs ep;
	uint64_t version;
	bool job_on, job_wave_on;
	int32_t *job_target, *job_wave;
	uint32_t job_layer;
	uint32_t inflight[ACCEL_MOE_STORE_MAX_DEVICES];
	/* Regions of retired copies kept for the next wave's (at most K per device). */
	struct moe_copy *spare[ACCEL_MOE_STORE_MAX_DEVICES];
	uint32_t nr_spare[ACCEL_MOE_STORE_MAX_DEVICES];
	struct accel_moe_store_stats st, pub;
	pthread_t thread;
	pthread_cond_t kick;
	bool has_thread, stop;
};

/* store.c */
struct moe_copy *moe_copy_new(struct accel_moe_store *s, struct moe_layer *l, uint32_t device,
			      uint32_t expert);
void moe_copy_free(struct accel_moe_store *s, struct moe_layer *l, struct moe_copy *c);
/* A copy no window slot binds any more: its region kept as a spare during a rebalance, or freed. */
void moe_copy_retire(struct accel_moe_store *s, struct moe_layer *l, struct moe_copy *c);
/* Free every spare region. */
void moe_spares_free(struct accel_moe_store *s);
struct moe_copy *moe_copy_find(struct moe_layer *l, uint32_t device, uint32_t expert);
/* Fill @t (its arrays allocated) for placement @p and window slots @win. */
void moe_table_fill(const struct accel_moe_store *s, struct moe_table *t, const int32_t *p,
		    const uint32_t *win, uint64_t since);
/* Bind window slot @w of @l to @c: the ops at @ops (bpe of them). */
void moe_bind_ops(const struct accel_moe_store *s, struct accel_bind_op *ops, uint32_t w,
		  struct moe_copy *c);

/* Copy the counters for accel_moe_store_stats() (@lock held). */
void moe_publish(struct accel_moe_store *s);

/*
 * store_share.c, while a store is made from another instance's copies
 * (opts->from): *@ctx receives their index (NULL without opts->from).
 */
struct moe_share_ctx;
int moe_share_begin(struct accel_moe_store *s, const struct accel_moe_store_opts *o,
		    struct moe_share_ctx **ctx);
/* The copy of @expert of layer @li on @device, taken or filled from them (NULL and errno). */
struct moe_copy *moe_share_copy(struct accel_moe_store *s, struct moe_share_ctx *ctx,
				struct moe_layer *l, uint32_t li, uint32_t device, uint32_t expert);
void moe_share_end(struct moe_share_ctx *ctx);

/* exec.c */
struct accel_fence *moe_submit_copy(struct accel_moe_store *s, struct accel_region *src,
				    struct accel_region *dst);
int moe_exec_progress(struct accel_moe_store *s);
void moe_exec_abandon(struct accel_moe_store *s, int err);

#endif /* ACCEL_MOE_STORE_INT_H */
