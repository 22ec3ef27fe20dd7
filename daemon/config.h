/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvacceld - configuration: an INI file (libinih) and flags that override
 * it (Documentation/kvacceld.rst).
 *
 *   [device]  limit, default_quota, high_watermark, low_watermark
 *   [daemon]  socket, metrics (host:port or off), admin_group,
 *             release_deadline_ms, handoff_timeout_ms
 *   [tenants] name PATTERN = PRINCIPAL...   who may register which engines
 *             allow PATTERN = PATTERN...    which engines may hand to which
 *             max_connections_per_user, max_handoffs_per_user,
 *             max_handoff_fds_per_user, priority_ceiling
 *   [migration] enabled, migrate_interval_ms, migration_timeout_ms,
 *             max_migrations_out, max_migrations_in, balance_threshold,
 *             migrate_order, high_priority_headroom_blocks, high_priority
 *   [cluster] enabled, endpoints, prefix, name, node, lease_ttl,
 *             update_interval_ms, change_threshold, timeout_ms, user,
 *             password, ca, cert, key, ucx_address
 *
 * A PATTERN is an engine name, or a prefix followed by '*' ("*": every
 * name). A PRINCIPAL is user:NAME, uid:N, group:NAME, gid:N or any.
 */
#ifndef KVACCELD_CONFIG_H
#define KVACCELD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

/* Bytes of an engine-name pattern, its NUL included (KVD_NAME_MAX, and a '*'). */
#define KVD_PATTERN_MAX		33
/* Most [tenants] rules of each kind, and principals or receivers on one line. */
#define KVD_TENANT_RULES_MAX	64
#define KVD_RULE_ITEMS_MAX	8

enum kvd_principal_kind {
	KVD_PRINCIPAL_ANY = 1,
	KVD_PRINCIPAL_UID,
	KVD_PRINCIPAL_GID,
};

struct kvd_principal {
	enum kvd_principal_kind kind;
	uint32_t id;		/* uid or gid */
};

/* name PATTERN = PRINCIPAL...: the names PATTERN covers, for these users and groups. */
struct kvd_name_rule {
	char pattern[KVD_PATTERN_MAX];
	struct kvd_principal who[KVD_RULE_ITEMS_MAX];
	unsigned int n;
};

/* allow PATTERN = PATTERN...: senders the first covers may hand to receivers the others cover. */
struct kvd_allow_rule {
	char from[KVD_PATTERN_MAX];
	char to[KVD_RULE_ITEMS_MAX][KVD_PATTERN_MAX];
	unsigned int n;
};

struct kvd_tenants {
	struct kvd_name_rule names[KVD_TENANT_RULES_MAX];
	unsigned int nnames;
	struct kvd_allow_rule allows[KVD_TENANT_RULES_MAX];
	unsigned int nallows;
	/* Per user (uid 0 and the daemon's own uid are not counted). */
	unsigned int max_conns, max_handoffs, max_fds;
	/* Priorities above it only for root and the admin group. */
	unsigned int priority_ceiling;
};

/* Defaults of the per-user maxima. */
#define KVD_DEFAULT_CONNS_PER_USER	64
#define KVD_DEFAULT_HANDOFFS_PER_USER	256
#define KVD_DEFAULT_FDS_PER_USER	1024

/* [migration]: the broker's limits and the policy's knobs (migrate_policy.h). */
struct kvd_migration_config {
	bool enabled;				/* the policy's own triggers (not drain, not manual) */
	unsigned int interval_ms;		/* migrate_interval_ms: a policy tick */
	unsigned int timeout_ms;		/* migration_timeout_ms: MIGRATE to MIGRATED */
	unsigned int max_out, max_in;		/* per engine, at a time */
	double balance_threshold;		/* 0 to 1: virtual usage gap */
	bool longest_first;			/* migrate_order = longest */
	unsigned int headroom_blocks;		/* high_priority_headroom_blocks */
	int high_priority;			/* a request at or above it is high priority */
	bool drain_remote;			/* drain_to_other_nodes: through the cluster view */
};

/* [cluster]: publishing this node into etcd and the view of the others (cluster.h). */
#define KVD_CLUSTER_ENDPOINTS_MAX	8
struct kvd_cluster_config {
	bool enabled;				/* off by default */
	char endpoints[KVD_CLUSTER_ENDPOINTS_MAX][128];	/* http(s)://HOST:PORT */
	unsigned int n_endpoints;
	char prefix[64];			/* "/kvaccel" */
	char name[64];				/* the cluster's: "default" */
	char node[64];				/* this node's: the hostname */
	unsigned int lease_ttl_s;		/* lease_ttl: 10 */
	unsigned int update_interval_ms;	/* at most one publication per interval: 1000 */
	double change_threshold;		/* 0 to 1: what counts as a change (0.05) */
	unsigned int timeout_ms;		/* one etcd request: 1000 */
	char user[64], password[128];		/* the password is never logged or published */
	char ca[256], cert[256], key[256];	/* TLS files */
	char ucx_address[256];			/* published for transfers ("" : none) */
};

struct kvd_config {
	uint64_t limit, default_quota, high_wm, low_wm;
	bool limit_set, default_quota_set, high_wm_set, low_wm_set;
	char socket_path[108];	/* sun_path */
	char metrics[64];	/* host:port */
	char admin_group[64];
	unsigned int release_deadline_ms;	/* an engine's time to answer RELEASE */
	unsigned int handoff_timeout_ms;	/* a hand-off's time to be acknowledged */
	struct kvd_tenants tenants;
	struct kvd_migration_config migration;
	struct kvd_cluster_config cluster;
};

void kvd_config_defaults(struct kvd_config *c);
/*
 * Set one key ([section] key = value); the INI parser and the flags both
 * come here. 0, or -EINVAL with @err saying what is wrong.
 */
int kvd_config_set(struct kvd_config *c, const char *section, const char *key,
		   const char *value, char *err, size_t len);
/* Parse @path: 0, or -errno with @err as "path:line: what" (or "path: why"). */
int kvd_config_load(struct kvd_config *c, const char *path, char *err, size_t len);
/* Checks across keys (MiB multiples, watermark order). */
int kvd_config_check(const struct kvd_config *c, char *err, size_t len);

/* Does @pattern (a name, or a prefix and '*') cover @name? */
bool kvd_pattern_match(const char *pattern, const char *name);

/*
 * The [tenants] name rule that decides for @name: an exact pattern before
 * any prefix, a longer prefix before a shorter one. NULL: none covers it.
 */
const struct kvd_name_rule *kvd_tenant_rule(const struct kvd_tenants *t, const char *name);

/* Does @r admit a peer of @uid whose groups (its gid among them) are @groups? */
bool kvd_rule_admits(const struct kvd_name_rule *r, uid_t uid, const gid_t *groups,
		     size_t ngroups);

/* May engine @from hand objects to engine @to (no allow rules: any may)? */
bool kvd_tenant_handoff_allowed(const struct kvd_tenants *t, const char *from, const char *to);

/* One key set from the command line ([section] key = value), over the file. */
struct kvd_config_override {
	const char *section, *key, *value;
};

/* What a reload changed (kvd_config_reparse()). */
#define KVD_CFG_DEVICE		(1u << 0)	/* limit, default quota, watermarks */
#define KVD_CFG_TIMEOUTS	(1u << 1)	/* release deadline, hand-off timeout */
#define KVD_CFG_ADMIN_GROUP	(1u << 2)
#define KVD_CFG_METRICS		(1u << 3)
#define KVD_CFG_SOCKET		(1u << 4)	/* needs a restart */
#define KVD_CFG_MIGRATION	(1u << 5)	/* [migration] */
#define KVD_CFG_CLUSTER		(1u << 6)	/* [cluster]: the cluster part restarts */

/*
 * The reload entry point (SIGHUP): parse @path (NULL: none) and the
 * @n overrides again into @next, check it, and say what differs from
 * @cur: a mask of KVD_CFG_* (>= 0), or -errno with @err saying what is
 * wrong (@cur is the one to keep then).
 */
int kvd_config_reparse(const struct kvd_config *cur, struct kvd_config *next, const char *path,
		       const struct kvd_config_override *over, unsigned int n, char *err,
		       size_t len);

#endif
