// SPDX-License-Identifier: MIT
/* The fake server (see fake_server.h): a thread per connection, HTTP/1.1, Connection: close. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fake_server.h"

/* What GET /metrics shows (see fake_server.h). */
struct counters {
	long long ok, computed, recomputed, swaps, recomputes, swapped;
};

struct fake_server {
	struct fake_opts o;
	int fd, stop, live, requests, well_formed, metrics_gets;
	struct counters c;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t idle;
};

struct conn {
	struct fake_server *s;
	int fd;
};

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts))
		;
}

static int put(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/* One piece of the body: a chunk, or plain bytes when the body ends at the close. */
static int piece(struct fake_server *s, int fd, const char *p)
{
	char head[32];
	size_t n = strlen(p);

	if (s->o.close_delimited)
		return put(fd, p, n);
	snprintf(head, sizeof(head), "%zx\r\n", n);
	return put(fd, head, strlen(head)) || put(fd, p, n) || put(fd, "\r\n", 2);
}

static int event(struct fake_server *s, int fd, json_object *o)
{
	char *buf;
	int ret;

	if (asprintf(&buf, "data: %s\n\n", json_object_to_json_string_ext(o,
					  JSON_C_TO_STRING_PLAIN)) < 0)
		return -1;
	ret = piece(s, fd, buf);
	free(buf);
	return ret;
}

static void error_reply(int fd, int status, const char *type)
{
	char body[256], head[256];

	snprintf(body, sizeof(body), "{\"error\":{\"message\":\"fake %d\",\"type\":\"%s\","
		 "\"code\":%d}}", status, type, status);
	snprintf(head, sizeof(head), "HTTP/1.1 %d Fake\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, strlen(body));
	put(fd, head, strlen(head));
	put(fd, body, strlen(body));
}

static uint64_t digest(uint64_t h, int i)
{
	return (h ^ (uint64_t)i) * 0x100000001b3ULL;
}

static json_object *choices(const char *text, const char *finish)
{
	json_object *a = json_object_new_array(), *c = json_object_new_object();

	json_object_object_add(c, "index", json_object_new_int(0));
	json_object_object_add(c, "text", json_object_new_string(text));
	json_object_object_add(c, "finish_reason", finish ? json_object_new_string(finish) : NULL);
	json_object_array_add(a, c);
	return a;
}

/* How a stream goes (the request's client): whole, or one of the faults of fake_server.h. */
enum mode { WHOLE, CUT, SHORT, ABORT, SLOW };

static void stream(struct fake_server *s, int fd, json_object *req, uint64_t h, enum mode m)
{
	json_object *x, *ev, *kv, *ids, *dg, *u;
	int n = 1, prio = 0, i;
	char hex[17], text[2] = "a";
	const char *head = s->o.close_delimited ?
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" :
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

	if (json_object_object_get_ex(req, "max_tokens", &x))
		n = json_object_get_int(x);
	if (json_object_object_get_ex(req, "priority", &x))
		prio = json_object_get_int(x);
	if (put(fd, head, strlen(head)))
		return;
	ids = json_object_new_array();
	dg = json_object_new_array();
	msleep(s->o.ttft_ms);
	for (i = 0; i < n; i++) {
		if (i)
			msleep(m == SLOW && i == s->o.slow_token ? s->o.slow_ms : s->o.tpot_ms);
		if (m == CUT && i == 2)
			goto out;
		if (m == SHORT && i == 2) {
			n = i;
			break;
		}
		if (m == ABORT && i == 2) {
			if (!piece(s, fd, "data: {\"error\":{\"message\":\"fake abort\",\"type\":"
				   "\"server_error\",\"code\":503}}\n\n") &&
			    !piece(s, fd, "data: [DONE]\n\n") && !s->o.close_delimited)
				put(fd, "0\r\n\r\n", 5);
			goto out;
		}
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)digest(h, i));
		ev = json_object_new_object();
		kv = json_object_new_object();
		json_object_object_add(ev, "id", json_object_new_string("cmpl-fake"));
		json_object_object_add(ev, "object", json_object_new_string("text_completion"));
		json_object_object_add(ev, "choices", choices(text, NULL));
		json_object_object_add(kv, "token_id", json_object_new_int('a'));
		json_object_object_add(kv, "digest", json_object_new_string(hex));
		json_object_object_add(ev, "kvaccel", kv);
		json_object_array_add(ids, json_object_new_int('a'));
		json_object_array_add(dg, json_object_new_string(hex));
		if (event(s, fd, ev)) {
			json_object_put(ev);
			goto out;
		}
		json_object_put(ev);
	}
	ev = json_object_new_object();
	kv = json_object_new_object();
	u = json_object_new_object();
	json_object_object_add(ev, "id", json_object_new_string("cmpl-fake"));
	json_object_object_add(ev, "object", json_object_new_string("text_completion"));
	json_object_object_add(ev, "choices", choices("", "length"));
	json_object_object_add(u, "prompt_tokens", json_object_new_int(10));
	json_object_object_add(u, "completion_tokens", json_object_new_int(n));
	json_object_object_add(u, "total_tokens", json_object_new_int(10 + n));
	json_object_object_add(ev, "usage", u);
	json_object_object_add(kv, "token_ids", ids);
	json_object_object_add(kv, "digests", dg);
	ids = dg = NULL;
	json_object_object_add(kv, "ttft_ms", json_object_new_double(s->o.ttft_ms));
	json_object_object_add(kv, "tpot_ms", json_object_new_double(s->o.tpot_ms));
	json_object_object_add(kv, "e2e_ms", json_object_new_double(s->o.ttft_ms +
								     (n - 1) * s->o.tpot_ms));
	json_object_object_add(kv, "queue_ms", json_object_new_double(0));
	json_object_object_add(kv, "preemptions", json_object_new_int(prio));
	json_object_object_add(kv, "recomputed_tokens", json_object_new_int(2 * prio));
	json_object_object_add(ev, "kvaccel", kv);
	if (!event(s, fd, ev) && !piece(s, fd, "data: [DONE]\n\n") && !s->o.close_delimited)
		put(fd, "0\r\n\r\n", 5);
	json_object_put(ev);
out:
	json_object_put(ids);
	json_object_put(dg);
}

static const char plain_reply[] =
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

/* Headers and one token, then nothing for a second. */
static void stall(struct fake_server *s, int fd)
{
	const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n";

	if (!put(fd, head, strlen(head)))
		piece(s, fd, "data: {\"choices\":[{\"index\":0,\"text\":\"a\"}]}\n\n");
	msleep(1000);
}

/* An event that is not JSON, then a proper end. */
static void garbage(struct fake_server *s, int fd)
{
	const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n";

	if (!put(fd, head, strlen(head)) && !piece(s, fd, "data: {not json\n\n") &&
	    !piece(s, fd, "data: [DONE]\n\n"))
		put(fd, "0\r\n\r\n", 5);
}

static void metrics(struct fake_server *s, int fd)
{
	static const char *const head[2] = {
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		"Connection: close\r\n\r\n",
	};
	struct counters c;
	char *buf = NULL, save;
	size_t len = 0, off, n;
	FILE *f;
	int i;

	pthread_mutex_lock(&s->lock);
	s->metrics_gets++;
	c = s->c;
	pthread_mutex_unlock(&s->lock);
	if (s->o.no_metrics) {
		error_reply(fd, 404, "not_found");
		return;
	}
	f = open_memstream(&buf, &len);
	if (!f)
		return;
	fprintf(f, "# HELP kvaccel_fake_pad Padding.\n# TYPE kvaccel_fake_pad gauge\n");
	for (i = 0; i < s->o.metrics_pad; i++)
		fprintf(f, "kvaccel_fake_pad{i=\"%d\"} %d\n", i, i);
	fprintf(f, "# HELP kvaccel_serve_requests_total HTTP requests answered, by status.\n"
		"# TYPE kvaccel_serve_requests_total counter\n"
		"kvaccel_serve_requests_total{status=\"200\"} %lld\n"
		"kvaccel_serve_requests_total{status=\"429\"} 3\n"
		"kvaccel_serve_requests_running 0\n"
		"kvaccel_serve_swaps_total %lld\n"
		"kvaccel_serve_swap_ins_total %lld\n"
		"kvaccel_serve_recomputes_total %lld\n"
		"kvaccel_serve_recomputed_tokens_total %lld\n"
		"kvaccel_serve_yields_total 11\n"
		"kvaccel_serve_swapped_bytes_total %lld\n"
		"kvaccel_serve_swap_bandwidth_bytes 16000000000\n"
		"kvaccel_serve_step_duration_ns 250000\n"
		"kvaccel_serve_computed_tokens_total %lld\n"
		"kvaccel_fake_huge_total 18446744073709551615\n"
		"a malformed line\n"
		"kvaccel_serve_ttft_ms_bucket{le=\"+Inf\"} %lld\n"
		"kvaccel_serve_ttft_ms_sum 12.5\n"
		"kvaccel_serve_ttft_ms_count %lld\n",
		c.ok, 5 + c.swaps, 5 + c.swaps, 2 + c.recomputes, 40 + c.recomputed,
		(1LL << 20) + c.swapped, 1000 + c.computed, c.ok, c.ok);
	fclose(f);
	put(fd, head[!!s->o.close_delimited], strlen(head[!!s->o.close_delimited]));
	/* in pieces of 8 KiB: several chunks */
	for (off = 0; off < len; off += n) {
		n = len - off < 8192 ? len - off : 8192;
		save = buf[off + n];
		buf[off + n] = 0;
		if (piece(s, fd, buf + off))
			break;
		buf[off + n] = save;
	}
	if (off >= len && !s->o.close_delimited)
		put(fd, "0\r\n\r\n", 5);
	free(buf);
}

/* What a well-formed completion request adds to the counters, when it arrives. */
static void count(struct fake_server *s, json_object *req)
{
	json_object *x;
	long long n = 1, prio = 0;

	if (json_object_object_get_ex(req, "max_tokens", &x))
		n = json_object_get_int(x);
	if (json_object_object_get_ex(req, "priority", &x))
		prio = json_object_get_int(x);
	pthread_mutex_lock(&s->lock);
	s->c.ok++;
	s->c.recomputes++;
	s->c.computed += 10 + n;
	s->c.recomputed += 2 * prio;
	s->c.swaps += prio;
	s->c.swapped += 8192 * prio;
	pthread_mutex_unlock(&s->lock);
}

/* The request: headers up to the blank line, then Content-Length bytes. */
static char *read_request(int fd)
{
	size_t cap = 1 << 16, len = 0, need = 0;
	char *buf = malloc(cap + 1), *end = NULL;

	while (buf && len < cap) {
		ssize_t r = read(fd, buf + len, cap - len);

		if (r <= 0)
			break;
		len += r;
		buf[len] = 0;
		if (!end)
			end = strstr(buf, "\r\n\r\n");
		if (end && !need) {
			char *cl = strcasestr(buf, "Content-Length:");

			need = (end - buf) + 4 + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (end && len >= need)
			return buf;
	}
	free(buf);
	return NULL;
}

static void *serve(void *arg)
{
	struct conn *c = arg;
	struct fake_server *s = c->s;
	char *req = read_request(c->fd), *body;
	json_object *o = NULL, *x;
	const char *client = "";
	uint64_t h = 0xcbf29ce484222325ULL;
	int good = 0;
	size_t i;

	body = req ? strstr(req, "\r\n\r\n") : NULL;
	if (body && !strncmp(req, "GET /metrics ", 13)) {
		metrics(s, c->fd);
		goto out;
	}
	if (body && !strncmp(req, "POST /v1/completions ", 21))
		o = json_tokener_parse(body + 4);
	if (o && json_object_object_get_ex(o, "prompt", &x) &&
	    json_object_is_type(x, json_type_array)) {
		for (i = 0; i < json_object_array_length(x); i++)
			h = (h ^ json_object_get_int(json_object_array_get_idx(x, i))) *
			    0x100000001b3ULL;
		good = json_object_object_get_ex(o, "stream", &x) && json_object_get_boolean(x) &&
		       json_object_object_get_ex(o, "max_tokens", &x);
	}
	if (o && json_object_object_get_ex(o, "seed", &x))
		h ^= json_object_get_int64(x);
	if (o && json_object_object_get_ex(o, "client", &x))
		client = json_object_get_string(x);
	pthread_mutex_lock(&s->lock);
	s->requests++;
	s->well_formed += good;
	pthread_mutex_unlock(&s->lock);
	if (good)
		count(s, o);
	if (!good)
		error_reply(c->fd, 400, "invalid_request_error");
	else if (!strcmp(client, "e400"))
		error_reply(c->fd, 400, "invalid_request_error");
	else if (!strcmp(client, "e429"))
		error_reply(c->fd, 429, "overloaded");
	else if (!strcmp(client, "e503"))
		error_reply(c->fd, 503, "shutting_down");
	else if (!strcmp(client, "plain"))
		put(c->fd, plain_reply, strlen(plain_reply));
	else if (!strcmp(client, "stall"))
		stall(s, c->fd);
	else if (!strcmp(client, "garbage"))
		garbage(s, c->fd);
	else if (!strcmp(client, "e500"))
		error_reply(c->fd, 500, "server_error");
	else
		stream(s, c->fd, o, h, !strcmp(client, "cut") ? CUT : !strcmp(client, "short") ?
		       SHORT : !strcmp(client, "abort") ? ABORT : !strcmp(client, "slow") ? SLOW :
		       WHOLE);
out:
	json_object_put(o);
	free(req);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&s->lock);
	if (!--s->live)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void *acceptor(void *arg)
{
	struct fake_server *s = arg;
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	pthread_t th;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		struct conn *c;
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			continue;
		c = malloc(sizeof(*c));
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->lock);
		s->live++;
		pthread_mutex_unlock(&s->lock);
		if (pthread_create(&th, NULL, serve, c)) {
			close(fd);
			free(c);
			pthread_mutex_lock(&s->lock);
			s->live--;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		pthread_detach(th);
	}
	return NULL;
}

static int listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 256) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

struct fake_server *fake_start(const struct fake_opts *o, int *port)
{
	struct fake_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->o = *o;
	s->fd = listener(port);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	if (s->fd < 0 || pthread_create(&s->th, NULL, acceptor, s)) {
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return NULL;
	}
	return s;
}

int fake_requests(struct fake_server *s, int *well_formed)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->requests;
	*well_formed = s->well_formed;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int fake_metrics_gets(struct fake_server *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->metrics_gets;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void fake_stop(struct fake_server *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->th, NULL);
	pthread_mutex_lock(&s->lock);
	while (s->live)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	close(s->fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s);
}

int fake_closed_port(void)
{
	int port = 0, fd = listener(&port);

	if (fd < 0)
		return -1;
	close(fd);
	return port;
}
