// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - configuration (config.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kvsize.h"

#define MIB	(1ULL << 20)

void kvd_config_defaults(struct kvd_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->socket_path, sizeof(c->socket_path), "/run/kvacceld/engine.sock");
	snprintf(c->metrics, sizeof(c->metrics), "127.0.0.1:9464");
	c->release_deadline_ms = 2000;
	c->handoff_timeout_ms = 10000;
}

static int set_ms(unsigned int *v, const char *key, const char *value, char *err, size_t len)
{
	char *end;
	long ms;

	errno = 0;
	ms = strtol(value, &end, 10);
	if (errno || end == value || *end || ms < 10 || ms > 3600000) {
		snprintf(err, len, "%s: '%s' is not a number of milliseconds from 10 to 3600000",
			 key, value);
		return -EINVAL;
	}
	*v = (unsigned int)ms;
	return 0;
}

static int set_size(uint64_t *v, bool *set, const char *key, const char *value,
		    char *err, size_t len)
{
	if (kvsize_parse(value, v)) {
		snprintf(err, len, "%s: '%s' is not a size (bytes, or a number with K, M, G, T)",
			 key, value);
		return -EINVAL;
	}
	*set = true;
	return 0;
}

static int set_string(char *dst, size_t size, const char *key, const char *value,
		      char *err, size_t len)
{
	if (!*value || strlen(value) >= size) {
		snprintf(err, len, "%s: '%s' is %s", key, value, *value ? "too long" : "empty");
		return -EINVAL;
	}
	snprintf(dst, size, "%s", value);
	return 0;
}

static int check_metrics(const char *value, char *err, size_t len)
{
	const char *colon = strrchr(value, ':');
	char *end;
	long port;

	if (!strcmp(value, "off"))
		return 0;
	if (!colon || colon == value) {
		snprintf(err, len, "metrics: '%s' is not host:port", value);
		return -EINVAL;
	}
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535) {
		snprintf(err, len, "metrics: port '%s' is not 1-65535", colon + 1);
		return -EINVAL;
	}
	{
		char host[64];
		struct in_addr a;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - value), value);
		if (strcmp(host, "localhost") && inet_pton(AF_INET, host, &a) != 1) {
			snprintf(err, len, "metrics: '%s' is not an IPv4 address or localhost",
				 host);
			return -EINVAL;
		}
	}
	return 0;
}

int kvd_config_set(struct kvd_config *c, const char *section, const char *key,
		   const char *value, char *err, size_t len)
{
	if (!strcmp(section, "device")) {
		if (!strcmp(key, "limit"))
			return set_size(&c->limit, &c->limit_set, key, value, err, len);
		if (!strcmp(key, "default_quota"))
			return set_size(&c->default_quota, &c->default_quota_set, key, value,
					err, len);
		if (!strcmp(key, "high_watermark"))
			return set_size(&c->high_wm, &c->high_wm_set, key, value, err, len);
		if (!strcmp(key, "low_watermark"))
			return set_size(&c->low_wm, &c->low_wm_set, key, value, err, len);
	} else if (!strcmp(section, "daemon")) {
		if (!strcmp(key, "socket")) {
			if (value[0] != '/') {
				snprintf(err, len, "socket: '%s' is not an absolute path", value);
				return -EINVAL;
			}
			return set_string(c->socket_path, sizeof(c->socket_path), key, value,
					  err, len);
		}
		if (!strcmp(key, "metrics")) {
			if (check_metrics(value, err, len))
				return -EINVAL;
			return set_string(c->metrics, sizeof(c->metrics), key, value, err, len);
		}
		if (!strcmp(key, "admin_group"))
			return set_string(c->admin_group, sizeof(c->admin_group), key, value,
					  err, len);
		if (!strcmp(key, "release_deadline_ms"))
			return set_ms(&c->release_deadline_ms, key, value, err, len);
		if (!strcmp(key, "handoff_timeout_ms"))
			return set_ms(&c->handoff_timeout_ms, key, value, err, len);
	} else {
		snprintf(err, len, "unknown section [%s] (known: [device], [daemon])", section);
		return -EINVAL;
	}
	snprintf(err, len, "unknown key '%s' in [%s]", key, section);
	return -EINVAL;
}

struct load_ctx {
	struct kvd_config *c;
	char msg[200];
};

/* libinih stops at the first handler that returns 0 and reports its line. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;

	return !kvd_config_set(ctx->c, section, name, value, ctx->msg, sizeof(ctx->msg));
}

int kvd_config_load(struct kvd_config *c, const char *path, char *err, size_t len)
{
	struct load_ctx ctx = { .c = c };
	FILE *f = fopen(path, "r");
	int line;

	if (!f) {
		int e = errno;

		snprintf(err, len, "%s: %s", path, strerror(e));
		return -e;
	}
	line = ini_parse_file(f, on_key, &ctx);
	fclose(f);
	if (line > 0) {
		snprintf(err, len, "%s:%d: %s", path, line,
			 ctx.msg[0] ? ctx.msg : "not a 'key = value' or '[section]' line");
		return -EINVAL;
	}
	if (line < 0) {
		snprintf(err, len, "%s: cannot read it", path);
		return -EIO;
	}
	return 0;
}

int kvd_config_check(const struct kvd_config *c, char *err, size_t len)
{
	if (c->limit_set && c->limit % MIB) {
		snprintf(err, len, "limit: %llu bytes is not a whole number of MiB",
			 (unsigned long long)c->limit);
		return -EINVAL;
	}
	if (c->default_quota_set && c->default_quota % MIB) {
		snprintf(err, len, "default_quota: %llu bytes is not a whole number of MiB",
			 (unsigned long long)c->default_quota);
		return -EINVAL;
	}
	if (c->high_wm_set != c->low_wm_set) {
		snprintf(err, len, "high_watermark and low_watermark go together");
		return -EINVAL;
	}
	if (c->high_wm_set && (!c->high_wm != !c->low_wm || c->low_wm > c->high_wm)) {
		snprintf(err, len, "watermarks: both 0 (off), or 0 < low_watermark <= high_watermark");
		return -EINVAL;
	}
	if (c->high_wm_set && c->limit_set && c->limit && c->high_wm > c->limit) {
		snprintf(err, len, "high_watermark is above the limit");
		return -EINVAL;
	}
	return 0;
}

int kvd_config_reparse(const struct kvd_config *cur, struct kvd_config *next, const char *path,
		       const struct kvd_config_override *over, unsigned int n, char *err,
		       size_t len)
{
	unsigned int i, changes = 0;
	int ret;

	kvd_config_defaults(next);
	if (path) {
		ret = kvd_config_load(next, path, err, len);
		if (ret)
			return ret;
	}
	for (i = 0; i < n; i++) {
		char msg[200];

		ret = kvd_config_set(next, over[i].section, over[i].key, over[i].value, msg,
				     sizeof(msg));
		if (ret) {
			snprintf(err, len, "override: %s", msg);
			return ret;
		}
	}
	ret = kvd_config_check(next, err, len);
	if (ret)
		return ret;
	if (cur->limit_set != next->limit_set || cur->limit != next->limit ||
	    cur->default_quota_set != next->default_quota_set ||
	    cur->default_quota != next->default_quota || cur->high_wm_set != next->high_wm_set ||
	    cur->high_wm != next->high_wm || cur->low_wm_set != next->low_wm_set ||
	    cur->low_wm != next->low_wm)
		changes |= KVD_CFG_DEVICE;
	if (cur->release_deadline_ms != next->release_deadline_ms ||
	    cur->handoff_timeout_ms != next->handoff_timeout_ms)
		changes |= KVD_CFG_TIMEOUTS;
	if (strcmp(cur->admin_group, next->admin_group))
		changes |= KVD_CFG_ADMIN_GROUP;
	if (strcmp(cur->metrics, next->metrics))
		changes |= KVD_CFG_METRICS;
	if (strcmp(cur->socket_path, next->socket_path))
		changes |= KVD_CFG_SOCKET;
	return (int)changes;
}
