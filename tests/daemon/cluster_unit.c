// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld's cluster part (daemon/cluster*.c), natively: the view's keys
 * and values (garbage ignored), the change threshold, and three "nodes"
 * (three instances of the part in this process) against one real etcd
 * with authentication on (SKIP without etcd): each sees the others; a
 * change is published, one under the threshold is not; an engine that
 * left is deleted; a node that stops keepalives (a crash) vanishes from
 * the others' view within its lease TTL; garbage under the prefix is
 * ignored; etcd killed: the views go stale, and once it is back everything
 * is published again and in sync; etcd absent at start: no crash, a
 * clear error, a prompt stop. The password is never in etcd.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "cluster.h"
#include "etcd_int.h"
#include "etcd_fixture.h"

#define SECRET	"pw-SECRET-42"
#define TTL	3

static struct etcdfx fx;
static bool have_etcd, auth_on;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int log_ignored, log_lines;
static char log_last[512];

static void test_log(int prio, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	log_lines++;
	if (strstr(line, "ignored"))
		log_ignored++;
	snprintf(log_last, sizeof(log_last), "%s", line);
	pthread_mutex_unlock(&log_lock);
	if (getenv("CLUSTER_UNIT_LOG"))
		fprintf(stderr, "# [%d] %s\n", prio, line);
	/* The password never goes into a log line. */
	assert_null(strstr(line, SECRET));
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the view, pure --------------------------------------------------- */

static void view_keys_and_garbage(void **state)
{
	struct kvd_cview v;
	struct kvd_cview_node n = { .name = "n1", .capacity = 1 << 30, .limit = 1 << 29,
				    .usage = 12345, .ucx_address = "10.0.0.1:9000", .engines = 1,
				    .updated_ms = 1700000000000 };
	struct kvd_cview_engine e = { .node = "n1", .name = "eng-a", .priority = 3,
				      .block_bytes = 65536, .blocks_total = 100, .blocks_free = 40,
				      .running = 2, .load = 0.6, .nmodels = 1,
				      .models = { "tiny-moe" } };
	char key[256], why[200], *val;
	char big[5000];

	(void)state;
	assert_int_equal(kvd_cview_init(&v, "/kvaccel", "c1"), 0);
	assert_string_equal(v.base, "/kvaccel/c1/");
	assert_int_equal(kvd_cview_init(&v, "kvaccel", "c1"), -EINVAL);
	assert_int_equal(kvd_cview_init(&v, "/kvaccel/", "c1"), -EINVAL);
	assert_int_equal(kvd_cview_init(&v, "/kvaccel", "c/1"), -EINVAL);
	assert_int_equal(kvd_cview_init(&v, "/kvaccel", "c1"), 0);

	assert_int_equal(kvd_cview_node_key(&v, "n1", key, sizeof(key)), 0);
	assert_string_equal(key, "/kvaccel/c1/nodes/n1");
	val = kvd_cview_encode_node(&n);
	assert_non_null(val);
	assert_int_equal(kvd_cview_apply(&v, false, key, strlen(key), val, strlen(val), 5, why,
					 sizeof(why)), 0);
	free(val);
	assert_int_equal(v.nnodes, 1);
	assert_int_equal(v.nodes[0].usage, 12345);
	assert_string_equal(v.nodes[0].ucx_address, "10.0.0.1:9000");
	assert_int_equal(v.nodes[0].mod_revision, 5);
	assert_int_equal(kvd_cview_engine_key(&v, "n1", "eng-a", key, sizeof(key)), 0);
	assert_string_equal(key, "/kvaccel/c1/engines/n1/eng-a");
	val = kvd_cview_encode_engine(&e);
	assert_int_equal(kvd_cview_apply(&v, false, key, strlen(key), val, strlen(val), 6, why,
					 sizeof(why)), 0);
	assert_int_equal(v.nengines, 1);
	assert_int_equal(v.engines[0].blocks_free, 40);
	assert_string_equal(v.engines[0].models[0], "tiny-moe");
	assert_true(v.engines[0].load > 0.59 && v.engines[0].load < 0.61);
	/* The same value under another engine's key: its name is not the key's. */
	assert_int_equal(kvd_cview_engine_key(&v, "n1", "eng-b", key, sizeof(key)), 0);
	assert_int_equal(kvd_cview_apply(&v, false, key, strlen(key), val, strlen(val), 7, why,
					 sizeof(why)), 1);
	assert_non_null(strstr(why, "eng-b"));
	free(val);

#define BAD(k, value) do { \
	const char *_k = (k), *_v = (value); \
	assert_int_equal(kvd_cview_apply(&v, false, _k, strlen(_k), _v, strlen(_v), 8, why, \
					 sizeof(why)), 1); \
	assert_true(why[0] != 0); \
} while (0)
	BAD("/kvaccel/c1/nodes/n2", "{not json");
	BAD("/kvaccel/c1/nodes/n2", "[1]");
	BAD("/kvaccel/c1/nodes/n2", "{\"node\":\"n2\"}");		/* missing fields */
	BAD("/kvaccel/c1/nodes/n2", "{\"node\":\"n2\",\"capacity\":\"1\",\"limit\":0,\"usage\":0,"
	    "\"pressure\":false,\"ucx_address\":\"\",\"engines\":0,\"updated_ms\":1}");
	BAD("/kvaccel/c1/nodes/n2", "{\"node\":\"n2\",\"capacity\":-1,\"limit\":0,\"usage\":0,"
	    "\"pressure\":false,\"ucx_address\":\"\",\"engines\":0,\"updated_ms\":1}");
	BAD("/kvaccel/c1/nodes/n2", "{\"node\":\"n3\",\"capacity\":1,\"limit\":0,\"usage\":0,"
	    "\"pressure\":false,\"ucx_address\":\"\",\"engines\":0,\"updated_ms\":1}");
	BAD("/kvaccel/c1/nodes/n2", "{\"node\":\"n2\",\"capacity\":1,\"limit\":0,\"usage\":0,"
	    "\"pressure\":false,\"ucx_address\":\"a\\u0001\",\"engines\":0,\"updated_ms\":1} x");
	BAD("/kvaccel/c1/nodes/", "{}");
	BAD("/kvaccel/c1/nodes/a b", "{}");
	BAD("/kvaccel/c1/other/n2", "{}");
	BAD("/kvaccel/c1/engines/n2", "{}");
	BAD("/kvaccel/c1/engines/n2/e/x", "{}");
	BAD("/kvaccel/c2/nodes/n2", "{}");
	BAD("/kvaccel/c1/engines/n1/eng-a", "{\"node\":\"n1\",\"name\":\"eng-a\",\"priority\":0,"
	    "\"block_bytes\":1,\"blocks_total\":1,\"blocks_free\":2,\"running\":0,\"waiting\":0,"
	    "\"draining\":false,\"load\":0.5,\"models\":[]}");		/* free > total */
	BAD("/kvaccel/c1/engines/n1/eng-a", "{\"node\":\"n1\",\"name\":\"eng-a\",\"priority\":0,"
	    "\"block_bytes\":1,\"blocks_total\":1,\"blocks_free\":1,\"running\":0,\"waiting\":0,"
	    "\"draining\":false,\"load\":7,\"models\":[]}");		/* load over 1 */
	BAD("/kvaccel/c1/engines/n1/eng-a", "{\"node\":\"n1\",\"name\":\"eng-a\",\"priority\":0,"
	    "\"block_bytes\":1,\"blocks_total\":1,\"blocks_free\":1,\"running\":0,\"waiting\":0,"
	    "\"draining\":false,\"load\":0,\"models\":[1]}");
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	BAD("/kvaccel/c1/nodes/n2", big);
	assert_int_equal(v.nnodes, 1);
	assert_int_equal(v.nengines, 1);
	assert_int_equal(v.engines[0].blocks_free, 40);		/* garbage changed nothing */
	assert_true(v.ignored >= 18);
	/* A key that is not NUL-free is refused, not read past. */
	assert_int_equal(kvd_cview_apply(&v, false, "/kvaccel/c1/nodes/n1\0x", 22, "{}", 2, 9,
					 why, sizeof(why)), 1);
	/* Deletes. */
	assert_int_equal(kvd_cview_apply(&v, true, "/kvaccel/c1/engines/n1/eng-a", 28, "", 0, 10,
					 why, sizeof(why)), 0);
	assert_int_equal(v.nengines, 0);
	assert_int_equal(kvd_cview_apply(&v, true, "/kvaccel/c1/nodes/n1", 20, "", 0, 11, why,
					 sizeof(why)), 0);
	assert_int_equal(v.nnodes, 0);
	kvd_cview_free(&v);
}

/* Put a node and an engine into @v (their values through the encoders). */
static void put_pair(struct kvd_cview *v, const char *node, bool pressure, const char *engine,
		     uint32_t total, uint32_t free_blocks, bool draining)
{
	struct kvd_cview_node n = { .capacity = 1 << 30, .pressure = pressure, .engines = 1 };
	struct kvd_cview_engine e = { .block_bytes = 65536, .blocks_total = total,
				      .blocks_free = free_blocks, .draining = draining };
	char key[256], why[200], *val;

	snprintf(n.name, sizeof(n.name), "%s", node);
	snprintf(e.node, sizeof(e.node), "%s", node);
	snprintf(e.name, sizeof(e.name), "%s", engine);
	e.load = total ? (double)(total - free_blocks) / total : 0;
	kvd_cview_node_key(v, node, key, sizeof(key));
	val = kvd_cview_encode_node(&n);
	assert_int_equal(kvd_cview_apply(v, false, key, strlen(key), val, strlen(val), 1, why,
					 sizeof(why)), 0);
	free(val);
	kvd_cview_engine_key(v, node, engine, key, sizeof(key));
	val = kvd_cview_encode_engine(&e);
	assert_int_equal(kvd_cview_apply(v, false, key, strlen(key), val, strlen(val), 1, why,
					 sizeof(why)), 0);
	free(val);
}

static const char *picked(const struct kvd_cview *v, long i)
{
	return i < 0 ? "none" : v->engines[i].name;
}

static void pick_a_remote_engine(void **state)
{
	struct kvd_cview v;

	(void)state;
	assert_int_equal(kvd_cview_init(&v, "/kvaccel", "c1"), 0);
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 1, 0)), "none");
	put_pair(&v, "me", false, "local", 100, 100, false);		/* never itself */
	put_pair(&v, "hot", true, "pressed", 100, 90, false);		/* node under pressure */
	put_pair(&v, "b", false, "busy", 100, 20, false);		/* load 0.8 */
	put_pair(&v, "c", false, "idle", 100, 70, false);		/* load 0.3 */
	put_pair(&v, "d", false, "drained", 100, 100, true);		/* draining */
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 10, 65536)), "idle");
	/* Room only where it may not go (itself, pressure, draining): none. */
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 80, 0)), "none");
	/* Both fit: the lower load; only one fits: that one. */
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 20, 0)), "idle");
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 50, 0)), "idle");
	put_pair(&v, "b", false, "busy", 100, 60, false);		/* now load 0.4, 60 free */
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 65, 0)), "idle");
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 60, 0)), "idle");
	put_pair(&v, "b", false, "busy", 100, 20, false);
	/* Another block size: none. */
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 1, 4096)), "none");
	/* An engine whose node's key is gone (its lease expired first) is no destination. */
	assert_int_equal(kvd_cview_apply(&v, true, "/kvaccel/c1/nodes/c", 19, "", 0, 2, (char[200]){ 0 },
					 200), 0);
	assert_string_equal(picked(&v, kvd_cview_pick_engine(&v, "me", 10, 0)), "busy");
	kvd_cview_free(&v);
}

static void change_threshold(void **state)
{
	struct kvd_cluster_facts a = { 0 }, b;

	(void)state;
	a.node.limit = 1000;
	a.node.usage = 500;
	a.nengines = 1;
	snprintf(a.engines[0].name, sizeof(a.engines[0].name), "e");
	a.engines[0].blocks_total = 100;
	a.engines[0].blocks_free = 50;
	a.engines[0].load = 0.5;
	a.engines[0].running = 10;
	b = a;
	assert_false(kvd_cluster_changed(&a, &b, 0.05));
	b.node.usage = 540;			/* 4 % of the limit */
	assert_false(kvd_cluster_changed(&a, &b, 0.05));
	b.node.usage = 560;			/* 6 % */
	assert_true(kvd_cluster_changed(&a, &b, 0.05));
	b = a;
	b.engines[0].blocks_free = 53;
	b.engines[0].load = 0.47;
	assert_false(kvd_cluster_changed(&a, &b, 0.05));
	b.engines[0].blocks_free = 44;
	assert_true(kvd_cluster_changed(&a, &b, 0.05));
	b = a;
	b.engines[0].running = 0;		/* busy to idle: always */
	assert_true(kvd_cluster_changed(&a, &b, 0.5));
	b = a;
	b.node.pressure = true;
	assert_true(kvd_cluster_changed(&a, &b, 1));
	b = a;
	b.nengines = 0;
	assert_true(kvd_cluster_changed(&a, &b, 1));
	b = a;
	snprintf(b.engines[0].name, sizeof(b.engines[0].name), "f");
	assert_true(kvd_cluster_changed(&a, &b, 1));
	b = a;
	b.engines[0].draining = true;
	assert_true(kvd_cluster_changed(&a, &b, 1));
}

/* ---- three nodes, one etcd -------------------------------------------- */

static void config(struct kvd_cluster_config *cc, const char *node, const char *url)
{
	memset(cc, 0, sizeof(*cc));
	cc->enabled = true;
	snprintf(cc->endpoints[0], sizeof(cc->endpoints[0]), "%s", url);
	cc->n_endpoints = 1;
	snprintf(cc->prefix, sizeof(cc->prefix), "/kvaccel");
	snprintf(cc->name, sizeof(cc->name), "t");
	snprintf(cc->node, sizeof(cc->node), "%s", node);
	cc->lease_ttl_s = TTL;
	cc->update_interval_ms = 200;
	cc->change_threshold = 0.05;
	cc->timeout_ms = 1000;
	snprintf(cc->ucx_address, sizeof(cc->ucx_address), "ucx://%s:13337", node);
	if (auth_on) {
		snprintf(cc->user, sizeof(cc->user), "root");
		snprintf(cc->password, sizeof(cc->password), SECRET);
	}
}

static void facts(struct kvd_cluster_facts *f, unsigned int nengines, uint64_t usage)
{
	unsigned int i;

	memset(f, 0, sizeof(*f));
	f->node.capacity = 64ull << 30;
	f->node.limit = 8ull << 30;
	f->node.usage = usage;
	f->nengines = nengines;
	for (i = 0; i < nengines; i++) {
		struct kvd_cview_engine *e = &f->engines[i];

		snprintf(e->name, sizeof(e->name), "eng%u", i);
		e->priority = i;
		e->block_bytes = 1 << 16;
		e->blocks_total = 1000;
		e->blocks_free = 500;
		e->load = 0.5;
		e->running = 3;
	}
}

/* Wait until @pred(@c, @arg) holds, at most @ms: how long it took, or -1. */
static int64_t wait_for(struct kvd_cluster *c, bool (*pred)(const struct kvd_cluster_snap *,
			const void *), const void *arg, int64_t ms)
{
	int64_t t0 = now_ms();

	for (;;) {
		struct kvd_cluster_snap s;
		bool ok;

		assert_int_equal(kvd_cluster_snapshot(c, &s), 0);
		ok = pred(&s, arg);
		kvd_cluster_snap_free(&s);
		if (ok)
			return now_ms() - t0;
		if (now_ms() - t0 > ms)
			return -1;
		usleep(50 * 1000);
	}
}

struct want {
	size_t nodes, engines;
	bool fresh;
};

static bool has(const struct kvd_cluster_snap *s, const void *arg)
{
	const struct want *w = arg;

	return s->nnodes == w->nodes && s->nengines == w->engines &&
	       (!w->fresh || (!s->st.stale && s->st.published));
}

static bool is_stale(const struct kvd_cluster_snap *s, const void *arg)
{
	(void)arg;
	return s->st.stale && s->st.age_ms >= 0;
}

static bool usage_is(const struct kvd_cluster_snap *s, const void *arg)
{
	const uint64_t *u = arg;
	size_t i;

	for (i = 0; i < s->nnodes; i++)
		if (!strcmp(s->nodes[i].name, "n1"))
			return s->nodes[i].usage == *u;
	return false;
}

static int no_secret(const struct etcd_kv *kv, void *arg)
{
	unsigned int *n = arg;

	assert_null(memmem(kv->value, kv->value_len, SECRET, strlen(SECRET)));
	assert_null(strstr(kv->value, "password"));
	(*n)++;
	return 0;
}

static struct etcd *admin_client(void)
{
	const char *eps[] = { fx.url };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .timeout_ms = 2000,
			       .user = auth_on ? "root" : NULL, .password = auth_on ? SECRET : NULL };
	char err[128];
	struct etcd *e = etcd_new(&o, err, sizeof(err));

	assert_non_null(e);
	return e;
}

static void three_nodes(void **state)
{
	struct kvd_cluster_config cc;
	struct kvd_cluster *n[3];
	struct kvd_cluster_facts f;
	struct kvd_cluster_status st;
	struct want w = { .nodes = 3, .engines = 1 + 2 + 3, .fresh = true };
	char err[200];
	uint64_t usage;
	int64_t t, rev_before;
	unsigned int i, nkeys = 0;
	struct etcd *adm;

	(void)state;
	if (!have_etcd) {
		skip();
		return;
	}
	for (i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "n%u", i + 1);
		config(&cc, name, fx.url);
		n[i] = kvd_cluster_start(&cc, test_log, err, sizeof(err));
		assert_non_null(n[i]);
		facts(&f, i + 1, 1ull << 30);
		kvd_cluster_update(n[i], &f);
	}
	/* Each sees the other two (and itself). */
	for (i = 0; i < 3; i++) {
		t = wait_for(n[i], has, &w, 10000);
		assert_true(t >= 0);
		printf("# n%u: 3 nodes, 6 engines in its view after %lld ms\n", i + 1, (long long)t);
	}
	{
		struct kvd_cluster_snap s;
		const struct kvd_cview_node *x;
		size_t k;

		assert_int_equal(kvd_cluster_snapshot(n[1], &s), 0);
		for (k = 0, x = NULL; k < s.nnodes; k++)
			if (!strcmp(s.nodes[k].name, "n3"))
				x = &s.nodes[k];
		assert_non_null(x);
		assert_string_equal(x->ucx_address, "ucx://n3:13337");
		assert_int_equal(x->engines, 3);
		assert_int_equal(x->limit, 8ull << 30);
		assert_true(x->updated_ms > 1600000000000LL);
		kvd_cluster_snap_free(&s);
	}
	/* Nothing secret in etcd. */
	adm = admin_client();
	assert_int_equal(etcd_range_prefix(adm, "/kvaccel/", no_secret, &nkeys, &rev_before), 0);
	assert_int_equal(nkeys, 3 + 6);

	/* A change beyond the threshold reaches the others; one under it is not sent. */
	facts(&f, 1, (1ull << 30) + (1ull << 20));	/* +1 MiB of an 8 GiB limit */
	kvd_cluster_update(n[0], &f);
	usleep(600 * 1000);
	kvd_cluster_status(n[0], &st);
	{
		uint64_t before = st.publishes;

		usage = 1ull << 30;
		assert_true(wait_for(n[1], usage_is, &usage, 100) >= 0);	/* unchanged */
		facts(&f, 1, 2ull << 30);
		kvd_cluster_update(n[0], &f);
		usage = 2ull << 30;
		t = wait_for(n[1], usage_is, &usage, 5000);
		assert_true(t >= 0);
		printf("# a change on n1 in n2's view after %lld ms\n", (long long)t);
		kvd_cluster_status(n[0], &st);
		assert_int_equal(st.publishes, before + 1);
	}

	/* An engine that leaves is deleted: n2 drops to one engine. */
	facts(&f, 1, 2ull << 30);
	kvd_cluster_update(n[1], &f);
	w.engines = 1 + 1 + 3;
	assert_true(wait_for(n[0], has, &w, 5000) >= 0);

	/* Garbage under the prefix: ignored, logged, nothing else changes. */
	{
		static char big[6000];
		unsigned int before = log_ignored;

		memset(big, 'x', sizeof(big) - 1);
		assert_int_equal(etcd_put(adm, "/kvaccel/t/nodes/junk", "{bad", 4, 0, NULL), 0);
		assert_int_equal(etcd_put(adm, "/kvaccel/t/engines/n9", "{}", 2, 0, NULL), 0);
		assert_int_equal(etcd_put(adm, "/kvaccel/t/nodes/big", big, sizeof(big) - 1, 0,
					  NULL), 0);
		t = now_ms();
		while (log_ignored < before + 3 * 3 && now_ms() - t < 5000)
			usleep(50 * 1000);
		assert_true(log_ignored >= before + 3 * 3);	/* three lines in each view */
		assert_true(wait_for(n[0], has, &w, 100) >= 0);
		kvd_cluster_status(n[0], &st);
		assert_true(st.ignored >= 3);
		assert_int_equal(etcd_delete(adm, "/kvaccel/t/nodes/junk", false, NULL), 0);
		assert_int_equal(etcd_delete(adm, "/kvaccel/t/engines/n9", false, NULL), 0);
		assert_int_equal(etcd_delete(adm, "/kvaccel/t/nodes/big", false, NULL), 0);
	}

	/* n3 stops its keepalives (a crash): gone from the others' view within its TTL. */
	kvd_cluster_stop(n[2], false);
	w.nodes = 2;
	w.engines = 1 + 1;
	t = wait_for(n[0], has, &w, (TTL + 2) * 1000);
	assert_true(t >= 0);
	printf("# n3 crashed: gone from n1's view after %lld ms (TTL %d s)\n", (long long)t, TTL);
	assert_true(wait_for(n[1], has, &w, 1000) >= 0);

	/* etcd killed: stale, with an age; restarted: published again, in sync. */
	etcdfx_kill(&fx);
	t = wait_for(n[0], is_stale, NULL, 5000);
	assert_true(t >= 0);
	printf("# etcd killed: n1's view stale after %lld ms\n", (long long)t);
	assert_true(wait_for(n[1], is_stale, NULL, 5000) >= 0);
	sleep(TTL + 1);		/* the lease is given up: a new one at restart */
	kvd_cluster_status(n[0], &st);
	assert_true(st.stale);
	assert_true(st.age_ms >= TTL * 1000);
	assert_true(st.error[0]);
	assert_int_equal(etcdfx_start(&fx), 0);
	t = wait_for(n[0], has, &w, 15000);
	assert_true(t >= 0);
	printf("# etcd restarted: n1 in sync and published again after %lld ms\n", (long long)t);
	assert_true(wait_for(n[1], has, &w, 5000) >= 0);
	kvd_cluster_status(n[0], &st);
	assert_true(st.leases >= 2);
	assert_true(st.keepalive_errors >= 1);

	/* A clean stop revokes: n2's keys go at once. */
	t = now_ms();
	kvd_cluster_stop(n[1], true);
	assert_true(now_ms() - t < 3000);
	w.nodes = 1;
	w.engines = 1;
	assert_true(wait_for(n[0], has, &w, 1500) >= 0);
	kvd_cluster_stop(n[0], true);
	nkeys = 0;
	assert_int_equal(etcd_range_prefix(adm, "/kvaccel/", no_secret, &nkeys, &rev_before), 0);
	assert_int_equal(nkeys, 0);
	etcd_free(adm);
}

/* ---- three members ---------------------------------------------------- */

static struct etcdfx mem[3];

/* The index of the members' leader (asked of each running one), or -1. */
static int leader_of(void)
{
	int i;

	for (i = 0; i < 3; i++) {
		const char *eps[] = { mem[i].url };
		struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .timeout_ms = 2000 };
		json_object *req = json_object_new_object(), *resp = NULL, *h, *v;
		char err[128], self[32] = "", leader[32] = "";
		struct etcd *e;

		if (!mem[i].pid) {
			json_object_put(req);
			continue;
		}
		e = etcd_new(&o, err, sizeof(err));
		if (!etcd_call(e, "/v3/maintenance/status", req, &resp)) {
			if (json_object_object_get_ex(resp, "header", &h) &&
			    json_object_object_get_ex(h, "member_id", &v))
				snprintf(self, sizeof(self), "%s", json_object_get_string(v));
			if (json_object_object_get_ex(resp, "leader", &v))
				snprintf(leader, sizeof(leader), "%s", json_object_get_string(v));
		}
		json_object_put(resp);
		json_object_put(req);
		etcd_free(e);
		if (!self[0] || !leader[0])
			continue;
		if (!strcmp(self, leader))
			return i;
	}
	return -1;
}

static bool all_stale(struct kvd_cluster **n)
{
	struct kvd_cluster_status st;
	int i;

	for (i = 0; i < 3; i++) {
		kvd_cluster_status(n[i], &st);
		if (!st.stale)
			return false;
	}
	return true;
}

static int count_nodes(const struct etcd_kv *kv, void *arg)
{
	unsigned int *c = arg;

	*c += strstr(kv->key, "/nodes/") != NULL;
	return 0;
}

static void three_members(void **state)
{
	struct kvd_cluster_config cc;
	struct kvd_cluster *n[3];
	struct kvd_cluster_facts f;
	struct want w = { .nodes = 3, .engines = 3, .fresh = true };
	char err[200];
	uint64_t usage;
	int64_t t, t0;
	int i, l, other;

	(void)state;
	if (!have_etcd) {
		skip();
		return;
	}
	assert_int_equal(etcdfx_start_members(mem, 3), 0);
	for (i = 0; i < 3; i++) {
		char name[8];
		int k;

		snprintf(name, sizeof(name), "n%d", i + 1);
		config(&cc, name, mem[i].url);
		snprintf(cc.name, sizeof(cc.name), "t3");
		/* Its own member first, then the others. */
		for (k = 0; k < 3; k++)
			snprintf(cc.endpoints[k], sizeof(cc.endpoints[k]), "%s", mem[(i + k) % 3].url);
		cc.n_endpoints = 3;
		cc.user[0] = cc.password[0] = 0;
		n[i] = kvd_cluster_start(&cc, test_log, err, sizeof(err));
		assert_non_null(n[i]);
		facts(&f, 1, 1ull << 30);
		kvd_cluster_update(n[i], &f);
	}
	for (i = 0; i < 3; i++)
		assert_true(wait_for(n[i], has, &w, 15000) >= 0);

	/* The leader killed: publishing resumes, even for the node whose member it was. */
	l = leader_of();
	assert_true(l >= 0);
	etcdfx_kill(&mem[l]);
	t0 = now_ms();
	facts(&f, 1, 3ull << 30);
	kvd_cluster_update(n[l], &f);
	usage = 3ull << 30;
	/* usage_is() looks at n1: watch n1's entry from another node when n1 is n[l]. */
	other = (l + 1) % 3;
	if (l != 0) {
		kvd_cluster_update(n[0], &f);
		other = l;
	}
	t = wait_for(n[other], usage_is, &usage, 15000);
	assert_true(t >= 0);
	printf("# leader m%d killed: a publication through the others seen after %lld ms\n",
	       l + 1, (long long)(now_ms() - t0));
	for (i = 0; i < 3; i++)
		assert_true(wait_for(n[i], has, &w, 15000) >= 0);

	/* Quorum lost (one member of three left): every view stale, nothing crashes. */
	etcdfx_kill(&mem[(l + 1) % 3]);
	t0 = now_ms();
	while (!all_stale(n) && now_ms() - t0 < 20000)
		usleep(100 * 1000);
	assert_true(all_stale(n));
	printf("# quorum lost: all three views stale after %lld ms\n", (long long)(now_ms() - t0));

	/* Quorum back: in sync, three nodes, no duplicate, none lost. */
	t0 = now_ms();
	assert_int_equal(etcdfx_start(&mem[l]), 0);
	assert_int_equal(etcdfx_start(&mem[(l + 1) % 3]), 0);
	assert_int_equal(etcdfx_wait_members(mem, 3), 0);
	for (i = 0; i < 3; i++)
		assert_true(wait_for(n[i], has, &w, 30000) >= 0);
	printf("# quorum back: all three in sync and published after %lld ms\n",
	       (long long)(now_ms() - t0));
	{
		const char *eps[] = { mem[0].url, mem[1].url, mem[2].url };
		struct etcd_opts o = { .endpoints = eps, .n_endpoints = 3, .timeout_ms = 2000 };
		struct etcd *e = etcd_new(&o, err, sizeof(err));
		unsigned int count = 0;
		int64_t rev;

		assert_int_equal(etcd_range_prefix(e, "/kvaccel/t3/", count_nodes, &count, &rev), 0);
		assert_int_equal(count, 3);
		etcd_free(e);
	}
	for (i = 0; i < 3; i++)
		kvd_cluster_stop(n[i], true);
	for (i = 0; i < 3; i++)
		etcdfx_stop(&mem[i]);
}

static void etcd_absent_at_start(void **state)
{
	struct kvd_cluster_config cc;
	struct kvd_cluster_facts f;
	struct kvd_cluster_status st;
	struct kvd_cluster *c;
	char url[64], err[200];
	int64_t t;

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", etcdfx_free_port());
	config(&cc, "lonely", url);
	c = kvd_cluster_start(&cc, test_log, err, sizeof(err));
	assert_non_null(c);
	facts(&f, 2, 1 << 20);
	kvd_cluster_update(c, &f);
	usleep(800 * 1000);
	kvd_cluster_status(c, &st);
	assert_true(st.stale);
	assert_false(st.published);
	assert_non_null(strstr(st.error, "127.0.0.1"));
	t = now_ms();
	kvd_cluster_stop(c, true);
	assert_true(now_ms() - t < 2500);
	/* A bad configuration is refused. */
	cc.n_endpoints = 0;
	assert_null(kvd_cluster_start(&cc, test_log, err, sizeof(err)));
	assert_true(err[0] != 0);
}

static int etcdctl(const char *args)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 etcdctl --endpoints=%s %s >/dev/null 2>&1",
		 fx.url, args);
	return system(cmd);
}

static int setup(void **state)
{
	(void)state;
	if (etcd_global_init())
		return -1;
	if (!etcdfx_binary()) {
		printf("# SKIP the three-node tests: no etcd binary (/usr/bin/etcd or $ETCD)\n");
		return 0;
	}
	if (etcdfx_start(&fx))
		return -1;
	have_etcd = true;
	if (!access("/usr/bin/etcdctl", X_OK) &&
	    !etcdctl("user add root --new-user-password=" SECRET) && !etcdctl("auth enable"))
		auth_on = true;
	else
		printf("# no etcdctl: the three nodes run without authentication\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	etcdfx_stop(&fx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(view_keys_and_garbage),
		cmocka_unit_test(change_threshold),
		cmocka_unit_test(pick_a_remote_engine),
		cmocka_unit_test(etcd_absent_at_start),
		cmocka_unit_test(three_nodes),
		cmocka_unit_test(three_members),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
