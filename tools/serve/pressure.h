/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - the engine's registration with kvacceld (--kvacceld):
 * the daemon's release requests (pressure rounds) are answered through
 * the scheduler (serve_driver_pressure(): cached prefixes, then swap-outs
 * or drops, lowest priority first). Driven from the engine thread.
 */
#ifndef SERVE_PRESSURE_H
#define SERVE_PRESSURE_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "migrate.h"
#include "migrate_node.h"

struct serve_kvd;

/** NULL with a message in @err (no daemon, the name taken, ...). */
struct serve_kvd *serve_kvd_connect(const char *name, uint32_t prio, struct serve_driver *d,
				    char *err, size_t errlen);
void serve_kvd_close(struct serve_kvd *k);
/** The socket to poll (-1: none). */
int serve_kvd_fd(const struct serve_kvd *k);
/** Answer what the daemon sent; reconnects once when it went away. */
void serve_kvd_dispatch(struct serve_kvd *k);
/** Release requests answered so far. */
uint64_t serve_kvd_rounds(const struct serve_kvd *k);
/** The driver, for a connection made before it (release requests answer 0 bytes until then). */
void serve_kvd_set_driver(struct serve_kvd *k, struct serve_driver *d);

/* ---- experts between engines (kvd_moe.c; Documentation/moe.rst, "Scaling from peers") ---- */

/**
 * Answer other engines' requests for this engine's expert copies (its
 * driver's engine's store, model fingerprint @model) and make
 * serve_kvd_moe_fetch() possible. 0 or -ENOMEM.
 */
int serve_kvd_moe(struct serve_kvd *k, uint64_t model);
/**
 * After serve_kvd_moe(): engine @peer's expert copies of this model
 * (serve_moe_peer_fetch(), SERVE_MOE_FETCH_MS). 0 or -errno with a message
 * in @err.
 */
int serve_kvd_moe_fetch(struct serve_kvd *k, const char *peer, uint32_t layers,
			uint32_t experts, uint64_t expert_bytes,
			struct accel_moe_store_share **out, uint32_t *n, char *err, size_t errlen);

/* ---- live migrations (kvd_migrate.c; Documentation/serve.rst, "Live migration") ---- */

/**
 * Take part in kvacceld's live migrations: requests move to and from other
 * engines of the node without a KV byte copied (migrate_node.h); @tier0
 * is the compute tier, a window tier. Announces the feature; from then
 * on serve_kvd_step() reports the engine's load. -EOPNOTSUPP: @tier0 is
 * not a window tier, or the daemon has no migrations.
 */
int serve_kvd_migrations(struct serve_kvd *k, struct accel_tier *tier0);
/**
 * Before serve_kvd_migrations(): take part in migrations to and from other
 * nodes too, listening at @addr ("HOST:PORT") over accel_xfer (UCX) with
 * @bm and @tier0 (kvd_xmigrate.c). 0, or -errno with a message in @err.
 */
int serve_kvd_xfer(struct serve_kvd *k, struct accel_bm *bm, struct accel_tier *tier0,
		   const char *addr, char *err, size_t errlen);
/** The transport's fd to poll with serve_kvd_fd() (-1: none). */
int serve_kvd_xfer_fd(const struct serve_kvd *k);
/** Each step: migrations' timeouts and arrivals, and the load (at most every 50 ms). */
void serve_kvd_step(struct serve_kvd *k);
/** kvacceld said this engine is drained: finish and exit. */
bool serve_kvd_exit_asked(const struct serve_kvd *k);
/** Migrations in flight, either way. */
unsigned int serve_kvd_pending(const struct serve_kvd *k);
/** The @i-th request that arrived by migration: its handle (0: no more), where from. */
uint32_t serve_kvd_arrival(const struct serve_kvd *k, uint32_t i, const char **from,
			   const struct serve_migr_hdr **hdr, const struct serve_nmig_stats **st);
/** Where migrated-out request @h went (NULL: it did not), and how it went. */
const char *serve_kvd_departure(const struct serve_kvd *k, uint32_t h, int *status,
				const struct serve_nmig_stats **st);

#endif /* SERVE_PRESSURE_H */
