/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - live migration of a decoding request to an engine on
 * another node: Llumnix's multi-stage pre-copy over UCX (migrate_net.c;
 * Documentation/serve.rst, "Across nodes: multi-stage pre-copy").
 *
 * The KV moves with one-sided puts (accel_xfer_put()) from the source's
 * compute tier straight into the destination's compute-tier blocks (the
 * destination registers its tier's mapping and sends its descriptor once
 * per connection); control messages go on the same endpoint:
 *
 *   BEGIN     src -> dst, the request still decoding: its image so far.
 *             The destination prepares (pre-allocates blocks for all its
 *             tokens but the last) and answers BLOCKS: its block ids (and
 *             its memory descriptor), or a refusal (status).
 *   STAGE(k)  src -> dst: the source put the full blocks written since the
 *             previous stage (flushed), then sends a newer image; the
 *             destination extends its blocks to it and answers BLOCKS.
 *   FINAL     src -> dst: at most final_blocks left unsent, or max_stages
 *             stages done: the request stops at a step boundary, the rest
 *             (the partial last block too) is put and flushed, FINAL
 *             carries the final image; the destination extends, commits
 *             (the request runs there) and answers COMMITTED. Only then
 *             does the source free its copy.
 *             When the request decoded into blocks the destination has no
 *             id for yet, FINAL goes first (stage 0: the KV incomplete),
 *             the destination answers BLOCKS, the rest is put and flushed
 *             and COMMIT follows: one more round trip while stopped.
 *   ABORT     either way: the migration is over, nothing of it stays on
 *             the destination, the request decodes on the source (where
 *             it stopped, if it stopped).
 *
 * Outcomes: until COMMITTED reaches the source the request stays the
 * source's: a refusal, a request that finishes or is preempted during the
 * stages, a failed put or flush, a dead endpoint, a garbled message, a
 * timeout. A destination that hears nothing for the timeout frees what it
 * prepared. The one window this protocol cannot close (two generals): a
 * COMMITTED the destination sent that never reaches the source; the
 * destination then drops the request if its send failed, else the source
 * undoes after its timeout, which is twice the destination's.
 *
 * Every call belongs to the engine thread, between steps (accel_xfer has
 * its own progress thread). Puts are submitted in one step and their
 * flush polled in later steps, so the stages overlap decoding.
 */
#ifndef SERVE_MIGRATE_NET_H
#define SERVE_MIGRATE_NET_H

#include <stdint.h>

#include <accel.h>

#include "driver.h"
#include "migrate.h"

#define SERVE_XMIG_TIMEOUT_MS		10000
#define SERVE_XMIG_FINAL_BLOCKS		16
#define SERVE_XMIG_MAX_STAGES		3
/** Stages whose bytes are counted one by one in the stats (the rest in the last). */
#define SERVE_XMIG_STAGES_MAX		8

#define SERVE_XMSG_MAGIC	0x4d58564bu	/* "KVXM" */
#define SERVE_XMSG_VERSION	1u

enum serve_xmsg_kind {
	SERVE_XMSG_BEGIN = 1,
	SERVE_XMSG_BLOCKS = 2,
	SERVE_XMSG_STAGE = 3,
	SERVE_XMSG_FINAL = 4,
	SERVE_XMSG_COMMITTED = 5,
	SERVE_XMSG_ABORT = 6,
	SERVE_XMSG_COMMIT = 7,
	SERVE_XMSG_NR_KINDS,
};

/**
 * A control message: this header, then (BEGIN, STAGE, FINAL) the image,
 * or (BLOCKS) uint32_t blocks[nr_blocks] then desc_len bytes of the
 * destination's memory descriptor (accel_xfer_mem_pack()). Host byte
 * order, as the image.
 */
struct serve_xmsg {
	uint32_t magic;		/* SERVE_XMSG_MAGIC */
	uint16_t version;	/* SERVE_XMSG_VERSION */
	uint16_t kind;		/* enum serve_xmsg_kind */
	uint64_t id;		/* the migration (the source's) */
	uint64_t size;		/* the message's bytes, header included */
	int32_t status;		/* BLOCKS, ABORT: 0 or -errno */
	uint32_t stage;		/* STAGE: k; BLOCKS: the stage it answers (0: BEGIN) */
	uint32_t nr_blocks;	/* BLOCKS */
	uint32_t desc_len;	/* BLOCKS */
	uint64_t image_len;	/* BEGIN, STAGE, FINAL */
	uint64_t block_bytes;	/* of the sender's compute tier */
};

/** What one migration took (the source's). */
struct serve_xmig_stats {
	/** Stopped on the source until COMMITTED came back (the source's clock). */
	uint64_t downtime_us;
	uint64_t total_us;	/* serve_xmig_start() to COMMITTED */
	uint32_t stages;	/* pre-copy stages before the stop */
	uint32_t blocks;	/* the request's at the stop */
	uint32_t tokens;
	uint32_t stop_rtts;	/* round trips while stopped: 1, or 2 (FINAL asked for blocks) */
	uint64_t bytes_copied;	/* all puts */
	uint64_t final_bytes;	/* put while stopped */
	uint64_t stage_bytes[SERVE_XMIG_STAGES_MAX];	/* stage k+1's puts */
};

struct serve_xmig_ops {
	/** Source: migration @id is over: 0 (the destination runs it) or why not. */
	void (*done)(void *arg, uint64_t id, int status, const struct serve_xmig_stats *st);
	/** Destination: migration @id arrived: request @h runs here; @hdr its image (the call's). */
	void (*arrived)(void *arg, uint64_t id, uint32_t h, const struct serve_migr_hdr *hdr);
	/** Destination: migration @id ended before it arrived (@status: why). */
	void (*aborted)(void *arg, uint64_t id, int status);
};

struct serve_xmig;

/**
 * An engine's cross-node migrations over @x (its transport; the caller
 * listens or connects): @bm and @tier0 are the engine's block manager and
 * compute tier (its mapping is registered for peers' puts). NULL and
 * errno.
 */
struct serve_xmig *serve_xmig_create(struct serve_driver *d, struct accel_bm *bm,
				     struct accel_tier *tier0, struct accel_xfer *x,
				     const struct serve_xmig_ops *ops, void *arg);
/** Cancels what is prepared, undoes migrations out; closes the endpoints it accepted. */
void serve_xmig_destroy(struct serve_xmig *n);

/** Stop after @max_stages stages, or once at most @final_blocks are left unsent. */
void serve_xmig_set_stages(struct serve_xmig *n, uint32_t max_stages, uint32_t final_blocks);
/** How long either side waits for the other (0: SERVE_XMIG_TIMEOUT_MS). */
void serve_xmig_set_timeout(struct serve_xmig *n, uint32_t ms);

/**
 * Source: move decoding request @h over @ep (connected, the caller's: it
 * stays open until serve_xmig_forget() or serve_xmig_destroy()) as
 * migration @id. 0 (BEGIN sent);
 * serve_driver_migrate_peek()'s errors; -EEXIST; the send's.
 */
int serve_xmig_start(struct serve_xmig *n, uint64_t id, uint32_t h, struct accel_xfer_ep *ep);
/**
 * Before the caller closes an endpoint it gave serve_xmig_start(): the
 * migrations on it fail (their requests stay), its remote key goes.
 * (An endpoint this object accepted is closed here too.)
 */
void serve_xmig_forget(struct serve_xmig *n, struct accel_xfer_ep *ep);
/** Each step: connections accepted, messages taken, puts, flushes, commits, timeouts. */
void serve_xmig_step(struct serve_xmig *n);
/** Migrations in flight (either side). */
unsigned int serve_xmig_pending(const struct serve_xmig *n);

#endif /* SERVE_MIGRATE_NET_H */
