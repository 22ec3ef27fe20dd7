// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld's etcd gateway client (daemon/etcd*.c), natively: against a
 * real etcd started on free loopback ports (SKIP without one), and against
 * a fake gateway in a thread that answers each request with the next of a
 * script of raw HTTP responses (malformed ones: bad JSON, wrong types,
 * missing fields, bad base64, oversized, a truncated stream, HTTP 500, a
 * slow server). Each must give a clear error, no crash and no leak
 * (ASan/UBSan).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "etcd_int.h"
#include "etcd_fixture.h"

static struct etcdfx fx;
static bool have_etcd;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct etcd *client_of(const char *url, unsigned int timeout_ms)
{
	const char *eps[] = { url };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .timeout_ms = timeout_ms };
	char err[128];
	struct etcd *e = etcd_new(&o, err, sizeof(err));

	assert_non_null(e);
	return e;
}

#define NEED_ETCD() do { if (!have_etcd) { skip(); return; } } while (0)

/* ---- the real etcd ---------------------------------------------------- */

struct seen {
	unsigned int n;
	char keys[8][64], values[8][64];
	size_t value_len[8];
	int types[8];
	int64_t lease[8];
};

static int collect(const struct etcd_kv *kv, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8) {
		snprintf(s->keys[s->n], 64, "%s", kv->key);
		memcpy(s->values[s->n], kv->value, kv->value_len < 64 ? kv->value_len : 64);
		s->value_len[s->n] = kv->value_len;
		s->lease[s->n] = kv->lease;
	}
	s->n++;
	return 0;
}

static void real_put_range_delete(void **state)
{
	static const char bin[] = { 'a', 0, (char)0xff, '=', '\n' };
	struct seen s = { 0 };
	struct etcd *e;
	int64_t rev = 0, rev2 = 0, del = 0;

	(void)state;
	NEED_ETCD();
	e = client_of(fx.url, 2000);
	assert_int_equal(etcd_put(e, "/t/a/1", "one", 3, 0, &rev), 0);
	assert_true(rev > 0);
	assert_int_equal(etcd_put(e, "/t/a/2", bin, sizeof(bin), 0, NULL), 0);
	assert_int_equal(etcd_put(e, "/t/a/3", "", 0, 0, NULL), 0);
	assert_int_equal(etcd_put(e, "/t/b", "x", 1, 0, NULL), 0);
	assert_int_equal(etcd_range_prefix(e, "/t/a/", collect, &s, &rev2), 0);
	assert_true(rev2 >= rev + 3);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "/t/a/1");
	assert_memory_equal(s.values[0], "one", 3);
	assert_int_equal(s.value_len[1], sizeof(bin));
	assert_memory_equal(s.values[1], bin, sizeof(bin));
	assert_int_equal(s.value_len[2], 0);
	/* Nothing under a prefix: no "kvs" at all, not an error. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(etcd_range_prefix(e, "/t/none/", collect, &s, &rev2), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(etcd_delete(e, "/t/a/", true, &del), 0);
	assert_int_equal(del, 3);
	assert_int_equal(etcd_delete(e, "/t/b", false, &del), 0);
	assert_int_equal(del, 1);
	assert_int_equal(etcd_range_prefix(e, "/t/", collect, &s, &rev2), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(etcd_put(e, "", "x", 1, 0, NULL), -EINVAL);
	etcd_free(e);
}

static void real_lease_expiry(void **state)
{
	struct seen s = { 0 };
	int64_t id = 0, ttl = 0, left = 0, rev;
	struct etcd *e;
	int64_t t0;

	(void)state;
	NEED_ETCD();
	e = client_of(fx.url, 2000);
	assert_int_equal(etcd_lease_grant(e, 2, &id, &ttl), 0);
	assert_true(id > 0);
	assert_true(ttl >= 2);
	assert_int_equal(etcd_put(e, "/t/l/k", "v", 1, id, NULL), 0);
	assert_int_equal(etcd_lease_keepalive(e, id, &left), 0);
	assert_true(left > 0 && left <= ttl);
	assert_int_equal(etcd_range_prefix(e, "/t/l/", collect, &s, &rev), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.lease[0], id);
	/* No more keepalives: the key goes with the lease within its TTL (+1 s). */
	t0 = now_ms();
	for (;;) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(etcd_range_prefix(e, "/t/l/", collect, &s, &rev), 0);
		if (!s.n)
			break;
		assert_true(now_ms() - t0 < ttl * 1000 + 1500);
		usleep(100 * 1000);
	}
	/* An expired lease's keepalive has no TTL: -ENOENT. */
	assert_int_equal(etcd_lease_keepalive(e, id, &left), -ENOENT);
	assert_non_null(strstr(etcd_errmsg(e), "expired"));
	/* Revoke deletes its keys at once. */
	assert_int_equal(etcd_lease_grant(e, 30, &id, &ttl), 0);
	assert_int_equal(etcd_put(e, "/t/l/r", "v", 1, id, NULL), 0);
	assert_int_equal(etcd_lease_revoke(e, id), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(etcd_range_prefix(e, "/t/l/", collect, &s, &rev), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(etcd_lease_revoke(e, id), -ENOENT);
	/* A put on a lease that is gone is refused. */
	assert_int_equal(etcd_put(e, "/t/l/x", "v", 1, id, NULL), -ENOENT);
	etcd_free(e);
}

struct watcher {
	pthread_t t;
	const char *url;
	int64_t start;
	volatile bool stop;
	volatile bool created;
	int64_t created_rev, compact;
	int ret;
	unsigned int want;		/* stop after this many events (0: never) */
	struct seen s;
};

static void on_created(int64_t rev, void *arg)
{
	struct watcher *w = arg;

	w->created_rev = rev;
	w->created = true;
}

static int on_event(const struct etcd_event *ev, void *arg)
{
	struct watcher *w = arg;

	if (w->s.n < 8)
		w->s.types[w->s.n] = ev->type;
	collect(&ev->kv, &w->s);
	return w->want && w->s.n >= w->want;
}

static void *watch_thread(void *arg)
{
	struct watcher *w = arg;
	struct etcd *e = client_of(w->url, 2000);

	w->ret = etcd_watch(e, "/t/w/", w->start, on_created, on_event, w, &w->stop, &w->compact);
	etcd_free(e);
	return NULL;
}

static void wait_created(struct watcher *w)
{
	int64_t t0 = now_ms();

	while (!w->created && now_ms() - t0 < 5000)
		usleep(10 * 1000);
	assert_true(w->created);
}

static void real_watch(void **state)
{
	struct watcher w = { .url = fx.url, .want = 3 };
	struct etcd *e;
	int64_t t0, rev;

	(void)state;
	NEED_ETCD();
	e = client_of(fx.url, 2000);
	assert_int_equal(pthread_create(&w.t, NULL, watch_thread, &w), 0);
	wait_created(&w);
	assert_int_equal(etcd_put(e, "/t/w/a", "1", 1, 0, NULL), 0);
	assert_int_equal(etcd_put(e, "/t/w/a", "2", 1, 0, NULL), 0);
	assert_int_equal(etcd_put(e, "/t/x", "other prefix", 12, 0, NULL), 0);
	assert_int_equal(etcd_delete(e, "/t/w/a", false, NULL), 0);
	pthread_join(w.t, NULL);
	assert_int_equal(w.ret, -ECANCELED);
	assert_int_equal(w.s.n, 3);
	assert_int_equal(w.s.types[0], ETCD_EVENT_PUT);
	assert_memory_equal(w.s.values[1], "2", 1);
	assert_int_equal(w.s.types[2], ETCD_EVENT_DELETE);
	assert_string_equal(w.s.keys[2], "/t/w/a");

	/* From a past revision: the history replayed. */
	assert_int_equal(etcd_put(e, "/t/w/b", "3", 1, 0, &rev), 0);
	memset(&w, 0, sizeof(w));
	w.url = fx.url;
	w.start = rev;
	w.want = 1;
	assert_int_equal(pthread_create(&w.t, NULL, watch_thread, &w), 0);
	pthread_join(w.t, NULL);
	assert_int_equal(w.ret, -ECANCELED);
	assert_string_equal(w.s.keys[0], "/t/w/b");

	/* Stopped by the flag within about a second. */
	memset(&w, 0, sizeof(w));
	w.url = fx.url;
	assert_int_equal(pthread_create(&w.t, NULL, watch_thread, &w), 0);
	wait_created(&w);
	t0 = now_ms();
	w.stop = true;
	pthread_join(w.t, NULL);
	assert_int_equal(w.ret, -ECANCELED);
	assert_true(now_ms() - t0 < 2500);

	/* From a compacted revision: -ESTALE, and where history starts now. */
	{
		json_object *req = json_object_new_object(), *resp = NULL;
		char r[24];

		snprintf(r, sizeof(r), "%lld", (long long)rev);
		json_object_object_add(req, "revision", json_object_new_string(r));
		assert_int_equal(etcd_call(e, "/v3/kv/compaction", req, &resp), 0);
		json_object_put(req);
		json_object_put(resp);
	}
	memset(&w, 0, sizeof(w));
	w.url = fx.url;
	w.start = rev - 1;
	assert_int_equal(pthread_create(&w.t, NULL, watch_thread, &w), 0);
	pthread_join(w.t, NULL);
	assert_int_equal(w.ret, -ESTALE);
	assert_int_equal(w.compact, rev);
	etcd_delete(e, "/t/", true, NULL);
	etcd_free(e);
}

static void real_rotation(void **state)
{
	char dead[64];
	const char *eps[2] = { dead, fx.url };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 2, .timeout_ms = 2000 };
	char err[128];
	struct etcd *e;

	(void)state;
	NEED_ETCD();
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/", etcdfx_free_port());
	e = etcd_new(&o, err, sizeof(err));
	assert_non_null(e);
	assert_int_equal(etcd_put(e, "/t/r", "x", 1, 0, NULL), 0);
	assert_string_equal(etcd_endpoint(e), fx.url);
	/* The one that answered is tried first from now on. */
	assert_int_equal(etcd_put(e, "/t/r", "y", 1, 0, NULL), 0);
	assert_string_equal(etcd_endpoint(e), fx.url);
	assert_int_equal(etcd_delete(e, "/t/r", false, NULL), 0);
	etcd_free(e);
	/* None answers: the last transport error, said clearly. */
	eps[1] = dead;
	e = etcd_new(&o, err, sizeof(err));
	assert_int_equal(etcd_put(e, "/t/r", "x", 1, 0, NULL), -ECONNREFUSED);
	assert_non_null(strstr(etcd_errmsg(e), "127.0.0.1"));
	etcd_free(e);
}

static int etcdctl(const char *args)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 etcdctl --endpoints=%s %s >/dev/null 2>&1",
		 fx.url, args);
	return system(cmd);
}

static void real_auth(void **state)
{
	const char *eps[] = { fx.url };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .timeout_ms = 2000,
			       .user = "root", .password = "s3cret" };
	char err[128];
	struct etcd *e, *anon;

	(void)state;
	NEED_ETCD();
	if (access("/usr/bin/etcdctl", X_OK)) {
		skip();
		return;
	}
	assert_int_equal(etcdctl("user add root --new-user-password=s3cret"), 0);
	assert_int_equal(etcdctl("auth enable"), 0);
	e = etcd_new(&o, err, sizeof(err));
	assert_int_equal(etcd_put(e, "/t/auth", "x", 1, 0, NULL), 0);
	assert_non_null(e->token);
	/* An expired token is renewed once. */
	free(e->token);
	e->token = strdup("stale.token");
	assert_int_equal(etcd_put(e, "/t/auth", "y", 1, 0, NULL), 0);
	assert_string_not_equal(e->token, "stale.token");
	etcd_free(e);
	o.password = "wrong";
	e = etcd_new(&o, err, sizeof(err));
	assert_int_equal(etcd_put(e, "/t/auth", "x", 1, 0, NULL), -EACCES);
	assert_non_null(strstr(etcd_errmsg(e), "refused"));
	assert_null(strstr(etcd_errmsg(e), "wrong"));	/* never the password */
	etcd_free(e);
	anon = client_of(fx.url, 2000);
	assert_true(etcd_put(anon, "/t/auth", "x", 1, 0, NULL) < 0);
	etcd_free(anon);
	assert_int_equal(etcdctl("--user root:s3cret del /t/auth"), 0);
	assert_int_equal(etcdctl("--user root:s3cret auth disable"), 0);
	assert_int_equal(etcdctl("user delete root"), 0);
}

/* ---- the fake gateway ------------------------------------------------- */

#define FAKE_MAX	8

struct fake {
	int fd, port;
	pthread_t t;
	unsigned int n, next;
	const char *resp[FAKE_MAX];	/* raw: status line, headers, body */
	unsigned int delay_ms[FAKE_MAX];
	char req[FAKE_MAX][2048];	/* what came */
};

static void *fake_thread(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		unsigned int i = f->next;
		char *r = f->req[i < FAKE_MAX ? i : 0];
		size_t got = 0, want = 0;
		int c = accept(f->fd, NULL, NULL);

		if (c < 0)
			return NULL;
		if (i >= f->n) {
			close(c);
			continue;
		}
		/* The request: headers, then Content-Length bytes. */
		for (;;) {
			ssize_t n = read(c, r + got, 2047 - got);
			char *end, *cl;

			if (n <= 0)
				break;
			got += (size_t)n;
			r[got] = 0;
			end = strstr(r, "\r\n\r\n");
			if (!end)
				continue;
			cl = strcasestr(r, "Content-Length:");
			want = (size_t)(end + 4 - r) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
			if (got >= want || got == 2047)
				break;
		}
		if (f->delay_ms[i])
			usleep(f->delay_ms[i] * 1000);
		if (write(c, f->resp[i], strlen(f->resp[i])) < 0)
			perror("# fake gateway: write");
		f->next++;
		shutdown(c, SHUT_WR);
		usleep(20 * 1000);
		close(c);
	}
}

static void fake_start(struct fake *f)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (void *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(f->fd, (void *)&a, &len), 0);
	assert_int_equal(listen(f->fd, 8), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->t, NULL, fake_thread, f), 0);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->fd, SHUT_RDWR);
	close(f->fd);
	pthread_join(f->t, NULL);
}

static char *fake_url(const struct fake *f)
{
	static char u[64];

	snprintf(u, sizeof(u), "http://127.0.0.1:%d", f->port);
	return u;
}

/* An HTTP/1.1 response of @status with @body (Content-Length). */
static const char *http(int status, const char *body)
{
	static char bufs[FAKE_MAX][8192];
	static unsigned int k;
	char *b = bufs[k++ % FAKE_MAX];

	snprintf(b, 8192, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", status, strlen(body), body);
	return b;
}

/* A streamed response (no length: until the connection closes). */
static const char *stream(const char *body)
{
	static char bufs[4][8192];
	static unsigned int k;
	char *b = bufs[k++ % 4];

	snprintf(b, 8192, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Connection: close\r\n\r\n%s", body);
	return b;
}

#define HDR "\"header\":{\"revision\":\"7\"}"

static int one_range(const char *resp, int64_t *rev)
{
	struct fake f = { .n = 1, .resp = { resp } };
	struct seen s = { 0 };
	struct etcd *e;
	int ret;

	fake_start(&f);
	e = client_of(fake_url(&f), 1000);
	ret = etcd_range_prefix(e, "/p/", collect, &s, rev);
	if (ret)
		assert_true(etcd_errmsg(e)[0] != 0);	/* said clearly */
	etcd_free(e);
	fake_stop(&f);
	return ret;
}

static void fake_range_good_and_malformed(void **state)
{
	int64_t rev = 0;

	(void)state;
	/* The gateway's shape, defaults omitted: no create_revision, no value. */
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":[{\"key\":\"L3AveA==\"}],"
					    "\"count\":\"1\"}"), &rev), 0);
	assert_int_equal(rev, 7);
	/* Numbers as JSON integers are accepted too. */
	assert_int_equal(one_range(http(200, "{\"header\":{\"revision\":9}}"), &rev), 0);
	assert_int_equal(rev, 9);
	/* Bad JSON, trailing garbage, not an object. */
	assert_int_equal(one_range(http(200, "{\"header\":"), &rev), -EPROTO);
	assert_int_equal(one_range(http(200, "{" HDR "} x"), &rev), -EPROTO);
	assert_int_equal(one_range(http(200, "[1,2]"), &rev), -EPROTO);
	assert_int_equal(one_range(http(200, ""), &rev), -EPROTO);
	/* Wrong types. */
	assert_int_equal(one_range(http(200, "{\"header\":{\"revision\":true}}"), &rev), -EPROTO);
	assert_int_equal(one_range(http(200, "{\"header\":{\"revision\":\"12x\"}}"), &rev),
			 -EPROTO);
	assert_int_equal(one_range(http(200, "{\"header\":{\"revision\":\"99999999999999999999\"}}"),
				   &rev), -EPROTO);
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":\"x\"}"), &rev), -EPROTO);
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":[{\"key\":5}]}"), &rev), -EPROTO);
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":[7]}"), &rev), -EPROTO);
	/* Missing fields: no header; a kv without a key. */
	assert_int_equal(one_range(http(200, "{}"), &rev), -EPROTO);
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":[{\"value\":\"eA==\"}]}"), &rev),
			 -EPROTO);
	/* Bad base64: alphabet, length, padding, stray bits. */
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":[{\"key\":\"!!!!\"}]}"), &rev),
			 -EPROTO);
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":[{\"key\":\"L3A\"}]}"), &rev),
			 -EPROTO);
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":[{\"key\":\"L3=v\"}]}"), &rev),
			 -EPROTO);
	assert_int_equal(one_range(http(200, "{" HDR ",\"kvs\":[{\"key\":\"AB==\"}]}"), &rev),
			 -EPROTO);
	/* HTTP 500 with a text body; an etcd error with its gRPC code. */
	assert_int_equal(one_range(http(500, "internal error"), &rev), -EIO);
	assert_int_equal(one_range(http(400, "{\"error\":\"etcdserver: mvcc: required revision "
					    "has been compacted\",\"code\":11}"), &rev), -ERANGE);
	assert_int_equal(one_range(http(200, "{\"error\":\"x\",\"code\":\"nope\"}"), &rev), -EIO);
}

static void fake_oversized(void **state)
{
	static char big[6000];
	const char *eps[1];
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .max_response = 1024 };
	struct fake f = { .n = 1 };
	struct seen s = { 0 };
	char err[128];
	struct etcd *e;
	int64_t rev;

	(void)state;
	memset(big, 'A', sizeof(big) - 40);
	memcpy(big, "{" HDR ",\"kvs\":[{\"key\":\"", 37);
	strcpy(big + sizeof(big) - 40, "\"}]}");
	f.resp[0] = http(200, big);
	fake_start(&f);
	eps[0] = fake_url(&f);
	e = etcd_new(&o, err, sizeof(err));
	assert_int_equal(etcd_range_prefix(e, "/p/", collect, &s, &rev), -EFBIG);
	assert_non_null(strstr(etcd_errmsg(e), "1024"));
	etcd_free(e);
	fake_stop(&f);
}

static void fake_slow_server(void **state)
{
	struct fake f = { .n = 1, .delay_ms = { 3000 } };
	struct etcd *e;
	int64_t t0;

	(void)state;
	f.resp[0] = http(200, "{" HDR "}");
	fake_start(&f);
	e = client_of(fake_url(&f), 300);
	t0 = now_ms();
	assert_int_equal(etcd_put(e, "/p/k", "v", 1, 0, NULL), -ETIMEDOUT);
	assert_true(now_ms() - t0 < 1500);
	assert_non_null(strstr(etcd_errmsg(e), "imeout") ? "" : strstr(etcd_errmsg(e), "timed"));
	etcd_free(e);
	fake_stop(&f);
}

static void fake_unavailable_rotates(void **state)
{
	struct fake a = { .n = 1 }, b = { .n = 1 };
	char ua[64], ub[64];
	const char *eps[2] = { ua, ub };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 2 };
	char err[128];
	struct etcd *e;
	int64_t rev = 0;

	(void)state;
	a.resp[0] = http(503, "{\"error\":\"etcdserver: no leader\",\"message\":"
			 "\"etcdserver: no leader\",\"code\":14}");
	b.resp[0] = http(200, "{\"header\":{\"revision\":\"3\"}}");
	fake_start(&a);
	fake_start(&b);
	snprintf(ua, sizeof(ua), "%s", fake_url(&a));
	snprintf(ub, sizeof(ub), "%s", fake_url(&b));
	e = etcd_new(&o, err, sizeof(err));
	assert_int_equal(etcd_put(e, "/p/k", "v", 1, 0, &rev), 0);
	assert_int_equal(rev, 3);
	assert_string_equal(etcd_endpoint(e), ub);
	/* The request itself: base64 key and value, no Expect, JSON. */
	assert_non_null(strstr(b.req[0], "POST /v3/kv/put "));
	assert_non_null(strstr(b.req[0], "\"key\":\"L3Avaw==\""));
	assert_non_null(strstr(b.req[0], "\"value\":\"dg==\""));
	assert_null(strcasestr(b.req[0], "Expect:"));
	etcd_free(e);
	fake_stop(&a);
	fake_stop(&b);
}

static void fake_lease_answers(void **state)
{
	struct fake f = { .n = 6 };
	struct etcd *e;
	int64_t id = 0, ttl = 0;

	(void)state;
	f.resp[0] = http(200, "{" HDR ",\"ID\":\"7587862073127281923\",\"TTL\":\"10\"}");
	f.resp[1] = http(200, "{" HDR ",\"TTL\":\"10\"}");		/* no ID */
	f.resp[2] = stream("{\"result\":{" HDR ",\"ID\":\"42\",\"TTL\":\"9\"}}\n");
	f.resp[3] = stream("{\"result\":{" HDR ",\"ID\":\"42\"}}\n");	/* expired: no TTL */
	f.resp[4] = stream("{\"result\":{" HDR ",\"ID\":\"43\",\"TTL\":\"9\"}}\n"); /* not ours */
	f.resp[5] = stream("{\"result\":");				/* cut */
	fake_start(&f);
	e = client_of(fake_url(&f), 1000);
	assert_int_equal(etcd_lease_grant(e, 10, &id, &ttl), 0);
	assert_true(id == 7587862073127281923LL && ttl == 10);
	assert_int_equal(etcd_lease_grant(e, 10, &id, &ttl), -EPROTO);
	assert_int_equal(etcd_lease_keepalive(e, 42, &ttl), 0);
	assert_int_equal(ttl, 9);
	assert_non_null(strstr(f.req[2], "\"ID\":\"42\""));
	assert_int_equal(etcd_lease_keepalive(e, 42, &ttl), -ENOENT);
	assert_int_equal(etcd_lease_keepalive(e, 42, &ttl), -EPROTO);
	assert_int_equal(etcd_lease_keepalive(e, 42, &ttl), -EPROTO);
	etcd_free(e);
	fake_stop(&f);
}

static int count_event(const struct etcd_event *ev, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8)
		s->types[s->n] = ev->type;
	return collect(&ev->kv, arg);
}

static int one_watch(const char *resp, struct seen *s)
{
	struct fake f = { .n = 1, .resp = { resp } };
	bool stop = false;
	struct etcd *e;
	int64_t compact = 0;
	int ret;

	memset(s, 0, sizeof(*s));
	fake_start(&f);
	e = client_of(fake_url(&f), 1000);
	ret = etcd_watch(e, "/p/", 0, NULL, count_event, s, &stop, &compact);
	assert_true(etcd_errmsg(e)[0] != 0);
	etcd_free(e);
	fake_stop(&f);
	return ret;
}

#define CREATED "{\"result\":{" HDR ",\"created\":true}}\n"

static void fake_watch_streams(void **state)
{
	struct seen s;

	(void)state;
	/* Several messages, split anyhow; a PUT has no "type"; then the stream ends. */
	assert_int_equal(one_watch(stream(CREATED "{\"result\":{" HDR ",\"events\":[{\"kv\":"
				   "{\"key\":\"L3AvYQ==\",\"value\":\"eA==\"}},{\"type\":\"DELETE\","
				   "\"kv\":{\"key\":\"L3AvYQ==\"}}]}}\n{\"result\":{" HDR "}}"),
				   &s), -ECONNRESET);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.types[0], ETCD_EVENT_PUT);
	assert_string_equal(s.keys[0], "/p/a");
	assert_int_equal(s.types[1], ETCD_EVENT_DELETE);
	/* Truncated in a message. */
	assert_int_equal(one_watch(stream(CREATED "{\"result\":{\"header\""), &s), -EPROTO);
	/* Bad JSON in the stream. */
	assert_int_equal(one_watch(stream(CREATED "{\"result\" 5}"), &s), -EPROTO);
	/* Events before created; an unknown type; a bad key. */
	assert_int_equal(one_watch(stream("{\"result\":{" HDR ",\"events\":[]}}"), &s), -EPROTO);
	assert_int_equal(one_watch(stream(CREATED "{\"result\":{" HDR ",\"events\":[{\"type\":"
					  "\"BOOM\",\"kv\":{\"key\":\"L3AvYQ==\"}}]}}"), &s), -EPROTO);
	assert_int_equal(one_watch(stream(CREATED "{\"result\":{" HDR ",\"events\":[{\"kv\":"
					  "{\"key\":\"%%%%\"}}]}}"), &s), -EPROTO);
	/* A stream-level error; canceled with a compaction. */
	assert_int_equal(one_watch(stream("{\"error\":{\"grpc_code\":14,\"http_code\":503,"
					  "\"message\":\"etcdserver: no leader\"}}"), &s), -EAGAIN);
	assert_int_equal(one_watch(stream(CREATED "{\"result\":{" HDR ",\"canceled\":true,"
					  "\"compact_revision\":\"5\"}}"), &s), -ESTALE);
	/* HTTP 500 on the stream. */
	assert_int_equal(one_watch(http(500, "oops"), &s), -EIO);
}

static void fake_auth_token(void **state)
{
	const char *eps[1];
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .user = "u", .password = "pw" };
	struct fake f = { .n = 5 };
	char err[128];
	struct etcd *e;

	(void)state;
	f.resp[0] = http(200, "{" HDR ",\"token\":\"tok1.abc\"}");
	f.resp[1] = http(200, "{" HDR "}");
	f.resp[2] = http(401, "{\"error\":\"etcdserver: invalid auth token\",\"code\":16}");
	f.resp[3] = http(200, "{" HDR ",\"token\":\"tok2.def\"}");
	f.resp[4] = http(200, "{" HDR "}");
	fake_start(&f);
	eps[0] = fake_url(&f);
	e = etcd_new(&o, err, sizeof(err));
	assert_int_equal(etcd_put(e, "/p/k", "v", 1, 0, NULL), 0);
	assert_non_null(strstr(f.req[0], "POST /v3/auth/authenticate "));
	assert_null(strcasestr(f.req[0], "Authorization:"));
	assert_non_null(strstr(f.req[1], "\r\nAuthorization: tok1.abc\r\n"));
	assert_int_equal(etcd_put(e, "/p/k", "v", 1, 0, NULL), 0);
	assert_non_null(strstr(f.req[4], "\r\nAuthorization: tok2.def\r\n"));
	etcd_free(e);
	fake_stop(&f);
}

static void options_checked(void **state)
{
	const char *bad[] = { "ftp://x" }, *good[] = { "http://127.0.0.1:1" };
	struct etcd_opts o = { .endpoints = bad, .n_endpoints = 1 };
	char err[160];

	(void)state;
	assert_null(etcd_new(&o, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "ftp://x"));
	o.endpoints = good;
	o.n_endpoints = 0;
	assert_null(etcd_new(&o, err, sizeof(err)));
	o.n_endpoints = 1;
	o.user = "u";
	assert_null(etcd_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "password"));
	o.user = NULL;
	o.cert = "/c.pem";
	assert_null(etcd_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "key"));
}

static void base64_round_trip(void **state)
{
	unsigned char in[64];
	size_t n, len, i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (n = 0; n < sizeof(in); n++) {
		char *s = etcd_b64_encode(in, n), *out;

		assert_non_null(s);
		assert_int_equal(strlen(s), (n + 2) / 3 * 4);
		assert_int_equal(etcd_b64_decode(s, &out, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(out, in, n);
		assert_int_equal(out[n], 0);
		free(out);
		free(s);
	}
	{
		static const char *const bad[] = { "A", "A===", "====", "AB=C", "AB", "ABC!",
						   "QQ=A", "QR==", "QUI=x", "QUJ=" };
		char *out;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_int_equal(etcd_b64_decode(bad[i], &out, &len), -EPROTO);
			assert_null(out);
		}
	}
}

static int setup_etcd(void **state)
{
	int ret;

	(void)state;
	if (etcd_global_init())
		return -1;
	if (!etcdfx_binary()) {
		printf("# SKIP the real-etcd tests: no etcd binary (/usr/bin/etcd or $ETCD)\n");
		return 0;
	}
	ret = etcdfx_start(&fx);
	if (ret) {
		printf("# etcd did not start: %s\n", strerror(-ret));
		return -1;
	}
	have_etcd = true;
	return 0;
}

static int teardown_etcd(void **state)
{
	(void)state;
	etcdfx_stop(&fx);
	curl_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(base64_round_trip),
		cmocka_unit_test(options_checked),
		cmocka_unit_test(fake_range_good_and_malformed),
		cmocka_unit_test(fake_oversized),
		cmocka_unit_test(fake_slow_server),
		cmocka_unit_test(fake_unavailable_rotates),
		cmocka_unit_test(fake_lease_answers),
		cmocka_unit_test(fake_watch_streams),
		cmocka_unit_test(fake_auth_token),
		cmocka_unit_test(real_put_range_delete),
		cmocka_unit_test(real_lease_expiry),
		cmocka_unit_test(real_watch),
		cmocka_unit_test(real_rotation),
		cmocka_unit_test(real_auth),
	};

	return cmocka_run_group_tests(tests, setup_etcd, teardown_etcd);
}
