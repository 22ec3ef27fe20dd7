// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld's configuration (cmocka, ASan/UBSan): a full file, every kind
 * of mistake reported with its line, overrides, and the checks across
 * keys.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cluster_view.h"
#include "config.h"

static char path[64];

static const char *write_conf(const char *text)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/kvacceld-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal((ssize_t)strlen(text), write(fd, text, strlen(text)));
	close(fd);
	return path;
}

static int load(struct kvd_config *c, const char *text, char *err, size_t len)
{
	int ret;

	kvd_config_defaults(c);
	ret = kvd_config_load(c, write_conf(text), err, len);
	unlink(path);
	return ret;
}

static void full_file(void **state)
{
	struct kvd_config c;
	char err[256] = "";

	(void)state;
	assert_int_equal(0, load(&c,
		"; kvacceld\n[device]\nlimit = 64G\ndefault_quota = 16GiB\n"
		"high_watermark = 48G\nlow_watermark = 40G\n\n[daemon]\n"
		"socket = /run/kvacceld/e.sock\nmetrics = 127.0.0.1:9000\nadmin_group = kvaccel\n",
		err, sizeof(err)));
	assert_true(c.limit_set);
	assert_int_equal(64ULL << 30, c.limit);
	assert_int_equal(16ULL << 30, c.default_quota);
	assert_int_equal(48ULL << 30, c.high_wm);
	assert_int_equal(40ULL << 30, c.low_wm);
	assert_string_equal("/run/kvacceld/e.sock", c.socket_path);
	assert_string_equal("127.0.0.1:9000", c.metrics);
	assert_string_equal("kvaccel", c.admin_group);
	assert_int_equal(0, kvd_config_check(&c, err, sizeof(err)));
}

/* Each mistake: the line and what is wrong. */
static void mistakes_name_their_line(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "[device]\nlimit = lots\n", ":2: limit: 'lots' is not a size" },
		{ "[device]\n\nlimt = 1G\n", ":3: unknown key 'limt' in [device]" },
		{ "[gpu]\nlimit = 1G\n", ":2: unknown section [gpu]" },
		{ "[daemon]\nsocket = run/x\n", ":2: socket: 'run/x' is not an absolute path" },
		{ "[daemon]\nmetrics = localhost\n", ":2: metrics: 'localhost' is not host:port" },
		{ "[daemon]\nmetrics = :80\n", ":2: metrics: ':80' is not host:port" },
		{ "[daemon]\nmetrics = h:99999\n", ":2: metrics: port '99999' is not 1-65535" },
		{ "[device]\nthis is not ini\n", ":2: not a 'key = value' or '[section]' line" },
		{ "[device]\nlimit = 16E\n", ":2: limit: '16E' is not a size" },
	};
	struct kvd_config c;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(-EINVAL, load(&c, cases[i].text, err, sizeof(err)));
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].want);
	}
	kvd_config_defaults(&c);
	assert_int_equal(-ENOENT, kvd_config_load(&c, "/nonexistent/kvacceld.conf", err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

static void checks_across_keys(void **state)
{
	struct kvd_config c;
	char err[256];

	(void)state;
	assert_int_equal(0, load(&c, "[device]\nlimit = 1000K\n", err, sizeof(err)));
	assert_int_equal(-EINVAL, kvd_config_check(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "whole number of MiB"));
	assert_int_equal(0, load(&c, "[device]\nhigh_watermark = 8M\n", err, sizeof(err)));
	assert_int_equal(-EINVAL, kvd_config_check(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "go together"));
	assert_int_equal(0, load(&c, "[device]\nhigh_watermark = 8M\nlow_watermark = 9M\n",
				 err, sizeof(err)));
	assert_int_equal(-EINVAL, kvd_config_check(&c, err, sizeof(err)));
	assert_int_equal(0, load(&c, "[device]\nlimit = 4M\nhigh_watermark = 8M\nlow_watermark = 1M\n",
				 err, sizeof(err)));
	assert_int_equal(-EINVAL, kvd_config_check(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "above the limit"));
	assert_int_equal(0, load(&c, "[device]\nhigh_watermark = 0\nlow_watermark = 0\n",
				 err, sizeof(err)));
	assert_int_equal(0, kvd_config_check(&c, err, sizeof(err)));
}

static void overrides(void **state)
{
	struct kvd_config c;
	char err[256];

	(void)state;
	assert_int_equal(0, load(&c, "[device]\nlimit = 1G\n", err, sizeof(err)));
	assert_int_equal(0, kvd_config_set(&c, "device", "limit", "2G", err, sizeof(err)));
	assert_int_equal(2ULL << 30, c.limit);
	assert_int_equal(-EINVAL, kvd_config_set(&c, "device", "limit", "-1", err, sizeof(err)));
	assert_int_equal(2ULL << 30, c.limit);
	assert_int_equal(-EINVAL, kvd_config_set(&c, "daemon", "admin_group", "", err, sizeof(err)));
	assert_non_null(strstr(err, "empty"));
}

static void daemon_timings_and_metrics_off(void **state)
{
	struct kvd_config c;
	char err[256];

	(void)state;
	assert_int_equal(0, load(&c, "[daemon]\nrelease_deadline_ms = 500\n"
				 "handoff_timeout_ms = 3000\nmetrics = off\n", err, sizeof(err)));
	assert_int_equal(500, c.release_deadline_ms);
	assert_int_equal(3000, c.handoff_timeout_ms);
	assert_string_equal("off", c.metrics);
	assert_int_equal(-EINVAL, load(&c, "[daemon]\nrelease_deadline_ms = 5\n", err,
				       sizeof(err)));
	assert_non_null(strstr(err, ":2: release_deadline_ms: '5' is not a number of milliseconds"));
	assert_int_equal(-EINVAL, load(&c, "[daemon]\nhandoff_timeout_ms = 1s\n", err,
				       sizeof(err)));
	assert_non_null(strstr(err, "handoff_timeout_ms"));
	kvd_config_defaults(&c);
	assert_int_equal(2000, c.release_deadline_ms);
	assert_int_equal(10000, c.handoff_timeout_ms);
}

/* [migration]: the defaults, every key, and range-checked mistakes with their line. */
static void migration_section(void **state)
{
	static const struct { const char *text, *msg; } bad[] = {
		{ "[migration]\nenabled = maybe\n", ":2: enabled: 'maybe' is not true or false" },
		{ "[migration]\nmigrate_interval_ms = 5\n", ":2: migrate_interval_ms: '5'" },
		{ "[migration]\nmigration_timeout_ms = x\n", ":2: migration_timeout_ms" },
		{ "[migration]\nmax_migrations_out = 0\n",
		  ":2: max_migrations_out: '0' is not a number from 1 to 64" },
		{ "[migration]\nmax_migrations_in = 65\n", ":2: max_migrations_in" },
		{ "[migration]\nbalance_threshold = 1.5\n",
		  ":2: balance_threshold: '1.5' is not a number from 0 to 1" },
		{ "[migration]\nbalance_threshold = nan\n", ":2: balance_threshold" },
		{ "[migration]\nmigrate_order = random\n",
		  ":2: migrate_order: 'random' is not shortest or longest" },
		{ "[migration]\nhigh_priority_headroom_blocks = -1\n",
		  ":2: high_priority_headroom_blocks" },
		{ "[migration]\nhigh_priority = 1e9\n", ":2: high_priority" },
		{ "[migration]\nspeed = 3\n", ":2: unknown key 'speed' in [migration]" },
	};
	struct kvd_config c, next;
	char err[256];
	size_t i;

	(void)state;
	kvd_config_defaults(&c);
	assert_true(c.migration.enabled);
	assert_int_equal(200, c.migration.interval_ms);
	assert_int_equal(10000, c.migration.timeout_ms);
	assert_int_equal(1, c.migration.max_out);
	assert_int_equal(1, c.migration.max_in);
	assert_true(c.migration.balance_threshold == 0.25);
	assert_false(c.migration.longest_first);
	assert_int_equal(0, c.migration.headroom_blocks);
	assert_int_equal(1, c.migration.high_priority);
	assert_int_equal(0, load(&c, "[migration]\nenabled = false\nmigrate_interval_ms = 50\n"
				 "migration_timeout_ms = 2000\nmax_migrations_out = 2\n"
				 "max_migrations_in = 3\nbalance_threshold = 0.4\n"
				 "migrate_order = longest\nhigh_priority_headroom_blocks = 16\n"
				 "high_priority = 5\n", err, sizeof(err)));
	assert_false(c.migration.enabled);
	assert_int_equal(50, c.migration.interval_ms);
	assert_int_equal(2000, c.migration.timeout_ms);
	assert_int_equal(2, c.migration.max_out);
	assert_int_equal(3, c.migration.max_in);
	assert_true(c.migration.balance_threshold == 0.4);
	assert_true(c.migration.longest_first);
	assert_int_equal(16, c.migration.headroom_blocks);
	assert_int_equal(5, c.migration.high_priority);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(-EINVAL, load(&c, bad[i].text, err, sizeof(err)));
		if (!strstr(err, bad[i].msg))
			fail_msg("'%s': got '%s'", bad[i].msg, err);
	}
	/* A reload that changes [migration] says so. */
	kvd_config_defaults(&c);
	{
		struct kvd_config_override o = { "migration", "max_migrations_out", "4" };

		assert_int_equal(KVD_CFG_MIGRATION,
				 kvd_config_reparse(&c, &next, NULL, &o, 1, err, sizeof(err)));
		assert_int_equal(4, next.migration.max_out);
	}
}

/* [cluster]: off by default, its keys, their mistakes (the password never echoed). */
static void cluster_section(void **state)
{
	static const struct { const char *text, *msg; } bad[] = {
		{ "[cluster]\nenabled = perhaps\n", ":2: enabled: 'perhaps' is not true or false" },
		{ "[cluster]\nendpoints = etcd:2379\n", ":2: endpoints: 'etcd:2379' is not http" },
		{ "[cluster]\nendpoints = ,\n", ":2: endpoints: none given" },
		{ "[cluster]\nendpoints = http://a:1 http://a:2 http://a:3 http://a:4 http://a:5 "
		  "http://a:6 http://a:7 http://a:8 http://a:9\n", ":2: endpoints: at most 8" },
		{ "[cluster]\nprefix = kvaccel\n", ":2: prefix: 'kvaccel' is not /NAME" },
		{ "[cluster]\nprefix = /kvaccel/\n", ":2: prefix" },
		{ "[cluster]\nname = a/b\n", ":2: name: 'a/b' is not 1-63 of letters" },
		{ "[cluster]\nnode = ..\n", ":2: node: '..'" },
		{ "[cluster]\nlease_ttl = 1\n", ":2: lease_ttl: '1' is not a number from 2 to 3600" },
		{ "[cluster]\nchange_threshold = 2\n", ":2: change_threshold" },
		{ "[cluster]\nupdate_interval_ms = 1\n", ":2: update_interval_ms" },
		{ "[cluster]\nca = relative.pem\n", ":2: ca: 'relative.pem' is not an absolute path" },
		{ "[cluster]\nucx_address = a\tb\n", ":2: ucx_address: control characters" },
		{ "[cluster]\ncolour = blue\n", ":2: unknown key 'colour' in [cluster]" },
	};
	struct kvd_config c, next;
	char err[256];
	size_t i;

	(void)state;
	kvd_config_defaults(&c);
	assert_false(c.cluster.enabled);
	assert_string_equal("/kvaccel", c.cluster.prefix);
	assert_string_equal("default", c.cluster.name);
	assert_int_equal(10, c.cluster.lease_ttl_s);
	assert_int_equal(1000, c.cluster.update_interval_ms);
	assert_true(c.cluster.change_threshold == 0.05);
	{
		char host[256] = "";

		gethostname(host, sizeof(host) - 1);
		if (kvd_cview_name_ok(host))
			assert_string_equal(host, c.cluster.node);
	}
	assert_int_equal(0, load(&c, "[cluster]\nenabled = yes\n"
				 "endpoints = http://10.0.0.1:2379, https://10.0.0.2:2379\n"
				 "prefix = /kv/accel\nname = prod\nnode = gpu-7\nlease_ttl = 30\n"
				 "update_interval_ms = 500\nchange_threshold = 0.1\ntimeout_ms = 800\n"
				 "user = kvd\npassword = hunter2\nca = /etc/ca.pem\n"
				 "cert = /etc/c.pem\nkey = /etc/k.pem\nucx_address = 10.0.0.7:13337\n",
				 err, sizeof(err)));
	assert_true(c.cluster.enabled);
	assert_int_equal(2, c.cluster.n_endpoints);
	assert_string_equal("https://10.0.0.2:2379", c.cluster.endpoints[1]);
	assert_string_equal("/kv/accel", c.cluster.prefix);
	assert_string_equal("prod", c.cluster.name);
	assert_string_equal("gpu-7", c.cluster.node);
	assert_int_equal(30, c.cluster.lease_ttl_s);
	assert_int_equal(500, c.cluster.update_interval_ms);
	assert_true(c.cluster.change_threshold == 0.1);
	assert_int_equal(800, c.cluster.timeout_ms);
	assert_string_equal("hunter2", c.cluster.password);
	assert_string_equal("10.0.0.7:13337", c.cluster.ucx_address);
	assert_int_equal(0, kvd_config_check(&c, err, sizeof(err)));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(-EINVAL, load(&c, bad[i].text, err, sizeof(err)));
		if (!strstr(err, bad[i].msg))
			fail_msg("'%s': got '%s'", bad[i].msg, err);
	}
	assert_int_equal(-EINVAL, load(&c, "[cluster]\npassword = \n", err, sizeof(err)));
	/* Checks across keys. */
	assert_int_equal(0, load(&c, "[cluster]\nenabled = true\n", err, sizeof(err)));
	assert_int_equal(-EINVAL, kvd_config_check(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "enabled needs endpoints"));
	assert_int_equal(0, load(&c, "[cluster]\nuser = kvd\n", err, sizeof(err)));
	assert_int_equal(-EINVAL, kvd_config_check(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "user and password go together"));
	assert_int_equal(0, load(&c, "[cluster]\npassword = hunter2\ncert = /c.pem\n", err,
				 sizeof(err)));
	assert_int_equal(-EINVAL, kvd_config_check(&c, err, sizeof(err)));
	assert_null(strstr(err, "hunter2"));
	/* A reload that changes [cluster] says so. */
	kvd_config_defaults(&c);
	{
		struct kvd_config_override o = { "cluster", "lease_ttl", "20" };

		assert_int_equal(KVD_CFG_CLUSTER,
				 kvd_config_reparse(&c, &next, NULL, &o, 1, err, sizeof(err)));
	}
}

/* [tenants]: name rules (users, groups, prefixes), allow rules, per-user maxima. */
static void tenants_section(void **state)
{
	const struct kvd_name_rule *r;
	struct kvd_config c;
	gid_t serving[2] = { 100, 4242 };
	char err[256] = "";

	(void)state;
	assert_int_equal(0, load(&c,
		"[tenants]\nname decode* = uid:1000 gid:4242\nname decode-test = user:root\n"
		"name prefill = uid:1001 group:root\nname   shared.* = any\n"
		"allow prefill* = decode* router\nallow router = decode*\n"
		"max_connections_per_user = 8\nmax_handoffs_per_user = 16\n"
		"max_handoff_fds_per_user = 32\npriority_ceiling = 4\n", err, sizeof(err)));
	assert_string_equal("", err);
	assert_int_equal(4, c.tenants.nnames);
	assert_int_equal(2, c.tenants.nallows);
	assert_int_equal(8, c.tenants.max_conns);
	assert_int_equal(16, c.tenants.max_handoffs);
	assert_int_equal(32, c.tenants.max_fds);
	assert_int_equal(4, c.tenants.priority_ceiling);

	/* The most specific rule decides: decode-test is root's, not uid 1000's. */
	r = kvd_tenant_rule(&c.tenants, "decode-test");
	assert_non_null(r);
	assert_string_equal("decode-test", r->pattern);
	assert_false(kvd_rule_admits(r, 1000, NULL, 0));
	assert_true(kvd_rule_admits(r, 0, NULL, 0));
	r = kvd_tenant_rule(&c.tenants, "decode-7");
	assert_non_null(r);
	assert_true(kvd_rule_admits(r, 1000, NULL, 0));
	assert_false(kvd_rule_admits(r, 1002, NULL, 0));
	assert_true(kvd_rule_admits(r, 1002, serving, 2));	/* a member of gid 4242 */
	/* An exact pattern covers only its name; no rule covers the rest. */
	assert_null(kvd_tenant_rule(&c.tenants, "prefill2"));
	assert_null(kvd_tenant_rule(&c.tenants, "decod"));
	r = kvd_tenant_rule(&c.tenants, "shared.x");
	assert_non_null(r);
	assert_true(kvd_rule_admits(r, 12345, NULL, 0));

	assert_true(kvd_tenant_handoff_allowed(&c.tenants, "prefill", "decode-1"));
	assert_true(kvd_tenant_handoff_allowed(&c.tenants, "prefill-b", "router"));
	assert_true(kvd_tenant_handoff_allowed(&c.tenants, "router", "decode-1"));
	assert_false(kvd_tenant_handoff_allowed(&c.tenants, "decode-1", "prefill"));
	assert_false(kvd_tenant_handoff_allowed(&c.tenants, "router", "prefill"));
	assert_false(kvd_tenant_handoff_allowed(&c.tenants, "other", "decode-1"));

	/* No allow rules: every hand-off is allowed; defaults of the maxima. */
	assert_int_equal(0, load(&c, "[tenants]\nname * = any\n", err, sizeof(err)));
	assert_true(kvd_tenant_handoff_allowed(&c.tenants, "a", "b"));
	assert_int_equal(KVD_DEFAULT_CONNS_PER_USER, c.tenants.max_conns);
	assert_int_equal(KVD_DEFAULT_HANDOFFS_PER_USER, c.tenants.max_handoffs);
	assert_int_equal(KVD_DEFAULT_FDS_PER_USER, c.tenants.max_fds);
	assert_int_equal(7, c.tenants.priority_ceiling);
	assert_true(kvd_pattern_match("*", "anything"));
	assert_false(kvd_pattern_match("abc", "abcd"));
}

static void tenants_mistakes(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "[tenants]\nname decode = bob\n", ":2: name: 'bob' is not user:NAME" },
		{ "[tenants]\nname decode = user:no-such-user-kvd\n",
		  ":2: name: no user 'no-such-user-kvd'" },
		{ "[tenants]\nname decode = group:no-such-group-kvd\n",
		  ":2: name: no group 'no-such-group-kvd'" },
		{ "[tenants]\nname decode = uid:-1\n", ":2: name: 'uid:-1' is not" },
		{ "[tenants]\nname dec*de = any\n", ":2: 'name dec*de': a rule is" },
		{ "[tenants]\nname a/b = any\n", ":2: 'name a/b': a rule is" },
		{ "[tenants]\nname =\n", ":2: unknown key 'name' in [tenants]" },
		{ "[tenants]\nname d =\n", ":2: name: nothing after '='" },
		{ "[tenants]\nname d = any\nname d = uid:1\n",
		  ":3: name: pattern 'd' has a rule already" },
		{ "[tenants]\nallow a = b* c/d\n", ":2: allow: 'c/d' is not an engine name" },
		{ "[tenants]\nallow a = 1 2 3 4 5 6 7 8 9\n", ":2: allow: more than 8 items" },
		{ "[tenants]\nmax_connections_per_user = 0\n",
		  ":2: max_connections_per_user: '0' is not a number from 1 to 1024" },
		{ "[tenants]\npriority_ceiling = 8\n", ":2: priority_ceiling: '8' is not" },
		{ "[tenants]\nmax_fds = 8\n", ":2: unknown key 'max_fds' in [tenants]" },
		{ "[tenants]\nname 0123456789012345678901234567890123 = any\n",
		  ":2: 'name 0123456789012345678901234567890123': a rule is" },
	};
	struct kvd_config c;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(-EINVAL, load(&c, cases[i].text, err, sizeof(err)));
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_file),
		cmocka_unit_test(mistakes_name_their_line),
		cmocka_unit_test(checks_across_keys),
		cmocka_unit_test(overrides),
		cmocka_unit_test(daemon_timings_and_metrics_off),
		cmocka_unit_test(migration_section),
		cmocka_unit_test(cluster_section),
		cmocka_unit_test(tenants_section),
		cmocka_unit_test(tenants_mistakes),
	};

	return cmocka_run_group_tests_name("kvacceld_config", tests, NULL, NULL);
}
