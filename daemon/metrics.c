// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - metrics in the Prometheus text format (version 0.0.4) at
 * http://HOST:PORT/metrics, served by libmicrohttpd's own thread. Each
 * scrape reads the node and the processes from the kernel (its own netlink
 * handle, used only by that thread) and the daemon's engines and counters
 * under kvd.lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "kvd.h"
#include "kvnl.h"

static struct MHD_Daemon *mhd;
static struct kvnl *mnl;	/* the HTTP thread's */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap * 2 + (size_t)n;
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

/* One unlabelled sample with its HELP and TYPE lines. */
static void metric(struct buf *b, const char *name, const char *type, const char *help,
		   uint64_t value)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
	    (unsigned long long)value);
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

static const char *event_names[] = {
	[KVACCEL_CMD_CLIENT_OPEN_NTF] = "client-open",
	[KVACCEL_CMD_CLIENT_CLOSE_NTF] = "client-close",
	[KVACCEL_CMD_REGION_CREATE_NTF] = "region-create",
	[KVACCEL_CMD_REGION_DESTROY_NTF] = "region-destroy",
	[KVACCEL_CMD_PRESSURE_NTF] = "pressure",
	[KVACCEL_CMD_COPY_ERROR_NTF] = "copy-error",
};

static void render(struct kvd *d, struct buf *b)
{
	struct node n = { 0 };
	struct kvd_procs ps = { 0 };
	const struct kvd_conn *c;
	bool kernel = false;
	size_t i;

	if (!mnl && kvnl_open(&mnl))
		mnl = NULL;
	if (mnl && !kvnl_exec(mnl, kvnl_request(mnl, KVACCEL_CMD_DEVICE_GET, false), node_cb, &n) &&
	    !kvd_procs_read(mnl, &ps))
		kernel = true;

	metric(b, "kvaccel_up", "gauge", "Whether the daemon could read the kernel's state.",
	       kernel);
	if (kernel) {
		metric(b, "kvaccel_node_usage_bytes", "gauge", "Bytes all regions of the node hold.",
		       n.usage);
		metric(b, "kvaccel_node_limit_bytes", "gauge", "The node's limit (0: none).", n.limit);
		put(b, "# HELP kvaccel_node_watermark_bytes Pressure watermarks.\n"
		       "# TYPE kvaccel_node_watermark_bytes gauge\n"
		       "kvaccel_node_watermark_bytes{level=\"high\"} %llu\n"
		       "kvaccel_node_watermark_bytes{level=\"low\"} %llu\n",
		    (unsigned long long)n.high_wm, (unsigned long long)n.low_wm);
		metric(b, "kvaccel_node_pressure", "gauge", "1 while usage is above the high "
		       "watermark (until it falls below the low one).", n.pressure);
		metric(b, "kvaccel_node_regions", "gauge", "Regions alive.", n.regions);
		metric(b, "kvaccel_node_clients", "gauge", "Open files of the device.", n.clients);
		metric(b, "kvaccel_copy_jobs_total", "counter", "Copy jobs finished.", n.copy_jobs);
		metric(b, "kvaccel_copy_errors_total", "counter", "Copy jobs that failed.",
		       n.copy_errors);
	}

	pthread_mutex_lock(&d->lock);
	put(b, "# HELP kvaccel_engine_usage_bytes Bytes charged to an engine's process.\n"
	       "# TYPE kvaccel_engine_usage_bytes gauge\n");
	for (c = d->conns; c; c = c->next) {
		const struct kvd_proc *p = kvd_procs_find(&ps, c->pid);
		uint64_t usage = p ? p->usage : 0;

		if (!c->registered)
			continue;
		put(b, "kvaccel_engine_usage_bytes{engine=\"%s\",pid=\"%d\",priority=\"%u\"} %llu\n",
		    c->name, (int)c->pid, c->priority, (unsigned long long)usage);
	}
	put(b, "# HELP kvaccel_engine_quota_bytes An engine's quota (0: none).\n"
	       "# TYPE kvaccel_engine_quota_bytes gauge\n");
	for (c = d->conns; c; c = c->next) {
		const struct kvd_proc *p = kvd_procs_find(&ps, c->pid);
		uint64_t quota = p ? p->quota : c->quota;

		if (!c->registered)
			continue;
		put(b, "kvaccel_engine_quota_bytes{engine=\"%s\",pid=\"%d\",priority=\"%u\"} %llu\n",
		    c->name, (int)c->pid, c->priority, (unsigned long long)quota);
	}
	put(b, "# HELP kvaccel_engine_releases_total Release requests sent to an engine, "
	       "by outcome.\n# TYPE kvaccel_engine_releases_total counter\n");
	for (c = d->conns; c; c = c->next) {
		if (!c->registered)
			continue;
		put(b, "kvaccel_engine_releases_total{engine=\"%s\",outcome=\"asked\"} %llu\n"
		       "kvaccel_engine_releases_total{engine=\"%s\",outcome=\"ignored\"} %llu\n",
		    c->name, (unsigned long long)c->releases_asked,
		    c->name, (unsigned long long)c->releases_ignored);
	}
	put(b, "# HELP kvaccel_events_total Kernel events seen by the daemon.\n"
	       "# TYPE kvaccel_events_total counter\n");
	for (i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++)
		if (event_names[i])
			put(b, "kvaccel_events_total{event=\"%s\"} %llu\n", event_names[i],
			    (unsigned long long)d->events[i]);
	put(b, "# HELP kvaccel_handoffs_total Hand-offs finished, by result.\n"
	       "# TYPE kvaccel_handoffs_total counter\n"
	       "kvaccel_handoffs_total{result=\"done\"} %llu\n"
	       "kvaccel_handoffs_total{result=\"refused\"} %llu\n"
	       "kvaccel_handoffs_total{result=\"timed_out\"} %llu\n",
	    (unsigned long long)d->handoffs_done, (unsigned long long)d->handoffs_failed,
	    (unsigned long long)d->handoffs_timed_out);
	{
		unsigned int inflight = 0, engines = 0;
		const struct kvd_xfer *x;

		for (x = d->xfers; x; x = x->next)
			inflight++;
		for (c = d->conns; c; c = c->next)
			engines += c->registered;
		put(b, "# HELP kvaccel_handoffs_in_flight Hand-offs not yet acknowledged.\n"
		       "# TYPE kvaccel_handoffs_in_flight gauge\nkvaccel_handoffs_in_flight %u\n"
		       "# HELP kvaccel_engines Engines registered.\n"
		       "# TYPE kvaccel_engines gauge\nkvaccel_engines %u\n", inflight, engines);
	}
	put(b, "# HELP kvaccel_pressure_rounds_total Pressure rounds started, and resolved "
	       "(usage back under the low watermark).\n"
	       "# TYPE kvaccel_pressure_rounds_total counter\n"
	       "kvaccel_pressure_rounds_total{outcome=\"started\"} %llu\n"
	       "kvaccel_pressure_rounds_total{outcome=\"resolved\"} %llu\n"
	       "# HELP kvaccel_release_requests_total Release requests, by outcome.\n"
	       "# TYPE kvaccel_release_requests_total counter\n"
	       "kvaccel_release_requests_total{outcome=\"asked\"} %llu\n"
	       "kvaccel_release_requests_total{outcome=\"ignored\"} %llu\n"
	       "# HELP kvaccel_socket_connections_total Connections accepted.\n"
	       "# TYPE kvaccel_socket_connections_total counter\n"
	       "kvaccel_socket_connections_total %llu\n"
	       "# HELP kvaccel_socket_protocol_errors_total Connections closed for a bad message.\n"
	       "# TYPE kvaccel_socket_protocol_errors_total counter\n"
	       "kvaccel_socket_protocol_errors_total %llu\n",
	    (unsigned long long)d->rounds, (unsigned long long)d->rounds_resolved,
	    (unsigned long long)d->releases_asked, (unsigned long long)d->releases_ignored,
	    (unsigned long long)d->conns_total, (unsigned long long)d->protocol_errors);
	pthread_mutex_unlock(&d->lock);
	kvd_procs_free(&ps);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **ctx)
{
	struct MHD_Response *resp;
	struct buf b = { 0 };
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
