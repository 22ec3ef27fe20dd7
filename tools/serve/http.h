/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - the HTTP server (libmicrohttpd): POST /v1/completions,
 * GET /health, GET /metrics over one engine driven by one engine thread.
 * The API: Documentation/serve.rst, "The HTTP API".
 */
#ifndef SERVE_HTTP_H
#define SERVE_HTTP_H

#include <stdint.h>

#include "driver.h"
#include "pressure.h"

struct serve_http;

struct serve_http_opts {
	/** The scheduler driving the engine (not owned). */
	struct serve_driver *driver;
	/** kvacceld's pressure rounds, answered on the engine thread (may be NULL; not owned). */
	struct serve_kvd *kvd;
	/** Fair share: clients named in requests are hashed into this many (the scheduler's). */
	uint32_t max_clients;
	/** Numeric IPv4 address and port (0: an ephemeral one, see serve_http_port()). */
	const char *addr;
	uint16_t port;
	/** Limits (0: the defaults in brackets). */
	uint32_t max_concurrent;	/* requests in flight [64]; more: 429 */
	uint32_t max_body;		/* request body bytes [1 MiB]; more: 413 */
	uint32_t max_prompt;		/* prompt tokens [1024]; more: 413 */
	uint32_t max_tokens;		/* the largest max_tokens [1024]; more: 400 */
};

/** A running server; NULL and -errno in *err, with a message in @msg. */
struct serve_http *serve_http_start(const struct serve_http_opts *o, int *err, char *msg,
				    size_t msglen);
uint16_t serve_http_port(const struct serve_http *h);
/** Stop accepting; requests that arrive later on open connections get 503. */
void serve_http_quiesce(struct serve_http *h);
/** Abort what runs (streams end with an error event), stop, free. */
void serve_http_stop(struct serve_http *h);

#endif /* SERVE_HTTP_H */
