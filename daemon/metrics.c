// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - metrics in the Prometheus text format (version 0.0.4) at
 * http://HOST:PORT/metrics, served by libmicrohttpd's own thread. Each
 * scrape reads the node and the processes from the kernel (its own netlink
 * handle, used only by that thread) and the daemon's engines and counters
 * under kvd.lock into a snapshot (struct kvd_metrics_snap), which
 * kvd_metrics_render() turns into text without I/O or locks (unit-tested
 * natively: tests/daemon/metrics_unit.c).
 *
 * Conventions (Prometheus's): series are keyed by what outlives a process
 * (an engine's name, never its pid: a restart is not a new series);
 * counters end in _total, sizes in _bytes, times in _seconds; a family's
 * labels partition it (no label value that is the sum or a subset of
 * others: those are families of their own); "no limit" is no sample, not
 * 0; and the standard process_* metrics of the daemon itself.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "kvd.h"
#include "kvnl.h"

static struct MHD_Daemon *mhd;
static struct kvnl *mnl;	/* the HTTP thread's */

static void put(struct kvd_mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct kvd_mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = b->p ? vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap) : 0;
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap * 2 + (size_t)n + 256;
			char *p = realloc(b->p, cap);

			if (!p) {
				b->oom = true;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

/* HELP and TYPE of a family. */
static void family(struct kvd_mbuf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One unlabelled sample with its HELP and TYPE lines. */
static void metric(struct kvd_mbuf *b, const char *name, const char *type, const char *help,
		   uint64_t value)
{
	family(b, name, type, help);
	put(b, "%s %llu\n", name, (unsigned long long)value);
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void put_label(struct kvd_mbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			put(b, "\\\\");
		else if (*v == '"')
			put(b, "\\\"");
		else if (*v == '\n')
			put(b, "\\n");
		else
			put(b, "%c", *v);
	}
}

/* One sample of an engine's family: NAME{engine="..."} VALUE. */
static void engine_sample(struct kvd_mbuf *b, const char *name, const char *engine,
			  uint64_t value)
{
	put(b, "%s{engine=\"", name);
	put_label(b, engine);
	put(b, "\"} %llu\n", (unsigned long long)value);
}

static const char *event_names[] = {
	[KVACCEL_CMD_CLIENT_OPEN_NTF] = "client-open",
	[KVACCEL_CMD_CLIENT_CLOSE_NTF] = "client-close",
	[KVACCEL_CMD_REGION_CREATE_NTF] = "region-create",
	[KVACCEL_CMD_REGION_DESTROY_NTF] = "region-destroy",
	[KVACCEL_CMD_PRESSURE_NTF] = "pressure",
	[KVACCEL_CMD_COPY_ERROR_NTF] = "copy-error",
};

static const char *refusal_names[KVD_REFUSED_MAX] = {
	[KVD_REFUSED_NAME] = "name",
	[KVD_REFUSED_PRIORITY] = "priority",
	[KVD_REFUSED_HANDOFF] = "handoff_not_allowed",
	[KVD_REFUSED_CONNECTIONS] = "user_connections",
	[KVD_REFUSED_HANDOFFS] = "user_handoffs",
	[KVD_REFUSED_FDS] = "user_handoff_fds",
	[KVD_REFUSED_DAEMON_FDS] = "daemon_fds",
};

const uint64_t kvd_mig_downtime_bounds_us[KVD_MIG_DOWNTIME_BUCKETS] = {
	1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000, 30000000,
};

static const char *const mig_reason_names[KVD_MIGRATE_BALANCE + 1] = {
	[KVD_MIGRATE_MANUAL] = "manual",
	[KVD_MIGRATE_DRAIN] = "drain",
	[KVD_MIGRATE_PRESSURE] = "pressure",
	[KVD_MIGRATE_BALANCE] = "balance",
};

static const char *const mig_fail_names[KVD_MIG_FAIL_MAX] = {
	[KVD_MIG_FAIL_REFUSED] = "refused",
	[KVD_MIG_FAIL_FAILED] = "failed",
	[KVD_MIG_FAIL_PEER_GONE] = "aborted_peer_gone",
	[KVD_MIG_FAIL_TIMEOUT] = "aborted_timeout",
};

static void render_migrations(const struct kvd_metrics_snap *s, struct kvd_mbuf *b)
{
	const struct kvd_mig_stats *m = &s->mig;
	uint64_t cum = 0;
	size_t i;

	family(b, "kvaccel_migrations_started_total", "counter",
	       "Live migrations the daemon asked for, by why it chose them.");
	for (i = KVD_MIGRATE_MANUAL; i <= KVD_MIGRATE_BALANCE; i++)
		put(b, "kvaccel_migrations_started_total{reason=\"%s\"} %llu\n",
		    mig_reason_names[i], (unsigned long long)m->started[i]);
	metric(b, "kvaccel_migrations_succeeded_total", "counter",
	       "Live migrations over with the destination running the request.", m->succeeded);
	family(b, "kvaccel_migrations_failed_total", "counter",
	       "Live migrations over without success, by how they ended.");
	for (i = 0; i < KVD_MIG_FAIL_MAX; i++)
		put(b, "kvaccel_migrations_failed_total{reason=\"%s\"} %llu\n", mig_fail_names[i],
		    (unsigned long long)m->failed[i]);
	metric(b, "kvaccel_migrations_in_flight", "gauge", "Live migrations not over yet.",
	       s->migrations_in_flight);
	family(b, "kvaccel_migration_downtime_seconds", "histogram",
	       "How long a successfully migrated request did not decode, as its source said.");
	for (i = 0; i < KVD_MIG_DOWNTIME_BUCKETS; i++) {
		cum += m->downtime_buckets[i];
		put(b, "kvaccel_migration_downtime_seconds_bucket{le=\"%g\"} %llu\n",
		    (double)kvd_mig_downtime_bounds_us[i] / 1e6, (unsigned long long)cum);
	}
	cum += m->downtime_buckets[KVD_MIG_DOWNTIME_BUCKETS];
	put(b, "kvaccel_migration_downtime_seconds_bucket{le=\"+Inf\"} %llu\n"
	       "kvaccel_migration_downtime_seconds_sum %.6f\n"
	       "kvaccel_migration_downtime_seconds_count %llu\n", (unsigned long long)cum,
	    (double)m->downtime_us_sum / 1e6, (unsigned long long)m->downtime_count);
	metric(b, "kvaccel_migration_copied_bytes_total", "counter",
	       "Bytes the engines said they moved or copied for migrations.", m->bytes_copied);
	metric(b, "kvaccel_migration_moved_blocks_total", "counter",
	       "Blocks of successfully migrated requests.", m->blocks_moved);
	metric(b, "kvaccel_engines_draining", "gauge", "Engines being drained.",
	       s->engines_draining);
	metric(b, "kvaccel_drain_exits_total", "counter",
	       "EXIT messages sent to drained engines.", m->exits_sent);
}

/* The cluster view ([cluster] enabled only). */
static void render_cluster(const struct kvd_metrics_snap *s, struct kvd_mbuf *b)
{
	if (!s->cluster)
		return;
	metric(b, "kvaccel_cluster_nodes", "gauge",
	       "Nodes in the cluster view, this one included.", s->cluster_nodes);
	metric(b, "kvaccel_cluster_engines", "gauge", "Engines in the cluster view.",
	       s->cluster_engines);
	metric(b, "kvaccel_cluster_view_stale", "gauge",
	       "1 while the cluster view may be out of date (etcd unreachable or without quorum).",
	       s->cluster_stale);
	/* Never in sync: no sample. */
	if (s->cluster_age_ms >= 0) {
		family(b, "kvaccel_cluster_view_age_seconds", "gauge",
		       "Since the cluster view was last known in sync (0: it is).");
		put(b, "kvaccel_cluster_view_age_seconds %.3f\n", (double)s->cluster_age_ms / 1e3);
	}
	metric(b, "kvaccel_cluster_published", "gauge",
	       "1 while this node's keys are in etcd under a live lease.", s->cluster_published);
	metric(b, "kvaccel_cluster_publishes_total", "counter",
	       "Publications of this node's keys.", s->cluster_publishes);
	metric(b, "kvaccel_cluster_publish_errors_total", "counter",
	       "Publications that failed.", s->cluster_publish_errors);
	metric(b, "kvaccel_cluster_keepalive_errors_total", "counter",
	       "Lease renewals that failed.", s->cluster_keepalive_errors);
	metric(b, "kvaccel_cluster_leases_total", "counter",
	       "Leases granted to this node (more than one: etcd was lost and came back).",
	       s->cluster_leases);
	metric(b, "kvaccel_cluster_watch_restarts_total", "counter",
	       "Watches of the cluster that broke and were made again.", s->cluster_watch_restarts);
	metric(b, "kvaccel_cluster_ignored_total", "counter",
	       "Keys and values under the cluster's prefix ignored as garbage.", s->cluster_ignored);
}

static void render_process(const struct kvd_process_stats *p, struct kvd_mbuf *b)
{
	if (!p->ok)
		return;
	family(b, "process_cpu_seconds_total", "counter",
	       "Total user and system CPU time spent in seconds.");
	put(b, "process_cpu_seconds_total %.2f\n", p->cpu_seconds);
	metric(b, "process_open_fds", "gauge", "Number of open file descriptors.", p->open_fds);
	if (p->max_fds)
		metric(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
		       p->max_fds);
	metric(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
	       p->virtual_bytes);
	metric(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
	       p->resident_bytes);
	family(b, "process_start_time_seconds", "gauge",
	       "Start time of the process since unix epoch in seconds.");
	put(b, "process_start_time_seconds %.2f\n", p->start_time_seconds);
}

void kvd_metrics_render(const struct kvd_metrics_snap *s, struct kvd_mbuf *b)
{
	size_t i;

	metric(b, "kvaccel_up", "gauge", "Whether the daemon could read the kernel's state.",
	       s->kernel);
	if (s->kernel) {
		metric(b, "kvaccel_node_usage_bytes", "gauge", "Bytes all regions of the node hold.",
		       s->usage);
		/* No limit, no watermarks: no sample (0 would read as "nothing allowed"). */
		if (s->limit)
			metric(b, "kvaccel_node_limit_bytes", "gauge",
			       "The node's limit (absent: none).", s->limit);
		if (s->high_wm) {
			metric(b, "kvaccel_node_high_watermark_bytes", "gauge",
			       "Usage above which pressure rounds start (absent: off).", s->high_wm);
			metric(b, "kvaccel_node_low_watermark_bytes", "gauge",
			       "Usage below which pressure ends (absent: off).", s->low_wm);
		}
		metric(b, "kvaccel_node_pressure", "gauge", "1 while usage is above the high "
		       "watermark (until it falls below the low one).", s->pressure);
		metric(b, "kvaccel_node_regions", "gauge", "Regions alive.", s->regions);
		metric(b, "kvaccel_node_clients", "gauge", "Open files of the device.", s->clients);
		metric(b, "kvaccel_copy_jobs_total", "counter", "Copy jobs finished.",
		       s->copy_jobs);
		metric(b, "kvaccel_copy_errors_total", "counter", "Copy jobs that failed.",
		       s->copy_errors);
	}

	family(b, "kvaccel_engine_usage_bytes", "gauge", "Bytes charged to an engine's process.");
	for (i = 0; i < s->nengines; i++)
		engine_sample(b, "kvaccel_engine_usage_bytes", s->engines[i].name,
			      s->engines[i].usage);
	family(b, "kvaccel_engine_quota_bytes", "gauge",
	       "An engine's quota (absent: none, the node's limit applies).");
	for (i = 0; i < s->nengines; i++)
		if (s->engines[i].quota)
			engine_sample(b, "kvaccel_engine_quota_bytes", s->engines[i].name,
				      s->engines[i].quota);
	family(b, "kvaccel_engine_priority", "gauge",
	       "An engine's priority class (0 is released first).");
	for (i = 0; i < s->nengines; i++)
		engine_sample(b, "kvaccel_engine_priority", s->engines[i].name,
			      s->engines[i].priority);
	family(b, "kvaccel_engine_release_requests_total", "counter",
	       "Release requests sent to an engine (since it registered).");
	for (i = 0; i < s->nengines; i++)
		engine_sample(b, "kvaccel_engine_release_requests_total", s->engines[i].name,
			      s->engines[i].releases_asked);
	family(b, "kvaccel_engine_release_requests_ignored_total", "counter",
	       "Release requests an engine let pass their deadline (since it registered).");
	for (i = 0; i < s->nengines; i++)
		engine_sample(b, "kvaccel_engine_release_requests_ignored_total",
			      s->engines[i].name, s->engines[i].releases_ignored);

	family(b, "kvaccel_events_total", "counter", "Kernel events seen by the daemon.");
	for (i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++)
		if (event_names[i])
			put(b, "kvaccel_events_total{event=\"%s\"} %llu\n", event_names[i],
			    (unsigned long long)s->events[i]);
	family(b, "kvaccel_handoffs_total", "counter", "Hand-offs finished, by result.");
	put(b, "kvaccel_handoffs_total{result=\"done\"} %llu\n"
	       "kvaccel_handoffs_total{result=\"refused\"} %llu\n"
	       "kvaccel_handoffs_total{result=\"timed_out\"} %llu\n",
	    (unsigned long long)s->handoffs_done, (unsigned long long)s->handoffs_failed,
	    (unsigned long long)s->handoffs_timed_out);
	metric(b, "kvaccel_handoffs_in_flight", "gauge", "Hand-offs not yet acknowledged.",
	       s->handoffs_in_flight);
	metric(b, "kvaccel_handoff_fds_held", "gauge",
	       "Fds of hand-offs in flight that the daemon holds.", s->held_fds);
	metric(b, "kvaccel_engines", "gauge", "Engines registered.", s->nengines);
	metric(b, "kvaccel_users", "gauge",
	       "Users with connections or hand-offs held by the daemon.", s->users);
	metric(b, "kvaccel_pressure_rounds_total", "counter", "Pressure rounds started.",
	       s->rounds);
	metric(b, "kvaccel_pressure_rounds_resolved_total", "counter",
	       "Pressure rounds that ended with usage back under the low watermark.",
	       s->rounds_resolved);
	metric(b, "kvaccel_release_requests_total", "counter", "Release requests sent.",
	       s->releases_asked);
	metric(b, "kvaccel_release_requests_ignored_total", "counter",
	       "Release requests that passed their deadline unanswered.", s->releases_ignored);
	metric(b, "kvaccel_socket_connections_total", "counter", "Connections accepted.",
	       s->conns_total);
	metric(b, "kvaccel_socket_protocol_errors_total", "counter",
	       "Connections closed for a bad message.", s->protocol_errors);
	family(b, "kvaccel_socket_refused_total", "counter",
	       "Requests and connections refused by the [tenants] rules and maxima, by reason.");
	for (i = 0; i < KVD_REFUSED_MAX; i++)
		put(b, "kvaccel_socket_refused_total{reason=\"%s\"} %llu\n", refusal_names[i],
		    (unsigned long long)s->refused[i]);
	render_migrations(s, b);
	render_cluster(s, b);
	render_process(&s->proc, b);
}

void kvd_process_stats(struct kvd_process_stats *p)
{
	char buf[1024], *rp;
	unsigned long long utime, stime, start, vsize;
	long long rss;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	double btime = 0;
	struct rlimit rl;
	FILE *f;
	DIR *dir;

	memset(p, 0, sizeof(*p));
	f = fopen("/proc/self/stat", "re");
	if (!f)
		return;
	rp = fgets(buf, sizeof(buf), f);
	fclose(f);
	/* After the command's closing parenthesis: field 3 (state) onwards. */
	rp = rp ? strrchr(buf, ')') : NULL;
	if (!rp || sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
			  "%*d %*d %*d %*d %*d %*d %llu %llu %lld", &utime, &stime, &start,
			  &vsize, &rss) != 5 || tck <= 0)
		return;
	f = fopen("/proc/stat", "re");
	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %lf", &btime) == 1)
			break;
	if (f)
		fclose(f);
	p->cpu_seconds = (double)(utime + stime) / (double)tck;
	p->start_time_seconds = btime + (double)start / (double)tck;
	p->virtual_bytes = vsize;
	p->resident_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	dir = opendir("/proc/self/fd");
	if (dir) {
		struct dirent *e;

		while ((e = readdir(dir)))
			p->open_fds += e->d_name[0] != '.';
		closedir(dir);
		p->open_fds--;	/* the directory's own */
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY)
		p->max_fds = rl.rlim_cur;
	p->ok = true;
}

struct node {
	uint64_t limit, usage, high_wm, low_wm, pages, regions, clients;
	uint64_t copy_jobs, copy_errors;
	uint8_t pressure;
};

static int node_cb(const struct kvnl_msg *m, void *arg)
{
	struct node *n = arg;
	uint32_t v;

	kvnl_u64(m, KVACCEL_A_LIMIT, &n->limit);
	kvnl_u64(m, KVACCEL_A_USAGE, &n->usage);
	kvnl_u64(m, KVACCEL_A_HIGH_WM, &n->high_wm);
	kvnl_u64(m, KVACCEL_A_LOW_WM, &n->low_wm);
	kvnl_u64(m, KVACCEL_A_PAGES_HELD, &n->pages);
	if (kvnl_u32(m, KVACCEL_A_REGIONS, &v))
		n->regions = v;
	if (kvnl_u32(m, KVACCEL_A_CLIENTS, &v))
		n->clients = v;
	kvnl_u64(m, KVACCEL_A_COPY_JOBS, &n->copy_jobs);
	kvnl_u64(m, KVACCEL_A_COPY_ERRORS, &n->copy_errors);
	kvnl_u8(m, KVACCEL_A_PRESSURE, &n->pressure);
	return 0;
}

/* The kernel's and the daemon's state, for one scrape. */
static int snapshot(struct kvd *d, struct kvd_metrics_snap *s)
{
	struct node n = { 0 };
	struct kvd_procs ps = { 0 };
	const struct kvd_conn *c;
	const struct kvd_xfer *x;
	const struct kvd_user *u;
	size_t cap = 0;

	memset(s, 0, sizeof(*s));
	if (!mnl && kvnl_open(&mnl))
		mnl = NULL;
	if (mnl && !kvnl_exec(mnl, kvnl_request(mnl, KVACCEL_CMD_DEVICE_GET, false), node_cb, &n) &&
	    !kvd_procs_read(mnl, &ps))
		s->kernel = true;
	s->limit = n.limit;
	s->usage = n.usage;
	s->high_wm = n.high_wm;
	s->low_wm = n.low_wm;
	s->regions = n.regions;
	s->clients = n.clients;
	s->copy_jobs = n.copy_jobs;
	s->copy_errors = n.copy_errors;
	s->pressure = n.pressure;
	kvd_process_stats(&s->proc);

	pthread_mutex_lock(&d->lock);
	for (c = d->conns; c; c = c->next)
		cap += c->registered;
	s->engines = calloc(cap ? cap : 1, sizeof(*s->engines));
	if (!s->engines) {
		pthread_mutex_unlock(&d->lock);
		kvd_procs_free(&ps);
		return -ENOMEM;
	}
	for (c = d->conns; c; c = c->next) {
		const struct kvd_proc *p = kvd_procs_find(&ps, c->pid);
		struct kvd_metrics_engine *e;

		if (!c->registered || s->nengines == cap)
			continue;
		e = &s->engines[s->nengines++];
		memcpy(e->name, c->name, sizeof(e->name));
		e->priority = c->priority;
		e->usage = p ? p->usage : 0;
		e->quota = p ? p->quota : c->quota;
		e->releases_asked = c->releases_asked;
		e->releases_ignored = c->releases_ignored;
		e->draining = c->draining;
		s->engines_draining += c->draining;
	}
	memcpy(s->events, d->events, sizeof(s->events));
	s->handoffs_done = d->handoffs_done;
	s->handoffs_failed = d->handoffs_failed;
	s->handoffs_timed_out = d->handoffs_timed_out;
	for (x = d->xfers; x; x = x->next)
		s->handoffs_in_flight++;
	for (u = d->users; u; u = u->next)
		s->users++;
	s->held_fds = d->held_fds;
	s->rounds = d->rounds;
	s->rounds_resolved = d->rounds_resolved;
	s->releases_asked = d->releases_asked;
	s->releases_ignored = d->releases_ignored;
	s->conns_total = d->conns_total;
	s->protocol_errors = d->protocol_errors;
	memcpy(s->refused, d->refused, sizeof(s->refused));
	s->mig = d->mig;
	if (d->cluster) {
		struct kvd_cluster_snap cs;

		/* The part's own lock, never held while it takes kvd.lock. */
		if (!kvd_cluster_snapshot(d->cluster, &cs)) {
			s->cluster = true;
			s->cluster_stale = cs.st.stale;
			s->cluster_published = cs.st.published;
			s->cluster_age_ms = cs.st.age_ms;
			s->cluster_nodes = cs.nnodes;
			s->cluster_engines = cs.nengines;
			s->cluster_publishes = cs.st.publishes;
			s->cluster_publish_errors = cs.st.publish_errors;
			s->cluster_keepalive_errors = cs.st.keepalive_errors;
			s->cluster_leases = cs.st.leases;
			s->cluster_watch_restarts = cs.st.watch_restarts;
			s->cluster_ignored = cs.st.ignored;
			kvd_cluster_snap_free(&cs);
		}
	}
	{
		const struct kvd_mig *g;

		for (g = d->migs; g; g = g->next)
			s->migrations_in_flight++;
	}
	pthread_mutex_unlock(&d->lock);
	kvd_procs_free(&ps);
	return 0;
}

static void render(struct kvd *d, struct kvd_mbuf *b)
{
	struct kvd_metrics_snap s;

	if (snapshot(d, &s)) {
		b->oom = true;
		return;
	}
	kvd_metrics_render(&s, b);
	free(s.engines);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **ctx)
{
	struct MHD_Response *resp;
	struct kvd_mbuf b = { 0 };
	enum MHD_Result ret;
	unsigned int status = MHD_HTTP_OK;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)ctx;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		b.p = strdup("only GET\n");
	} else if (strcmp(url, "/metrics")) {
		status = MHD_HTTP_NOT_FOUND;
		b.p = strdup("metrics are at /metrics\n");
	} else {
		b.cap = 8192;
		b.p = malloc(b.cap);
		if (b.p)
			render(cls, &b);
		if (b.oom) {
			free(b.p);
			b.p = NULL;
		}
	}
	if (!b.p)
		return MHD_NO;
	if (status != MHD_HTTP_OK)
		b.len = strlen(b.p);
	resp = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(b.p);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", status == MHD_HTTP_OK ?
				"text/plain; version=0.0.4; charset=utf-8" : "text/plain");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int kvd_metrics_start(struct kvd *d)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *spec = d->cfg->metrics;
	char host[64];
	const char *colon;

	if (!strcmp(spec, "off"))
		return 0;
	colon = strrchr(spec, ':');
	snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		kvd_log(LOG_ERR, "metrics: '%s' is not an IPv4 address", host);
		return -EINVAL;
	}
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
			       0, NULL, NULL, handle, d,
			       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			       MHD_OPTION_CONNECTION_LIMIT, 32u,
			       MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!mhd) {
		kvd_log(LOG_ERR, "metrics: cannot listen on %s", spec);
		return -EADDRINUSE;
	}
	kvd_log(LOG_INFO, "metrics on http://%s/metrics", spec);
	return 0;
}

void kvd_metrics_stop(void)
{
	if (mhd)
		MHD_stop_daemon(mhd);
	mhd = NULL;
	if (mnl)
		kvnl_close(mnl);
	mnl = NULL;
}
