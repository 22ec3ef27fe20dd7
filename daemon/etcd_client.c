// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the etcd client's operations (etcd.h): KV put, range and
 * delete, leases, watches, on etcd 3.4's /v3 gateway paths.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_int.h"

int etcd_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) ? -ENOMEM : 0;
}

void etcd_free(struct etcd *e)
{
	unsigned int i;

	if (!e)
		return;
	if (e->curl)
		curl_easy_cleanup(e->curl);
	for (i = 0; i < e->n; i++)
		free(e->endpoints[i]);
	free(e->user);
	if (e->password) {
		explicit_bzero(e->password, strlen(e->password));
		free(e->password);
	}
	free(e->ca);
	free(e->cert);
	free(e->key);
	free(e->token);
	free(e);
}

static int dup_opt(char **dst, const char *s)
{
	if (!s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

struct etcd *etcd_new(const struct etcd_opts *o, char *err, size_t len)
{
	struct etcd *e;
	unsigned int i;

	if (!o->n_endpoints || o->n_endpoints > ETCD_ENDPOINTS_MAX) {
		snprintf(err, len, "etcd: 1 to %d endpoints, not %u", ETCD_ENDPOINTS_MAX,
			 o->n_endpoints);
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < o->n_endpoints; i++) {
		const char *u = o->endpoints[i];

		if ((strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) || strlen(u) > 256 ||
		    strpbrk(u, " \t\r\n")) {
			snprintf(err, len, "etcd: endpoint '%s' is not http://HOST:PORT or "
				 "https://HOST:PORT", u);
			errno = EINVAL;
			return NULL;
		}
	}
	if (!o->user != !o->password || (o->cert && !o->key) || (!o->cert && o->key)) {
		snprintf(err, len, "etcd: %s", !o->user != !o->password ?
			 "user and password go together" : "cert and key go together");
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		goto oom;
	e->curl = curl_easy_init();
	if (!e->curl)
		goto oom;
	for (i = 0; i < o->n_endpoints; i++) {
		size_t n = strlen(o->endpoints[i]);

		e->endpoints[i] = strdup(o->endpoints[i]);
		if (!e->endpoints[i])
			goto oom;
		e->n++;
		/* "http://h:p/" and "http://h:p" are one endpoint. */
		while (n > 8 && e->endpoints[i][n - 1] == '/')
			e->endpoints[i][--n] = 0;
	}
	if (dup_opt(&e->user, o->user) || dup_opt(&e->password, o->password) ||
	    dup_opt(&e->ca, o->ca) || dup_opt(&e->cert, o->cert) || dup_opt(&e->key, o->key))
		goto oom;
	e->timeout_ms = o->timeout_ms ? o->timeout_ms : 1000;
	e->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 300;
	e->max_response = o->max_response ? o->max_response : 4u << 20;
	return e;
oom:
	etcd_free(e);
	snprintf(err, len, "etcd: %s", strerror(ENOMEM));
	errno = ENOMEM;
	return NULL;
}

const char *etcd_errmsg(const struct etcd *e)
{
	return e->errmsg;
}

const char *etcd_endpoint(const struct etcd *e)
{
	return e->endpoints[e->cur];
}

/* Add base64 of @len bytes at @p to @o as @key. */
static int add_bytes(json_object *o, const char *key, const void *p, size_t len)
{
	char *s = etcd_b64_encode(p, len);
	int ret = -ENOMEM;

	if (s && !json_object_object_add(o, key, json_object_new_string(s)))
		ret = 0;
	free(s);
	return ret;
}

static int add_i64(json_object *o, const char *key, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)v);
	return json_object_object_add(o, key, json_object_new_string(s)) ? -ENOMEM : 0;
}

/* The end of the range of keys starting with @p (@len bytes): @p with its last byte + 1. */
static int prefix_end(const char *p, size_t len, char **end, size_t *end_len)
{
	char *s = malloc(len ? len : 1);

	if (!s)
		return -ENOMEM;
	memcpy(s, p, len);
	while (len && (unsigned char)s[len - 1] == 0xff)
		len--;
	if (!len) {
		/* All 0xff: to the end of the keyspace ("\0"). */
		s[0] = 0;
		len = 1;
	} else {
		s[len - 1]++;
	}
	*end = s;
	*end_len = len;
	return 0;
}

/* Call @path with @req (consumed); *@resp to put. */
static int call(struct etcd *e, const char *path, json_object *req, json_object **resp)
{
	int ret;

	if (!req)
		return etcd_fail(e, -ENOMEM, "%s", strerror(ENOMEM));
	ret = etcd_call(e, path, req, resp);
	json_object_put(req);
	return ret;
}

int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
	     int64_t *rev)
{
	json_object *req, *resp = NULL;
	int64_t r = 0;
	int ret;

	if (!*key)
		return etcd_fail(e, -EINVAL, "put: empty key");
	req = json_object_new_object();
	if (req && (add_bytes(req, "key", key, strlen(key)) ||
		    add_bytes(req, "value", value, len) || (lease && add_i64(req, "lease", lease)))) {
		json_object_put(req);
		req = NULL;
	}
	ret = call(e, "/v3/kv/put", req, &resp);
	if (!ret) {
		ret = etcd_json_revision(resp, &r);
		if (ret)
			etcd_fail(e, ret, "put %s: no revision in the answer", key);
		else if (rev)
			*rev = r;
	}
	json_object_put(resp);
	return ret;
}

int etcd_range_prefix(struct etcd *e, const char *prefix, etcd_kv_cb cb, void *arg,
		      int64_t *rev)
{
	json_object *req, *resp = NULL, *kvs;
	size_t end_len, i, n;
	char *end;
	int ret;

	if (!*prefix)
		return etcd_fail(e, -EINVAL, "range: empty prefix");
	ret = prefix_end(prefix, strlen(prefix), &end, &end_len);
	if (ret)
		return etcd_fail(e, ret, "%s", strerror(-ret));
	req = json_object_new_object();
	if (req && (add_bytes(req, "key", prefix, strlen(prefix)) ||
		    add_bytes(req, "range_end", end, end_len))) {
		json_object_put(req);
		req = NULL;
	}
	free(end);
	ret = call(e, "/v3/kv/range", req, &resp);
	if (ret)
		return ret;
	ret = etcd_json_revision(resp, rev);
	if (ret) {
		json_object_put(resp);
		return etcd_fail(e, ret, "range %s: no revision in the answer", prefix);
	}
	if (!json_object_object_get_ex(resp, "kvs", &kvs)) {
		json_object_put(resp);	/* no key: "kvs" is left out */
		return 0;
	}
	if (!json_object_is_type(kvs, json_type_array)) {
		json_object_put(resp);
		return etcd_fail(e, -EPROTO, "range %s: kvs is not an array", prefix);
	}
	n = json_object_array_length(kvs);
	for (i = 0; i < n && !ret; i++) {
		struct etcd_kv kv;
		char *buf;

		ret = etcd_json_kv(json_object_array_get_idx(kvs, i), &kv, &buf);
		if (ret) {
			etcd_fail(e, ret, "range %s: entry %zu is not a key-value", prefix, i);
			break;
		}
		ret = cb(&kv, arg);
		free(buf);
	}
	json_object_put(resp);
	return ret;
}

int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	int64_t n = 0;
	int ret = 0;

	if (!*key) {
		json_object_put(req);
		return etcd_fail(e, -EINVAL, "delete: empty key");
	}
	if (req && add_bytes(req, "key", key, strlen(key)))
		ret = -ENOMEM;
	if (req && !ret && prefix) {
		size_t end_len;
		char *end;

		ret = prefix_end(key, strlen(key), &end, &end_len);
		if (!ret) {
			ret = add_bytes(req, "range_end", end, end_len);
			free(end);
		}
	}
	if (ret) {
		json_object_put(req);
		req = NULL;
	}
	ret = call(e, "/v3/kv/deleterange", req, &resp);
	if (!ret && etcd_json_i64(resp, "deleted", &n))
		ret = etcd_fail(e, -EPROTO, "delete %s: deleted is not a number", key);
	if (!ret && deleted)
		*deleted = n;
	json_object_put(resp);
	return ret;
}

int etcd_lease_grant(struct etcd *e, int64_t ttl, int64_t *id, int64_t *granted)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	int ret;

	if (req && add_i64(req, "TTL", ttl)) {
		json_object_put(req);
		req = NULL;
	}
	ret = call(e, "/v3/lease/grant", req, &resp);
	if (ret)
		return ret;
	if (etcd_json_i64(resp, "ID", id) || etcd_json_i64(resp, "TTL", granted) || *id <= 0 ||
	    *granted <= 0) {
		json_object *m;

		ret = json_object_object_get_ex(resp, "error", &m) &&
		      json_object_is_type(m, json_type_string) ? -EIO : -EPROTO;
		etcd_fail(e, ret, "lease grant: %s", ret == -EIO ? json_object_get_string(m) :
			  "no lease ID or TTL in the answer");
	}
	json_object_put(resp);
	return ret;
}

/* A keepalive's one message: {"result": {"ID", "TTL"}}; no TTL: the lease is gone. */
struct ka {
	int64_t id, ttl;
	bool got;
};

static int on_keepalive(json_object *msg, void *arg)
{
	struct ka *k = arg;
	json_object *r;
	int64_t id;

	if (!json_object_object_get_ex(msg, "result", &r) || !json_object_is_type(r, json_type_object) ||
	    etcd_json_i64(r, "ID", &id) || etcd_json_i64(r, "TTL", &k->ttl) || id != k->id)
		return -EPROTO;
	k->got = true;
	return 1;	/* one answer is all: stop reading */
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl)
{
	json_object *req = json_object_new_object();
	static const bool never;
	struct ka k = { .id = id };
	int ret;

	if (!req || add_i64(req, "ID", id)) {
		json_object_put(req);
		return etcd_fail(e, -ENOMEM, "%s", strerror(ENOMEM));
	}
	/*
	 * A stream whose one request message gets one answer (then etcd ends
	 * it); the unary timeout bounds it like any other call.
	 */
	ret = etcd_stream(e, "/v3/lease/keepalive", req, on_keepalive, &k, &never, e->timeout_ms);
	json_object_put(req);
	if (ret == 1 || (k.got && (ret == -ECONNRESET))) {
		if (ttl)
			*ttl = k.ttl;
		if (k.ttl <= 0)
			return etcd_fail(e, -ENOENT, "lease %llx expired", (unsigned long long)id);
		return 0;
	}
	if (ret == -EPROTO && !k.got && !e->errmsg[0])
		etcd_fail(e, ret, "keepalive: not a lease keepalive answer");
	return ret ? ret : etcd_fail(e, -EPROTO, "keepalive: no answer");
}

int etcd_lease_revoke(struct etcd *e, int64_t id)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	int ret;

	if (req && add_i64(req, "ID", id)) {
		json_object_put(req);
		req = NULL;
	}
	ret = call(e, "/v3/lease/revoke", req, &resp);
	json_object_put(resp);
	return ret;
}

/* ---- watch ------------------------------------------------------------ */

struct watch {
	struct etcd *e;
	etcd_created_cb created;
	etcd_event_cb cb;
	void *arg;
	bool is_created;
	int64_t compact_rev;
};

static int on_watch(json_object *msg, void *arg)
{
	struct watch *w = arg;
	json_object *r, *evs, *m;
	int64_t rev = 0, compact = 0;
	size_t i, n;
	int ret;

	if (!json_object_object_get_ex(msg, "result", &r) || !json_object_is_type(r, json_type_object))
		return etcd_fail(w->e, -EPROTO, "watch: a message without a result");
	if (etcd_json_revision(r, &rev) || etcd_json_i64(r, "compact_revision", &compact))
		return etcd_fail(w->e, -EPROTO, "watch: bad header or compact_revision");
	if (compact) {
		w->compact_rev = compact;
		return etcd_fail(w->e, -ESTALE, "watch: revision compacted (now from %lld)",
				 (long long)compact);
	}
	if (json_object_object_get_ex(r, "canceled", &m) && json_object_get_boolean(m)) {
		json_object *why;

		return etcd_fail(w->e, -ECONNRESET, "watch: canceled by etcd%s%s",
				 json_object_object_get_ex(r, "cancel_reason", &why) ? ": " : "",
				 json_object_object_get_ex(r, "cancel_reason", &why) ?
				 json_object_get_string(why) : "");
	}
	if (json_object_object_get_ex(r, "created", &m)) {
		if (!json_object_is_type(m, json_type_boolean))
			return etcd_fail(w->e, -EPROTO, "watch: created is not a boolean");
		if (json_object_get_boolean(m) && !w->is_created) {
			w->is_created = true;
			if (w->created)
				w->created(rev, w->arg);
		}
	}
	if (!w->is_created)
		return etcd_fail(w->e, -EPROTO, "watch: events before the watch was created");
	if (!json_object_object_get_ex(r, "events", &evs))
		return 0;		/* created, or a progress notification */
	if (!json_object_is_type(evs, json_type_array))
		return etcd_fail(w->e, -EPROTO, "watch: events is not an array");
	n = json_object_array_length(evs);
	for (i = 0; i < n; i++) {
		json_object *ev = json_object_array_get_idx(evs, i), *kv, *t;
		struct etcd_event e = { .revision = rev };
		char *buf;

		if (!json_object_is_type(ev, json_type_object) ||
		    !json_object_object_get_ex(ev, "kv", &kv))
			return etcd_fail(w->e, -EPROTO, "watch: an event without kv");
		if (json_object_object_get_ex(ev, "type", &t)) {
			const char *s = json_object_is_type(t, json_type_string) ?
					json_object_get_string(t) : "";

			if (!strcmp(s, "DELETE") || (json_object_is_type(t, json_type_int) &&
						     json_object_get_int(t) == 1))
				e.type = ETCD_EVENT_DELETE;
			else if (strcmp(s, "PUT") && !(json_object_is_type(t, json_type_int) &&
						      json_object_get_int(t) == 0))
				return etcd_fail(w->e, -EPROTO, "watch: unknown event type");
		}
		ret = etcd_json_kv(kv, &e.kv, &buf);
		if (ret)
			return etcd_fail(w->e, ret, "watch: event %zu: bad key-value", i);
		ret = w->cb(&e, w->arg);
		free(buf);
		if (ret)
			return etcd_fail(w->e, -ECANCELED, "watch: stopped by its callback");
	}
	return 0;
}

int etcd_watch(struct etcd *e, const char *prefix, int64_t start_rev, etcd_created_cb created,
	       etcd_event_cb cb, void *arg, const volatile bool *stop, int64_t *compact_rev)
{
	json_object *req = json_object_new_object(), *c = json_object_new_object();
	struct watch w = { .e = e, .created = created, .cb = cb, .arg = arg };
	size_t end_len;
	char *end = NULL;
	int ret;

	if (!*prefix) {
		json_object_put(req);
		json_object_put(c);
		return etcd_fail(e, -EINVAL, "watch: empty prefix");
	}
	ret = prefix_end(prefix, strlen(prefix), &end, &end_len);
	if (ret || !req || !c || add_bytes(c, "key", prefix, strlen(prefix)) ||
	    add_bytes(c, "range_end", end, end_len) ||
	    (start_rev && add_i64(c, "start_revision", start_rev)) ||
	    json_object_object_add(c, "progress_notify", json_object_new_boolean(1)) ||
	    json_object_object_add(req, "create_request", c)) {
		free(end);
		json_object_put(c);
		json_object_put(req);
		return etcd_fail(e, -ENOMEM, "%s", strerror(ENOMEM));
	}
	free(end);
	ret = etcd_stream(e, "/v3/watch", req, on_watch, &w, stop, 0);
	json_object_put(req);
	if (compact_rev)
		*compact_rev = w.compact_rev;
	return ret;
}
