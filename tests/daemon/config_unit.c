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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_file),
		cmocka_unit_test(mistakes_name_their_line),
		cmocka_unit_test(checks_across_keys),
		cmocka_unit_test(overrides),
		cmocka_unit_test(daemon_timings_and_metrics_off),
	};

	return cmocka_run_group_tests_name("kvacceld_config", tests, NULL, NULL);
}
