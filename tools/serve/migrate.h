/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - live migration of a decoding request between engines
 * (driver_migrate.c, migrate_image.c). Documentation/serve.rst, "Live
 * migration".
 *
 * The source takes the request out of its scheduler between two steps
 * (serve_driver_migrate_out()): what it knows (prompt, tokens generated,
 * their digests, parameters) becomes an image, its KV stays in its blocks.
 * The destination checks the image and pre-allocates a sequence for it
 * (serve_driver_migrate_prepare()); the KV reaches the blocks it names (no
 * copy on a node: the pages change hands, a window tier's rebind; a copy
 * across nodes); serve_driver_migrate_commit() makes it a running request
 * there, whose next step decodes the token the source sampled last. Only
 * then does the source let go (serve_driver_migrate_done()); until then
 * either side can give up: the destination cancels (nothing of it stays)
 * and the source resumes the request (serve_driver_migrate_undo()), so a
 * request is never on both sides or on neither.
 *
 * Every call belongs to the engine thread, between steps.
 */
#ifndef SERVE_MIGRATE_H
#define SERVE_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"

#define SERVE_MIGR_MAGIC	0x474d564bu	/* "KVMG" */
#define SERVE_MIGR_VERSION	1u

/**
 * An image's header, followed by int32_t tokens[n_prompt + n_gen] and, at
 * the next multiple of 8, uint64_t digests[n_gen]. Host byte order (both
 * ends run the same build; the version and the model's fingerprint guard
 * the rest).
 */
struct serve_migr_hdr {
	uint32_t magic;		/* SERVE_MIGR_MAGIC */
	uint32_t version;	/* SERVE_MIGR_VERSION */
	uint64_t size;		/* the image's bytes, header included */
	uint64_t model;		/* serve_migr_model_id() of the source's model */
	uint64_t block_bytes;	/* of one KV block, all layers */
	uint32_t block_tokens;
	uint32_t n_prompt, n_gen;
	uint32_t max_tokens;
	uint64_t seed;
	float temperature;
	int32_t priority;
	uint32_t client;
	uint32_t offline;
	uint64_t ttft_slo_us, tpot_slo_us;
	uint64_t source;	/* the source's handle, for logs */
	uint64_t t_last_ns;	/* its last token on the source (CLOCK_MONOTONIC, a node's) */
	uint64_t t_stop_ns;	/* when the source stopped it: _out() called (same clock) */
};

/** The fingerprint of a model: its shape and a sample of its weights. */
uint64_t serve_migr_model_id(const struct serve_model *m);
/** Bytes of the image of a request with @n tokens, @ngen of them generated. */
size_t serve_migr_image_size(uint32_t n, uint32_t ngen);
/**
 * Check an image from elsewhere against this engine (@model, @block_tokens,
 * @block_bytes): 0, -EPROTO (not an image, another version, sizes that
 * disagree), -EINVAL (another model or block shape, a bad field).
 */
int serve_migr_image_check(const void *image, size_t len, uint64_t model,
			   uint32_t block_tokens, uint64_t block_bytes);
static inline const int32_t *serve_migr_tokens(const struct serve_migr_hdr *h)
{
	return (const int32_t *)(h + 1);
}
static inline const uint64_t *serve_migr_digests(const struct serve_migr_hdr *h)
{
	size_t off = sizeof(*h) + ((((size_t)h->n_prompt + h->n_gen) * 4 + 7) & ~(size_t)7);

	return (const uint64_t *)((const char *)h + off);
}

/** serve_driver_migrate_out(): the pages themselves will change hands (a node's engines). */
#define SERVE_MIGR_GIVE_PAGES	(1u << 0)

/**
 * The image of decoding request @h as it is now, without stopping it
 * (malloc'd into *image, *len bytes): what a destination prepares for
 * while the request keeps decoding. Errors as serve_driver_migrate_out().
 */
int serve_driver_migrate_peek(struct serve_driver *d, uint32_t h, void **image, size_t *len);
/**
 * serve_driver_migrate_peek() into the caller's @buf (@cap bytes): *@len
 * the image's bytes; with @buf NULL only that. -ENOSPC: @cap too small
 * (*@len says how much is needed; between the two calls no step may run).
 */
int serve_driver_migrate_peek_into(struct serve_driver *d, uint32_t h, void *buf, size_t cap,
				   size_t *len);

/**
 * The tier-0 blocks of decoding request @h now, in token order (malloc'd
 * into *blocks, *nr of them), without stopping it: the full ones do not
 * change while it decodes on, so a destination may bind their pages
 * before the stop. Errors as serve_driver_migrate_out().
 */
int serve_driver_migrate_blocks(struct serve_driver *d, uint32_t h, uint32_t **blocks,
				uint32_t *nr);

/** The source's side of one migration. */
struct serve_migr_out {
	uint32_t h;		/* the request */
	void *image;		/* malloc'd, len bytes */
	size_t len;
	uint32_t seq;		/* its block-manager sequence, the KV in it */
	uint32_t nr_blocks;	/* its tier-0 blocks, in token order */
	uint32_t *blocks;	/* malloc'd */
	/*
	 * SERVE_MIGR_GIVE_PAGES: per block, 1 if only this request held it
	 * (its memory may be given away once done, it left the prefix cache),
	 * 0 if others share it (its content must be copied). Else NULL.
	 */
	uint8_t *own;
	uint64_t t_stop_ns;	/* _out() called: its snapshot and detach count as downtime */
};

/**
 * Take decoding request @h out of the scheduler with its KV (@flags:
 * SERVE_MIGR_*). -ENOENT, -EBUSY (a migration of it already runs),
 * -EINVAL (not decoding: only decodes move), -EAGAIN (in the last step's
 * runs; try after the next).
 */
int serve_driver_migrate_out(struct serve_driver *d, uint32_t h, uint32_t flags,
			     struct serve_migr_out *mo);
/**
 * serve_driver_migrate_out() for a request whose image was taken before
 * into @image (malloc'd, @len bytes of its @cap; serve_driver_migrate_peek_into()):
 * only what changed since (the header, the tokens after that image's, the
 * digests) is written, in place, so that the stop does not copy the whole
 * token array again (grown by realloc() past @cap). @image is @mo's from
 * the call on (freed with it, and on failure); one that is not an image of
 * @h's is written whole. Errors as serve_driver_migrate_out().
 */
int serve_driver_migrate_out_from(struct serve_driver *d, uint32_t h, uint32_t flags,
				  void *image, size_t len, size_t cap, struct serve_migr_out *mo);
/**
 * The destination holds it: free the source's blocks (with
 * SERVE_MIGR_GIVE_PAGES the caller has rebound the own ones' memory
 * before); @h reports SERVE_MIGRATED.
 */
int serve_driver_migrate_done(struct serve_driver *d, struct serve_migr_out *mo);
/**
 * As serve_driver_migrate_done(), but the blocks are never given back to
 * the pool (their memory could not be rebound away: another engine
 * uses it); they go with the block manager.
 */
int serve_driver_migrate_keep(struct serve_driver *d, struct serve_migr_out *mo);
/** The destination gave up: @h decodes here again, where it stopped. */
int serve_driver_migrate_undo(struct serve_driver *d, struct serve_migr_out *mo);
/**
 * A migrated request @h was lost after the point of no return (its
 * destination never took it): it is reported failed to its client.
 */
int serve_driver_migrate_lost(struct serve_driver *d, uint32_t h);

/** The destination's side of one migration. */
struct serve_migr_in {
	const struct serve_migr_hdr *hdr;	/* the image (the caller's) */
	uint32_t seq;		/* pre-allocated: the KV of all its tokens but the last */
	uint32_t nr_blocks;
	uint32_t *blocks;	/* its tier-0 blocks (malloc'd): where the KV must land */
	uint32_t eid;		/* its engine request, made at prepare (off the critical path) */
};

/**
 * Check @image and pre-allocate its blocks. -EPROTO/-EINVAL as
 * serve_migr_image_check(), -ENOSPC (not enough free blocks), -ENOMEM.
 */
int serve_driver_migrate_prepare(struct serve_driver *d, const void *image, size_t len,
				 struct serve_migr_in *mi);
/**
 * The request decoded on while the destination prepared: @image is its
 * newer image (the same request, more tokens); its blocks are extended to
 * it (mi->blocks refreshed; mi->hdr points into @image from now on).
 * -EPROTO/-EINVAL as serve_migr_image_check() or another request's image,
 * -ENOSPC: short of blocks (nothing changed).
 */
int serve_driver_migrate_extend(struct serve_driver *d, struct serve_migr_in *mi,
				const void *image, size_t len);
/**
 * As serve_driver_migrate_extend(), but the caller grew the image mi->hdr
 * points at in place (a buffer with room: the tokens decoded since it was
 * prepared appended, the digests moved after them): its first @n_old
 * tokens are those prepared for, so they are not compared again (no work
 * in the request's length). @model, @seed and @max_tokens: those of the
 * image prepared for. Errors as serve_driver_migrate_extend().
 */
int serve_driver_migrate_grown(struct serve_driver *d, struct serve_migr_in *mi, size_t len,
			       uint32_t n_old, uint64_t model, uint64_t seed, uint32_t max_tokens);
/**
 * The blocks hold the KV: the request runs here from the next step on;
 * *h names it. -EBUSY: no room among the running requests now (the
 * pre-allocation stays: try again after a step, or cancel); on any other
 * error nothing is left, the pre-allocation is freed too.
 */
int serve_driver_migrate_commit(struct serve_driver *d, struct serve_migr_in *mi, uint32_t *h);
/**
 * The recompute baseline: the request from @image (its tokens, no KV) runs
 * here from scratch: everything it knows is prefilled again, then it goes
 * on from its last token. *h names it. Errors as serve_engine_add()'s.
 */
int serve_driver_migrate_recompute(struct serve_driver *d, const void *image, size_t len,
				   uint32_t *h);
/** Give the pre-allocation back. */
void serve_driver_migrate_cancel(struct serve_driver *d, struct serve_migr_in *mi);

#endif /* SERVE_MIGRATE_H */
