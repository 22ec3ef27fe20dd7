/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the tiers and the data mover, private: what a tier is, for
 * the mover (mover.c), the tiers' own code (tier.c, tier_cuda.c) and the
 * library's other users of tiers (the KV cache).
 *
 * A tier's block is cut into `pieces` equal pieces for a copy (its layers,
 * or fewer/more where the other tier of a run differs and this one is
 * contiguous): accel_tier_piece() gives the address of one. Host tiers'
 * addresses are their mapping's; device tiers' are CUDA device pointers
 * (unified addressing: one 64-bit space with the host's).
 */
#ifndef ACCEL_MOVER_PRIV_H
#define ACCEL_MOVER_PRIV_H

#include "../internal.h"

struct accel_cuda_tier;
struct accel_tier_window;

struct accel_tier {
	enum accel_tier_kind kind;
	uint64_t block_bytes;
	uint32_t blocks;
	uint32_t layers;		/* pieces per block, at least 1 */
	uint32_t region_block;
	struct accel_device *dev;	/* host tiers */
	struct accel_region *region;
	uint32_t flags;			/* ACCEL_TIER_* it was created with */
	/*
	 * Window tiers (ACCEL_TIER_WINDOW): the space base maps (slot i of
	 * block b: b * k + i), and what backs each block (tier_window.c);
	 * NULL for any other tier.
	 */
	struct accel_space *space;
	struct accel_tier_window *win;
	int memfd;			/* memfd tiers */
	unsigned char *base;		/* host tiers: the mapping */
	size_t map_size;
	/* Device tiers. */
	int cuda_device;		/* CUDA ordinal; -1: a host tier */
	enum accel_tier_layout layout;
	uint64_t stride;		/* block (BLOCKS) or layer piece (LAYERS) to the next block */
	uint64_t dbase;			/* BLOCKS: block 0's device pointer */
	uint64_t *layer_base;		/* LAYERS: layers device pointers */
	/*
	 * Device tiers: the stream (and, allocated, the memory). Host tiers:
	 * the stream-only tier through which the mapping was registered for
	 * DMA (cuMemHostRegister, portable: every GPU), lazily, or NULL.
	 */
	struct accel_cuda_tier *ct;
	/* Protects ct of host tiers and peers_tried. */
	pthread_mutex_t lock;
	/*
	 * Device tiers: held across a GPU-to-GPU copy into the tier (a staged
	 * one uses its bounce buffer: one at a time).
	 */
	pthread_mutex_t peer_lock;
	uint32_t peers_tried;		/* allocated tiers: peer grants asked for (bit: ordinal) */
	/*
	 * Lazily mapped allocated tiers (accel_tier_create_cuda_lazy()): one
	 * byte per chunk of chunk_bytes, set once mapped (under lock); NULL
	 * for a tier mapped whole at creation.
	 */
	uint8_t *mapped;
	uint64_t chunk_bytes;
};

static inline bool accel_tier_is_cuda(const struct accel_tier *t)
{
	return t->kind == ACCEL_TIER_CUDA || t->kind == ACCEL_TIER_CUDA_REGISTERED;
}

/* Does @t keep each block's bytes in one range (every tier but a LAYERS-layout one)? */
static inline bool accel_tier_contiguous(const struct accel_tier *t)
{
	return !accel_tier_is_cuda(t) || t->layout == ACCEL_TIER_LAYOUT_BLOCKS;
}

/*
 * The address (host) or device pointer (device tiers) of piece @piece of
 * @block, the block cut into @pieces equal pieces: @pieces is the tier's
 * layers, or any divisor of block_bytes for a contiguous tier. The caller
 * checked its arguments.
 */
static inline uint64_t accel_tier_piece(const struct accel_tier *t, uint32_t block,
					uint32_t piece, uint32_t pieces)
{
	if (!accel_tier_contiguous(t))
		return t->layer_base[piece] + block * t->stride;
	if (!accel_tier_is_cuda(t))
		return (uint64_t)(uintptr_t)t->base + block * t->block_bytes +
		       piece * (t->block_bytes / pieces);
	return t->dbase + block * t->stride + piece * (t->block_bytes / pieces);
}

/* Layer @layer of @block (@layer < t->layers): a device pointer for device tiers. */
static inline uint64_t accel_tier_layer_addr(const struct accel_tier *t, uint32_t block,
					     uint32_t layer)
{
	return accel_tier_piece(t, block, layer, t->layers);
}

/* What a host tier's copy-engine segments name: a window tier's space, else its region. */
static inline struct accel_obj *accel_tier_obj(const struct accel_tier *t)
{
	return t->space ? accel_space_obj(t->space) : accel_region_obj(t->region);
}

/*
 * tier_window.c: make host tier @t (its region created, nothing mapped) a
 * window tier: the space, slot i bound to region block i, mapped at
 * t->base; the key of its region. 0, or -errno with whatever it made
 * undone. And the undoing: the space, then the held regions (the own
 * region stays the caller's).
 */
int accel_tier_window_init(struct accel_tier *t);
void accel_tier_window_fini(struct accel_tier *t);

/* tier.c: a new tier's common part (NULL: ENOMEM), and its undoing (frees @t). */
struct accel_tier *accel_tier_alloc(enum accel_tier_kind kind, uint64_t block_bytes,
				    uint32_t blocks, uint32_t layers);
void accel_tier_free(struct accel_tier *t);

/* tier_cuda.c */

/*
 * An allocated device tier (ACCEL_TIER_CUDA) of @blocks blocks of
 * @block_bytes on GPU @device whose memory is mapped as it is used (the
 * KV cache's device tier): the virtual range reserved and every physical
 * chunk created here (cuMemCreate never on a swap path), none mapped until
 * accel_tier_cuda_prepare() asks for its blocks; an export maps them all.
 * The caller checked its arguments. 0 with *out, or -errno with @why
 * saying why (-ENODEV: no driver, no such device...).
 */
int accel_tier_create_cuda_lazy(int device, uint64_t block_bytes, uint32_t blocks,
				struct accel_tier **out, char *why, size_t len);
/*
 * Map the chunks under blocks @blocks[0..n) of device tier @t (from the
 * chunks created with it), skipping entries of UINT32_MAX (holes): 0 once
 * all are, or -errno (those mapped before the failure stay). A no-op (0)
 * on a tier mapped whole.
 */
int accel_tier_cuda_prepare(struct accel_tier *t, const uint32_t *blocks, uint32_t n);
/* Free a device tier's CUDA state, or a host tier's DMA registration. */
void accel_tier_cuda_release(struct accel_tier *t);
/* accel_tier_export() of a device tier. */
int accel_tier_cuda_export(struct accel_tier *t, int *fd);
/* Register host tier @t's mapping for DMA, once, through GPU @device. */
int accel_tier_host_dma(struct accel_tier *t, int device);
/* Ask once that allocated tier @t let GPU @peer reach it (false: copy staged). */
void accel_tier_grant_peer(struct accel_tier *t, int peer);
/* The stream-only or allocated tier of a device tier. */
static inline struct accel_cuda_tier *accel_tier_cuda(const struct accel_tier *t)
{
	return t->ct;
}

/* One copy of a job: adjacent pieces coalesced. */
struct accel_piece {
	uint64_t src, dst, len;
};

/* Which pieces of each block a job copies. */
struct accel_piece_sel {
	bool layers;			/* ACCEL_MOVER_LAYERS */
	uint32_t first, count;
};

/*
 * The pieces of run @r between @s and @d, appended to @out (room for
 * accel_run_pieces_max()) after *nr, coalesced with the last one where
 * both ends continue it and the result stays within @max_len. Returns the
 * new count.
 */
size_t accel_run_pieces(const struct accel_tier *s, const struct accel_tier *d,
			const struct accel_bm_run *r, const struct accel_piece_sel *sel,
			struct accel_piece *out, size_t nr, uint64_t max_len);
/* The most pieces accel_run_pieces() appends for @r. */
uint64_t accel_run_pieces_max(const struct accel_tier *s, const struct accel_tier *d,
			      const struct accel_bm_run *r, const struct accel_piece_sel *sel);

/*
 * @n valid runs between host tiers of one device on its copy engine
 * (mover.c; the mover's engine jobs and the KV cache's host backend):
 * the pieces @sel picks, coalesced into segments of at most @max_seg
 * bytes (0: one job's), in chained copy jobs; *fence the last job's (NULL
 * for @n 0). On error nothing is still in flight.
 */
int accel_tier_copy_engine(const struct accel_tier *const tiers[], const struct accel_bm_run *runs,
			   uint32_t n, const struct accel_piece_sel *sel, uint64_t max_seg,
			   struct accel_fence **fence);

/* What the mover keeps of a CUDA job in flight: (tier, ticket) to wait for. */
struct accel_cuda_wait {
	struct accel_cuda_tier *ct;
	uint64_t ticket;
};

/*
 * Queue a CUDA job's copies (tier_cuda.c): registrations and peer grants
 * first, then the event wait on every stream used, the copies, the
 * record. Returns 0 with *waits (the caller frees it) and *status (0, or
 * the -errno of a failure after something was queued: the job fails with
 * it once what was queued is done); or -errno with nothing queued.
 */
int accel_mover_cuda_queue(const struct accel_tier *const tiers[], const struct accel_bm_run *runs,
			   uint32_t n, const struct accel_piece_sel *sel, void *wait_event,
			   void *record_event, struct accel_cuda_wait **waits, uint32_t *nr_waits,
			   int *status);

#endif
