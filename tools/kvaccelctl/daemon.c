// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccelctl - the node daemon's admin requests (daemon.h). One connection
 * per request, no registration: the header-only list request, then one
 * INFO message per entry and END, or an ERROR. JSON member names are the
 * field names of uapi/kvacceld.h's structures.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "kvdmsg.h"

const char *daemon_socket(const char *opt)
{
	const char *env = getenv("KVACCELD_SOCKET");

	if (opt && *opt)
		return opt;
	return env && *env ? env : KVD_SOCKET_PATH;
}

static int failed(struct daemon_error *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int failed(struct daemon_error *err, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return ret;
}

static int add(json_object *obj, const char *key, json_object *v)
{
	if (!v)
		return -ENOMEM;
	return json_object_object_add(obj, key, v) ? -ENOMEM : 0;
}

static json_object *engine_json(const struct kvd_engine_info *m)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (add(o, "name", json_object_new_string(m->name)) ||
	    add(o, "engine_id", json_object_new_uint64(m->engine_id)) ||
	    add(o, "pid", json_object_new_int64(m->pid)) ||
	    add(o, "uid", json_object_new_int64(m->uid)) ||
	    add(o, "priority", json_object_new_int64(m->priority)) ||
	    add(o, "usage", json_object_new_uint64(m->usage)) ||
	    add(o, "quota", json_object_new_uint64(m->quota)) ||
	    add(o, "releases_asked", json_object_new_uint64(m->releases_asked)) ||
	    add(o, "releases_ignored", json_object_new_uint64(m->releases_ignored))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static json_object *handoff_json(const struct kvd_handoff_info *m)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (add(o, "id", json_object_new_uint64(m->id)) ||
	    add(o, "from", json_object_new_string(m->from)) ||
	    add(o, "to", json_object_new_string(m->to)) ||
	    add(o, "tag", json_object_new_uint64(m->tag)) ||
	    add(o, "count", json_object_new_int64(m->count)) ||
	    add(o, "bytes", json_object_new_uint64(m->bytes)) ||
	    add(o, "state", json_object_new_string(m->state ? "offered" : "waiting")) ||
	    add(o, "age_ms", json_object_new_uint64(m->age_ms))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static const char *const mig_states[] = {
	[KVD_MIG_ASKED] = "asked",
	[KVD_MIG_RUNNING] = "running",
	[KVD_MIG_DONE] = "done",
	[KVD_MIG_FAILED] = "failed",
	[KVD_MIG_ABORTED] = "aborted",
	[KVD_MIG_DRAINING] = "draining",
};

static const char *const mig_reasons[] = {
	[KVD_MIGRATE_MANUAL] = "manual",
	[KVD_MIGRATE_DRAIN] = "drain",
	[KVD_MIGRATE_PRESSURE] = "pressure",
	[KVD_MIGRATE_BALANCE] = "balance",
};

static const char *name_of(const char *const *names, size_t n, uint32_t v)
{
	return v < n && names[v] ? names[v] : "unknown";
}

static json_object *migration_json(const struct kvd_migration_info *m)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (add(o, "id", json_object_new_uint64(m->id)) ||
	    add(o, "req", json_object_new_uint64(m->req)) ||
	    add(o, "from", json_object_new_string(m->from)) ||
	    add(o, "to", json_object_new_string(m->to)) ||
	    add(o, "to_node", json_object_new_string(m->to_node)) ||
	    add(o, "state", json_object_new_string(name_of(mig_states, sizeof(mig_states) /
							    sizeof(mig_states[0]), m->state))) ||
	    add(o, "reason", json_object_new_string(name_of(mig_reasons, sizeof(mig_reasons) /
							     sizeof(mig_reasons[0]), m->reason))) ||
	    add(o, "status", json_object_new_int64(m->status)) ||
	    add(o, "blocks", json_object_new_int64(m->blocks)) ||
	    add(o, "downtime_us", json_object_new_uint64(m->downtime_us)) ||
	    add(o, "total_us", json_object_new_uint64(m->total_us)) ||
	    add(o, "bytes_copied", json_object_new_uint64(m->bytes_copied)) ||
	    add(o, "age_ms", json_object_new_uint64(m->age_ms))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static uint64_t id_of(const json_object *o)
{
	json_object *v;

	if (json_object_object_get_ex(o, "engine_id", &v) ||
	    json_object_object_get_ex(o, "id", &v))
		return json_object_get_uint64(v);
	return 0;
}

/* One entry of the cluster view, with its "kind": status, node or engine. */
static json_object *cluster_json(const struct kvd_cluster_info *m)
{
	json_object *o = json_object_new_object();
	int bad = 0;

	if (!o)
		return NULL;
	if (m->kind == KVD_CLUSTER_STATUS) {
		bad = add(o, "kind", json_object_new_string("status")) ||
		      add(o, "cluster", json_object_new_string(m->cluster)) ||
		      add(o, "node", json_object_new_string(m->node)) ||
		      add(o, "stale", json_object_new_boolean(!!(m->flags & KVD_CLUSTER_STALE))) ||
		      add(o, "published",
			  json_object_new_boolean(!!(m->flags & KVD_CLUSTER_PUBLISHED))) ||
		      add(o, "age_ms", json_object_new_int64(m->age_ms)) ||
		      add(o, "revision", json_object_new_int64(m->revision)) ||
		      add(o, "lease", json_object_new_uint64(m->lease)) ||
		      add(o, "nodes", json_object_new_uint64(m->usage)) ||
		      add(o, "engines", json_object_new_int64(m->engines)) ||
		      add(o, "publishes", json_object_new_uint64(m->publishes)) ||
		      add(o, "publish_errors", json_object_new_uint64(m->publish_errors)) ||
		      add(o, "keepalive_errors", json_object_new_uint64(m->keepalive_errors)) ||
		      add(o, "watch_restarts", json_object_new_uint64(m->watch_restarts)) ||
		      add(o, "ignored", json_object_new_uint64(m->ignored)) ||
		      add(o, "endpoint", json_object_new_string(m->ucx_address)) ||
		      add(o, "error", json_object_new_string(m->error));
	} else if (m->kind == KVD_CLUSTER_NODE) {
		bad = add(o, "kind", json_object_new_string("node")) ||
		      add(o, "node", json_object_new_string(m->node)) ||
		      add(o, "self", json_object_new_boolean(!!(m->flags & KVD_CLUSTER_SELF))) ||
		      add(o, "pressure",
			  json_object_new_boolean(!!(m->flags & KVD_CLUSTER_PRESSURE))) ||
		      add(o, "capacity", json_object_new_uint64(m->capacity)) ||
		      add(o, "limit", json_object_new_uint64(m->limit)) ||
		      add(o, "usage", json_object_new_uint64(m->usage)) ||
		      add(o, "engines", json_object_new_int64(m->engines)) ||
		      add(o, "ucx_address", json_object_new_string(m->ucx_address)) ||
		      add(o, "age_ms", json_object_new_int64(m->age_ms)) ||
		      add(o, "revision", json_object_new_int64(m->revision));
	} else {
		json_object *models = json_object_new_array();
		const char *p = m->models;

		bad = add(o, "models", models);
		while (!bad && *p) {
			size_t n = strcspn(p, ",");
			json_object *s = json_object_new_string_len(p, (int)n);

			bad = !s || json_object_array_add(models, s);
			p += n + (p[n] == ',');
		}
		bad = bad || add(o, "kind", json_object_new_string("engine")) ||
		      add(o, "node", json_object_new_string(m->node)) ||
		      add(o, "name", json_object_new_string(m->name)) ||
		      add(o, "priority", json_object_new_int64(m->priority)) ||
		      add(o, "block_bytes", json_object_new_uint64(m->block_bytes)) ||
		      add(o, "blocks_total", json_object_new_int64(m->blocks_total)) ||
		      add(o, "blocks_free", json_object_new_int64(m->blocks_free)) ||
		      add(o, "running", json_object_new_int64(m->running)) ||
		      add(o, "waiting", json_object_new_int64(m->waiting)) ||
		      add(o, "load", json_object_new_double((double)m->load_ppm / 1e6)) ||
		      add(o, "draining",
			  json_object_new_boolean(!!(m->flags & KVD_CLUSTER_DRAINING))) ||
		      add(o, "xfer", json_object_new_string(m->ucx_address)) ||
		      add(o, "revision", json_object_new_int64(m->revision));
	}
	if (bad) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = id_of(*(json_object *const *)a), y = id_of(*(json_object *const *)b);

	return x < y ? -1 : x > y;
}

static int connect_to(const char *path, struct daemon_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return failed(err, -ENAMETOOLONG, "socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		return failed(err, -e, "socket: %s", strerror(e));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		e = errno;
		close(fd);
		err->connect = true;
		return failed(err, -e, "%s", strerror(e));
	}
	return fd;
}

/*
 * The next reply, checked: its length, or -errno. Ours all carry @seq;
 * the daemon sends nothing else to a connection that has not registered.
 */
static long next_reply(int fd, union kvdmsg_buf *buf, uint64_t seq, struct daemon_error *err)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int fds[KVD_HANDOFF_MAX_FDS];
	unsigned int nfds;
	const char *why;
	long n;
	int ret;

	do {
		ret = poll(&pfd, 1, DAEMON_REPLY_TIMEOUT_MS);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		ret = -errno;
		return failed(err, ret, "poll: %s", strerror(-ret));
	}
	if (!ret)
		return failed(err, -ETIMEDOUT, "no answer from kvacceld in %d s",
			      DAEMON_REPLY_TIMEOUT_MS / 1000);
	n = kvdmsg_recv(fd, buf, fds, &nfds, MSG_DONTWAIT);
	if (n == 0)
		return failed(err, -ECONNRESET, "kvacceld closed the connection");
	if (n == -EMSGSIZE)
		return failed(err, -EMSGSIZE, "a reply from kvacceld was too large");
	if (n < 0)
		return failed(err, (int)n, "receiving: %s", strerror((int)-n));
	ret = kvdmsg_check(buf, (size_t)n, nfds, &why);
	kvdmsg_close_fds(fds, nfds);	/* none in a checked reply */
	if (ret)
		return failed(err, ret, "bad reply from kvacceld: %s", why);
	if (buf->hdr.seq != seq && buf->hdr.type != KVD_MSG_ERROR)
		return failed(err, -EPROTO, "bad reply from kvacceld: not the request's seq");
	return n;
}

/*
 * Send @req (its header filled but for seq) and gather the INFO replies
 * into @array until END (a MIGRATE_REQ's one INFO ends it too).
 */
static int exchange(const char *path, struct kvd_hdr *req, json_object *array,
		    struct daemon_error *err)
{
	unsigned int type = req->type;
	unsigned int want = type == KVD_MSG_LIST_ENGINES ? KVD_MSG_ENGINE_INFO :
			    type == KVD_MSG_LIST_HANDOFFS ? KVD_MSG_HANDOFF_INFO :
			    type == KVD_MSG_LIST_CLUSTER ? KVD_MSG_CLUSTER_INFO :
			    KVD_MSG_MIGRATION_INFO;
	const uint64_t seq = 1;
	union kvdmsg_buf buf;
	long n;
	int fd, ret;

	memset(err, 0, sizeof(*err));
	fd = connect_to(path, err);
	if (fd < 0)
		return fd;
	req->seq = seq;
	ret = kvdmsg_send(fd, req, NULL, 0);
	if (ret) {
		close(fd);
		return failed(err, ret, "sending the request: %s", strerror(-ret));
	}
	for (;;) {
		json_object *obj;

		n = next_reply(fd, &buf, seq, err);
		if (n < 0) {
			ret = (int)n;
			break;
		}
		if (buf.hdr.type == KVD_MSG_END) {
			ret = 0;
			break;
		}
		if (buf.hdr.type == KVD_MSG_ERROR) {
			const struct kvd_error *m = (const void *)&buf;

			/* -errno, checked: anything else is the daemon's mistake. */
			ret = m->error < 0 && m->error >= -4095 ? m->error : -EPROTO;
			err->refused = true;
			failed(err, ret, "%s", m->message[0] ? m->message : strerror(-ret));
			break;
		}
		if (buf.hdr.type != want) {
			ret = failed(err, -EPROTO,
				     "bad reply from kvacceld: unexpected message type %u",
				     (unsigned int)buf.hdr.type);
			break;
		}
		obj = want == KVD_MSG_ENGINE_INFO ? engine_json((const void *)&buf) :
		      want == KVD_MSG_HANDOFF_INFO ? handoff_json((const void *)&buf) :
		      want == KVD_MSG_CLUSTER_INFO ? cluster_json((const void *)&buf) :
		      migration_json((const void *)&buf);
		if (!obj || json_object_array_add(array, obj)) {
			json_object_put(obj);
			ret = failed(err, -ENOMEM, "%s", strerror(ENOMEM));
			break;
		}
		if (type == KVD_MSG_MIGRATE_REQ) {
			ret = 0;
			break;
		}
	}
	close(fd);
	if (!ret && type != KVD_MSG_LIST_CLUSTER)
		json_object_array_sort(array, by_id);
	return ret;
}

static int by_node_name(const void *a, const void *b)
{
	json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b, *v;
	const char *nx = "", *ny = "", *ex = "", *ey = "";
	int r;

	if (json_object_object_get_ex(x, "node", &v))
		nx = json_object_get_string(v);
	if (json_object_object_get_ex(y, "node", &v))
		ny = json_object_get_string(v);
	if (json_object_object_get_ex(x, "name", &v))
		ex = json_object_get_string(v);
	if (json_object_object_get_ex(y, "name", &v))
		ey = json_object_get_string(v);
	r = strcmp(nx, ny);
	return r ? r : strcmp(ex, ey);
}

int daemon_cluster(const char *path, json_object *out, struct daemon_error *err)
{
	json_object *all = json_object_new_array(), *nodes = json_object_new_array();
	json_object *engines = json_object_new_array();
	struct kvd_hdr req;
	size_t i, n;
	int ret = -ENOMEM;

	memset(err, 0, sizeof(*err));
	if (!all || !nodes || !engines ||
	    json_object_object_add(out, "nodes", json_object_get(nodes)) ||
	    json_object_object_add(out, "engines", json_object_get(engines))) {
		failed(err, -ENOMEM, "%s", strerror(ENOMEM));
		goto out;
	}
	kvdmsg_hdr(&req, KVD_MSG_LIST_CLUSTER, sizeof(req), 0);
	ret = exchange(path, &req, all, err);
	if (ret)
		goto out;
	n = json_object_array_length(all);
	for (i = 0; i < n && !ret; i++) {
		json_object *o = json_object_array_get_idx(all, i), *k;
		char kind[8];

		snprintf(kind, sizeof(kind), "%s", json_object_object_get_ex(o, "kind", &k) ?
			 json_object_get_string(k) : "");
		json_object_get(o);
		json_object_object_del(o, "kind");
		if (!strcmp(kind, "status"))
			ret = json_object_object_add(out, "status", o);
		else
			ret = json_object_array_add(!strcmp(kind, "node") ? nodes : engines, o);
		if (ret) {
			json_object_put(o);
			ret = failed(err, -ENOMEM, "%s", strerror(ENOMEM));
		}
	}
	if (!ret && !json_object_object_get_ex(out, "status", NULL))
		ret = failed(err, -EPROTO, "bad reply from kvacceld: no cluster status");
	json_object_array_sort(nodes, by_node_name);
	json_object_array_sort(engines, by_node_name);
out:
	json_object_put(all);
	json_object_put(nodes);
	json_object_put(engines);
	return ret;
}

int daemon_list(const char *path, unsigned int type, json_object *array,
		struct daemon_error *err)
{
	struct kvd_hdr req;

	kvdmsg_hdr(&req, type, sizeof(req), 0);
	return exchange(path, &req, array, err);
}

static int name_arg(char dst[KVD_NAME_MAX], const char *name, struct daemon_error *err)
{
	memset(dst, 0, KVD_NAME_MAX);
	if (strlen(name) >= KVD_NAME_MAX)
		return failed(err, -EINVAL, "engine name too long: %s", name);
	memcpy(dst, name, strlen(name));
	if (!kvdmsg_name_ok(dst))
		return failed(err, -EINVAL, "bad engine name: %s", name);
	return 0;
}

int daemon_migrate(const char *path, const char *engine, uint64_t req, const char *to,
		   json_object *array, struct daemon_error *err)
{
	struct kvd_migrate_req m;

	const char *slash = strchr(to, '/');
	char eng[KVD_NAME_MAX + 1];

	memset(err, 0, sizeof(*err));
	memset(&m, 0, sizeof(m));
	/* NODE/ENGINE: an engine of another node, from the daemon's cluster view. */
	if (slash) {
		if (slash == to || (size_t)(slash - to) >= sizeof(m.to_node))
			return failed(err, -EINVAL, "bad node name in %s", to);
		memcpy(m.to_node, to, slash - to);
		if (!kvdmsg_node_ok(m.to_node))
			return failed(err, -EINVAL, "bad node name in %s", to);
		snprintf(eng, sizeof(eng), "%s", slash + 1);
		to = eng;
	}
	if (name_arg(m.engine, engine, err) || name_arg(m.to, to, err))
		return -EINVAL;
	m.req = req;
	kvdmsg_hdr(&m.hdr, KVD_MSG_MIGRATE_REQ, sizeof(m), 0);
	return exchange(path, &m.hdr, array, err);
}

int daemon_drain(const char *path, const char *engine, bool cancel, struct daemon_error *err)
{
	json_object *none = json_object_new_array();
	struct kvd_drain m;
	int ret;

	memset(err, 0, sizeof(*err));
	memset(&m, 0, sizeof(m));
	if (!none)
		return failed(err, -ENOMEM, "%s", strerror(ENOMEM));
	if (name_arg(m.engine, engine, err)) {
		json_object_put(none);
		return -EINVAL;
	}
	m.flags = cancel ? KVD_DRAIN_CANCEL : 0;
	kvdmsg_hdr(&m.hdr, KVD_MSG_DRAIN, sizeof(m), 0);
	ret = exchange(path, &m.hdr, none, err);
	json_object_put(none);
	return ret;
}
