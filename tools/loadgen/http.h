/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-loadgen - a small HTTP/1.1 client over sockets: one POST or GET per connection
 * (Connection: close), a response with Content-Length, chunked, or read to the close; a
 * text/event-stream body is split into server-sent events as they arrive.
 */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stddef.h>

struct lg_url {
	char host[256];
	char port[8];
	char base[256];		/* path prefix, without a trailing slash ("" for none) */
};

/* "http://HOST[:PORT][/PREFIX]" (HOST may be [v6]); -1 if malformed. */
int lg_url_parse(const char *s, struct lg_url *u);

enum lg_http_err {
	LG_HTTP_OK = 0,
	LG_HTTP_CONNECT,	/* resolving or connecting failed (refused, unreachable) */
	LG_HTTP_TIMEOUT,	/* no byte for the timeout */
	LG_HTTP_PROTO,		/* a malformed response */
	LG_HTTP_CLOSED,		/* the connection closed before the response ended */
	LG_HTTP_NR,
};

extern const char *const lg_http_err_names[LG_HTTP_NR];

struct lg_http_cb {
	/* the status line and headers have arrived; sse: the body is an event stream */
	void (*head)(void *ctx, int status, int sse);
	/*
	 * one event's data (its data: lines joined by \n), NUL-terminated; return nonzero to stop.
	 * NULL: an event stream is a body like any other.
	 */
	int (*event)(void *ctx, const char *data, size_t len);
	/*
	 * the whole body of a response that is not an event stream, NUL-terminated (a POST's cut
	 * to 64 KiB; a GET's whole, up to 16 MiB)
	 */
	void (*body)(void *ctx, const char *data, size_t len);
	void *ctx;
};

/*
 * POST body (application/json) to u's base + path; timeout_s bounds the connect and every
 * wait for a byte. Returns LG_HTTP_OK when a whole response was read (any status), else the
 * error, with a message in err.
 */
enum lg_http_err lg_http_post(const struct lg_url *u, const char *path, const char *body,
			      size_t len, double timeout_s, const struct lg_http_cb *cb,
			      char *err, size_t errlen);

/*
 * GET u's base + path, as lg_http_post (the same reading of the response). The body is kept
 * whole: one over 16 MiB is LG_HTTP_PROTO, and body is not called.
 */
enum lg_http_err lg_http_get(const struct lg_url *u, const char *path, double timeout_s,
			     const struct lg_http_cb *cb, char *err, size_t errlen);

#endif
