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
	struct kvd_dev v;
	struct sysinfo si;
	const struct kvd_conn *c;

	memset(f, 0, sizeof(*f));
	if (!kvd_dev_read(d, &v)) {
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
		memcpy(e->xfer, c->xfer_addr, sizeof(e->xfer));
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

static int emit(const struct kvd_cluster_info *i, void *arg)
{
	return kvd_send(arg, i, NULL, 0);
}

void kvd_cl_list(struct kvd *d, struct kvd_conn *c, uint64_t seq)
{
	struct kvd_cluster_snap s;
	struct kvd_hdr end;

	if (!d->cluster) {
		kvd_send_error(d, c, seq, KVD_MSG_LIST_CLUSTER, -ENOTCONN, false,
			       "the cluster part is off ([cluster] enabled = false)");
		return;
	}
	if (kvd_cluster_snapshot(d->cluster, &s)) {
		kvd_send_error(d, c, seq, KVD_MSG_LIST_CLUSTER, -ENOMEM, false, "out of memory");
		return;
	}
	/* The view, then END (a peer that fails a send is dropped: nothing more to it). */
	if (!kvd_cluster_infos(&s, seq, emit, c)) {
		kvdmsg_hdr(&end, KVD_MSG_END, sizeof(end), seq);
		kvd_send(c, &end, NULL, 0);
	}
	kvd_cluster_snap_free(&s);
}
