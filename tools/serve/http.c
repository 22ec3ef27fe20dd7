// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the HTTP server over libmicrohttpd, a thread per
 * connection: routing, request bodies, the non-stream answer (its thread
 * waits for the job), the event stream (a content reader that waits for
 * tokens), disconnects (seen while waiting: the job is cancelled), the
 * shutdown. Only http_engine.c's thread touches the engine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_int.h"

enum route { R_NONE, R_COMPLETIONS, R_HEALTH, R_METRICS };

struct conn {
	struct serve_http *h;
	struct sbuf body;
	bool too_big;
	struct http_job *job;
};

struct stream {
	struct serve_http *h;
	struct http_job *job;
	int fd;
	struct sbuf out;
	size_t off;
	uint32_t sent;
	bool ended;
};

static void count(struct serve_http *h, int status)
{
	pthread_mutex_lock(&h->mu);
	h->st.requests[http_status_slot(status)]++;
	pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result reply(struct serve_http *h, struct MHD_Connection *c, int status,
			     struct sbuf *b, const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	count(h, status);
	if (b->oom) {
		sb_free(b);
		return MHD_NO;
	}
	r = MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		sb_free(b);
		return MHD_NO;
	}
	memset(b, 0, sizeof(*b));
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, (unsigned int)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result error(struct serve_http *h, struct MHD_Connection *c, int status,
			     const char *msg)
{
	struct sbuf b = { 0 };

	http_render_error(&b, status, msg);
	return reply(h, c, status, &b, "application/json");
}

/* The peer closed its end. */
static bool gone(int fd)
{
	char ch;

	return fd >= 0 && recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Wait until the job has more than @have tokens or is done: false if the client went away. */
static bool wait_job(struct serve_http *h, struct http_job *j, int fd, uint32_t have)
{
	struct timespec ts;

	pthread_mutex_lock(&h->mu);
	while (!j->done && j->n_out <= have) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&j->cond, &h->mu, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&h->mu);
			if (gone(fd))
				return false;
			pthread_mutex_lock(&h->mu);
		}
	}
	pthread_mutex_unlock(&h->mu);
	return true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	struct http_job *j = s->job;
	size_t n;
	uint32_t i;

	(void)pos;
	if (s->off == s->out.len) {
		if (s->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		s->out.len = s->off = 0;
		if (!wait_job(s->h, j, s->fd, s->sent))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		pthread_mutex_lock(&s->h->mu);
		for (i = s->sent; i < j->n_out; i++) {
			sb_printf(&s->out, "data: ");
			http_render_token(&s->out, j, i);
			sb_printf(&s->out, "\n\n");
		}
		s->sent = j->n_out;
		if (j->done) {
			sb_printf(&s->out, "data: ");
			if (j->status == 200)
				http_render_completion(&s->out, j, true);
			else
				http_render_error(&s->out, j->status, j->msg);
			sb_printf(&s->out, "\n\ndata: [DONE]\n\n");
			s->ended = true;
		}
		pthread_mutex_unlock(&s->h->mu);
		if (s->out.oom)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = s->out.len - s->off;
	n = n < max ? n : max;
	memcpy(buf, s->out.p + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;

	pthread_mutex_lock(&s->h->mu);
	s->h->streams--;
	pthread_cond_broadcast(&s->h->streams_cv);
	pthread_mutex_unlock(&s->h->mu);
	http_job_abandon(s->h, s->job);
	sb_free(&s->out);
	free(s);
}

static int conn_fd(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci ? ci->connect_fd : -1;
}

static enum MHD_Result start_stream(struct serve_http *h, struct MHD_Connection *c,
				    struct http_job *j)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!s)
		return MHD_NO;
	s->h = h;
	s->job = j;
	s->fd = conn_fd(c);
	pthread_mutex_lock(&h->mu);
	j->refs++;
	h->streams++;
	pthread_mutex_unlock(&h->mu);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s,
					      stream_free);
	if (!r) {
		stream_free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	count(h, 200);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result completion(struct serve_http *h, struct MHD_Connection *c,
				  struct conn *cx)
{
	struct http_creq rq;
	struct http_job *j;
	struct sbuf b = { 0 };
	char msg[160];
	int st, ret;

	if (cx->too_big) {
		snprintf(msg, sizeof(msg), "the body is over the limit of %u bytes", h->o.max_body);
		return error(h, c, 413, msg);
	}
	st = http_parse_creq(cx->body.p, cx->body.len, &h->o, &rq, msg, sizeof(msg));
	if (st)
		return error(h, c, st, msg);
	j = http_job_new(&rq);
	if (!j) {
		free(rq.prompt);
		return error(h, c, 500, "out of memory");
	}
	ret = http_submit(h, j);
	if (ret) {
		http_job_put(j);
		switch (ret) {
		case -EBUSY:
			return error(h, c, 429, "too many requests in flight");
		case -ENOSPC:
			return error(h, c, 429, "the scheduler knows as many requests as it may");
		case -ESHUTDOWN:
			return error(h, c, 503, "the server is shutting down");
		case -E2BIG:
			return error(h, c, 413, "the prompt and max_tokens exceed the context or "
				     "the compute tier");
		case -EINVAL:
			return error(h, c, 400, "the request cannot be served (a token past the "
				     "vocabulary?)");
		default:
			return error(h, c, 500, strerror(-ret));
		}
	}
	cx->job = j;
	if (rq.stream)
		return start_stream(h, c, j);
	if (!wait_job(h, j, conn_fd(c), UINT32_MAX))
		return MHD_NO;	/* the client went away: cancelled (completed()) */
	if (j->status != 200)
		return error(h, c, j->status, j->msg);
	pthread_mutex_lock(&h->mu);
	http_render_completion(&b, j, false);
	pthread_mutex_unlock(&h->mu);
	return reply(h, c, 200, &b, "application/json");
}

static enum route route(const char *url)
{
	if (!strcmp(url, "/v1/completions"))
		return R_COMPLETIONS;
	if (!strcmp(url, "/health"))
		return R_HEALTH;
	if (!strcmp(url, "/metrics"))
		return R_METRICS;
	return R_NONE;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *size, void **ctx)
{
	struct serve_http *h = cls;
	struct conn *cx = *ctx;
	enum route rt = route(url);
	struct sbuf b = { 0 };
	bool quiescing;

	(void)version;
	if (!cx) {
		cx = calloc(1, sizeof(*cx));
		if (!cx)
			return MHD_NO;
		cx->h = h;
		*ctx = cx;
		if (rt == R_COMPLETIONS && !strcmp(method, "POST"))
			return MHD_YES;		/* the body comes next */
	}
	if (*size) {
		if (!cx->too_big && cx->body.len + *size <= h->o.max_body) {
			char *p = realloc(cx->body.p, cx->body.len + *size + 1);

			if (!p)
				return MHD_NO;
			memcpy(p + cx->body.len, data, *size);
			cx->body.p = p;
			cx->body.len += *size;
			cx->body.cap = cx->body.len + 1;
			p[cx->body.len] = 0;
		} else {
			cx->too_big = true;
		}
		*size = 0;
		return MHD_YES;
	}
	if (rt == R_NONE)
		return error(h, c, 404, "no such path (POST /v1/completions, GET /health, "
			     "GET /metrics)");
	if (strcmp(method, rt == R_COMPLETIONS ? "POST" : "GET"))
		return error(h, c, 405, rt == R_COMPLETIONS ? "use POST" : "use GET");
	pthread_mutex_lock(&h->mu);
	quiescing = h->quiescing || h->stopping;
	pthread_mutex_unlock(&h->mu);
	if (quiescing)
		return error(h, c, 503, "the server is shutting down");
	if (rt == R_HEALTH) {
		sb_printf(&b, "{\"status\": \"ok\"}");
		return reply(h, c, 200, &b, "application/json");
	}
	if (rt == R_METRICS) {
		http_render_metrics(&b, h);
		return reply(h, c, 200, &b, "text/plain; version=0.0.4");
	}
	return completion(h, c, cx);
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
		      enum MHD_RequestTerminationCode toe)
{
	struct conn *cx = *ctx;

	(void)cls;
	(void)c;
	(void)toe;
	if (!cx)
		return;
	if (cx->job)
		http_job_abandon(cx->h, cx->job);
	sb_free(&cx->body);
	free(cx);
	*ctx = NULL;
}

/* libmicrohttpd's messages (a malformed request, a peer gone), marked as ours. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("kvaccel-serve: http: ", stderr);
	vfprintf(stderr, fmt, ap);
	if (!*fmt || fmt[strlen(fmt) - 1] != '\n')
		fputc('\n', stderr);
}

struct serve_http *serve_http_start(const struct serve_http_opts *o, int *err, char *msg,
				    size_t msglen)
{
	struct serve_http *h = calloc(1, sizeof(*h));
	const union MHD_DaemonInfo *di;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int ret;

	if (!h) {
		*err = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	h->o = *o;
	h->o.max_concurrent = o->max_concurrent ? o->max_concurrent : 64;
	h->o.max_body = o->max_body ? o->max_body : 1u << 20;
	h->o.max_prompt = o->max_prompt ? o->max_prompt : 1024;
	h->o.max_tokens = o->max_tokens ? o->max_tokens : 1024;
	h->efd = -1;
	h->queue_tail = &h->queue;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->streams_cv, NULL);
	if (inet_pton(AF_INET, o->addr ? o->addr : "127.0.0.1", &sa.sin_addr) != 1) {
		*err = -EINVAL;
		snprintf(msg, msglen, "'%s' is not an IPv4 address", o->addr);
		goto fail;
	}
	sa.sin_port = htons(o->port);
	ret = http_engine_start(h);
	if (ret) {
		*err = ret;
		snprintf(msg, msglen, "the engine thread: %s", strerror(-ret));
		goto fail;
	}
	h->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				  MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_CONNECTION_LIMIT, 2 * h->o.max_concurrent + 16,
				  MHD_OPTION_CONNECTION_TIMEOUT, 60u,
				  MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_END);
	if (!h->mhd) {
		*err = -EADDRNOTAVAIL;
		snprintf(msg, msglen, "cannot listen on %s:%u (in use, or not this host's)",
			 o->addr ? o->addr : "127.0.0.1", o->port);
		goto fail;
	}
	di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : o->port;
	return h;
fail:
	http_engine_stop(h);
	pthread_cond_destroy(&h->streams_cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
	return NULL;
}

uint16_t serve_http_port(const struct serve_http *h)
{
	return h->port;
}

void serve_http_quiesce(struct serve_http *h)
{
	MHD_socket fd;

	pthread_mutex_lock(&h->mu);
	if (h->quiescing) {
		pthread_mutex_unlock(&h->mu);
		return;
	}
	h->quiescing = true;
	pthread_mutex_unlock(&h->mu);
	fd = MHD_quiesce_daemon(h->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

void serve_http_stop(struct serve_http *h)
{
	if (!h)
		return;
	serve_http_quiesce(h);
	http_engine_stop(h);
	/*
	 * Every job has ended; the streams still have to send their last
	 * event, which MHD_stop_daemon() would cut (it shuts the sockets down).
	 * A client that stopped reading is not waited for past 5 s.
	 */
	pthread_mutex_lock(&h->mu);
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		while (h->streams &&
		       pthread_cond_timedwait(&h->streams_cv, &h->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&h->mu);
	MHD_stop_daemon(h->mhd);
	pthread_cond_destroy(&h->streams_cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
