/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvacceld - configuration: an INI file (libinih) and flags that override
 * it (Documentation/kvacceld.rst).
 *
 *   [device]  limit, default_quota, high_watermark, low_watermark
 *   [daemon]  socket, metrics (host:port or off), admin_group,
 *             release_deadline_ms, handoff_timeout_ms
 */
#ifndef KVACCELD_CONFIG_H
#define KVACCELD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvd_config {
	uint64_t limit, default_quota, high_wm, low_wm;
	bool limit_set, default_quota_set, high_wm_set, low_wm_set;
	char socket_path[108];	/* sun_path */
	char metrics[64];	/* host:port */
	char admin_group[64];
	unsigned int release_deadline_ms;	/* an engine's time to answer RELEASE */
	unsigned int handoff_timeout_ms;	/* a hand-off's time to be acknowledged */
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
