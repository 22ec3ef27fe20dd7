/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-loadgen - a workload: requests with arrival times, lengths, priority and SLO class.
 * Read from a trace (trace.c: Azure 2023 CSV, Mooncake JSONL, plain CSV/JSONL) or made by the
 * synthetic generator (synth.c); the same formats as kvaccel-sim (issue 16).
 */
#ifndef LG_WORKLOAD_H
#define LG_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define LG_NAME_MAX 32

struct lg_req {
	double arrival_s;		/* from the start of the run */
	uint32_t input_len;		/* prompt tokens (bytes) */
	uint32_t output_len;		/* max_tokens */
	int priority;
	char cls[LG_NAME_MAX];		/* "online" unless the workload says */
	char client[LG_NAME_MAX];	/* "" when none */
	double ttft_slo_ms;		/* 0: none (always met) */
	double tpot_slo_ms;		/* 0: none */
	char *prompt;			/* the trace's own prompt text, or NULL: generated */
	uint32_t *hash_ids;		/* Mooncake block hashes (512 tokens each), or NULL */
	uint32_t nr_hash_ids;
	size_t line;			/* its line in the trace (0: synthetic) */
	uint32_t session, turn;		/* synthetic sessions: 1-based (0: none) */
};

struct lg_workload {
	struct lg_req *req;
	size_t n, cap;
};

/* Defaults for the fields a trace line leaves out, and what is done to the trace as a whole. */
struct lg_trace_opts {
	double ttft_slo_ms, tpot_slo_ms;	/* SLO of a line without its own */
	double time_scale;			/* arrival times are divided by this (rate x N) */
	size_t limit;				/* keep the first N requests (0: all) */
	uint32_t max_input, max_output;		/* clip lengths (0: no clip) */
};

/*
 * Load a trace, its format found from its content (a CSV header, or JSONL). Arrival times become
 * relative to the earliest, requests sorted by arrival (stable). On error returns -1 with
 * "FILE:LINE: what" (or "FILE: what") in err.
 */
int lg_trace_load(const char *path, const struct lg_trace_opts *o, struct lg_workload *wl,
		  char *err, size_t errlen);

/*
 * A trace read one line at a time (kvaccel-sim --stream): the requests lg_trace_load() gives for
 * a trace sorted by arrival, in its order, with the same options. open: NULL with err when the
 * file cannot be read. next: 1 with the next request in *r (its prompt and hash ids the
 * caller's to free), 0 at the end (or --limit), -1 with "FILE:LINE: what" in open's err for a
 * malformed line, a line that arrives before the one before it, or a trace with no requests.
 */
struct lg_trace_iter;

struct lg_trace_iter *lg_trace_open(const char *path, const struct lg_trace_opts *o, char *err,
				    size_t errlen);
int lg_trace_next(struct lg_trace_iter *it, struct lg_req *r);
void lg_trace_close(struct lg_trace_iter *it);

/* A length distribution: fixed N, uniform [a, b], or lognormal (mu, sigma) of natural logs. */
enum lg_dist_kind { LG_DIST_FIXED, LG_DIST_UNIFORM, LG_DIST_LOGNORMAL };
struct lg_dist {
	enum lg_dist_kind kind;
	double a, b;
};

/* A class of the synthetic mix. */
struct lg_class {
	char name[LG_NAME_MAX];
	double weight;			/* share of the requests, relative to the other classes */
	int priority;
	double ttft_slo_ms, tpot_slo_ms;
};

enum lg_arrival { LG_ARR_POISSON, LG_ARR_GAMMA, LG_ARR_BURST };

#define LG_MAX_CLASSES 8

struct lg_synth_opts {
	size_t requests;
	double rate;			/* requests per second, on average */
	enum lg_arrival arrival;
	double cv;			/* gamma: coefficient of variation of the gaps */
	uint32_t burst;			/* burst: requests arriving together */
	struct lg_dist input, output;
	uint32_t max_input, max_output;	/* clip (0: no clip); lengths are at least 1 */
	struct lg_class classes[LG_MAX_CLASSES];
	unsigned int nr_classes;	/* 0: one class "online", priority 0, the default SLOs */
	double ttft_slo_ms, tpot_slo_ms;
	unsigned int clients;		/* requests spread over "c0".."cN-1" round robin (0: none) */
	uint64_t seed;
	/*
	 * Poisson only: the rate swings as rate x (1 + amplitude x sin(2 pi t / period)), by
	 * thinning (period 0 or amplitude 0: none).
	 */
	double diurnal_period_s, diurnal_amp;
	/*
	 * Sessions (0: none): @sessions conversations of @turns requests each (requests is then
	 * sessions x turns), starting at rate / turns; turn k's prompt is turn k-1's prompt and
	 * output and a new message drawn from input; it arrives think_s (mean, exponential) after
	 * turn k-1's guessed end, its arrival + LG_TURN_TPOT_S a token of its output. Every 512
	 * tokens of a session's history get one hash id, so equal prefixes are equal bytes.
	 */
	uint32_t sessions, turns;
	double think_s;
};

/* A session turn's guessed time per output token, for the next turn's arrival (open loop). */
#define LG_TURN_TPOT_S 0.05
/* Tokens a hash id covers (lg_prompt_make(), Mooncake's blocks). */
#define LG_HASH_BLOCK 512

/* Parse "fixed:N", "uniform:A:B", "lognormal:MU:SIGMA"; -1 if malformed. */
int lg_dist_parse(const char *s, struct lg_dist *d);
/* Parse "NAME:WEIGHT:PRIORITY:TTFT_MS:TPOT_MS"; -1 if malformed. */
int lg_class_parse(const char *s, struct lg_class *c);

int lg_synth(const struct lg_synth_opts *o, struct lg_workload *wl);

/*
 * The generator one request at a time (kvaccel-sim --stream): the same requests as lg_synth()
 * for the same options, in the same order, without the array. Sessions are not streamed (a
 * session's turns arrive out of the order they are made): init returns -1 for them, as for the
 * options lg_synth() refuses. next: 1 with the next request in *r, 0 when all are made.
 */
struct lg_synth_iter {
	const struct lg_synth_opts *o;
	struct lg_rng arr, len, cls;
	double t, total;
	size_t made;
};

int lg_synth_iter_init(struct lg_synth_iter *it, const struct lg_synth_opts *o);
int lg_synth_next(struct lg_synth_iter *it, struct lg_req *r);

struct lg_req *lg_workload_push(struct lg_workload *wl);
void lg_workload_free(struct lg_workload *wl);

/*
 * The prompt of request index idx: its own text if the trace gave one, else input_len bytes from
 * (seed, idx), printable ASCII; with Mooncake hash ids each 512-token block comes from
 * (seed, hash id), so equal ids give equal prefixes. Returns a malloc'd buffer, *len its length.
 */
uint8_t *lg_prompt_make(const struct lg_req *r, uint64_t seed, size_t idx, size_t *len);

#endif
