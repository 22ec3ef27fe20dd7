// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the cluster view as KVD_MSG_CLUSTER_INFO messages
 * (uapi/kvacceld.h): the status first, then one per node and one per
 * engine. No I/O of its own: each message goes to @emit.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "kvdmsg.h"

static void info_hdr(struct kvd_cluster_info *i, unsigned int kind, uint64_t seq)
{
	memset(i, 0, sizeof(*i));
	kvdmsg_hdr(&i->hdr, KVD_MSG_CLUSTER_INFO, sizeof(*i), seq);
	i->kind = kind;
}

int kvd_cluster_infos(const struct kvd_cluster_snap *s, uint64_t seq,
		      int (*emit)(const struct kvd_cluster_info *i, void *arg), void *arg)
{
	struct kvd_cluster_info i;
	struct timespec ts;
	int64_t wall;
	size_t k;
	int ret;

	clock_gettime(CLOCK_REALTIME, &ts);
	wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	info_hdr(&i, KVD_CLUSTER_STATUS, seq);
	i.flags = (s->st.stale ? KVD_CLUSTER_STALE : 0) |
		  (s->st.published ? KVD_CLUSTER_PUBLISHED : 0);
	snprintf(i.node, sizeof(i.node), "%s", s->st.node);
	snprintf(i.cluster, sizeof(i.cluster), "%s", s->st.cluster);
	i.age_ms = s->st.age_ms;
	i.revision = s->st.revision;
	i.lease = (uint64_t)s->st.lease;
	i.publishes = s->st.publishes;
	i.publish_errors = s->st.publish_errors;
	i.keepalive_errors = s->st.keepalive_errors;
	i.watch_restarts = s->st.watch_restarts;
	i.ignored = s->st.ignored;
	i.usage = s->nnodes;
	i.engines = (uint32_t)s->nengines;
	snprintf(i.ucx_address, sizeof(i.ucx_address), "%s", s->st.endpoint);
	snprintf(i.error, sizeof(i.error), "%s", s->st.error);
	ret = emit(&i, arg);
	for (k = 0; !ret && k < s->nnodes; k++) {
		const struct kvd_cview_node *n = &s->nodes[k];

		info_hdr(&i, KVD_CLUSTER_NODE, seq);
		memcpy(i.node, n->name, sizeof(i.node));
		i.flags = (n->pressure ? KVD_CLUSTER_PRESSURE : 0) |
			  (!strcmp(n->name, s->st.node) ? KVD_CLUSTER_SELF : 0);
		i.capacity = n->capacity;
		i.limit = n->limit;
		i.usage = n->usage;
		i.engines = n->engines;
		i.age_ms = wall > n->updated_ms ? wall - n->updated_ms : 0;
		i.revision = n->mod_revision;
		memcpy(i.ucx_address, n->ucx_address, sizeof(i.ucx_address));
		ret = emit(&i, arg);
	}
	for (k = 0; !ret && k < s->nengines; k++) {
		const struct kvd_cview_engine *e = &s->engines[k];
		unsigned int m;
		size_t at = 0;

		info_hdr(&i, KVD_CLUSTER_ENGINE, seq);
		memcpy(i.node, e->node, sizeof(i.node));
		memcpy(i.name, e->name, sizeof(i.name));
		i.flags = e->draining ? KVD_CLUSTER_DRAINING : 0;
		i.priority = e->priority;
		i.block_bytes = e->block_bytes;
		i.blocks_total = e->blocks_total;
		i.blocks_free = e->blocks_free;
		i.running = e->running;
		i.waiting = e->waiting;
		i.load_ppm = e->load >= 1 ? 1000000 : e->load > 0 ?
			     (uint32_t)(e->load * 1000000 + 0.5) : 0;
		i.revision = e->mod_revision;
		memcpy(i.ucx_address, e->xfer, sizeof(e->xfer));
		/* Model names have no ',' of their own to split on: they are listed whole. */
		for (m = 0; m < e->nmodels && at < sizeof(i.models) - 1; m++)
			at += (size_t)snprintf(i.models + at, sizeof(i.models) - at, "%s%s",
					       m ? "," : "", e->models[m]);
		ret = emit(&i, arg);
	}
	return ret;
}
