/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the MoE expert store and its executor (Documentation/moe.rst).
 *
 * An expert store keeps the weights of every MoE layer's experts in
 * kvaccel regions (or, ACCEL_MOE_STORE_CUDA, in GPUs' memory) and shows
 * each layer through a window (a kvaccel space, or a CUDA virtual range)
 * of expert slots; the engine reads an expert through the window slot the
 * step's table names, so what a slot holds changes by a rebind and the
 * engine's pointers never change.
 *
 * Placements: a layer's placement is int32_t phy2log[num_slots], the
 * logical expert each physical slot holds; num_slots = devices *
 * slots_per_device and slot s is on device s / slots_per_device (devices
 * node-major). A store's placement is [layers][num_slots], row-major. The
 * planner (accel_moe_plan.h) makes these; the executor carries a store from
 * its placement to a new one (accel_moe_store_apply()) a bounded amount of
 * work at a time, each layer switched as a whole at a step boundary.
 *
 * Thread safety: every call may be made from any thread, destroy excepted,
 * which must not race with any call. accel_moe_store_expert(),
 * accel_moe_store_replicas(), accel_moe_store_step_end() and
 * accel_moe_store_stats() never wait for the executor; neither does
 * accel_moe_store_step_begin() with ACCEL_MOE_STORE_THREAD.
 */
#ifndef ACCEL_MOE_H
#define ACCEL_MOE_H

#include "accel.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most devices a store spreads its slots over. */
#define ACCEL_MOE_STORE_MAX_DEVICES	64

struct accel_moe_store;

/**
 * One expert copy passed from one instance's store to another's
 * (accel_moe_store_export(), accel_moe_store_opts.from).
 */
struct accel_moe_store_share {
	uint32_t layer, expert;
	/** The copy's NUMA node (ACCEL_NODE_ANY: its blocks may be on any). */
	int32_t node;
	/** Its region's dma-buf (a kvaccel region of the same device). */
	int32_t fd;
};

/** A store's shape (ACCEL_OPTS()). */
struct accel_moe_store_opts {
	size_t sz;
	/** MoE layers, logical experts per layer (both at least 1). */
	uint32_t layers, experts;
	/**
	 * Devices (1 to ACCEL_MOE_STORE_MAX_DEVICES) and expert slots on each;
	 * devices * slots_per_device must be at least experts.
	 */
	uint32_t devices, slots_per_device;
	/** Bytes of one expert's weights (every expert the same). */
	uint64_t expert_bytes;
	/** Region block size (a power of two, 4 KiB to 2 MiB); 0: chosen (see the docs). */
	uint32_t block_size;
	/** Each device's NUMA node ([devices]); NULL: ACCEL_NODE_ANY for all. */
	const int *device_node;
	/** Cross-device copies in flight per device, K (0: 1). Also bounds a wave's new copies. */
	uint32_t max_inflight;
	/** ACCEL_MOE_STORE_* flags. */
	uint32_t flags;
	/**
	 * Another instance's expert copies to start from (@nr_from entries;
	 * the caller keeps its fds and closes them after the call), as
	 * accel_moe_store_export() gives them. Each copy the initial
	 * placement needs takes, without a byte copied, an entry of its
	 * layer and expert on its device's node (or either ACCEL_NODE_ANY)
	 * that no other device of this store took; else it is made on its
	 * node and filled from one of the expert's entries by the copy
	 * engine before create returns. Taken copies are shared (see
	 * accel_moe_store_export()). NULL: zero-filled copies.
	 */
	const struct accel_moe_store_share *from;
	uint32_t nr_from;
	/**
	 * Where the copies live: ACCEL_MOE_STORE_HOST (0: kvaccel regions,
	 * each on its device's NUMA node) or ACCEL_MOE_STORE_CUDA (each device
	 * a GPU, @device_gpu).
	 */
	uint32_t backend;
	/**
	 * ACCEL_MOE_STORE_CUDA: each device's CUDA ordinal ([devices], needed;
	 * two devices may name one GPU). Ignored on the host backend.
	 */
	const int *device_gpu;
	/**
	 * ACCEL_MOE_STORE_CUDA: another store of this process on the cuda
	 * backend, of the same layers, experts and expert_bytes, to start
	 * from (a scale-up to more or other GPUs): each copy of the initial
	 * placement is copied from one of its copies of that expert (one on
	 * the same GPU first, device to device; else peer to peer, access to
	 * the new GPUs granted on it where the topology allows, else staged
	 * through host memory) before create returns, instead of zero-filled,
	 * so nothing need be written. It may serve and rebalance meanwhile
	 * (each copy holds its lock for the copy) and stays the caller's.
	 */
	struct accel_moe_store *from_store;
};

/** Copies in kvaccel regions, windows in kvaccel spaces (the default). */
#define ACCEL_MOE_STORE_HOST	0u
/**
 * Copies in GPUs' memory (the cuda tier's chunks, created as needed), each
 * layer's window one CUDA virtual range whose slots map the chunks of the
 * copies they show (cuMemMap: zero copy, the memory of any of the store's
 * GPUs behind one range); moves between GPUs on the copy engines, peer to
 * peer where the GPUs allow it, else staged through host memory. A block
 * is the driver's allocation granularity (2 MiB on current GPUs; opts
 * block_size must be 0 or that). The window addresses
 * (accel_moe_store_expert()) are device addresses: for the GPUs' kernels,
 * not the CPU. No sharing between instances (opts->from and
 * accel_moe_store_export(): EOPNOTSUPP). Needs the CUDA driver (libcuda.so.1).
 * A step's end (accel_moe_store_step_end()) must come after the GPU work
 * of that step is done (its stream's event completed): the window slots and
 * copies only older tables name are unmapped and reused after it.
 */
#define ACCEL_MOE_STORE_CUDA	1u

/**
 * The executor runs on a thread of the store's own: steps only take their
 * version (accel_moe_store_step_begin() does no executor work, never waits
 * for it), the copies, binds, page faults of new window slots and frees
 * happen off the engine's threads. Without it, the work runs in bounded
 * shares in accel_moe_store_step_begin() and accel_moe_store_progress().
 */
#define ACCEL_MOE_STORE_THREAD	(1u << 0)

/**
 * accel_moe_store_create() - a store on @dev in the initial placement
 * @phy2log ([layers][num_slots], @count entries): one zero-filled copy of
 * each expert on each device that holds it (slots of one device holding the
 * same expert share that copy's blocks), every slot bound in its layer's
 * window. Fill it with accel_moe_store_write().
 *
 * With opts->from, the copies come from another instance instead (above).
 * @dev: the kvaccel device (may be NULL with ACCEL_MOE_STORE_CUDA).
 *
 * Return: the store; NULL and errno: EINVAL (a shape out of range, @count
 * not layers * num_slots, a slot naming no expert, an expert with no slot;
 * an entry of opts->from out of range, or whose fd is not a region of this
 * device of one expert's size in the store's block size), ENOENT (an
 * expert of the placement with no entry in opts->from), E2BIG (too many
 * window slots for one bind batch), ENOMEM, or a region's, space's or
 * copy's error. ACCEL_MOE_STORE_CUDA also: EINVAL (no device_gpu, a
 * block_size other than the granularity; opts->from_store not a cuda
 * store of the same layers, experts and expert size), ENODEV (no driver,
 * no such GPU, one without virtual memory management), EOPNOTSUPP
 * (opts->from), the driver's errors.
 */
struct accel_moe_store *accel_moe_store_create(struct accel_device *dev,
					       const struct accel_moe_store_opts *opts,
					       const int32_t *phy2log, size_t count);
/** Free every copy, window and table (pending copies are waited for). */
void accel_moe_store_destroy(struct accel_moe_store *store);

/**
 * accel_moe_store_write() - copy @len bytes (the expert's size) of expert
 * @expert of layer @layer into every copy of it. -EINVAL (out of range,
 * @len not expert_bytes), -EBUSY while a rebalance runs, -EPERM when a
 * copy of it is shared (nothing written).
 */
int accel_moe_store_write(struct accel_moe_store *store, uint32_t layer, uint32_t expert,
			  const void *src, size_t len);

/**
 * accel_moe_store_step_begin() - a step starts: first the executor's
 * bounded share of work (see accel_moe_store_progress()), a layer switch
 * included, then *@version receives the table version this step reads
 * with. Every step that begins must end (accel_moe_store_step_end()).
 * Return: 0, -EINVAL, -ENOMEM.
 */
int accel_moe_store_step_begin(struct accel_moe_store *store, uint64_t *version);
/** A step of @version ended: what only older steps could read may be freed. -EINVAL: none in flight. */
int accel_moe_store_step_end(struct accel_moe_store *store, uint64_t version);

/**
 * accel_moe_store_expert() - the window address of expert @expert of layer
 * @layer for a step of @version (one in flight), its replica chosen by
 * @hint (modulo the replica count; every replica holds the same bytes).
 * Valid until that step ends. NULL and errno: EINVAL (out of range, or a
 * version no step in flight may hold).
 */
const void *accel_moe_store_expert(struct accel_moe_store *store, uint64_t version,
				   uint32_t layer, uint32_t expert, uint32_t hint);
/**
 * accel_moe_store_replicas() - the table (log2phy) of @version: the
 * physical slots holding expert @expert of layer @layer, ascending, up to
 * @max of them into @slots. Returns the replica count (may exceed @max) or
 * -EINVAL.
 */
int accel_moe_store_replicas(struct accel_moe_store *store, uint64_t version, uint32_t layer,
			     uint32_t expert, uint32_t *slots, uint32_t max);
/** The newest placement ([layers][num_slots], @count entries) into @phy2log. 0 or -EINVAL. */
int accel_moe_store_placement(struct accel_moe_store *store, int32_t *phy2log, size_t count);

/**
 * accel_moe_store_export() - the store's expert copies for another
 * instance on this node (which passes them as accel_moe_store_opts.from):
 * for each copy whose bytes are in (layer-major, then as the store keeps
 * them), its layer, expert, node and a new close-on-exec dma-buf fd of its
 * region, at most @max of them into @out (the caller closes the fds). An
 * exported copy is shared from then on: the store never writes it again
 * and never reuses its region for another expert (a rebalance that drops
 * it frees it, and its pages live on while the other instance binds
 * them). Safe during a rebalance (a copy still being made is left out).
 *
 * Return: the number of copies there are (may exceed @max: only @max were
 * exported; @out may be NULL with @max 0 to count), or -errno (-EINVAL; an
 * export's error, the fds of this call closed; -EOPNOTSUPP on
 * ACCEL_MOE_STORE_CUDA).
 */
int accel_moe_store_export(struct accel_moe_store *store, struct accel_moe_store_share *out,
			   uint32_t max);

/**
 * accel_moe_store_apply() - start a rebalance to @phy2log ([layers][num_slots],
 * @count entries). Nothing happens here but the checks: the work runs in
 * accel_moe_store_step_begin() and accel_moe_store_progress(). Return: 0;
 * -EINVAL (a wrong @count, a slot naming no expert, an expert with no slot:
 * nothing changed); -EBUSY (a rebalance is running).
 */
int accel_moe_store_apply(struct accel_moe_store *store, const int32_t *phy2log, size_t count);
/**
 * accel_moe_store_progress() - a bounded share of the executor's work
 * without waiting: poll the copies in flight and start new ones (at most K
 * per device), switch at most one layer (one bind batch), free what no step
 * can read any more (and, where no step holds the old table, start the
 * next wave at once). Return: 1 while a rebalance or a reclaim is pending,
 * 0 when idle, -errno if the rebalance failed in this call (it is then
 * abandoned: every layer is whole on some wave's placement, each a valid
 * one; accel_moe_store_stats() keeps the error in last_error).
 */
int accel_moe_store_progress(struct accel_moe_store *store);
/**
 * accel_moe_store_settle() - run progress until idle (no rebalance, nothing
 * to free) or @timeout_ns (-1: forever) passed. 0, -ETIME, or the
 * rebalance's error.
 */
int accel_moe_store_settle(struct accel_moe_store *store, int64_t timeout_ns);

/** What a store is and did (ACCEL_OPTS()), as of the executor's last call. */
struct accel_moe_store_stats {
	size_t sz;
	/* Shape. */
	uint32_t layers, experts, devices, num_slots;
	uint32_t block_size, blocks_per_expert;
	/** Bytes from one window slot to the next (blocks_per_expert * block_size). */
	uint64_t slot_stride;
	/** The version the next step gets, and steps in flight. */
	uint64_t version;
	uint32_t steps_in_flight;
	/** 1 while a rebalance runs; 1 while a retired table waits for its steps to end. */
	uint32_t rebalancing, retired_pending;
	uint64_t rebalances;		/* finished */
	uint64_t waves;			/* layer switches (one bind batch each) */
	uint64_t rebinds;		/* slots changed without a copy */
	uint64_t copies;		/* cross-device copies */
	uint64_t copy_bytes;
	uint64_t reclaims;		/* retired tables freed */
	/** Waves that needed more than K new copies on a device to keep every expert served. */
	uint64_t over_k;
	/** Most copies in flight on one device at once. */
	uint32_t max_inflight_seen;
	/** The last rebalance's error (0: none). */
	int32_t last_error;
	/** Expert copies alive per device now, and the most at once. */
	uint32_t live_copies[ACCEL_MOE_STORE_MAX_DEVICES];
	uint32_t peak_copies[ACCEL_MOE_STORE_MAX_DEVICES];
	/** Copies taken from another instance without a copy, and filled from one. */
	uint64_t adopted, fetched;
	/** Copies given to other instances (accel_moe_store_export(), counted per call). */
	uint64_t exported;
	/** Live copies that are shared. */
	uint32_t shared_copies;
};

/** Fill @st (the fields up to st->sz). -EINVAL, -E2BIG as accel_device_info(). */
int accel_moe_store_stats(struct accel_moe_store *store, struct accel_moe_store_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* ACCEL_MOE_H */
