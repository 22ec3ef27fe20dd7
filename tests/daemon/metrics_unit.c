// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld's metrics exposition (cmocka, ASan/UBSan): metrics.c's renderer
 * fed snapshots, without the daemon, and its output read by a strict
 * parser of the Prometheus text format (0.0.4) that also checks the
 * naming conventions: HELP and TYPE before a family's samples, one TYPE
 * per family, its samples together, metric and label names of the allowed
 * characters, counters ending in _total and nothing else doing so, sizes
 * in _bytes and times in _seconds, label values escaped, no series twice,
 * no family colliding with another's _total/_count/_sum/_bucket/_created,
 * no per-incarnation label (pid). The parser refuses known-bad texts (the
 * old renderer's among them), and the process_* figures are read from
 * /proc/self.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "kvd.h"

void kvd_log(int prio, const char *fmt, ...)
{
	(void)prio;
	(void)fmt;
}

/* ---- a strict parser of the text format --------------------------------- */

#define MAX_FAMILIES	128
#define MAX_SERIES	1024

struct family {
	char name[128], type[16];
	bool help, samples;
};

struct expo {
	struct family fam[MAX_FAMILIES];
	int nfam;
	char *series[MAX_SERIES];
	int nseries;
	int cur;			/* the family whose samples come now (-1: none) */
	char why[256];
};

static int bad(struct expo *x, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(struct expo *x, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(x->why, sizeof(x->why), "line %d: ", line);

	va_start(ap, fmt);
	vsnprintf(x->why + n, sizeof(x->why) - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool name_ok(const char *s, size_t n, bool label)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (!label && c == ':');

		if (!alpha && (!i || c < '0' || c > '9'))
			return false;
	}
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static struct family *find_family(struct expo *x, const char *name)
{
	int i;

	for (i = 0; i < x->nfam; i++)
		if (!strcmp(x->fam[i].name, name))
			return &x->fam[i];
	return NULL;
}

static struct family *get_family(struct expo *x, const char *name, int line, int *err)
{
	struct family *f = find_family(x, name);

	if (f) {
		/* A family's lines come together: one that comes back is a second family. */
		if (f != &x->fam[x->cur < 0 ? 0 : x->cur] || x->cur < 0)
			*err = bad(x, line, "family %s comes back after another", name);
		return f;
	}
	if (x->nfam == MAX_FAMILIES) {
		*err = bad(x, line, "too many families");
		return NULL;
	}
	f = &x->fam[x->nfam];
	snprintf(f->name, sizeof(f->name), "%s", name);
	x->cur = x->nfam++;
	return f;
}

/* The family a sample named @name belongs to, by the type's suffixes. */
static bool sample_of(const struct family *f, const char *name)
{
	size_t n = strlen(f->name);
	static const char *const hist[] = { "_bucket", "_sum", "_count", NULL };
	static const char *const summ[] = { "_sum", "_count", NULL };
	const char *const *sfx = !strcmp(f->type, "histogram") ? hist :
				 !strcmp(f->type, "summary") ? summ : NULL;

	if (!strcmp(f->name, name))
		return true;
	for (; sfx && *sfx; sfx++)
		if (!strncmp(name, f->name, n) && !strcmp(name + n, *sfx))
			return true;
	return false;
}

/* {a="x",b="y"}: checked and copied, escapes kept, into @out; the length read. */
static int parse_labels(struct expo *x, int line, const char *p, char *out, size_t outlen,
			bool *has_pid)
{
	const char *start = p;
	char names[16][64];
	int nnames = 0, i;

	if (*p != '{')
		return 0;
	p++;
	while (*p != '}') {
		const char *n = p;
		size_t len;

		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		       (p > n && *p >= '0' && *p <= '9'))
			p++;
		len = (size_t)(p - n);
		if (!name_ok(n, len, true) || (len >= 2 && n[0] == '_' && n[1] == '_'))
			return bad(x, line, "bad label name");
		if (len == 3 && !strncmp(n, "pid", 3))
			*has_pid = true;
		for (i = 0; i < nnames; i++)
			if (strlen(names[i]) == len && !strncmp(names[i], n, len))
				return bad(x, line, "label %.*s twice", (int)len, n);
		if (nnames < 16)
			snprintf(names[nnames++], 64, "%.*s", (int)len, n);
		if (p[0] != '=' || p[1] != '"')
			return bad(x, line, "label %.*s: no =\"", (int)len, n);
		p += 2;
		for (; *p != '"'; p++) {
			if (!*p || *p == '\n')
				return bad(x, line, "unterminated label value");
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return bad(x, line, "bad escape \\%c", p[1]);
				p++;
			}
		}
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return bad(x, line, "no , or } after a label");
	}
	p++;
	if ((size_t)(p - start) >= outlen)
		return bad(x, line, "labels too long");
	memcpy(out, start, (size_t)(p - start));
	out[p - start] = 0;
	return (int)(p - start);
}

/* A Go ParseFloat value: decimal, +Inf, -Inf, NaN (no hex, no "inf" spellings of C's). */
static bool value_ok(const char *v)
{
	char *end;

	if (!strcmp(v, "+Inf") || !strcmp(v, "-Inf") || !strcmp(v, "NaN"))
		return true;
	if (strspn(v, "+-0123456789.eE") != strlen(v))
		return false;
	strtod(v, &end);
	return end != v && !*end;
}

/* 0, or -EINVAL with x->why saying what breaks the format or the conventions. */
static int parse(struct expo *x, const char *text)
{
	static const char *const collide[] = { "_total", "_count", "_sum", "_bucket",
					       "_created", "_info", NULL };
	const char *p = text;
	int line = 0, err = 0, i, k;

	memset(x, 0, sizeof(*x));
	x->cur = -1;
	if (!*text || text[strlen(text) - 1] != '\n')
		return bad(x, 0, "the text does not end with a newline");
	while (*p && !err) {
		const char *eol = strchr(p, '\n');
		char l[1024];
		size_t len = (size_t)(eol - p);

		line++;
		if (len >= sizeof(l))
			return bad(x, line, "line too long");
		memcpy(l, p, len);
		l[len] = 0;
		p = eol + 1;
		if (!len)
			return bad(x, line, "empty line");
		if (l[0] == '#') {
			char name[128], word[16];
			struct family *f;
			int off = 0;

			if (sscanf(l, "# %15s %127s %n", word, name, &off) < 2 ||
			    (strcmp(word, "HELP") && strcmp(word, "TYPE")))
				continue;	/* a comment */
			if (!name_ok(name, strlen(name), false))
				return bad(x, line, "bad metric name %s", name);
			f = get_family(x, name, line, &err);
			if (err)
				return err;
			if (f->samples)
				return bad(x, line, "%s of %s after its samples", word, name);
			if (!strcmp(word, "HELP")) {
				if (f->help)
					return bad(x, line, "second HELP of %s", name);
				if (!off || !l[off])
					return bad(x, line, "empty HELP of %s", name);
				f->help = true;
				continue;
			}
			if (f->type[0])
				return bad(x, line, "second TYPE of %s", name);
			if (!off || (strcmp(l + off, "counter") && strcmp(l + off, "gauge") &&
				     strcmp(l + off, "histogram") && strcmp(l + off, "summary") &&
				     strcmp(l + off, "untyped")))
				return bad(x, line, "bad TYPE of %s", name);
			snprintf(f->type, sizeof(f->type), "%s", l + off);
			continue;
		}
		{
			char name[128], labels[512] = "", key[700], value[64];
			const char *q = l;
			struct family *f;
			bool has_pid = false;
			int n;

			while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_' ||
			       *q == ':' || (q > l && *q >= '0' && *q <= '9'))
				q++;
			if (!name_ok(l, (size_t)(q - l), false) || (size_t)(q - l) >= sizeof(name))
				return bad(x, line, "bad metric name in '%s'", l);
			snprintf(name, sizeof(name), "%.*s", (int)(q - l), l);
			n = parse_labels(x, line, q, labels, sizeof(labels), &has_pid);
			if (n < 0)
				return n;
			q += n;
			if (has_pid)
				return bad(x, line, "%s has a pid label (a new series per restart)",
					    name);
			if (*q != ' ' || sscanf(q, " %63s", value) != 1 || !value_ok(value))
				return bad(x, line, "bad value in '%s'", l);
			/* At most a timestamp after the value. */
			q = strstr(q + 1, value) + strlen(value);
			if (*q && (*q != ' ' || strspn(q + 1, "-0123456789") != strlen(q + 1)))
				return bad(x, line, "junk after the value in '%s'", l);
			if (x->cur < 0 || !sample_of(&x->fam[x->cur], name))
				return bad(x, line, "sample %s without its HELP and TYPE first", name);
			f = &x->fam[x->cur];
			if (!f->type[0] || !f->help)
				return bad(x, line, "sample %s before its family's HELP and TYPE",
					    name);
			f->samples = true;
			snprintf(key, sizeof(key), "%s%s", name, labels);
			for (i = 0; i < x->nseries; i++)
				if (!strcmp(x->series[i], key))
					return bad(x, line, "series %s twice", key);
			if (x->nseries == MAX_SERIES)
				return bad(x, line, "too many series");
			x->series[x->nseries++] = strdup(key);
		}
	}
	/* Conventions across the families. */
	for (i = 0; i < x->nfam; i++) {
		const struct family *f = &x->fam[i];

		if (!f->type[0])
			return bad(x, 0, "%s has no TYPE", f->name);
		if (!strcmp(f->type, "counter") != ends_with(f->name, "_total"))
			return bad(x, 0, "%s: %s", f->name, ends_with(f->name, "_total") ?
				    "only counters end in _total" : "a counter's name ends in _total");
		if ((strstr(f->name, "bytes") && !ends_with(f->name, "_bytes") &&
		     !ends_with(f->name, "_bytes_total")) ||
		    (strstr(f->name, "seconds") && !ends_with(f->name, "_seconds") &&
		     !ends_with(f->name, "_seconds_total")))
			return bad(x, 0, "%s: the unit is not its suffix", f->name);
		for (k = 0; k < x->nfam; k++) {
			size_t n = strlen(f->name);
			const char *const *c;

			if (k == i || strncmp(x->fam[k].name, f->name, n))
				continue;
			for (c = collide; *c; c++)
				if (!strcmp(x->fam[k].name + n, *c))
					return bad(x, 0, "%s collides with %s", x->fam[k].name,
						    f->name);
		}
		/* A counter's base name is no other family's. */
		if (!strcmp(f->type, "counter")) {
			char base[128];

			snprintf(base, sizeof(base), "%.*s", (int)(strlen(f->name) - 6), f->name);
			if (find_family(x, base))
				return bad(x, 0, "%s collides with %s", f->name, base);
		}
	}
	return 0;
}

static void expo_free(struct expo *x)
{
	int i;

	for (i = 0; i < x->nseries; i++)
		free(x->series[i]);
	x->nseries = 0;
}

static bool has_series(const struct expo *x, const char *key)
{
	int i;

	for (i = 0; i < x->nseries; i++)
		if (!strcmp(x->series[i], key))
			return true;
	return false;
}

/* ---- the parser itself --------------------------------------------------- */

static void parser_refuses_bad_texts(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "a 1\n", "without its HELP and TYPE" },
		{ "# TYPE a gauge\na 1\n", "before its family's HELP and TYPE" },
		{ "# HELP a x\n# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE" },
		{ "# HELP a x\n# TYPE a gauge\na 1\n# HELP a y\n", "after its samples" },
		{ "# HELP a x\n# TYPE a gauge\na 1\na 2\n", "series a twice" },
		{ "# HELP a x\n# TYPE a gauge\na{l=\"1\"} 1\na{l=\"1\"} 2\n", "twice" },
		{ "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n", "bad metric name" },
		{ "# HELP a-b x\n# TYPE a-b gauge\n", "bad metric name" },
		{ "# HELP a x\n# TYPE a counter\na 1\n", "a counter's name ends in _total" },
		{ "# HELP a_total x\n# TYPE a_total gauge\na_total 1\n", "only counters" },
		{ "# HELP a x\n# TYPE a gauge\na{l=\"x\\q\"} 1\n", "bad escape" },
		{ "# HELP a x\n# TYPE a gauge\na{l=\"x} 1\n", "unterminated" },
		{ "# HELP a x\n# TYPE a gauge\na{0l=\"x\"} 1\n", "bad label name" },
		{ "# HELP a x\n# TYPE a gauge\na{l=\"x\",l=\"y\"} 1\n", "twice" },
		{ "# HELP a x\n# TYPE a gauge\na one\n", "bad value" },
		{ "# HELP a x\n# TYPE a gauge\na 1", "newline" },
		{ "# HELP a x\n# TYPE a gauge\na{pid=\"7\"} 1\n", "pid label" },
		{ "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\n"
		  "# HELP a x\n", "comes back" },
		{ "# HELP a x\n# TYPE a gauge\na 1\n# HELP a_total x\n# TYPE a_total counter\n"
		  "a_total 1\n", "collides" },
		{ "# HELP a_size x\n# TYPE a_size gauge\na_size 1\n"
		  "# HELP a_size_count x\n# TYPE a_size_count gauge\na_size_count 1\n",
		  "collides" },
		{ "# HELP a_bytes_used x\n# TYPE a_bytes_used gauge\na_bytes_used 1\n",
		  "unit is not its suffix" },
		{ "# HELP a x\n# TYPE a gauge\n\na 1\n", "empty line" },
		/* The old renderer: a pid label (a new series per restart). */
		{ "# HELP kvaccel_engine_usage_bytes B.\n# TYPE kvaccel_engine_usage_bytes gauge\n"
		  "kvaccel_engine_usage_bytes{engine=\"a\",pid=\"42\",priority=\"3\"} 0\n",
		  "pid label" },
	};
	struct expo x;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = parse(&x, cases[i].text);

		expo_free(&x);
		if (ret != -EINVAL || !strstr(x.why, cases[i].want))
			fail_msg("case %zu: %d '%s', not '%s'", i, ret, x.why, cases[i].want);
	}
	assert_int_equal(0, parse(&x, "# a comment\n# HELP a_seconds x y\n"
				  "# TYPE a_seconds gauge\na_seconds{l=\"q\\\"\\\\\\n\"} +Inf 123\n"
				  "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
				  "h_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n"));
	expo_free(&x);
}

/* ---- the renderer --------------------------------------------------------- */

static char *render(const struct kvd_metrics_snap *s)
{
	struct kvd_mbuf b = { 0 };

	kvd_metrics_render(s, &b);
	assert_false(b.oom);
	assert_non_null(b.p);
	b.p[b.len] = 0;	/* put() leaves room for vsnprintf's NUL */
	return b.p;
}

static void check(const char *text)
{
	struct expo x;

	if (parse(&x, text))
		fail_msg("%s\n--- the exposition:\n%s", x.why, text);
	expo_free(&x);
}

static void full_snapshot_is_valid(void **state)
{
	struct kvd_metrics_engine e[3] = {
		{ .name = "prefill", .priority = 3, .usage = 1 << 20, .quota = 64 << 20,
		  .releases_asked = 4, .releases_ignored = 1 },
		{ .name = "decode-0", .priority = 5, .usage = 2 << 20 },
		{ .name = "odd\"name\\", .priority = 0 },
	};
	struct kvd_metrics_snap s = {
		.kernel = true, .limit = 1ull << 30, .usage = 3 << 20, .high_wm = 512 << 20,
		.low_wm = 256 << 20, .regions = 2, .clients = 3, .copy_jobs = 10,
		.copy_errors = 1, .pressure = true, .engines = e, .nengines = 3,
		.handoffs_done = 5, .handoffs_in_flight = 1, .rounds = 2, .rounds_resolved = 1,
		.conns_total = 9, .held_fds = 3, .users = 2,
	};
	struct expo x;
	char *t;

	(void)state;
	s.refused[KVD_REFUSED_NAME] = 2;
	kvd_process_stats(&s.proc);
	assert_true(s.proc.ok);
	t = render(&s);
	check(t);
	assert_int_equal(0, parse(&x, t));
	assert_true(has_series(&x, "kvaccel_engine_quota_bytes{engine=\"prefill\"}"));
	/* No quota: no sample, rather than 0. */
	assert_false(has_series(&x, "kvaccel_engine_quota_bytes{engine=\"decode-0\"}"));
	assert_true(has_series(&x, "kvaccel_engine_usage_bytes{engine=\"odd\\\"name\\\\\"}"));
	assert_true(has_series(&x, "kvaccel_node_limit_bytes"));
	assert_true(has_series(&x, "kvaccel_node_high_watermark_bytes"));
	assert_true(has_series(&x, "kvaccel_socket_refused_total{reason=\"name\"}"));
	assert_true(has_series(&x, "process_open_fds"));
	assert_true(has_series(&x, "process_resident_memory_bytes"));
	assert_true(has_series(&x, "process_virtual_memory_bytes"));
	assert_true(has_series(&x, "process_start_time_seconds"));
	assert_true(has_series(&x, "process_cpu_seconds_total"));
	assert_true(has_series(&x, "process_max_fds"));
	assert_non_null(strstr(t, "kvaccel_pressure_rounds_total 2\n"));
	assert_non_null(strstr(t, "kvaccel_pressure_rounds_resolved_total 1\n"));
	assert_non_null(strstr(t, "kvaccel_engine_release_requests_ignored_total{engine=\"prefill\"} 1\n"));
	/* [cluster] off: no cluster family at all. */
	assert_false(has_series(&x, "kvaccel_cluster_nodes"));
	expo_free(&x);
	free(t);
	/* On: the view's families, its age while stale. */
	s.cluster = true;
	s.cluster_stale = true;
	s.cluster_age_ms = 12500;
	s.cluster_nodes = 3;
	s.cluster_engines = 7;
	s.cluster_publish_errors = 4;
	s.cluster_leases = 2;
	t = render(&s);
	check(t);
	assert_int_equal(0, parse(&x, t));
	assert_true(has_series(&x, "kvaccel_cluster_nodes"));
	assert_true(has_series(&x, "kvaccel_cluster_watch_restarts_total"));
	assert_non_null(strstr(t, "kvaccel_cluster_view_stale 1\n"));
	assert_non_null(strstr(t, "kvaccel_cluster_view_age_seconds 12.500\n"));
	assert_non_null(strstr(t, "kvaccel_cluster_publish_errors_total 4\n"));
	expo_free(&x);
	free(t);
	/* Never in sync: no age sample. */
	s.cluster_age_ms = -1;
	t = render(&s);
	check(t);
	assert_null(strstr(t, "kvaccel_cluster_view_age_seconds"));
	free(t);
}

/* No limit, no watermarks, no kernel, no engines: still valid, and no 0 for "none". */
static void sparse_snapshots_are_valid(void **state)
{
	struct kvd_metrics_snap s = { .kernel = true };
	struct expo x;
	char *t;

	(void)state;
	t = render(&s);
	check(t);
	assert_int_equal(0, parse(&x, t));
	assert_false(has_series(&x, "kvaccel_node_limit_bytes"));
	assert_false(has_series(&x, "kvaccel_node_high_watermark_bytes"));
	assert_false(has_series(&x, "process_open_fds"));	/* not read: not shown */
	expo_free(&x);
	free(t);
	s.kernel = false;
	t = render(&s);
	check(t);
	assert_non_null(strstr(t, "kvaccel_up 0\n"));
	assert_null(strstr(t, "kvaccel_node_usage_bytes"));
	free(t);
}

/* The same engines after a restart (new pids) are the same series. */
static void series_survive_restarts(void **state)
{
	struct kvd_metrics_engine e = { .name = "decode", .priority = 2, .usage = 7 };
	struct kvd_metrics_snap s = { .kernel = true, .engines = &e, .nengines = 1 };
	char *a, *b;

	(void)state;
	a = render(&s);
	e.usage = 7;
	b = render(&s);
	assert_string_equal(a, b);
	assert_null(strstr(a, "pid"));
	free(a);
	free(b);
}

static void process_stats_are_this_process(void **state)
{
	struct kvd_process_stats p;
	double now = (double)time(NULL);

	(void)state;
	kvd_process_stats(&p);
	assert_true(p.ok);
	assert_true(p.open_fds >= 3);
	assert_true(p.resident_bytes > 0);
	assert_true(p.virtual_bytes >= p.resident_bytes);
	assert_true(p.start_time_seconds > now - 3600 && p.start_time_seconds <= now + 2);
	assert_true(p.cpu_seconds >= 0);
	assert_true(!isnan(p.cpu_seconds));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parser_refuses_bad_texts),
		cmocka_unit_test(full_snapshot_is_valid),
		cmocka_unit_test(sparse_snapshots_are_valid),
		cmocka_unit_test(series_survive_restarts),
		cmocka_unit_test(process_stats_are_this_process),
	};

	return cmocka_run_group_tests_name("kvacceld_metrics", tests, NULL, NULL);
}
