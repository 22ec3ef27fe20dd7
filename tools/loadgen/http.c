// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - the HTTP/1.1 client (see http.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"

const char *const lg_http_err_names[LG_HTTP_NR] = {
	[LG_HTTP_OK] = "ok", [LG_HTTP_CONNECT] = "connect", [LG_HTTP_TIMEOUT] = "timeout",
	[LG_HTTP_PROTO] = "protocol", [LG_HTTP_CLOSED] = "closed",
};

#define BODY_MAX (64 << 10)		/* a POST's answer: an error body, kept to this */
#define GET_BODY_MAX (16 << 20)		/* a GET's: all of it, or an error */
#define HEAD_MAX (16 << 10)

int lg_url_parse(const char *s, struct lg_url *u)
{
	const char *h, *e, *p;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (strncmp(s, "http://", 7))
		return -1;
	h = s + 7;
	p = strchr(h, '/');
	if (!p)
		p = h + strlen(h);
	if (*h == '[') {
		e = memchr(h, ']', p - h);
		if (!e)
			return -1;
		n = e - h - 1;
		h++;
		e++;
	} else {
		e = memchr(h, ':', p - h);
		if (!e)
			e = p;
		n = e - h;
	}
	if (!n || n >= sizeof(u->host))
		return -1;
	memcpy(u->host, h, n);
	if (*e == ':') {
		char *end;
		long port = strtol(e + 1, &end, 10);

		if (end != p || port < 1 || port > 65535)
			return -1;
		snprintf(u->port, sizeof(u->port), "%ld", port);
	} else if (e != p) {
		return -1;
	} else {
		strcpy(u->port, "80");
	}
	n = strlen(p);
	while (n && p[n - 1] == '/')
		n--;
	if (n >= sizeof(u->base))
		return -1;
	memcpy(u->base, p, n);
	return 0;
}

struct conn {
	int fd;
	int timeout_ms;
	char *err;
	size_t errlen;
};

static enum lg_http_err say(struct conn *c, enum lg_http_err e, const char *fmt, const char *a)
{
	snprintf(c->err, c->errlen, fmt, a);
	return e;
}

/* Read some bytes: > 0 their count, 0 at the close, < 0 an error (err set). */
static ssize_t rd(struct conn *c, char *buf, size_t n, enum lg_http_err *e)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t r;
	int k;

	do
		k = poll(&p, 1, c->timeout_ms);
	while (k < 0 && errno == EINTR);
	if (k == 0) {
		*e = say(c, LG_HTTP_TIMEOUT, "no response byte for the timeout%s", "");
		return -1;
	}
	do
		r = read(c->fd, buf, n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		*e = say(c, LG_HTTP_CLOSED, "read: %s", strerror(errno));
	return r;
}

/* connect() bounded by the timeout (a host that drops SYNs would take minutes); 0 or -1/errno. */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int flags = fcntl(fd, F_GETFL), err = 0, k;
	socklen_t elen = sizeof(err);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK))
		return -1;
	if (connect(fd, sa, len)) {
		if (errno != EINPROGRESS)
			return -1;
		do
			k = poll(&p, 1, timeout_ms);
		while (k < 0 && errno == EINTR);
		if (k == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (k < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen))
			return -1;
		if (err) {
			errno = err;
			return -1;
		}
	}
	return fcntl(fd, F_SETFL, flags);
}

static enum lg_http_err dial(const struct lg_url *u, struct conn *c)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	int rc = getaddrinfo(u->host, u->port, &hints, &ai), saved = 0;

	if (rc) {
		snprintf(c->err, c->errlen, "%s: %s", u->host, gai_strerror(rc));
		return LG_HTTP_CONNECT;
	}
	c->fd = -1;
	for (a = ai; a && c->fd < 0; a = a->ai_next) {
		c->fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (c->fd < 0) {
			saved = errno;
			continue;
		}
		if (connect_within(c->fd, a->ai_addr, a->ai_addrlen, c->timeout_ms)) {
			saved = errno;
			close(c->fd);
			c->fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (c->fd < 0) {
		snprintf(c->err, c->errlen, "connect to %s:%s: %s", u->host, u->port,
			 strerror(saved));
		return LG_HTTP_CONNECT;
	}
	if (c->timeout_ms > 0) {
		/* sending the body is bounded too */
		struct timeval tv = { c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000 };

		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return LG_HTTP_OK;
}

static int wr(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/* The decoded body goes here: events split as they complete, or kept whole. */
struct sink {
	const struct lg_http_cb *cb;
	int sse, stopped;
	int whole, over;	/* over max: whole, an error; else the rest dropped */
	char *buf;
	size_t len, cap, max;
};

static int sink_grow(struct sink *s, size_t more)
{
	char *n;
	size_t cap;

	if (s->len + more + 1 <= s->cap)
		return 0;
	cap = s->cap ? s->cap : 4096;
	while (cap < s->len + more + 1)
		cap *= 2;
	n = realloc(s->buf, cap);
	if (!n)
		return -1;
	s->buf = n;
	s->cap = cap;
	return 0;
}

/* One event: the data of its "data:" lines joined by \n; other fields ignored. */
static void sse_event(struct sink *s, char *ev, size_t n)
{
	char *out = ev, *line = ev, *end = ev + n;
	int first = 1;

	while (line < end) {
		char *nl = memchr(line, '\n', end - line), *v;

		if (!nl)
			nl = end;
		*nl = 0;
		if (!strncmp(line, "data:", 5)) {
			v = line + 5 + (line[5] == ' ');
			if (!first)
				*out++ = '\n';
			memmove(out, v, nl - v);
			out += nl - v;
			first = 0;
		}
		line = nl + 1;
	}
	*out = 0;
	if (!first && !s->stopped && s->cb->event(s->cb->ctx, ev, out - ev))
		s->stopped = 1;
}

static int sink_put(struct sink *s, const char *p, size_t n)
{
	size_t i, start;

	if (!s->sse) {
		if (s->len + n > s->max) {
			s->over = 1;
			if (s->whole)
				return -1;
			n = s->max - s->len;
		}
		if (sink_grow(s, n))
			return -1;
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		return 0;
	}
	/* \r dropped: events end at a blank line, \n\n */
	if (sink_grow(s, n))
		return -1;
	for (i = 0; i < n; i++)
		if (p[i] != '\r')
			s->buf[s->len++] = p[i];
	for (start = 0, i = 1; i < s->len; i++) {
		if (s->buf[i] == '\n' && s->buf[i - 1] == '\n') {
			sse_event(s, s->buf + start, i - 1 - start);
			start = i + 1;
			i++;
		}
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
	return 0;
}

struct resp {
	struct conn *c;
	char buf[HEAD_MAX];
	size_t len, pos;	/* bytes read and not yet consumed: buf[pos..len) */
};

/* Next byte of the stream, refilling; -1 at the close or an error (*e says which). */
static int next_byte(struct resp *r, enum lg_http_err *e)
{
	ssize_t n;

	if (r->pos == r->len) {
		n = rd(r->c, r->buf, sizeof(r->buf), e);
		if (n <= 0) {
			if (n == 0)
				*e = LG_HTTP_CLOSED;
			return -1;
		}
		r->len = n;
		r->pos = 0;
	}
	return (unsigned char)r->buf[r->pos++];
}

static int read_line(struct resp *r, char *line, size_t max, enum lg_http_err *e)
{
	size_t n = 0;
	int ch;

	for (;;) {
		ch = next_byte(r, e);
		if (ch < 0)
			return -1;
		if (ch == '\n')
			break;
		if (n + 1 >= max) {
			*e = LG_HTTP_PROTO;
			return -1;
		}
		line[n++] = ch;
	}
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = 0;
	return 0;
}

/* Move up to want bytes of the body to the sink (want < 0: to the close). */
static enum lg_http_err copy_body(struct resp *r, struct sink *s, long long want, int to_close)
{
	enum lg_http_err e = LG_HTTP_OK;
	ssize_t n;

	while (to_close || want > 0) {
		if (r->pos == r->len) {
			n = rd(r->c, r->buf, sizeof(r->buf), &e);
			if (n < 0)
				return e;
			if (n == 0)
				return to_close ? LG_HTTP_OK : LG_HTTP_CLOSED;
			r->len = n;
			r->pos = 0;
		}
		n = r->len - r->pos;
		if (!to_close && n > want)
			n = want;
		if (sink_put(s, r->buf + r->pos, n))
			return LG_HTTP_PROTO;
		r->pos += n;
		want -= n;
		if (s->stopped)
			return LG_HTTP_OK;
	}
	return LG_HTTP_OK;
}

static enum lg_http_err chunked(struct resp *r, struct sink *s)
{
	enum lg_http_err e = LG_HTTP_OK;
	char line[256], *end;
	unsigned long long size;

	for (;;) {
		if (read_line(r, line, sizeof(line), &e))
			return say(r->c, e, "in a chunk size line%s", "");
		size = strtoull(line, &end, 16);
		if (end == line || (*end && *end != ';' && *end != ' '))
			return say(r->c, LG_HTTP_PROTO, "bad chunk size \"%s\"", line);
		if (!size)
			break;
		e = copy_body(r, s, size, 0);
		if (e || s->stopped)
			return e;
		if (read_line(r, line, sizeof(line), &e) || *line)
			return say(r->c, e ? e : LG_HTTP_PROTO, "no CRLF after a chunk%s", "");
	}
	do {
		if (read_line(r, line, sizeof(line), &e))
			return say(r->c, e, "in the chunked trailer%s", "");
	} while (*line);
	return LG_HTTP_OK;
}

/* The response; whole: a body past GET_BODY_MAX is an error, not cut to BODY_MAX. */
static enum lg_http_err response(struct conn *c, const struct lg_http_cb *cb, int whole)
{
	struct resp *r = calloc(1, sizeof(*r));
	struct sink s = { .cb = cb, .whole = whole, .max = whole ? GET_BODY_MAX : BODY_MAX };
	enum lg_http_err e = LG_HTTP_OK;
	char line[1024];
	long long clen = -1;
	int status, is_chunked = 0, minor;

	if (!r)
		return say(c, LG_HTTP_PROTO, "out of memory%s", "");
	r->c = c;
	if (read_line(r, line, sizeof(line), &e)) {
		e = say(c, e, e == LG_HTTP_CLOSED ? "closed before a status line%s" :
			e == LG_HTTP_TIMEOUT ? "no status line for the timeout%s" :
			"a bad status line%s", "");
		goto out;
	}
	if (sscanf(line, "HTTP/1.%d %d", &minor, &status) != 2 || status < 100 || status > 999) {
		e = say(c, LG_HTTP_PROTO, "bad status line \"%.200s\"", line);
		goto out;
	}
	for (;;) {
		char *v;

		if (read_line(r, line, sizeof(line), &e)) {
			e = say(c, e, "in the response headers%s", "");
			goto out;
		}
		if (!*line)
			break;
		v = strchr(line, ':');
		if (!v) {
			e = say(c, LG_HTTP_PROTO, "bad header line \"%.200s\"", line);
			goto out;
		}
		*v++ = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!strcasecmp(line, "Content-Length"))
			clen = strtoll(v, NULL, 10);
		else if (!strcasecmp(line, "Transfer-Encoding") && strcasestr(v, "chunked"))
			is_chunked = 1;
		else if (!strcasecmp(line, "Content-Type") && strcasestr(v, "text/event-stream"))
			s.sse = !!cb->event;	/* without an event callback, kept whole */
	}
	if (cb->head)
		cb->head(cb->ctx, status, s.sse);
	if (is_chunked)
		e = chunked(r, &s);
	else if (clen >= 0)
		e = copy_body(r, &s, clen, 0);
	else
		e = copy_body(r, &s, 0, 1);
	if (e == LG_HTTP_CLOSED)
		say(c, e, "the connection closed in the body%s", "");
	if (e == LG_HTTP_PROTO && s.over)
		snprintf(c->err, c->errlen, "a body over %zu bytes", s.max);
	else if (e == LG_HTTP_PROTO && !*c->err)
		say(c, e, "out of memory for the body%s", "");
	if (!e && s.sse && s.len && !s.stopped)
		sse_event(&s, s.buf, s.len);	/* a last event without its blank line */
	if (!e && !s.sse && cb->body) {
		if (!sink_grow(&s, 0))
			s.buf[s.len] = 0;
		cb->body(cb->ctx, s.buf ? s.buf : "", s.len);
	}
out:
	free(s.buf);
	free(r);
	return e;
}

/* One request on its own connection: head (the request line and headers), then body. */
static enum lg_http_err request(const struct lg_url *u, const char *head, size_t hlen,
				const char *body, size_t len, double timeout_s,
				const struct lg_http_cb *cb, int whole, char *err, size_t errlen)
{
	struct conn c = { .timeout_ms = timeout_s > 0 ? (int)(timeout_s * 1000) : -1,
			  .err = err, .errlen = errlen };
	enum lg_http_err e;

	*err = 0;
	e = dial(u, &c);
	if (e)
		return e;
	if (wr(c.fd, head, hlen) || (len && wr(c.fd, body, len)))
		e = say(&c, LG_HTTP_CLOSED, "sending the request: %s", strerror(errno));
	else
		e = response(&c, cb, whole);
	close(c.fd);
	return e;
}

enum lg_http_err lg_http_post(const struct lg_url *u, const char *path, const char *body,
			      size_t len, double timeout_s, const struct lg_http_cb *cb,
			      char *err, size_t errlen)
{
	char head[1024];
	int n;

	n = snprintf(head, sizeof(head),
		     "POST %s%s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
		     "Accept: text/event-stream, application/json\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n", u->base, path, u->host, u->port, len);
	if (n >= (int)sizeof(head)) {
		snprintf(err, errlen, "the request line is too long");
		return LG_HTTP_PROTO;
	}
	return request(u, head, n, body, len, timeout_s, cb, 0, err, errlen);
}

enum lg_http_err lg_http_get(const struct lg_url *u, const char *path, double timeout_s,
			     const struct lg_http_cb *cb, char *err, size_t errlen)
{
	char head[1024];
	int n;

	n = snprintf(head, sizeof(head),
		     "GET %s%s HTTP/1.1\r\nHost: %s:%s\r\nAccept: text/plain, */*\r\n"
		     "Connection: close\r\n\r\n", u->base, path, u->host, u->port);
	if (n >= (int)sizeof(head)) {
		snprintf(err, errlen, "the request line is too long");
		return LG_HTTP_PROTO;
	}
	return request(u, head, n, NULL, 0, timeout_s, cb, 1, err, errlen);
}
