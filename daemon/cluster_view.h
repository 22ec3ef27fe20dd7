/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvacceld - the cluster view: what the nodes of one cluster published in
 * etcd (Documentation/kvacceld.rst, "Cluster view"), as keys and JSON
 * values. Pure logic (no I/O, no locks, no clock): cluster.c feeds it
 * etcd's keys and events and encodes this node's own values with it;
 * tests/daemon/cluster_unit.c runs it natively.
 *
 * Keys, under PREFIX/CLUSTER/ (PREFIX "/kvaccel" by default):
 *
 *   nodes/NODE            the node's memory and transfer endpoint
 *   engines/NODE/ENGINE   one engine of that node
 *
 * Values are JSON objects (see kvd_cview_encode_node/engine for the
 * members). What does not parse as such -- another writer's garbage, a
 * value over %KVD_CVIEW_VALUE_MAX, a key of the wrong shape, a value
 * whose "node" or "name" is not its key's -- is ignored and counted, and
 * kvd_cview_apply() says why, for a log line.
 */
#ifndef KVD_CLUSTER_VIEW_H
#define KVD_CLUSTER_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a node or cluster name, its NUL included: 1-63 of [A-Za-z0-9._-]. */
#define KVD_NODE_NAME_MAX	64
/* Bytes of an engine name with its NUL (KVD_NAME_MAX). */
#define KVD_CVIEW_ENGINE_MAX	32
/* A UCX address string, its NUL included. */
#define KVD_UCX_ADDRESS_MAX	256
/* The largest value read from etcd; bigger ones are ignored. */
#define KVD_CVIEW_VALUE_MAX	4096
/* The most nodes and engines kept (more is ignored: a bounded view). */
#define KVD_CVIEW_NODES_MAX	4096
#define KVD_CVIEW_ENGINES_MAX	16384
/* Engines one node publishes, at most. */
#define KVD_CLUSTER_ENGINES_MAX	64
/* Models one engine lists, at most, and their names' bytes. */
#define KVD_CVIEW_MODELS_MAX	4
#define KVD_CVIEW_MODEL_MAX	64
/* An engine's transfer address, its NUL included (KVD_XFER_ADDR_MAX). */
#define KVD_CVIEW_XFER_MAX	64

/** struct kvd_cview_engine - one engine as published (and as read back). */
struct kvd_cview_engine {
	char node[KVD_NODE_NAME_MAX];
	char name[KVD_CVIEW_ENGINE_MAX];
	uint32_t priority;
	uint64_t block_bytes;
	uint32_t blocks_total, blocks_free, running, waiting;
	bool draining;
	double load;			/* (total - free) / total; 0 without blocks */
	unsigned int nmodels;
	char models[KVD_CVIEW_MODELS_MAX][KVD_CVIEW_MODEL_MAX];
	/* Where it takes other nodes' migrations ("HOST:PORT"; "": nowhere; "xfer", optional). */
	char xfer[KVD_CVIEW_XFER_MAX];
	int64_t mod_revision;		/* etcd's, in the view */
};

/** struct kvd_cview_node - one node as published (and as read back). */
struct kvd_cview_node {
	char name[KVD_NODE_NAME_MAX];
	uint64_t capacity;		/* host memory of the node */
	uint64_t limit;			/* the device limit (0: none) */
	uint64_t usage;			/* pinned memory in use */
	bool pressure;			/* above the high watermark */
	char ucx_address[KVD_UCX_ADDRESS_MAX];
	uint32_t engines;
	int64_t updated_ms;		/* CLOCK_REALTIME ms of the publication */
	int64_t mod_revision;
};

/** struct kvd_cview - the view: a prefix and what was read under it. */
struct kvd_cview {
	char base[192];			/* PREFIX/CLUSTER/ */
	size_t base_len;
	struct kvd_cview_node *nodes;
	size_t nnodes, cap_nodes;
	struct kvd_cview_engine *engines;
	size_t nengines, cap_engines;
	uint64_t ignored;		/* values and keys ignored, ever */
};

/* Is @s a node or cluster name (1-63 of [A-Za-z0-9._-], not "." or "..")? */
bool kvd_cview_name_ok(const char *s);

/* Start an empty view of PREFIX/CLUSTER/. 0, or -EINVAL (bad prefix or name). */
int kvd_cview_init(struct kvd_cview *v, const char *prefix, const char *cluster);
void kvd_cview_free(struct kvd_cview *v);
/* Forget every entry (a new range follows); the counter stays. */
void kvd_cview_clear(struct kvd_cview *v);

/* The key of @node, or of @node's @engine, in @buf. 0, or -ENAMETOOLONG. */
int kvd_cview_node_key(const struct kvd_cview *v, const char *node, char *buf, size_t len);
int kvd_cview_engine_key(const struct kvd_cview *v, const char *node, const char *engine,
			 char *buf, size_t len);

/*
 * Apply a put (@del false: @val of @vlen bytes) or a delete of @key at
 * @rev: 0 when it changed the view (or was a delete of nothing), 1 when
 * it was ignored (@why says why), -ENOMEM.
 */
int kvd_cview_apply(struct kvd_cview *v, bool del, const char *key, size_t klen,
		    const char *val, size_t vlen, int64_t rev, char *why, size_t len);

const struct kvd_cview_node *kvd_cview_find_node(const struct kvd_cview *v, const char *name);

/*
 * A destination on another node for a request of @blocks blocks of
 * @block_bytes (0: any size): the engine of the view, not on node @self,
 * whose node is in the view and not under pressure, that is not draining,
 * has the block size and at least @blocks free, with the lowest load (ties:
 * the most free blocks, then the name). Its index in @v->engines, or -1.
 * What the migration policy and MoE scale-up start from (they add their
 * own limits).
 */
long kvd_cview_pick_engine(const struct kvd_cview *v, const char *self, uint32_t blocks,
			   uint64_t block_bytes);

/* The JSON value of @n / @e (a new string; NULL on ENOMEM). Secrets never enter them. */
char *kvd_cview_encode_node(const struct kvd_cview_node *n);
char *kvd_cview_encode_engine(const struct kvd_cview_engine *e);

#endif
