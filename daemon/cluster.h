/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvacceld - the cluster part (Documentation/kvacceld.rst, "Cluster
 * view"): this node published into etcd under one lease, and a view of
 * every node and engine of the cluster kept from a watch.
 *
 * Two threads of its own, each with its own etcd handle, so the daemon's
 * loop never waits on etcd:
 *
 *  - the publisher grants the lease (lease_ttl), keeps it alive every
 *    TTL/3, and puts the node's key and its engines' keys, all attached to
 *    the lease, when the facts changed beyond change_threshold, at most
 *    once per update_interval_ms (engines that left are deleted). A lease
 *    found expired, or not renewed for a whole TTL, is replaced by a new
 *    one and everything is published again under it. Failures are retried
 *    with exponential backoff (100 ms to 5 s, jittered).
 *  - the watcher reads the whole prefix (a range), then watches it from
 *    the range's revision + 1; when the watch fails it ranges again (after
 *    a backoff), which also resynchronises what it missed.
 *
 * The loop's side: kvd_cluster_update() copies the node's facts under the
 * part's mutex and wakes the publisher when they changed enough;
 * kvd_cluster_snapshot() copies the view and the status. Both take the
 * mutex only; it is never held across I/O. The view is stale (with its
 * age) while the watch is not in sync or the last lease request failed
 * (etcd unreachable, or without quorum).
 *
 * Natively testable: no daemon state, facts in and keys out
 * (tests/daemon/cluster_unit.c runs three of them against one etcd).
 */
#ifndef KVD_CLUSTER_H
#define KVD_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster_view.h"
#include "config.h"

/** struct kvd_cluster_facts - what this node publishes (cluster.c fills name, ucx_address). */
struct kvd_cluster_facts {
	struct kvd_cview_node node;
	struct kvd_cview_engine engines[KVD_CLUSTER_ENGINES_MAX];
	unsigned int nengines;
};

/** struct kvd_cluster_status - how the cluster part is doing. */
struct kvd_cluster_status {
	bool stale;			/* the view may be out of date */
	int64_t age_ms;			/* since the view was last known in sync (0: it is) */
	bool published;			/* this node's keys are under a live lease */
	int64_t lease;			/* its ID (0: none) */
	int64_t revision;		/* the last etcd revision seen */
	uint64_t publishes, publish_errors, keepalive_errors, leases, watch_restarts, ignored;
	char node[KVD_NODE_NAME_MAX], cluster[KVD_NODE_NAME_MAX];
	char endpoint[128];		/* the watcher's current endpoint */
	char error[200];		/* the last failure ("" : none yet) */
};

/** struct kvd_cluster_snap - a copy of the view (free with kvd_cluster_snap_free()). */
struct kvd_cluster_snap {
	struct kvd_cluster_status st;
	struct kvd_cview_node *nodes;
	size_t nnodes;
	struct kvd_cview_engine *engines;
	size_t nengines;
};

struct kvd_cluster;
typedef void (*kvd_cluster_log_fn)(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Start publishing and watching with @cfg (copied; enabled is not looked
 * at). NULL with errno and @err on failure (bad configuration, no memory,
 * no thread); etcd being unreachable is not a failure (retried).
 */
struct kvd_cluster *kvd_cluster_start(const struct kvd_cluster_config *cfg,
				      kvd_cluster_log_fn log, char *err, size_t len);
/*
 * Stop: the threads joined (about a second, plus a request in flight);
 * with @revoke the lease is revoked first, so this node's keys go at once
 * (without, they expire with the lease: a crash).
 */
void kvd_cluster_stop(struct kvd_cluster *c, bool revoke);
/* New facts of this node; published when they changed enough. Never blocks on I/O. */
void kvd_cluster_update(struct kvd_cluster *c, const struct kvd_cluster_facts *f);
/* A copy of the view and the status. 0 or -ENOMEM. */
int kvd_cluster_snapshot(struct kvd_cluster *c, struct kvd_cluster_snap *s);
void kvd_cluster_snap_free(struct kvd_cluster_snap *s);
/* The status only. */
void kvd_cluster_status(struct kvd_cluster *c, struct kvd_cluster_status *st);

/*
 * cluster_info.c: @s as KVD_MSG_CLUSTER_INFO messages with @seq, each
 * given to @emit (the status, the nodes, the engines; no END): 0, or
 * @emit's first non-zero return.
 */
struct kvd_cluster_info;
int kvd_cluster_infos(const struct kvd_cluster_snap *s, uint64_t seq,
		      int (*emit)(const struct kvd_cluster_info *i, void *arg), void *arg);

/*
 * Did @f change from @pub beyond @threshold (a fraction: of the limit, or
 * the capacity, for usage; of an engine's blocks for its free blocks; of
 * its load; any change of engines, priorities, draining or pressure)?
 */
bool kvd_cluster_changed(const struct kvd_cluster_facts *pub, const struct kvd_cluster_facts *f,
			 double threshold);

#endif
