/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - experts from a peer on the node: an engine starting with
 * --moe-from PEER asks PEER, through kvacceld, for its expert store's
 * copies, and PEER hands them over as dma-bufs of its regions (no byte
 * copied; accel_moe_store_export()); the new engine's store takes them as
 * its own copies (accel_moe_store_opts.from) instead of reading the
 * weights file. Documentation/moe.rst, "Scaling from peers".
 *
 * Messages are sealed memfds (memfd.h), the first object of a hand-off:
 *
 * WANT (new engine to peer): its model's fingerprint and MoE shape.
 * COPIES (peer to new engine): status 0 and entries [first, first +
 *	count) of total, each a copy whose region is the hand-off's fd 1 +
 *	i; or a status < 0 and no entries (the peer has no store, serves
 *	another model or failed), which ends the fetch with that error.
 */
#ifndef SERVE_MOE_PEER_H
#define SERVE_MOE_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include <accel.h>
#include <accel_moe.h>

#include "moe.h"

#define SERVE_MOE_MSG_MAGIC	0x454d564bu	/* "KVME" */

enum serve_moe_msg_kind {
	SERVE_MOE_WANT = 1,
	SERVE_MOE_COPIES = 2,
};

/** A message: this header, then (COPIES) struct serve_moe_entry[count]. */
struct serve_moe_msg {
	uint32_t magic;
	uint32_t kind;		/* enum serve_moe_msg_kind */
	uint64_t size;		/* the message's bytes */
	uint64_t model;		/* the sender's serve_migr_model_id() */
	uint64_t expert_bytes;
	uint32_t layers, experts;
	int32_t status;		/* COPIES: 0 or -errno */
	uint32_t first, total;	/* COPIES: this message's first entry, entries in all */
	uint32_t count;		/* COPIES: entries here (the hand-off's fds 1..count) */
};

struct serve_moe_entry {
	uint32_t layer, expert;
	int32_t node;
	uint32_t pad;
};

/** Entries in one COPIES message: a hand-off's objects less the message. */
#define SERVE_MOE_BATCH		(ACCEL_HANDOFF_MAX - 1)
/**
 * COPIES hand-offs in flight per answer: 16 of 16 fds each stay within
 * kvacceld's default 1024 held fds per user (and its 64 held hand-offs per
 * engine), 240 copies a round.
 */
#define SERVE_MOE_INFLIGHT	16
/** Hand-off tags of these messages (never a migration's: serve_nmig_tag()). */
#define SERVE_MOE_TAG		(1ull << 63)
/** How long a fetch waits for the peer by default. */
#define SERVE_MOE_FETCH_MS	10000

struct serve_moe_peer;

/** This engine's side on connection @e (model fingerprint @model). NULL and errno. */
struct serve_moe_peer *serve_moe_peer_create(struct accel_engine *e, uint64_t model);
void serve_moe_peer_destroy(struct serve_moe_peer *p);
/** Whether hand-off @h is one of these messages (its first object's magic). */
bool serve_moe_peer_is_msg(const struct accel_handoff *h);
/**
 * A hand-off that serve_moe_peer_is_msg(): WANT is answered from @moe
 * (NULL: this engine has no store: refused with a COPIES of -ENOENT),
 * COPIES kept for the fetch. 0 when the callback keeps @h's fds (it closes
 * what it does not keep), or -errno: the library closes them.
 */
int serve_moe_peer_receive(struct serve_moe_peer *p, struct serve_moe *moe,
			   const struct accel_handoff *h);
/** A hand-off sent under @tag is over (@status the receiver's); false: not ours. */
bool serve_moe_peer_sent(struct serve_moe_peer *p, uint64_t tag, int status);
/** Send what answers in progress may send now (each step). */
void serve_moe_peer_step(struct serve_moe_peer *p);
/** Answers in progress. */
unsigned int serve_moe_peer_pending(const struct serve_moe_peer *p);

/**
 * serve_moe_peer_fetch() - ask engine @peer for its expert copies of a
 * model of @layers x @experts experts of @expert_bytes, and dispatch the
 * connection until all came (or @timeout_ms passed). *@out receives the
 * entries (their fds the caller's: serve_moe_peer_free()), *@n their count.
 * 0, or -errno with a message in @err: the peer's refusal (-ENOENT: no
 * store; -EINVAL: another model or shape), -ETIMEDOUT, -ECONNRESET.
 */
int serve_moe_peer_fetch(struct serve_moe_peer *p, const char *peer, uint32_t layers,
			 uint32_t experts, uint64_t expert_bytes, int timeout_ms,
			 struct accel_moe_store_share **out, uint32_t *n, char *err,
			 size_t errlen);
/** Close the fds of @n entries and free them. */
void serve_moe_peer_free(struct accel_moe_store_share *e, uint32_t n);

#endif /* SERVE_MOE_PEER_H */
