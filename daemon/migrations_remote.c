// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - live migrations to engines of other nodes (Documentation/
 * kvacceld.rst, "Migrations to other nodes"). The destination is picked
 * from the cluster view (cluster.h): an engine of another node that
 * announced a transfer address (KVD_MSG_XFER_ADDR, published as its
 * "xfer"), is not draining and has the free blocks. The source, which
 * announced KVD_FEAT_XMIGRATION, is sent KVD_MSG_MIGRATE_REMOTE and moves
 * the request itself over the network (kvaccel-serve: multi-stage pre-copy
 * over UCX); the destination's daemon takes no part, and only the source's
 * answers (MIGRATE_STARTED, MIGRATED) end the migration here, as for one
 * on this node. The view's free blocks are as old as its last publication:
 * migrations this daemon has in flight to an engine count against them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "cluster.h"
#include "kvd.h"
#include "kvdmsg.h"

static bool xcapable(const struct kvd_conn *c)
{
	return c && (c->features & KVD_FEAT_MIGRATION) && (c->features & KVD_FEAT_XMIGRATION);
}

/* @e's free blocks less those of this daemon's migrations in flight to it. */
static uint32_t free_of(const struct kvd *d, const struct kvd_cview_engine *e)
{
	const struct kvd_mig *g;
	uint64_t taken = 0;

	for (g = d->migs; g; g = g->next)
		if (!strcmp(g->to_node, e->node) && !strcmp(g->to, e->name))
			taken += g->blocks;
	return taken >= e->blocks_free ? 0 : e->blocks_free - (uint32_t)taken;
}

static const struct kvd_cview_engine *find_engine(const struct kvd_cluster_snap *s,
						  const char *node, const char *name)
{
	size_t i;

	for (i = 0; i < s->nengines; i++)
		if (!strcmp(s->engines[i].node, node) && !strcmp(s->engines[i].name, name))
			return &s->engines[i];
	return NULL;
}

/* Ask @s to move @g's request to @e at its transfer address. */
static void send_remote(struct kvd_conn *s, const struct kvd_mig *g,
			const struct kvd_cview_engine *e)
{
	struct kvd_migrate_remote msg = { 0 };

	kvdmsg_hdr(&msg.hdr, KVD_MSG_MIGRATE_REMOTE, sizeof(msg), 0);
	msg.id = g->id;
	msg.req = g->req;
	snprintf(msg.node, sizeof(msg.node), "%s", e->node);
	snprintf(msg.to, sizeof(msg.to), "%s", e->name);
	snprintf(msg.addr, sizeof(msg.addr), "%s", e->xfer);
	msg.reason = g->reason;
	/* A source whose connection fails is dropped: kvd_mig_conn_gone() aborts it. */
	kvd_send(s, &msg, NULL, 0);
}

static bool node_pressure(const struct kvd_cluster_snap *s, const char *node)
{
	size_t i;

	for (i = 0; i < s->nnodes; i++)
		if (!strcmp(s->nodes[i].name, node))
			return s->nodes[i].pressure;
	return true;	/* an engine whose node is not in the view: not a destination */
}

/*
 * Can @e take @blocks blocks of @src's from this node? NULL, or why not
 * (for the admin). As kvd_cview_pick_engine(): another node's engine, its
 * node in the view and not under pressure, not draining, the same block
 * size; and it announced a transfer address.
 */
static const char *unfit(const struct kvd *d, const struct kvd_cluster_snap *s,
			 const struct kvd_conn *src, const struct kvd_cview_engine *e,
			 uint32_t blocks, int *err)
{
	*err = -EOPNOTSUPP;
	if (!strcmp(e->node, s->st.node)) {
		*err = -EINVAL;
		return "(it is of this node: name the engine without a node)";
	}
	if (!e->xfer[0])
		return "(it has announced no transfer address)";
	if (e->draining)
		return "(it is draining)";
	if (!e->blocks_total)
		return "(it has reported no load)";
	if (e->block_bytes != src->block_bytes) {
		*err = -EINVAL;
		return "(its blocks are of another size: another model or layout)";
	}
	if (node_pressure(s, e->node))
		return "(its node is under pressure, or not in the view)";
	if (free_of(d, e) < blocks) {
		*err = -ENOSPC;
		return "(too few free blocks)";
	}
	return NULL;
}

int kvd_mig_request_remote(struct kvd *d, struct kvd_conn *c, struct kvd_conn *s,
			   const struct kvd_migrate_req *m)
{
	const struct kvd_cview_engine *e;
	const struct kvd_load_req *r;
	struct kvd_migration_info info;
	struct kvd_cluster_snap snap;
	char req[24], dst[KVD_NODE_MAX + KVD_NAME_MAX + 1];
	const char *why;
	struct kvd_mig *g;
	int ret;

	snprintf(req, sizeof(req), "%llu", (unsigned long long)m->req);
	snprintf(dst, sizeof(dst), "%s/%s", m->to_node, m->to);
	if (!d->cluster)
		return kvd_mig_refuse(d, c, &m->hdr, -EOPNOTSUPP, "no cluster view to find", dst,
				      "in ([cluster] enabled = false)");
	if (!xcapable(s))
		return kvd_mig_refuse(d, c, &m->hdr, -EOPNOTSUPP, "no migrations to other nodes from",
				      s->name, "(it has not announced them)");
	if (kvd_cluster_snapshot(d->cluster, &snap))
		return kvd_mig_refuse(d, c, &m->hdr, -ENOMEM, "out of memory for", req, NULL);
	/* The destination first (is it there at all?), then the request, then the fit. */
	e = find_engine(&snap, m->to_node, m->to);
	r = kvd_mig_candidate(s, m->req);
	if (snap.st.stale) {
		ret = kvd_mig_refuse(d, c, &m->hdr, -ESTALE, "the cluster view is stale: not",
				     dst, NULL);
	} else if (!e) {
		ret = kvd_mig_refuse(d, c, &m->hdr, -ENOENT, "no engine", dst,
				     "in the cluster view");
	} else if (!strcmp(e->node, snap.st.node)) {
		ret = kvd_mig_refuse(d, c, &m->hdr, -EINVAL, "no migrations into", dst,
				     "(it is of this node: name the engine without a node)");
	} else if (!r) {
		char of[KVD_NAME_MAX + 8];

		snprintf(of, sizeof(of), "of %s", s->name);
		ret = kvd_mig_refuse(d, c, &m->hdr, -ENOENT, "no candidate request", req, of);
	} else if (kvd_mig_busy(d, s->name, m->req)) {
		ret = kvd_mig_refuse(d, c, &m->hdr, -EBUSY, "request migrating already:", req,
				     NULL);
	} else if (s->mig_out >= d->cfg->migration.max_out) {
		ret = kvd_mig_refuse(d, c, &m->hdr, -EBUSY, "at max_migrations_out:", s->name,
				     NULL);
	} else if ((why = unfit(d, &snap, s, e, r->blocks, &ret))) {
		ret = kvd_mig_refuse(d, c, &m->hdr, ret, "no migrations into", dst, why);
	} else {
		g = kvd_mig_new(d, s, NULL, e->name, e->node, m->req, r->blocks,
				KVD_MIGRATE_MANUAL);
		if (!g) {
			ret = kvd_mig_refuse(d, c, &m->hdr, -ENOMEM, "out of memory for", req, NULL);
		} else {
			send_remote(s, g, e);
			kvd_mig_info_of(g, &info, m->hdr.seq, kvd_now());
			kvd_send(c, &info, NULL, 0);
			ret = 0;
		}
	}
	kvd_cluster_snap_free(&snap);
	return ret;
}

/*
 * @s's next candidate for a drain (shortest or longest first), or NULL. A
 * request whose migrations failed lately waits out its backoff
 * (kvd_mig_backing_off()), as in the local policy: a destination node that
 * cannot take it is not asked again at every tick.
 */
static const struct kvd_load_req *next_candidate(const struct kvd *d, const struct kvd_conn *s,
						 int64_t now)
{
	const struct kvd_load_req *best = NULL;
	unsigned int i;

	for (i = 0; i < s->nreqs; i++) {
		const struct kvd_load_req *r = &s->reqs[i];

		if (kvd_mig_busy(d, s->name, r->req) ||
		    kvd_mig_backing_off(d, s->name, r->req, now))
			continue;
		if (!best || (d->cfg->migration.longest_first ? r->tokens > best->tokens :
			      r->tokens < best->tokens))
			best = r;
	}
	return best;
}

void kvd_mig_drain_remote(struct kvd *d, int64_t now)
{
	struct kvd_cluster_snap snap;
	struct kvd_conn *s;
	bool any = false;
	size_t i;

	if (!d->cluster)
		return;
	for (s = d->conns; s && !any; s = s->next)
		any = s->registered && !s->dead && s->draining && xcapable(s) && s->has_load &&
		      s->mig_out < d->cfg->migration.max_out && next_candidate(d, s, now);
	if (!any || kvd_cluster_snapshot(d->cluster, &snap))
		return;
	if (snap.st.stale) {
		kvd_cluster_snap_free(&snap);
		return;	/* the next tick looks again */
	}
	for (s = d->conns; s; s = s->next) {
		const struct kvd_cview_engine *best = NULL;
		const struct kvd_load_req *r;
		struct kvd_mig *g;
		int err;

		if (!s->registered || s->dead || !s->draining || !xcapable(s) || !s->has_load ||
		    s->mig_out >= d->cfg->migration.max_out)
			continue;
		r = next_candidate(d, s, now);
		if (!r)
			continue;
		/* The least loaded engine of another node that fits; ties: the most to spare. */
		for (i = 0; i < snap.nengines; i++) {
			const struct kvd_cview_engine *e = &snap.engines[i];

			if (unfit(d, &snap, s, e, r->blocks, &err))
				continue;
			if (!best || e->load < best->load ||
			    (e->load == best->load && free_of(d, e) > free_of(d, best)))
				best = e;
		}
		if (!best)
			continue;
		g = kvd_mig_new(d, s, NULL, best->name, best->node, r->req, r->blocks,
				KVD_MIGRATE_DRAIN);
		if (g)
			send_remote(s, g, best);
	}
	kvd_cluster_snap_free(&snap);
}
