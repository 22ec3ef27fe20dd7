/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-loadgen - --server-metrics: the server's GET /metrics (at the URL's base) just before
 * the first request and just after the last response, and what changed in between: the
 * counters' deltas (samples whose name ends in _total), the gauges' values after the run (the
 * other samples but histograms' _bucket, _sum and _count), kvaccel-serve's recompute tax and
 * swap rate. A failed scrape is a warning, never a failed run.
 */
#ifndef LG_SERVER_H
#define LG_SERVER_H

#include <stdio.h>

#include <json-c/json.h>

#include "http.h"
#include "metrics.h"

struct lg_server {
	int ok;				/* both scrapes answered 200 and parsed */
	struct lg_metrics before, after;
	char err[256];			/* !ok: why, in words */
};

/* GET u's base + /metrics into m; -1 with err set for a transport error or a status not 200. */
int lg_server_scrape(const struct lg_url *u, double timeout_s, struct lg_metrics *m, char *err,
		     size_t errlen);

/* The scrape before the run (s zeroed first), and the one after (not made if the first failed). */
void lg_server_begin(struct lg_server *s, const struct lg_url *u, double timeout_s);
void lg_server_end(struct lg_server *s, const struct lg_url *u, double timeout_s);
void lg_server_free(struct lg_server *s);

/*
 * The "server" object of the JSON report: {"counters": {key: delta}, "gauges": {key: value},
 * "recompute_tax": x or null, "swap_bytes_per_s": x or null}; JSON null if !s->ok.
 */
json_object *lg_server_json(const struct lg_server *s, double duration_s);

/* The table report's server section, its lines only for the metrics the server has. */
void lg_server_table(FILE *f, const struct lg_server *s, double duration_s);

#endif
