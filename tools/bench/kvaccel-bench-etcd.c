// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-etcd - many simulated nodes publishing into one etcd on
 * loopback, as kvacceld's cluster part does (Documentation/kvacceld.rst,
 * "Cluster view"): each node holds a lease kept alive at TTL/3 and puts
 * its node key (the real JSON value) every --interval-ms; a watcher on
 * the prefix measures how long each put takes to arrive. Reports publish
 * latency (the put's round trip), watch-propagation latency, etcd's CPU,
 * and the ratio of the put latency to a baseline measured in the same run:
 * a single-key range (a read through the same gateway) on an idle etcd.
 *
 *   kvaccel-bench-etcd [--nodes N] [--threads T] [--seconds S]
 *                      [--interval-ms I] [--ttl SECONDS]
 *
 * It starts its own etcd (the test fixture: free loopback ports, a data
 * dir under /tmp, killed at exit); $ETCD names another binary.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cluster_view.h"
#include "etcd.h"
#include "etcd_fixture.h"

#define MAX_SAMPLES	(4u << 20)

static struct etcdfx fx;
static unsigned int nnodes = 100, nthreads, seconds = 10, interval_ms = 1000, ttl = 10;
static volatile bool stop, measuring;

struct samples {
	pthread_mutex_t lock;
	uint32_t *us;
	size_t n;
	uint64_t dropped;
};

static struct samples put_lat = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct samples prop_lat = { .lock = PTHREAD_MUTEX_INITIALIZER };
static uint64_t put_errors, ka_errors;

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void add(struct samples *s, int64_t ns)
{
	pthread_mutex_lock(&s->lock);
	if (s->n < MAX_SAMPLES)
		s->us[s->n++] = (uint32_t)(ns / 1000 > UINT32_MAX ? UINT32_MAX : ns / 1000);
	else
		s->dropped++;
	pthread_mutex_unlock(&s->lock);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const struct samples *s, double p)
{
	size_t i;

	if (!s->n)
		return 0;
	i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return s->us[i] / 1000.0;
}

static struct etcd *client(void)
{
	const char *eps[] = { fx.url };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .timeout_ms = 5000,
			       .connect_timeout_ms = 1000 };
	char err[128];
	struct etcd *e = etcd_new(&o, err, sizeof(err));

	if (!e) {
		fprintf(stderr, "kvaccel-bench-etcd: %s\n", err);
		exit(1);
	}
	return e;
}

struct node {
	char key[128];
	int64_t lease, next_put, next_ka;
	struct kvd_cview_node n;
};

struct pub {
	pthread_t t;
	unsigned int first, count;
	struct node *nodes;
};

static void *publisher(void *arg)
{
	struct pub *p = arg;
	struct etcd *e = client();
	struct kvd_cview v;
	unsigned int i;

	kvd_cview_init(&v, "/bench", "c");
	p->nodes = calloc(p->count, sizeof(*p->nodes));
	for (i = 0; i < p->count; i++) {
		struct node *n = &p->nodes[i];
		unsigned int id = p->first + i;
		int64_t granted;

		snprintf(n->n.name, sizeof(n->n.name), "node-%05u", id);
		kvd_cview_node_key(&v, n->n.name, n->key, sizeof(n->key));
		n->n.capacity = 256ull << 30;
		n->n.limit = 64ull << 30;
		snprintf(n->n.ucx_address, sizeof(n->n.ucx_address), "10.%u.%u.1:13337",
			 id / 256, id % 256);
		n->n.engines = 4;
		if (etcd_lease_grant(e, ttl, &n->lease, &granted)) {
			fprintf(stderr, "lease grant: %s\n", etcd_errmsg(e));
			n->lease = 0;
		}
		/* Spread over the interval, as independent daemons would be. */
		n->next_put = mono_ns() + (int64_t)id * interval_ms * 1000000 / nnodes;
		n->next_ka = mono_ns() + (int64_t)ttl * 1000000000 / 3;
	}
	while (!stop) {
		int64_t now = mono_ns(), wake = now + 50 * 1000000;

		for (i = 0; i < p->count && !stop; i++) {
			struct node *n = &p->nodes[i];

			if (n->lease && now >= n->next_ka) {
				if (etcd_lease_keepalive(e, n->lease, NULL))
					__atomic_fetch_add(&ka_errors, 1, __ATOMIC_RELAXED);
				n->next_ka += (int64_t)ttl * 1000000000 / 3;
			}
			if (now >= n->next_put) {
				char *val, *full;
				int64_t t0, t1;
				int ret;

				n->n.usage = (uint64_t)(now % (64ll << 30));
				n->n.updated_ms = now / 1000000;
				val = kvd_cview_encode_node(&n->n);
				t0 = mono_ns();
				if (!val || asprintf(&full, "%.*s,\"bench_ns\":%" PRId64 "}",
						     (int)strlen(val) - 1, val, t0) < 0) {
					free(val);
					continue;
				}
				ret = etcd_put(e, n->key, full, strlen(full), n->lease, NULL);
				t1 = mono_ns();
				free(val);
				free(full);
				if (ret)
					__atomic_fetch_add(&put_errors, 1, __ATOMIC_RELAXED);
				else if (measuring)
					add(&put_lat, t1 - t0);
				n->next_put += (int64_t)interval_ms * 1000000;
				if (n->next_put < t1)
					n->next_put = t1;	/* behind: no burst to catch up */
			}
			if (n->next_put < wake)
				wake = n->next_put;
			if (n->next_ka < wake)
				wake = n->next_ka;
			now = mono_ns();
		}
		if (wake > now) {
			struct timespec ts = { (wake - now) / 1000000000, (wake - now) % 1000000000 };

			nanosleep(&ts, NULL);
		}
	}
	for (i = 0; i < p->count; i++)
		if (p->nodes[i].lease)
			etcd_lease_revoke(e, p->nodes[i].lease);
	free(p->nodes);
	etcd_free(e);
	return NULL;
}

static int on_event(const struct etcd_event *ev, void *arg)
{
	int64_t now = mono_ns();
	json_object *o, *t;

	(void)arg;
	if (ev->type != ETCD_EVENT_PUT || !measuring)
		return 0;
	o = json_tokener_parse(ev->kv.value);
	if (o && json_object_object_get_ex(o, "bench_ns", &t))
		add(&prop_lat, now - json_object_get_int64(t));
	json_object_put(o);
	return 0;
}

static void *watcher(void *arg)
{
	struct etcd *e = client();
	int ret;

	(void)arg;
	ret = etcd_watch(e, "/bench/", 0, NULL, on_event, NULL, &stop, NULL);
	if (ret != -ECANCELED)
		fprintf(stderr, "watch: %s\n", etcd_errmsg(e));
	etcd_free(e);
	return NULL;
}

/* etcd's CPU seconds (user + system) from /proc. */
static double etcd_cpu(void)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)fx.pid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	for (i = 0; p && i < 12; i++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p + 1, "%lu %lu", &ut, &st);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int noop(const struct etcd_kv *kv, void *arg)
{
	(void)kv;
	(void)arg;
	return 0;
}

/* The baseline: a single-key range, 200 times on an idle etcd; its median in ms. */
static double baseline_ms(void)
{
	struct samples s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct etcd *e = client();
	int64_t rev, t0;
	unsigned int i;
	double med;

	s.us = calloc(200, sizeof(*s.us));
	etcd_put(e, "/baseline/k", "v", 1, 0, NULL);
	for (i = 0; i < 220; i++) {
		t0 = mono_ns();
		etcd_range_prefix(e, "/baseline/k", noop, NULL, &rev);
		if (i >= 20)
			s.us[s.n++] = (uint32_t)((mono_ns() - t0) / 1000);
	}
	qsort(s.us, s.n, sizeof(*s.us), cmp_u32);
	med = pct(&s, 0.5);
	free(s.us);
	etcd_free(e);
	return med;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nodes", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "ttl", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct pub *pubs;
	pthread_t w;
	double base, cpu0, cpu1;
	int64_t t0, t1;
	unsigned int i, per;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long v;

		if (c == '?') {
			fprintf(stderr, "usage: kvaccel-bench-etcd [--nodes N] [--threads T] "
				"[--seconds S] [--interval-ms I] [--ttl SECONDS]\n");
			return 2;
		}
		v = strtoul(optarg, NULL, 10);
		if (!v || v > 100000) {
			fprintf(stderr, "kvaccel-bench-etcd: bad value '%s'\n", optarg);
			return 2;
		}
		switch (c) {
		case 'n': nnodes = (unsigned int)v; break;
		case 't': nthreads = (unsigned int)v; break;
		case 's': seconds = (unsigned int)v; break;
		case 'i': interval_ms = (unsigned int)v; break;
		case 'l': ttl = (unsigned int)v; break;
		}
	}
	if (!nthreads)
		nthreads = nnodes < 32 ? nnodes : 32;
	if (nthreads > nnodes)
		nthreads = nnodes;
	if (etcd_global_init() || !etcdfx_binary()) {
		fprintf(stderr, "kvaccel-bench-etcd: SKIP: no etcd binary (/usr/bin/etcd or $ETCD)\n");
		return 77;
	}
	if (etcdfx_start(&fx)) {
		fprintf(stderr, "kvaccel-bench-etcd: etcd did not start\n");
		return 1;
	}
	put_lat.us = calloc(MAX_SAMPLES, sizeof(uint32_t));
	prop_lat.us = calloc(MAX_SAMPLES, sizeof(uint32_t));
	base = baseline_ms();
	pthread_create(&w, NULL, watcher, NULL);
	pubs = calloc(nthreads, sizeof(*pubs));
	per = (nnodes + nthreads - 1) / nthreads;
	for (i = 0; i < nthreads; i++) {
		pubs[i].first = i * per;
		pubs[i].count = pubs[i].first >= nnodes ? 0 :
				nnodes - pubs[i].first < per ? nnodes - pubs[i].first : per;
		pthread_create(&pubs[i].t, NULL, publisher, &pubs[i]);
	}
	/* A second to settle (leases granted, connections made), then measure. */
	sleep(1 + nnodes / 500);
	cpu0 = etcd_cpu();
	t0 = mono_ns();
	measuring = true;
	sleep(seconds);
	measuring = false;
	t1 = mono_ns();
	cpu1 = etcd_cpu();
	stop = true;
	for (i = 0; i < nthreads; i++)
		pthread_join(pubs[i].t, NULL);
	pthread_join(w, NULL);
	qsort(put_lat.us, put_lat.n, sizeof(uint32_t), cmp_u32);
	qsort(prop_lat.us, prop_lat.n, sizeof(uint32_t), cmp_u32);
	printf("nodes %u, publisher threads %u, interval %u ms, lease TTL %u s, %u s measured\n",
	       nnodes, nthreads, interval_ms, ttl, seconds);
	printf("publishes %zu (%.0f/s), errors %" PRIu64 ", keepalive errors %" PRIu64 "\n",
	       put_lat.n, put_lat.n / ((t1 - t0) / 1e9), put_errors, ka_errors);
	printf("baseline (single-key range, idle etcd): median %.3f ms\n", base);
	printf("publish latency ms: p50 %.3f p90 %.3f p99 %.3f max %.3f (p50 %.1fx baseline)\n",
	       pct(&put_lat, 0.5), pct(&put_lat, 0.9), pct(&put_lat, 0.99), pct(&put_lat, 1),
	       base > 0 ? pct(&put_lat, 0.5) / base : 0);
	printf("watch propagation ms: p50 %.3f p90 %.3f p99 %.3f max %.3f (%zu events)\n",
	       pct(&prop_lat, 0.5), pct(&prop_lat, 0.9), pct(&prop_lat, 0.99), pct(&prop_lat, 1),
	       prop_lat.n);
	printf("etcd CPU: %.2f cores (%.2f s over %.1f s)\n", (cpu1 - cpu0) / ((t1 - t0) / 1e9),
	       cpu1 - cpu0, (t1 - t0) / 1e9);
	free(pubs);
	free(put_lat.us);
	free(prop_lat.us);
	etcdfx_stop(&fx);
	return 0;
}
