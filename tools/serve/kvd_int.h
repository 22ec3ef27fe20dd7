/* SPDX-License-Identifier: MIT */
/* kvaccel-serve - the engine's kvacceld connection, shared by pressure.c and kvd_migrate.c. */
#ifndef SERVE_KVD_INT_H
#define SERVE_KVD_INT_H

#include <stdbool.h>

#include <accel_xfer.h>

#include "kvacceld.h"

#include "migrate_node.h"
#include "moe_peer.h"
#include "pressure.h"

/* A request that arrived by migration. */
struct kvd_arrival {
	uint32_t h;
	char from[32];
	uint64_t source;	/* its handle there */
	struct serve_migr_hdr *hdr;	/* a copy of its image's header and tokens */
	struct serve_nmig_stats st;
};

/* A request leaving or gone (status 1 while its migration runs). */
struct kvd_departure {
	uint64_t id;
	uint32_t h;
	char to[32];
	int status;
	struct serve_nmig_stats st;
};

/* The endpoint of a migration to another node (kvd_xmigrate.c). */
struct kvd_xep {
	uint64_t id;
	struct accel_xfer_ep *ep;
	bool over;		/* its migration ended: closed after the step */
};

struct serve_kvd {
	struct accel_engine *e;
	struct serve_driver *d;
	uint64_t rounds;
	/* Live migrations (kvd_migrate.c): NULL until serve_kvd_migrations(). */
	struct serve_nmig *n;
	bool exit_asked;
	uint64_t last_load_ns;
	uint64_t block_bytes;		/* of the compute tier, in the loads */
	uint64_t last_reconnect_ns;	/* serve_kvd_step()'s last try while the daemon is away */
	struct kvd_arrival *in;
	uint32_t nr_in;
	struct kvd_departure *out;
	uint32_t nr_out;
	/* Other nodes' migrations (kvd_xmigrate.c): NULL until serve_kvd_xfer(). */
	struct accel_xfer *x;
	struct serve_xmig *xn;
	char xaddr[KVD_XFER_ADDR_MAX];
	struct kvd_xep *eps;
	uint32_t nr_eps;
	/* Experts handed between engines (kvd_moe.c): NULL until serve_kvd_moe(). */
	struct serve_moe_peer *mp;
};

/* struct accel_engine_ops callbacks for migration hand-offs. */
int serve_kvd_receive(void *arg, const struct accel_handoff *h);
void serve_kvd_handoff_done(void *arg, uint64_t tag, int status);
/* Record request @h that arrived from @from with image @hdr (@st may be NULL). 0 or -ENOMEM. */
int serve_kvd_arrival_add(struct serve_kvd *k, uint32_t h, const char *from,
			  const struct serve_migr_hdr *hdr, const struct serve_nmig_stats *st);
/* Migrations in flight given back, records freed (serve_kvd_close()). */
void serve_kvd_migrations_end(struct serve_kvd *k);

/* kvd_xmigrate.c: the daemon's MIGRATE_REMOTE (struct accel_engine_migration_ops). */
int serve_kvd_migrate_remote(void *arg, uint64_t id, uint64_t req, const char *node,
			     const char *to, const char *addr);
/* The transfer address announced (after the migration ops are set). */
void serve_kvd_xfer_announce(struct serve_kvd *k);
/* Each step; in flight; the end (serve_kvd_migrations_end()). */
void serve_kvd_xstep(struct serve_kvd *k);
unsigned int serve_kvd_xpending(const struct serve_kvd *k);
void serve_kvd_xfer_end(struct serve_kvd *k);

#endif /* SERVE_KVD_INT_H */
