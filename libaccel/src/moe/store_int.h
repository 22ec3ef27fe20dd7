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
 * struct moe_copy - one expert's bytes on one device: on the host backend
 * a region of blocks_per_expert blocks on the device's node (@region); on
 * the cuda backend a cell of blocks_per_expert chunks in the device's
 * tier (@cell).
 * @refs: window slots bound to it.
 * @busy: a copy into it is in flight (@fence on the host, @ticket on the
 *	device's tier).
 * @started: its copy was submitted; @ready: its bytes are there.
 * @shared: its region is another instance's too (taken from one, or
 *	exported to one): never written again and never kept as a spare.
 */
struct moe_copy {
	struct accel_region *region;
	uint32_t cell;
	uint32_t device, expert, refs;
	struct accel_fence *fence;
	uint64_t ticket;
	bool busy, started, ready, shared;
	struct moe_copy *next;
};

/* Window slot @w bound to copy @c's blocks, or unbound (@c NULL). */
struct moe_bind {
	uint32_t w;
	struct moe_copy *c;
};

struct moe_layer;

/**
 * struct moe_backend - where a store's copies and windows live: kvaccel
 * regions and spaces (store_host.c) or GPUs' memory through the cuda
 * tier (store_cuda.c). Called with the store's @lock held (or before the
 * store is shared).
 * @init: set up from @o (after the common checks): the block size, blocks
 *	per expert and slot stride, and the backend's own state. 0 or -errno.
 * @fini: undo @init (every layer and copy already gone).
 * @window_init: the layer's window of 2 * num_slots expert slots (@base
 *	set); @window_fini: unbind what is bound and free it.
 * @bind: one batch, all or nothing (0, or -errno and nothing changed).
 * @copy_alloc: @c's memory on @c->device (bytes undefined but see @clear);
 *	@copy_release: free it, waiting for a copy in flight into it.
 * @clear: zero @c and wait (NULL: @copy_alloc's memory is zero already).
 * @copy_start: start copying @src's bytes into @dst (@dst->busy set by the
 *	caller on success); @copy_poll: 1 once done (its state dropped), 0
 *	while in flight, -errno.
 * @write: @len bytes from the host at @src into @c, done on return.
 * @fill_from: fill @c (a new copy of layer @li) from s->from_store's copy
 *	of its expert, done on return; 0 or -errno (-ENOENT: it has none
 *	ready). NULL: the backend cannot start from another store.
 * @host_window: the CPU can read a window (thread mode touches the pages
 *	of new window slots before the switch).
 */
struct moe_backend {
	int (*init)(struct accel_moe_store *s, const struct accel_moe_store_opts *o);
	void (*fini)(struct accel_moe_store *s);
	int (*window_init)(struct accel_moe_store *s, struct moe_layer *l);
	void (*window_fini)(struct accel_moe_store *s, struct moe_layer *l);
	int (*bind)(struct accel_moe_store *s, struct moe_layer *l, const struct moe_bind *b,
		    uint32_t n);
	int (*copy_alloc)(struct accel_moe_store *s, struct moe_copy *c);
	void (*copy_release)(struct accel_moe_store *s, struct moe_copy *c);
	int (*clear)(struct accel_moe_store *s, struct moe_copy *c);
	int (*copy_start)(struct accel_moe_store *s, struct moe_copy *dst,
			  const struct moe_copy *src);
	int (*copy_poll)(struct accel_moe_store *s, struct moe_copy *c);
	int (*write)(struct accel_moe_store *s, struct moe_copy *c, const void *src, size_t len);
	int (*fill_from)(struct accel_moe_store *s, struct moe_copy *c, uint32_t li);
	bool host_window;
};

extern const struct moe_backend moe_host_backend;
extern const struct moe_backend moe_cuda_backend;

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
 *	space slots: the current table's slots and room for a switch's new ones
 *	(the host backend; the cuda backend's window is @win); @base its address.
 * @tab: the current table (@cur) and the one before (live while @prev_live:
 *	a step that began before the switch may still read it).
 * @wslot: [2 * num_slots] the copy each window slot is bound to (NULL: free).
 * @copies: every copy of the layer.
 */
struct moe_layer {
	struct accel_space *space;
	void *win;
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
 * @be, @be_priv: the backend and its state.
 * @from_store: opts->from_store while the store is made (else NULL).
 */
struct accel_moe_store {
	struct accel_device *dev;
	const struct moe_backend *be;
	void *be_priv;
	struct accel_moe_store *from_store;
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
/* Free @l's copies (@unbound_only: those no window slot binds), those in flight first. */
void moe_copies_free(struct accel_moe_store *s, struct moe_layer *l, bool unbound_only);
/* A copy no window slot binds any more: its region kept as a spare during a rebalance, or freed. */
void moe_copy_retire(struct accel_moe_store *s, struct moe_layer *l, struct moe_copy *c);
/* Free every spare region. */
void moe_spares_free(struct accel_moe_store *s);
struct moe_copy *moe_copy_find(struct moe_layer *l, uint32_t device, uint32_t expert);
/* Fill @t (its arrays allocated) for placement @p and window slots @win. */
void moe_table_fill(const struct accel_moe_store *s, struct moe_table *t, const int32_t *p,
		    const uint32_t *win, uint64_t since);

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

/* store_host.c: copy region @src's expert bytes into @dst; the fence of the last job. */
struct accel_fence *moe_submit_copy(struct accel_moe_store *s, struct accel_region *src,
				    struct accel_region *dst);

/* exec.c */
int moe_exec_progress(struct accel_moe_store *s);
void moe_exec_abandon(struct accel_moe_store *s, int err);

#endif /* ACCEL_MOE_STORE_INT_H */
