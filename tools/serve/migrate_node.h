/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - live migration between two engines of one node, no KV
 * byte copied (migrate_node.c; Documentation/serve.rst, "Live migration").
 *
 * The engines' compute tiers are window tiers (ACCEL_TIER_WINDOW): each
 * block id is a slot that some region's page backs. The request's pages
 * change hands, and the destination's displaced pages go the other way,
 * so both block pools keep their size and the node's memory stays what it
 * was. Four messages, each a hand-off (through kvacceld) of a sealed memfd
 * and the dma-bufs of the regions it names:
 *
 *   OFFER     source -> destination, the request still decoding: its image
 *             as it is now and (zero-copy) the page behind each of its full
 *             blocks: those never change while it decodes on. The
 *             destination checks the image, pre-allocates its blocks (the
 *             costly part: the block keys) and pre-binds the full ones to
 *             the request's pages, all off the request's critical path.
 *   READY     destination -> source: prepared, or a refusal (status); with
 *             the pages its pre-bound blocks had (they go to the source's
 *             blocks once it lets them go).
 *   COMMIT    source -> destination: at the source's next step boundary
 *             the request stops; the tokens and digests it made since the
 *             OFFER, the page behind each block past the pre-bound ones
 *             (the bytes of blocks it shares with others there), and the
 *             pre-bound blocks that others came to share meanwhile (their
 *             bytes: the destination binds its own pages back under them
 *             and copies). The destination extends its blocks to the
 *             tokens decoded meanwhile, rebinds the last ones to the
 *             request's pages and schedules it (its next step decodes the
 *             token the source sampled last): the downtime is this one
 *             message, and nothing in it grows with the request's length
 *             but the block manager's bookkeeping.
 *   GIVEBACK  destination -> source: the pages it gives for the own blocks
 *             past the pre-bound ones; the source rebinds its blocks to
 *             them and to READY's, and frees them.
 *
 * Outcomes: until the destination takes COMMIT, anything that fails leaves
 * the request on the source: a refusal, a failed hand-off, a destination
 * that dies (it resumes where it stopped; a destination that hears nothing
 * for SERVE_NMIG_TIMEOUT_MS frees what it prepared). A pre-bound
 * destination that gives up (ABORT, a timeout, a source gone, its own
 * exit) binds its own pages back under its blocks before it frees them, so
 * no page of the source's stays bound there; one that dies lets go of them
 * with its bindings. Once it took COMMIT the request is the destination's.
 * A source that dies after COMMIT leaves it running there; a request that
 * finishes or is preempted while OFFERED stays on the source (the
 * destination is told: ABORT). Never on both sides, never lost silently.
 *
 * Every call belongs to the engine thread, between steps. The one piece
 * of work that grows with the request on the source after its stop, its
 * blocks' rebind to the pages given back (a kernel bind of every block),
 * runs on a migration thread of its own (started with the first GIVEBACK,
 * at nice 19: the steps and, on shared CPUs, the destination come first):
 * it touches only the tier (thread-safe, accel_mover.h) and its job; the
 * source frees the blocks at the step after it finished. Holds and rebinds
 * are serialised (a rebind lets go of held regions no block is bound to,
 * which would drop a hold made for a rebind still to come): the engine
 * thread holds the lock for each message it handles, so a message that
 * comes while the thread rebinds waits for it.
 */
#ifndef SERVE_MIGRATE_NODE_H
#define SERVE_MIGRATE_NODE_H

#include <stdint.h>

#include <accel.h>

#include "driver.h"
#include "migrate.h"

/** A prepared migration the source never commits is freed after this. */
#define SERVE_NMIG_TIMEOUT_MS	10000

#define SERVE_NMSG_MAGIC	0x4d4e564bu	/* "KVNM" */

enum serve_nmsg_kind {
	SERVE_NMSG_OFFER = 1,
	SERVE_NMSG_READY = 2,
	SERVE_NMSG_COMMIT = 3,
	SERVE_NMSG_GIVEBACK = 4,
	SERVE_NMSG_ABORT = 5,
};

/**
 * A message (the memfd's bytes): the header, uint64_t keys[nr_keys] (fd
 * i + 1 of the hand-off is the region of keys[i]), struct serve_npage
 * pages[nr_pages], uint32_t back[nr_back] (padded to 8 bytes), then the
 * image (OFFER: the whole one; COMMIT: its delta, serve_nmig_delta) and
 * (COMMIT) block_bytes bytes for each page whose own is 0, then for each
 * back block.
 *
 * pages[]: OFFER, the source's page behind each full block 0..nr_pages-1
 * (own 1); READY, the destination's page each pre-bound block had; COMMIT,
 * blocks pre..pre+nr_pages-1; GIVEBACK, one per own block of COMMIT's.
 * back[] (COMMIT): pre-bound blocks (ascending, below pre) that others
 * share on the source now: their bytes follow, the destination's pages
 * stay under them.
 */
struct serve_nmsg {
	uint32_t magic;
	uint32_t kind;		/* enum serve_nmsg_kind */
	uint64_t id;		/* the migration (kvacceld's) */
	uint64_t size;		/* the message's bytes */
	int32_t status;		/* READY: 0, or the -errno of the refusal */
	uint32_t nr_keys;
	uint32_t nr_pages;	/* COMMIT: the request's blocks; GIVEBACK: one per own block */
	uint32_t mode;		/* OFFER: enum serve_nmig_mode; else 0 */
	uint64_t image_len;	/* OFFER, COMMIT */
	uint64_t block_bytes;	/* OFFER, COMMIT */
	uint64_t downtime_us;	/* GIVEBACK: the destination's (stop to runnable, the node's clock) */
	uint32_t pre;		/* COMMIT: the blocks pre-bound (READY's nr_pages) */
	uint32_t nr_back;	/* COMMIT: back[] */
	uint32_t base_tokens;	/* COMMIT: the OFFER's tokens, the delta's start */
	uint32_t base_gen;	/* COMMIT: the OFFER's generated tokens */
};

/**
 * COMMIT's image: the request's header as at the stop (its final counts),
 * int32_t tokens[n_prompt + n_gen - base_tokens] (those after the
 * OFFER's), at the next multiple of 8 uint64_t digests[n_gen - base_gen].
 */
static inline size_t serve_nmig_delta_size(uint32_t ntok, uint32_t ngen)
{
	return sizeof(struct serve_migr_hdr) + ((((size_t)ntok * 4) + 7) & ~(size_t)7) +
	       (size_t)ngen * 8;
}

/** How the KV moves (the baselines measure against ZERO_COPY). */
enum serve_nmig_mode {
	SERVE_NMIG_ZERO_COPY = 0,	/* the pages change hands */
	SERVE_NMIG_COPY = 1,		/* stop and copy: every block's bytes in the COMMIT */
	SERVE_NMIG_RECOMPUTE = 2,	/* no KV: the destination prefills the tokens again */
	SERVE_NMIG_NR_MODES,
};

struct serve_npage {
	uint64_t key;		/* the region (accel_tier_page()) */
	uint32_t first;		/* its first region block */
	uint32_t own;		/* COMMIT: 1 if the page changes hands, 0 if its bytes follow */
};

/** What one migration took (the destination's, once its first token came). */
struct serve_nmig_stats {
	/** Stopped: out of the source's scheduler until runnable in the destination's. */
	uint64_t downtime_us;
	/** The source's last token to the destination's next (downtime and a decode step). */
	uint64_t gap_us;
	uint64_t total_us;	/* the migrate call to GIVEBACK taken (source) */
	uint64_t pages;		/* changed hands */
	uint64_t bytes_copied;	/* shared blocks' bytes */
	uint32_t blocks;
	uint32_t tokens;
};

struct serve_nmig_ops {
	/** Hand @n fds to engine @to under @tag (accel_engine_handoff()). */
	int (*send)(void *arg, const char *to, uint64_t tag, const int *fds,
		    const enum accel_handoff_kind *kinds, unsigned int n);
	/** Source: migration @id is over (accel_engine_migrated()). */
	void (*done)(void *arg, uint64_t id, int status, const struct serve_nmig_stats *st);
	/**
	 * Destination: request @h arrived from @from (its image: @hdr, valid
	 * during the call) and decoded its first token here.
	 */
	void (*arrived)(void *arg, uint64_t id, uint32_t h, const char *from,
			const struct serve_migr_hdr *hdr, const struct serve_nmig_stats *st);
};

struct serve_nmig;

/** NULL and errno: EOPNOTSUPP (@tier0 is not a window tier), ENOMEM. */
struct serve_nmig *serve_nmig_create(struct serve_driver *d, struct accel_tier *tier0,
				     const struct serve_nmig_ops *ops, void *arg);
/** Cancels what is prepared; migrations out in flight resume their requests. */
void serve_nmig_destroy(struct serve_nmig *n);

/**
 * Source: move request @h to engine @to as migration @id. 0 (OFFER sent);
 * -EBUSY (a migration of it runs), -EEXIST (@id in use);
 * serve_driver_migrate_peek()'s errors; the send's.
 */
int serve_nmig_start(struct serve_nmig *n, uint64_t id, uint32_t h, const char *to);
/** serve_nmig_start() moving the KV as @mode says (enum serve_nmig_mode). */
int serve_nmig_start_mode(struct serve_nmig *n, uint64_t id, uint32_t h, const char *to,
			  uint32_t mode);
/**
 * A hand-off from engine @from: a message and its regions' fds (the
 * caller's; closed by the caller after). 0, or -errno to refuse it
 * (-EPROTO: not a message, -ENOENT: an unknown migration).
 */
int serve_nmig_receive(struct serve_nmig *n, const char *from, const int *fds,
		       const enum accel_handoff_kind *kinds, unsigned int count);
/** A hand-off this engine sent under @tag is over (@status: the receiver's). */
void serve_nmig_sent(struct serve_nmig *n, uint64_t tag, int status);
/** kvacceld says migration @id is over (the other side left, or a timeout). */
void serve_nmig_abort(struct serve_nmig *n, uint64_t id);
/** Each step: commits waiting for room, timeouts, first tokens of arrivals. */
void serve_nmig_step(struct serve_nmig *n);
/** How long a prepared migration waits for its COMMIT (0: SERVE_NMIG_TIMEOUT_MS). */
void serve_nmig_set_timeout(struct serve_nmig *n, uint32_t ms);
/** Migrations in flight (either side). */
unsigned int serve_nmig_pending(const struct serve_nmig *n);

/**
 * A test hook: when the environment's SERVE_MIGR_STOP_AT names @stage
 * ("migrate": a source asked to migrate, before its OFFER; "offer": the
 * OFFER sent; "ready": READY sent; "commit": the COMMIT sent; "commit-in":
 * a destination got the COMMIT, before it looks at it), the first
 * time it comes the process says so on stderr and stops itself (SIGSTOP)
 * until SIGCONT: tests/serve/migrate_kvd_kill.sh kills kvacceld there.
 */
void serve_nmig_hook(const char *stage, uint64_t id);

/** The hand-off tag of message @kind of migration @id. */
static inline uint64_t serve_nmig_tag(uint64_t id, uint32_t kind)
{
	return id << 3 | kind;
}

#endif /* SERVE_MIGRATE_NODE_H */
