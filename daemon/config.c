// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - configuration (config.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cluster_view.h"
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
	c->tenants.max_conns = KVD_DEFAULT_CONNS_PER_USER;
	c->tenants.max_handoffs = KVD_DEFAULT_HANDOFFS_PER_USER;
	c->tenants.max_fds = KVD_DEFAULT_FDS_PER_USER;
	c->tenants.priority_ceiling = 7;	/* KVD_PRIORITY_MAX: no ceiling */
	c->migration.enabled = true;
	c->migration.interval_ms = 200;
	c->migration.timeout_ms = 10000;
	c->migration.max_out = 1;
	c->migration.max_in = 1;
	c->migration.balance_threshold = 0.25;
	c->migration.headroom_blocks = 0;
	c->migration.high_priority = 1;
	snprintf(c->cluster.prefix, sizeof(c->cluster.prefix), "/kvaccel");
	snprintf(c->cluster.name, sizeof(c->cluster.name), "default");
	{
		char host[256] = "";

		/* The hostname when it is a valid node name; else node = must be set. */
		if (!gethostname(host, sizeof(host) - 1) && kvd_cview_name_ok(host))
			snprintf(c->cluster.node, sizeof(c->cluster.node), "%s", host);
	}
	c->cluster.lease_ttl_s = 10;
	c->cluster.update_interval_ms = 1000;
	c->cluster.change_threshold = 0.05;
	c->cluster.timeout_ms = 1000;
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

/* ---- [tenants] ---------------------------------------------------------- */

/* A pattern: 1-31 of [A-Za-z0-9._-], optionally ending in '*'; or "*". */
static bool pattern_ok(const char *p)
{
	size_t n = strlen(p), i;

	if (!n || n >= KVD_PATTERN_MAX)
		return false;
	if (p[n - 1] == '*')
		n--;
	else if (n >= KVD_PATTERN_MAX - 1)
		return false;	/* a name is at most 31 bytes */
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '_' && p[i] != '.')
			return false;
	return true;
}

bool kvd_pattern_match(const char *pattern, const char *name)
{
	size_t n = strlen(pattern);

	if (n && pattern[n - 1] == '*')
		return !strncmp(pattern, name, n - 1);
	return !strcmp(pattern, name);
}

/* Exact patterns rank above every prefix; longer prefixes above shorter ones. */
static size_t specificity(const char *pattern)
{
	size_t n = strlen(pattern);

	return pattern[n - 1] == '*' ? n - 1 : KVD_PATTERN_MAX;
}

const struct kvd_name_rule *kvd_tenant_rule(const struct kvd_tenants *t, const char *name)
{
	const struct kvd_name_rule *best = NULL;
	unsigned int i;

	for (i = 0; i < t->nnames; i++) {
		const struct kvd_name_rule *r = &t->names[i];

		if (kvd_pattern_match(r->pattern, name) &&
		    (!best || specificity(r->pattern) > specificity(best->pattern)))
			best = r;
	}
	return best;
}

bool kvd_rule_admits(const struct kvd_name_rule *r, uid_t uid, const gid_t *groups,
		     size_t ngroups)
{
	unsigned int i;
	size_t k;

	for (i = 0; i < r->n; i++) {
		const struct kvd_principal *p = &r->who[i];

		if (p->kind == KVD_PRINCIPAL_ANY)
			return true;
		if (p->kind == KVD_PRINCIPAL_UID && p->id == uid)
			return true;
		if (p->kind == KVD_PRINCIPAL_GID)
			for (k = 0; k < ngroups; k++)
				if (groups[k] == p->id)
					return true;
	}
	return false;
}

bool kvd_tenant_handoff_allowed(const struct kvd_tenants *t, const char *from, const char *to)
{
	unsigned int i, k;

	if (!t->nallows)
		return true;
	for (i = 0; i < t->nallows; i++) {
		if (!kvd_pattern_match(t->allows[i].from, from))
			continue;
		for (k = 0; k < t->allows[i].n; k++)
			if (kvd_pattern_match(t->allows[i].to[k], to))
				return true;
	}
	return false;
}

static int parse_id(const char *s, uint32_t *id)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= UINT32_MAX)
		return -EINVAL;
	*id = (uint32_t)v;
	return 0;
}

static int parse_principal(const char *tok, struct kvd_principal *p, char *err, size_t len)
{
	const char *arg = strchr(tok, ':');

	if (!strcmp(tok, "any")) {
		p->kind = KVD_PRINCIPAL_ANY;
		return 0;
	}
	if (arg && !strncmp(tok, "uid:", 4) && !parse_id(arg + 1, &p->id)) {
		p->kind = KVD_PRINCIPAL_UID;
		return 0;
	}
	if (arg && !strncmp(tok, "gid:", 4) && !parse_id(arg + 1, &p->id)) {
		p->kind = KVD_PRINCIPAL_GID;
		return 0;
	}
	if (arg && !strncmp(tok, "user:", 5) && arg[1]) {
		struct passwd *pw = getpwnam(arg + 1);

		if (!pw) {
			snprintf(err, len, "name: no user '%s'", arg + 1);
			return -EINVAL;
		}
		p->kind = KVD_PRINCIPAL_UID;
		p->id = pw->pw_uid;
		return 0;
	}
	if (arg && !strncmp(tok, "group:", 6) && arg[1]) {
		struct group *gr = getgrnam(arg + 1);

		if (!gr) {
			snprintf(err, len, "name: no group '%s'", arg + 1);
			return -EINVAL;
		}
		p->kind = KVD_PRINCIPAL_GID;
		p->id = gr->gr_gid;
		return 0;
	}
	snprintf(err, len, "name: '%s' is not user:NAME, uid:N, group:NAME, gid:N or any", tok);
	return -EINVAL;
}

/* Split @value into at most KVD_RULE_ITEMS_MAX words: their count, or -EINVAL. */
static int words(const char *value, char out[KVD_RULE_ITEMS_MAX][64], const char *key,
		 char *err, size_t len)
{
	const char *p = value;
	int n = 0;

	for (;;) {
		size_t w;

		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		w = strcspn(p, " \t");
		if (n == KVD_RULE_ITEMS_MAX || w >= 64) {
			snprintf(err, len, "%s: more than %d items, or one too long", key,
				 KVD_RULE_ITEMS_MAX);
			return -EINVAL;
		}
		snprintf(out[n++], 64, "%.*s", (int)w, p);
		p += w;
	}
	if (!n) {
		snprintf(err, len, "%s: nothing after '='", key);
		return -EINVAL;
	}
	return n;
}

static int set_tenant_rule(struct kvd_tenants *t, const char *key, const char *value,
			   char *err, size_t len)
{
	char item[KVD_RULE_ITEMS_MAX][64], kind[8], pattern[64];
	bool allow = !strncmp(key, "allow", 5);
	int n, i;

	if (sscanf(key, "%7s %63s", kind, pattern) != 2 || !pattern_ok(pattern)) {
		snprintf(err, len, "'%s': a rule is 'name PATTERN = ...' or 'allow PATTERN = ...' "
			 "(PATTERN: an engine name, or a prefix and '*')", key);
		return -EINVAL;
	}
	n = words(value, item, allow ? "allow" : "name", err, len);
	if (n < 0)
		return n;
	if (allow) {
		struct kvd_allow_rule *r;

		if (t->nallows == KVD_TENANT_RULES_MAX) {
			snprintf(err, len, "allow: more than %d rules", KVD_TENANT_RULES_MAX);
			return -EINVAL;
		}
		r = &t->allows[t->nallows];
		memset(r, 0, sizeof(*r));
		memcpy(r->from, pattern, strlen(pattern) + 1);	/* pattern_ok(): it fits */
		for (i = 0; i < n; i++) {
			if (!pattern_ok(item[i])) {
				snprintf(err, len, "allow: '%s' is not an engine name or a prefix and '*'",
					 item[i]);
				return -EINVAL;
			}
			memcpy(r->to[i], item[i], strlen(item[i]) + 1);
		}
		r->n = (unsigned int)n;
		t->nallows++;
		return 0;
	}
	{
		struct kvd_name_rule *r;
		unsigned int k;

		for (k = 0; k < t->nnames; k++) {
			if (!strcmp(t->names[k].pattern, pattern)) {
				snprintf(err, len, "name: pattern '%s' has a rule already", pattern);
				return -EINVAL;
			}
		}
		if (t->nnames == KVD_TENANT_RULES_MAX) {
			snprintf(err, len, "name: more than %d rules", KVD_TENANT_RULES_MAX);
			return -EINVAL;
		}
		r = &t->names[t->nnames];
		memset(r, 0, sizeof(*r));
		memcpy(r->pattern, pattern, strlen(pattern) + 1);	/* pattern_ok(): it fits */
		for (i = 0; i < n; i++)
			if (parse_principal(item[i], &r->who[i], err, len))
				return -EINVAL;
		r->n = (unsigned int)n;
		t->nnames++;
	}
	return 0;
}

static int set_uint(unsigned int *v, const char *key, const char *value, unsigned int min,
		    unsigned int max, char *err, size_t len)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno || end == value || *end || n < (long)min || n > (long)max) {
		snprintf(err, len, "%s: '%s' is not a number from %u to %u", key, value, min, max);
		return -EINVAL;
	}
	*v = (unsigned int)n;
	return 0;
}

static int set_tenants(struct kvd_tenants *t, const char *key, const char *value,
		       char *err, size_t len)
{
	if (!strncmp(key, "name", 4) && isspace((unsigned char)key[4]))
		return set_tenant_rule(t, key, value, err, len);
	if (!strncmp(key, "allow", 5) && isspace((unsigned char)key[5]))
		return set_tenant_rule(t, key, value, err, len);
	if (!strcmp(key, "max_connections_per_user"))
		return set_uint(&t->max_conns, key, value, 1, 1024, err, len);
	if (!strcmp(key, "max_handoffs_per_user"))
		return set_uint(&t->max_handoffs, key, value, 1, 65536, err, len);
	if (!strcmp(key, "max_handoff_fds_per_user"))
		return set_uint(&t->max_fds, key, value, 1, 65536, err, len);
	if (!strcmp(key, "priority_ceiling"))
		return set_uint(&t->priority_ceiling, key, value, 0, 7, err, len);
	snprintf(err, len, "unknown key '%s' in [tenants]", key);
	return -EINVAL;
}

/* A number from 0 to 1. */
static int set_fraction(double *v, const char *key, const char *value, char *err, size_t len)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(value, &end);
	if (errno || end == value || *end || !(x >= 0 && x <= 1)) {
		snprintf(err, len, "%s: '%s' is not a number from 0 to 1", key, value);
		return -EINVAL;
	}
	*v = x;
	return 0;
}

static int set_bool(bool *v, const char *key, const char *value, char *err, size_t len)
{
	if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1")) {
		*v = true;
		return 0;
	}
	if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0")) {
		*v = false;
		return 0;
	}
	snprintf(err, len, "%s: '%s' is not true or false", key, value);
	return -EINVAL;
}

static int set_migration(struct kvd_migration_config *m, const char *key, const char *value,
			 char *err, size_t len)
{
	if (!strcmp(key, "enabled"))
		return set_bool(&m->enabled, key, value, err, len);
	if (!strcmp(key, "migrate_interval_ms"))
		return set_ms(&m->interval_ms, key, value, err, len);
	if (!strcmp(key, "migration_timeout_ms"))
		return set_ms(&m->timeout_ms, key, value, err, len);
	if (!strcmp(key, "max_migrations_out"))
		return set_uint(&m->max_out, key, value, 1, 64, err, len);
	if (!strcmp(key, "max_migrations_in"))
		return set_uint(&m->max_in, key, value, 1, 64, err, len);
	if (!strcmp(key, "high_priority_headroom_blocks"))
		return set_uint(&m->headroom_blocks, key, value, 0, 1u << 30, err, len);
	if (!strcmp(key, "high_priority")) {
		char *end;
		long n;

		errno = 0;
		n = strtol(value, &end, 10);
		if (errno || end == value || *end || n < -1000000 || n > 1000000) {
			snprintf(err, len, "%s: '%s' is not a number from -1000000 to 1000000",
				 key, value);
			return -EINVAL;
		}
		m->high_priority = (int)n;
		return 0;
	}
	if (!strcmp(key, "balance_threshold"))
		return set_fraction(&m->balance_threshold, key, value, err, len);
	if (!strcmp(key, "drain_to_other_nodes"))
		return set_bool(&m->drain_remote, key, value, err, len);
	if (!strcmp(key, "migrate_order")) {
		if (strcmp(value, "shortest") && strcmp(value, "longest")) {
			snprintf(err, len, "%s: '%s' is not shortest or longest", key, value);
			return -EINVAL;
		}
		m->longest_first = !strcmp(value, "longest");
		return 0;
	}
	snprintf(err, len, "unknown key '%s' in [migration]", key);
	return -EINVAL;
}

/* endpoints = URL... (spaces or commas between them). */
static int set_endpoints(struct kvd_cluster_config *cc, const char *value, char *err, size_t len)
{
	const char *p = value;
	unsigned int n = 0;

	for (;;) {
		size_t w;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		w = strcspn(p, " \t,");
		if (n == KVD_CLUSTER_ENDPOINTS_MAX || w >= sizeof(cc->endpoints[0])) {
			snprintf(err, len, "endpoints: at most %d, each under %zu bytes",
				 KVD_CLUSTER_ENDPOINTS_MAX, sizeof(cc->endpoints[0]));
			return -EINVAL;
		}
		if ((w < 8 || strncmp(p, "http://", 7)) && (w < 9 || strncmp(p, "https://", 8))) {
			snprintf(err, len, "endpoints: '%.*s' is not http://HOST:PORT or "
				 "https://HOST:PORT", (int)(w > 100 ? 100 : w), p);
			return -EINVAL;
		}
		snprintf(cc->endpoints[n++], sizeof(cc->endpoints[0]), "%.*s", (int)w, p);
		p += w;
	}
	if (!n) {
		snprintf(err, len, "endpoints: none given");
		return -EINVAL;
	}
	cc->n_endpoints = n;
	return 0;
}

static int set_path(char *dst, size_t size, const char *key, const char *value, char *err,
		    size_t len)
{
	if (value[0] != '/') {
		snprintf(err, len, "%s: '%s' is not an absolute path", key, value);
		return -EINVAL;
	}
	return set_string(dst, size, key, value, err, len);
}

static int set_cluster(struct kvd_cluster_config *cc, const char *key, const char *value,
		       char *err, size_t len)
{
	if (!strcmp(key, "enabled"))
		return set_bool(&cc->enabled, key, value, err, len);
	if (!strcmp(key, "endpoints"))
		return set_endpoints(cc, value, err, len);
	if (!strcmp(key, "prefix")) {
		size_t n = strlen(value);

		if (value[0] != '/' || n < 2 || value[n - 1] == '/' || strstr(value, "//") ||
		    strpbrk(value, " \t")) {
			snprintf(err, len, "prefix: '%s' is not /NAME[/NAME...] (no trailing '/')",
				 value);
			return -EINVAL;
		}
		return set_string(cc->prefix, sizeof(cc->prefix), key, value, err, len);
	}
	if (!strcmp(key, "name") || !strcmp(key, "node")) {
		if (!kvd_cview_name_ok(value)) {
			snprintf(err, len, "%s: '%s' is not 1-63 of letters, digits, '-', '_', '.'",
				 key, value);
			return -EINVAL;
		}
		return set_string(!strcmp(key, "name") ? cc->name : cc->node, sizeof(cc->name), key,
				  value, err, len);
	}
	if (!strcmp(key, "lease_ttl"))
		return set_uint(&cc->lease_ttl_s, key, value, 2, 3600, err, len);
	if (!strcmp(key, "update_interval_ms"))
		return set_ms(&cc->update_interval_ms, key, value, err, len);
	if (!strcmp(key, "timeout_ms"))
		return set_ms(&cc->timeout_ms, key, value, err, len);
	if (!strcmp(key, "change_threshold"))
		return set_fraction(&cc->change_threshold, key, value, err, len);
	if (!strcmp(key, "user"))
		return set_string(cc->user, sizeof(cc->user), key, value, err, len);
	if (!strcmp(key, "password")) {
		/* Never echoed in an error. */
		if (!*value || strlen(value) >= sizeof(cc->password)) {
			snprintf(err, len, "password: empty or longer than %zu bytes",
				 sizeof(cc->password) - 1);
			return -EINVAL;
		}
		snprintf(cc->password, sizeof(cc->password), "%s", value);
		return 0;
	}
	if (!strcmp(key, "ca"))
		return set_path(cc->ca, sizeof(cc->ca), key, value, err, len);
	if (!strcmp(key, "cert"))
		return set_path(cc->cert, sizeof(cc->cert), key, value, err, len);
	if (!strcmp(key, "key"))
		return set_path(cc->key, sizeof(cc->key), key, value, err, len);
	if (!strcmp(key, "ucx_address")) {
		size_t i;

		for (i = 0; value[i]; i++) {
			if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
				snprintf(err, len, "ucx_address: control characters");
				return -EINVAL;
			}
		}
		return set_string(cc->ucx_address, sizeof(cc->ucx_address), key, value, err, len);
	}
	snprintf(err, len, "unknown key '%s' in [cluster]", key);
	return -EINVAL;
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
	} else if (!strcmp(section, "tenants")) {
		return set_tenants(&c->tenants, key, value, err, len);
	} else if (!strcmp(section, "migration")) {
		return set_migration(&c->migration, key, value, err, len);
	} else if (!strcmp(section, "cluster")) {
		return set_cluster(&c->cluster, key, value, err, len);
	} else {
		snprintf(err, len, "unknown section [%s] (known: [device], [daemon], [tenants], "
			 "[migration], [cluster])", section);
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
	if (!c->cluster.user[0] != !c->cluster.password[0]) {
		snprintf(err, len, "[cluster] user and password go together");
		return -EINVAL;
	}
	if (!c->cluster.cert[0] != !c->cluster.key[0]) {
		snprintf(err, len, "[cluster] cert and key go together");
		return -EINVAL;
	}
	if (c->cluster.enabled && !c->cluster.n_endpoints) {
		snprintf(err, len, "[cluster] enabled needs endpoints");
		return -EINVAL;
	}
	if (c->cluster.enabled && !c->cluster.node[0]) {
		snprintf(err, len, "[cluster] the hostname is not a node name: set node");
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
	if (memcmp(&cur->migration, &next->migration, sizeof(cur->migration)))
		changes |= KVD_CFG_MIGRATION;
	if (memcmp(&cur->cluster, &next->cluster, sizeof(cur->cluster)))
		changes |= KVD_CFG_CLUSTER;
	return (int)changes;
}
