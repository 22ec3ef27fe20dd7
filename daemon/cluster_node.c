// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the daemon's side of the cluster part (cluster.h): every
 * update_interval_ms the node's facts -- its memory from the kernel (one
 * DEVICE_GET), its engines from their registrations and last LOAD
 * reports (migrations.c) -- go to the part, which publishes them when
 * they changed enough; LIST_CLUSTER answers from the part's view. Nothing
 * here waits on etcd: the part's threads do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <syslog.h>

#include "cluster.h"
#include "kvd.h"
#include "kvdmsg.h"
#include "kvnl.h"

struct dev {
	uint64_t limit, usage;
	uint8_t pressure;
};

static int dev_cb(const struct kvnl_msg *m, void *arg)
{
	struct dev *v = arg;

	kvnl_u64(m, KVACCEL_A_LIMIT, &v->limit);
	kvnl_u64(m, KVACCEL_A_USAGE, &v->usage);
	kvnl_u8(m, KVACCEL_A_PRESSURE, &v->pressure);
	return 0;
}

void kvd_cl_start(struct kvd *d)
{
	struct kvd_cluster *c;
	char err[256];

	if (!d->cfg->cluster.enabled)
		return;
	c = kvd_cluster_start(&d->cfg->cluster, kvd_log, err, sizeof(err));
	if (!c) {
		kvd_log(LOG_ERR, "%s: serving the node without the cluster view", err);
		return;
	}
	pthread_mutex_lock(&d->lock);
	d->cluster = c;
	pthread_mutex_unlock(&d->lock);
	d->cl_tick_at = kvd_now();
}

void kvd_cl_stop(struct kvd *d)
{
	struct kvd_cluster *c;

	pthread_mutex_lock(&d->lock);
	c = d->cluster;
	d->cluster = NULL;
	pthread_mutex_unlock(&d->lock);
	d->cl_tick_at = 0;
	/* A clean stop: the lease revoked, this node's keys gone at once. */
	kvd_cluster_stop(c, true);
}

/* Gather this node's facts: the kernel's device state and the engines' last loads. */
static void facts_of(struct kvd *d, struct kvd_cluster_facts *f)
{
	struct dev v = { 0 };
	struct sysinfo si;
	const struct kvd_conn *c;

	memset(f, 0, sizeof(*f));
	if (!kvnl_exec(d->nl, kvnl_request(d->nl, KVACCEL_CMD_DEVICE_GET, false), dev_cb, &v)) {
		f->node.limit = v.limit;
		f->node.usage = v.usage;
		f->node.pressure = v.pressure;
	} else {
		f->node.pressure = d->pressure;
	}
	if (!sysinfo(&si))
		f->node.capacity = (uint64_t)si.totalram * si.mem_unit;
	for (c = d->conns; c && f->nengines < KVD_CLUSTER_ENGINES_MAX; c = c->next) {
		struct kvd_cview_engine *e;

		if (!c->registered || c->dead)
			continue;
		e = &f->engines[f->nengines++];
		memcpy(e->name, c->name, sizeof(e->name));
		e->priority = c->priority;
		e->draining = c->draining;
		if (c->has_load) {
			e->block_bytes = c->block_bytes;
			e->blocks_total = c->blocks_total;
			e->blocks_free = c->blocks_free <= c->blocks_total ? c->blocks_free :
					 c->blocks_total;
			e->running = c->running;
			e->waiting = c->waiting;
			e->load = e->blocks_total ?
				  (double)(e->blocks_total - e->blocks_free) / e->blocks_total : 0;
		}
	}
}

void kvd_cl_tick(struct kvd *d, int64_t now)
{
	struct kvd_cluster_facts *f;

	if (!d->cluster || !d->cl_tick_at || d->cl_tick_at > now)
		return;
	d->cl_tick_at = now + (int64_t)d->cfg->cluster.update_interval_ms * 1000000;
	f = malloc(sizeof(*f));
	if (!f)
		return;
	facts_of(d, f);
	kvd_cluster_update(d->cluster, f);
	free(f);
}

int64_t kvd_cl_next_deadline(const struct kvd *d)
{
	return d->cluster && d->cl_tick_at ? d->cl_tick_at : INT64_MAX;
}

static void info_hdr(struct kvd_cluster_info *i, unsigned int kind, uint64_t seq)
{
	memset(i, 0, sizeof(*i));
	kvdmsg_hdr(&i->hdr, KVD_MSG_CLUSTER_INFO, sizeof(*i), seq);
	i->kind = kind;
}

void kvd_cl_list(struct kvd *d, struct kvd_conn *c, uint64_t seq)
{
	struct kvd_cluster_snap s;
	struct kvd_cluster_info i;
	struct kvd_hdr end;
	int64_t wall;
	size_t k;

	if (!d->cluster) {
		kvd_send_error(d, c, seq, KVD_MSG_LIST_CLUSTER, -ENOTCONN, false,
			       "the cluster part is off ([cluster] enabled = false)");
		return;
	}
	if (kvd_cluster_snapshot(d->cluster, &s)) {
		kvd_send_error(d, c, seq, KVD_MSG_LIST_CLUSTER, -ENOMEM, false, "out of memory");
		return;
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	info_hdr(&i, KVD_CLUSTER_STATUS, seq);
	i.flags = (s.st.stale ? KVD_CLUSTER_STALE : 0) | (s.st.published ? KVD_CLUSTER_PUBLISHED : 0);
	snprintf(i.node, sizeof(i.node), "%s", s.st.node);
	snprintf(i.cluster, sizeof(i.cluster), "%s", s.st.cluster);
	i.age_ms = s.st.age_ms;
	i.revision = s.st.revision;
	i.lease = (uint64_t)s.st.lease;
	i.publishes = s.st.publishes;
	i.publish_errors = s.st.publish_errors;
	i.keepalive_errors = s.st.keepalive_errors;
	i.watch_restarts = s.st.watch_restarts;
	i.ignored = s.st.ignored;
	i.usage = s.nnodes;
	i.engines = (uint32_t)s.nengines;
	snprintf(i.ucx_address, sizeof(i.ucx_address), "%s", s.st.endpoint);
	snprintf(i.error, sizeof(i.error), "%s", s.st.error);
	if (kvd_send(c, &i, NULL, 0))
		goto out;
	for (k = 0; k < s.nnodes; k++) {
		const struct kvd_cview_node *n = &s.nodes[k];

		info_hdr(&i, KVD_CLUSTER_NODE, seq);
		snprintf(i.node, sizeof(i.node), "%s", n->name);
		i.flags = (n->pressure ? KVD_CLUSTER_PRESSURE : 0) |
			  (!strcmp(n->name, s.st.node) ? KVD_CLUSTER_SELF : 0);
		i.capacity = n->capacity;
		i.limit = n->limit;
		i.usage = n->usage;
		i.engines = n->engines;
		i.age_ms = wall > n->updated_ms ? wall - n->updated_ms : 0;
		i.revision = n->mod_revision;
		snprintf(i.ucx_address, sizeof(i.ucx_address), "%s", n->ucx_address);
		if (kvd_send(c, &i, NULL, 0))
			goto out;
	}
	for (k = 0; k < s.nengines; k++) {
		const struct kvd_cview_engine *e = &s.engines[k];
		unsigned int m;
		size_t at = 0;

		info_hdr(&i, KVD_CLUSTER_ENGINE, seq);
		snprintf(i.node, sizeof(i.node), "%s", e->node);
		memcpy(i.name, e->name, sizeof(i.name));
		i.flags = e->draining ? KVD_CLUSTER_DRAINING : 0;
		i.priority = e->priority;
		i.block_bytes = e->block_bytes;
		i.blocks_total = e->blocks_total;
		i.blocks_free = e->blocks_free;
		i.running = e->running;
		i.waiting = e->waiting;
		i.load_ppm = (uint32_t)(e->load * 1000000 + 0.5);
		if (i.load_ppm > 1000000)
			i.load_ppm = 1000000;
		i.revision = e->mod_revision;
		for (m = 0; m < e->nmodels && at < sizeof(i.models); m++)
			at += (size_t)snprintf(i.models + at, sizeof(i.models) - at, "%s%s",
					       m ? "," : "", e->models[m]);
		if (kvd_send(c, &i, NULL, 0))
			goto out;
	}
	kvdmsg_hdr(&end, KVD_MSG_END, sizeof(end), seq);
	kvd_send(c, &end, NULL, 0);
out:
	kvd_cluster_snap_free(&s);
}
