// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccelctl - rendering (render.h). JSON member names are the attribute
 * names of Documentation/netlink/kvaccel.yaml with '-' as '_' (kvacceld's
 * lists: the field names of uapi/kvacceld.h, built in daemon.c).
 */
#include <inttypes.h>
#include <string.h>

#include "kvacceld.h"
#include "render.h"

enum kv_type { KV_NONE, KV_U8, KV_U32, KV_S32, KV_U64, KV_STR };

static const struct {
	const char *name;
	enum kv_type type;
} kv_attrs[KVACCEL_A_MAX + 1] = {
	[KVACCEL_A_ABI_VERSION] = { "abi_version", KV_U32 },
	[KVACCEL_A_LIMIT] = { "limit", KV_U64 },
	[KVACCEL_A_USAGE] = { "usage", KV_U64 },
	[KVACCEL_A_DEFAULT_QUOTA] = { "default_quota", KV_U64 },
	[KVACCEL_A_HIGH_WM] = { "high_wm", KV_U64 },
	[KVACCEL_A_LOW_WM] = { "low_wm", KV_U64 },
	[KVACCEL_A_PRESSURE] = { "pressure", KV_U8 },
	[KVACCEL_A_PAGES_HELD] = { "pages_held", KV_U64 },
	[KVACCEL_A_REGIONS] = { "regions", KV_U32 },
	[KVACCEL_A_CLIENTS] = { "clients", KV_U32 },
	[KVACCEL_A_COPY_WORKERS] = { "copy_workers", KV_U32 },
	[KVACCEL_A_COPY_JOBS] = { "copy_jobs", KV_U64 },
	[KVACCEL_A_COPY_ERRORS] = { "copy_errors", KV_U64 },
	[KVACCEL_A_CLIENT_ID] = { "client_id", KV_U64 },
	[KVACCEL_A_PID] = { "pid", KV_U32 },
	[KVACCEL_A_UID] = { "uid", KV_U32 },
	[KVACCEL_A_COMM] = { "comm", KV_STR },
	[KVACCEL_A_QUOTA] = { "quota", KV_U64 },
	[KVACCEL_A_REGION_HANDLES] = { "region_handles", KV_U32 },
	[KVACCEL_A_SPACE_HANDLES] = { "space_handles", KV_U32 },
	[KVACCEL_A_IMPORT_HANDLES] = { "import_handles", KV_U32 },
	[KVACCEL_A_COPY_INFLIGHT] = { "copy_inflight", KV_U32 },
	[KVACCEL_A_REGION_ID] = { "region_id", KV_U64 },
	[KVACCEL_A_SIZE] = { "size", KV_U64 },
	[KVACCEL_A_BLOCK_SIZE] = { "block_size", KV_U64 },
	[KVACCEL_A_NODE] = { "node", KV_S32 },
	[KVACCEL_A_BOUND_SLOTS] = { "bound_slots", KV_U32 },
	[KVACCEL_A_EXPORTED] = { "exported", KV_U8 },
	[KVACCEL_A_JOB_ID] = { "job_id", KV_U64 },
	[KVACCEL_A_ERROR] = { "error", KV_S32 },
};

json_object *render_json(const struct kvnl_msg *msg)
{
	json_object *obj = json_object_new_object();
	int a;

	if (!obj)
		return NULL;
	for (a = 0; a <= KVACCEL_A_MAX; a++) {
		json_object *v = NULL;
		uint64_t u64;
		uint32_t u32;
		int32_t s32;
		uint8_t u8;
		const char *s;

		switch (kv_attrs[a].type) {
		case KV_U8:
			if (kvnl_u8(msg, a, &u8))
				v = json_object_new_int(u8);
			break;
		case KV_U32:
			if (kvnl_u32(msg, a, &u32))
				v = json_object_new_int64(u32);
			break;
		case KV_S32:
			if (kvnl_s32(msg, a, &s32))
				v = json_object_new_int(s32);
			break;
		case KV_U64:
			if (kvnl_u64(msg, a, &u64))
				v = json_object_new_uint64(u64);
			break;
		case KV_STR:
			s = kvnl_str(msg, a);
			if (s)
				v = json_object_new_string(s);
			break;
		case KV_NONE:
			break;
		}
		if (v)
			json_object_object_add(obj, kv_attrs[a].name, v);
	}
	return obj;
}

const char *render_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

static uint64_t get_u64(json_object *obj, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(obj, key, &v) ? json_object_get_uint64(v) : 0;
}

static int64_t get_i64(json_object *obj, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(obj, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *get_str(json_object *obj, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(obj, key, &v) ? json_object_get_string(v) : "";
}

static bool get_bool(json_object *obj, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(obj, key, &v) && json_object_get_boolean(v);
}

void render_status(FILE *f, json_object *dev)
{
	uint64_t abi = get_u64(dev, "abi_version"), usage = get_u64(dev, "usage");
	uint64_t limit = get_u64(dev, "limit"), high = get_u64(dev, "high_wm");
	char a[32], b[32];

	fprintf(f, "%-16s %" PRIu64 ".%" PRIu64 "\n", "abi", abi >> 16, abi & 0xffff);
	fprintf(f, "%-16s %s\n", "limit", render_bytes(limit, a, sizeof(a)));
	fprintf(f, "%-16s %s (%.1f%%)\n", "usage", render_bytes(usage, a, sizeof(a)),
		limit ? 100.0 * (double)usage / (double)limit : 0.0);
	if (get_u64(dev, "default_quota"))
		fprintf(f, "%-16s %s\n", "default quota",
			render_bytes(get_u64(dev, "default_quota"), a, sizeof(a)));
	else
		fprintf(f, "%-16s %s\n", "default quota", "none");
	if (high)
		fprintf(f, "%-16s high %s, low %s\n", "watermarks",
			render_bytes(high, a, sizeof(a)),
			render_bytes(get_u64(dev, "low_wm"), b, sizeof(b)));
	else
		fprintf(f, "%-16s %s\n", "watermarks", "off");
	fprintf(f, "%-16s %s\n", "pressure", get_u64(dev, "pressure") ? "yes" : "no");
	fprintf(f, "%-16s %" PRIu64 "\n", "pages held", get_u64(dev, "pages_held"));
	fprintf(f, "%-16s %" PRIu64 "\n", "regions", get_u64(dev, "regions"));
	fprintf(f, "%-16s %" PRIu64 "\n", "clients", get_u64(dev, "clients"));
	fprintf(f, "%-16s %" PRIu64 "\n", "copy workers", get_u64(dev, "copy_workers"));
	fprintf(f, "%-16s %" PRIu64 " (%" PRIu64 " failed)\n", "copy jobs",
		get_u64(dev, "copy_jobs"), get_u64(dev, "copy_errors"));
}

void render_clients(FILE *f, json_object *array)
{
	size_t i, n = json_object_array_length(array);
	char u[32], q[32];

	fprintf(f, "%6s %7s %6s %-16s %10s %10s %7s %7s %6s %7s %8s\n", "ID", "PID",
		"UID", "COMM", "USAGE", "QUOTA", "REGIONS", "R-HNDL", "S-HNDL",
		"I-HNDL", "INFLIGHT");
	for (i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(array, i);
		uint64_t quota = get_u64(c, "quota");

		fprintf(f, "%6" PRIu64 " %7" PRId64 " %6" PRId64 " %-16s %10s %10s %7" PRId64
			" %7" PRId64 " %6" PRId64 " %7" PRId64 " %8" PRId64 "\n",
			get_u64(c, "client_id"), get_i64(c, "pid"), get_i64(c, "uid"),
			get_str(c, "comm"), render_bytes(get_u64(c, "usage"), u, sizeof(u)),
			quota ? render_bytes(quota, q, sizeof(q)) : "none",
			get_i64(c, "regions"), get_i64(c, "region_handles"),
			get_i64(c, "space_handles"), get_i64(c, "import_handles"),
			get_i64(c, "copy_inflight"));
	}
}

void render_regions(FILE *f, json_object *array)
{
	size_t i, n = json_object_array_length(array);
	char s[32], b[32], node[24];

	fprintf(f, "%6s %7s %-16s %10s %10s %5s %6s %8s\n", "ID", "PID", "COMM",
		"SIZE", "BLOCK", "NODE", "BOUND", "EXPORTED");
	for (i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(array, i);
		int64_t nid = get_i64(r, "node");

		if (nid < 0)
			snprintf(node, sizeof(node), "-");
		else
			snprintf(node, sizeof(node), "%" PRId64, nid);
		fprintf(f, "%6" PRIu64 " %7" PRId64 " %-16s %10s %10s %5s %6" PRId64 " %8s\n",
			get_u64(r, "region_id"), get_i64(r, "pid"), get_str(r, "comm"),
			render_bytes(get_u64(r, "size"), s, sizeof(s)),
			render_bytes(get_u64(r, "block_size"), b, sizeof(b)), node,
			get_i64(r, "bound_slots"), get_u64(r, "exported") ? "yes" : "no");
	}
}

void render_engines(FILE *f, json_object *array)
{
	size_t i, n = json_object_array_length(array);
	char u[32], q[32], rel[48];

	fprintf(f, "%-16s %6s %7s %6s %4s %10s %10s %9s\n", "NAME", "ID", "PID", "UID", "PRIO",
		"USAGE", "QUOTA", "RELEASES");
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(array, i);
		uint64_t quota = get_u64(e, "quota");

		snprintf(rel, sizeof(rel), "%" PRIu64 "/%" PRIu64, get_u64(e, "releases_asked"),
			 get_u64(e, "releases_ignored"));
		fprintf(f, "%-16s %6" PRIu64 " %7" PRId64 " %6" PRId64 " %4" PRId64 " %10s %10s %9s\n",
			get_str(e, "name"), get_u64(e, "engine_id"), get_i64(e, "pid"),
			get_i64(e, "uid"), get_i64(e, "priority"),
			render_bytes(get_u64(e, "usage"), u, sizeof(u)),
			quota ? render_bytes(quota, q, sizeof(q)) : "none", rel);
	}
}

void render_handoffs(FILE *f, json_object *array)
{
	size_t i, n = json_object_array_length(array);
	char b[32], age[32];

	fprintf(f, "%6s %-16s %-16s %20s %7s %10s %-7s %9s\n", "ID", "FROM", "TO", "TAG",
		"OBJECTS", "BYTES", "STATE", "AGE");
	for (i = 0; i < n; i++) {
		json_object *h = json_object_array_get_idx(array, i);

		snprintf(age, sizeof(age), "%.1f s", (double)get_u64(h, "age_ms") / 1000);
		fprintf(f, "%6" PRIu64 " %-16s %-16s %20" PRIu64 " %7" PRId64 " %10s %-7s %9s\n",
			get_u64(h, "id"), get_str(h, "from"), get_str(h, "to"), get_u64(h, "tag"),
			get_i64(h, "count"), render_bytes(get_u64(h, "bytes"), b, sizeof(b)),
			get_str(h, "state"), age);
	}
}

void render_migrations(FILE *f, json_object *array)
{
	size_t i, n = json_object_array_length(array);
	char b[32], age[32], down[32], st[32], to[KVD_NODE_MAX + KVD_NAME_MAX + 1];

	fprintf(f, "%6s %-16s %-16s %20s %-8s %-8s %7s %10s %10s %-12s %9s\n", "ID", "FROM",
		"TO", "REQ", "STATE", "REASON", "BLOCKS", "DOWNTIME", "BYTES", "STATUS", "AGE");
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(array, i);
		int64_t status = get_i64(m, "status");

		if (!strcmp(get_str(m, "state"), "draining")) {
			fprintf(f, "%6s %-16s %-16s %20" PRIu64 " %-8s %-8s %7" PRId64
				" %10s %10s %-12s %9s\n", "-", get_str(m, "from"), "-",
				get_u64(m, "req"), "draining", "drain", get_i64(m, "blocks"), "-",
				"-", "-", "-");
			continue;
		}
		snprintf(age, sizeof(age), "%.1f s", (double)get_u64(m, "age_ms") / 1000);
		snprintf(down, sizeof(down), "%.1f ms", (double)get_u64(m, "downtime_us") / 1000);
		snprintf(st, sizeof(st), "%s", status ? strerror((int)-status) : "-");
		snprintf(to, sizeof(to), "%s%s%s", get_str(m, "to_node"),
			 *get_str(m, "to_node") ? "/" : "", get_str(m, "to"));
		fprintf(f, "%6" PRIu64 " %-16s %-16s %20" PRIu64 " %-8s %-8s %7" PRId64
			" %10s %10s %-12.12s %9s\n", get_u64(m, "id"), get_str(m, "from"),
			to, get_u64(m, "req"), get_str(m, "state"),
			get_str(m, "reason"), get_i64(m, "blocks"), down,
			render_bytes(get_u64(m, "bytes_copied"), b, sizeof(b)), st, age);
	}
}

static const char *age_str(int64_t ms, char *buf, size_t len)
{
	if (ms < 0)
		snprintf(buf, len, "never");
	else
		snprintf(buf, len, "%.1f s", (double)ms / 1000);
	return buf;
}

void render_cluster(FILE *f, json_object *view)
{
	json_object *st = NULL, *nodes = NULL, *engines = NULL;
	char a[32], b[32], c[32], age[32];
	size_t i, n;

	json_object_object_get_ex(view, "status", &st);
	json_object_object_get_ex(view, "nodes", &nodes);
	json_object_object_get_ex(view, "engines", &engines);
	if (st) {
		fprintf(f, "cluster %s, node %s: view %s", get_str(st, "cluster"),
			get_str(st, "node"), get_bool(st, "stale") ? "STALE" : "in sync");
		if (get_bool(st, "stale"))
			fprintf(f, " (age %s)", age_str(get_i64(st, "age_ms"), age, sizeof(age)));
		fprintf(f, ", %s, revision %" PRId64 ", via %s\n",
			get_bool(st, "published") ? "published" : "NOT published",
			get_i64(st, "revision"), get_str(st, "endpoint"));
		fprintf(f, "publishes %" PRIu64 ", publish errors %" PRIu64 ", keepalive errors %"
			PRIu64 ", watch restarts %" PRIu64 ", ignored %" PRIu64 "\n",
			get_u64(st, "publishes"), get_u64(st, "publish_errors"),
			get_u64(st, "keepalive_errors"), get_u64(st, "watch_restarts"),
			get_u64(st, "ignored"));
		if (*get_str(st, "error"))
			fprintf(f, "last error: %s\n", get_str(st, "error"));
	}
	fprintf(f, "\n%-20s %10s %10s %10s %-8s %7s %9s  %s\n", "NODE", "CAPACITY", "LIMIT",
		"USAGE", "PRESSURE", "ENGINES", "AGE", "UCX ADDRESS");
	n = nodes ? json_object_array_length(nodes) : 0;
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(nodes, i);
		char name[80];

		snprintf(name, sizeof(name), "%s%s", get_str(m, "node"), get_bool(m, "self") ? "*" : "");
		fprintf(f, "%-20s %10s %10s %10s %-8s %7" PRId64 " %9s  %s\n", name,
			render_bytes(get_u64(m, "capacity"), a, sizeof(a)),
			get_u64(m, "limit") ? render_bytes(get_u64(m, "limit"), b, sizeof(b)) : "-",
			render_bytes(get_u64(m, "usage"), c, sizeof(c)),
			get_bool(m, "pressure") ? "yes" : "no", get_i64(m, "engines"),
			age_str(get_i64(m, "age_ms"), age, sizeof(age)),
			*get_str(m, "ucx_address") ? get_str(m, "ucx_address") : "-");
	}
	fprintf(f, "\n%-20s %-16s %4s %8s %8s %6s %7s %7s %-8s  %s\n", "NODE", "ENGINE", "PRIO",
		"BLOCKS", "FREE", "LOAD", "RUNNING", "WAITING", "DRAINING", "XFER");
	n = engines ? json_object_array_length(engines) : 0;
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(engines, i), *l;
		double load = json_object_object_get_ex(m, "load", &l) ? json_object_get_double(l) : 0;

		fprintf(f, "%-20s %-16s %4" PRId64 " %8" PRId64 " %8" PRId64 " %5.1f%% %7" PRId64
			" %7" PRId64 " %-8s  %s\n", get_str(m, "node"), get_str(m, "name"),
			get_i64(m, "priority"), get_i64(m, "blocks_total"), get_i64(m, "blocks_free"),
			load * 100, get_i64(m, "running"), get_i64(m, "waiting"),
			get_bool(m, "draining") ? "yes" : "no",
			*get_str(m, "xfer") ? get_str(m, "xfer") : "-");
	}
}

void render_event(FILE *f, json_object *event)
{
	json_object_iter it;

	fprintf(f, "%s", get_str(event, "event"));
	json_object_object_foreachC(event, it) {
		if (!strcmp(it.key, "event"))
			continue;
		fprintf(f, " %s=%s", it.key, json_object_get_string(it.val));
	}
	fputc('\n', f);
	fflush(f);
}
