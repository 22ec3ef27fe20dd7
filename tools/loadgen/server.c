// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - --server-metrics (see server.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define RECOMPUTED	"kvaccel_serve_recomputed_tokens_total"
#define COMPUTED	"kvaccel_serve_computed_tokens_total"
#define SWAPS		"kvaccel_serve_swaps_total"
#define SWAP_INS	"kvaccel_serve_swap_ins_total"
#define RECOMPUTES	"kvaccel_serve_recomputes_total"
#define YIELDS		"kvaccel_serve_yields_total"
#define SWAPPED		"kvaccel_serve_swapped_bytes_total"
#define SWAP_BW		"kvaccel_serve_swap_bandwidth_bytes"

struct scrape {
	int status, parsed, oom;
	struct lg_metrics *m;
};

static void head_cb(void *ctx, int status, int sse)
{
	(void)sse;
	((struct scrape *)ctx)->status = status;
}

static void body_cb(void *ctx, const char *data, size_t len)
{
	struct scrape *sc = ctx;

	if (sc->status != 200)
		return;
	if (lg_metrics_parse(data, len, sc->m))
		sc->oom = 1;
	else
		sc->parsed = 1;
}

int lg_server_scrape(const struct lg_url *u, double timeout_s, struct lg_metrics *m, char *err,
		     size_t errlen)
{
	struct scrape sc = { .m = m };
	struct lg_http_cb cb = { head_cb, NULL, body_cb, &sc };
	int v6 = !!strchr(u->host, ':');
	enum lg_http_err e;
	char url[600], msg[200];

	memset(m, 0, sizeof(*m));
	snprintf(url, sizeof(url), "http://%s%s%s:%s%s/metrics", v6 ? "[" : "", u->host,
		 v6 ? "]" : "", u->port, u->base);
	e = lg_http_get(u, "/metrics", timeout_s, &cb, msg, sizeof(msg));
	if (e)
		snprintf(err, errlen, "GET %s: %s", url, msg);
	else if (sc.status != 200)
		snprintf(err, errlen, "GET %s: status %d", url, sc.status);
	else if (!sc.parsed)
		snprintf(err, errlen, "GET %s: out of memory", url);
	if (!e && sc.parsed)
		return 0;
	lg_metrics_free(m);
	return -1;
}

void lg_server_begin(struct lg_server *s, const struct lg_url *u, double timeout_s)
{
	memset(s, 0, sizeof(*s));
	s->ok = !lg_server_scrape(u, timeout_s, &s->before, s->err, sizeof(s->err));
}

void lg_server_end(struct lg_server *s, const struct lg_url *u, double timeout_s)
{
	if (s->ok)
		s->ok = !lg_server_scrape(u, timeout_s, &s->after, s->err, sizeof(s->err));
}

void lg_server_free(struct lg_server *s)
{
	lg_metrics_free(&s->before);
	lg_metrics_free(&s->after);
}

/* A delta or a value: exact when both ends were whole numbers. */
struct val {
	int is_int;
	long long i;
	double d;
};

static struct val value(const struct lg_sample *a)
{
	return (struct val){ a->is_int, a->ival, a->value };
}

/*
 * A counter's change over the run: after - before; a series new after the run counts from 0,
 * and one that went down (the server restarted) counts from 0 too: the delta is its value.
 */
static struct val delta(const struct lg_sample *a, const struct lg_sample *b)
{
	struct val v = value(a);
	long long d;

	if (!b)
		return v;
	if (a->is_int && b->is_int) {
		if (a->ival >= b->ival && !__builtin_sub_overflow(a->ival, b->ival, &d))
			v.i = d;
		v.d = (double)v.i;
		return v;
	}
	v.is_int = 0;
	if (!(a->value < b->value))
		v.d = a->value - b->value;
	return v;
}

static int name_ends(const struct lg_sample *s, const char *suffix)
{
	size_t n = strlen(suffix);

	return s->name_len >= n && !memcmp(s->key + s->name_len - n, suffix, n);
}

/* The delta of counter key (after the run), or -1 if the server has none. */
static int counter(const struct lg_server *s, const char *key, struct val *v)
{
	const struct lg_sample *a = lg_metrics_find(&s->after, key);

	if (!a)
		return -1;
	*v = delta(a, lg_metrics_find(&s->before, key));
	return 0;
}

static json_object *jval(struct val v)
{
	if (v.is_int)
		return json_object_new_int64(v.i);
	return isfinite(v.d) ? json_object_new_double(v.d) : json_object_new_null();
}

/* recomputed / computed over the run; -1 without both or with no token computed. */
static double tax(const struct lg_server *s, struct val *r, struct val *c)
{
	if (counter(s, RECOMPUTED, r) || counter(s, COMPUTED, c) || !(c->d > 0))
		return -1;
	return r->d / c->d;
}

/* Swapped bytes per second of the run; -1 without them or a run of no time. */
static double swap_rate(const struct lg_server *s, double duration_s, struct val *b)
{
	if (counter(s, SWAPPED, b) || !(duration_s > 0) || !isfinite(b->d))
		return -1;
	return b->d / duration_s;
}

/* A ratio or a rate, or null (x < 0: none; never Infinity or NaN, which JSON lacks). */
static json_object *opt(double x)
{
	return x >= 0 && isfinite(x) ? json_object_new_double(x) : json_object_new_null();
}

json_object *lg_server_json(const struct lg_server *s, double duration_s)
{
	json_object *o, *c, *g;
	struct val r, k;
	size_t i;

	if (!s->ok)
		return json_object_new_null();
	o = json_object_new_object();
	c = json_object_new_object();
	g = json_object_new_object();
	for (i = 0; i < s->after.n; i++) {
		const struct lg_sample *a = &s->after.s[i];

		if (name_ends(a, "_total"))
			json_object_object_add(c, a->key,
					       jval(delta(a, lg_metrics_find(&s->before, a->key))));
		else if (!name_ends(a, "_bucket") && !name_ends(a, "_sum") &&
			 !name_ends(a, "_count"))
			json_object_object_add(g, a->key, jval(value(a)));
	}
	json_object_object_add(o, "counters", c);
	json_object_object_add(o, "gauges", g);
	json_object_object_add(o, "recompute_tax", opt(tax(s, &r, &k)));
	json_object_object_add(o, "swap_bytes_per_s", opt(swap_rate(s, duration_s, &r)));
	return o;
}

static const char *fmt(char *buf, size_t n, struct val v)
{
	if (v.is_int)
		snprintf(buf, n, "%lld", v.i);
	else
		snprintf(buf, n, "%.6g", v.d);
	return buf;
}

static void preemptions(FILE *f, const struct lg_server *s)
{
	static const char *const keys[] = { SWAPS, RECOMPUTES, SWAP_INS };
	static const char *const words[] = { "swaps", "recomputes", "swapped back in" };
	const char *sep = "  preemptions: ";
	char buf[32];
	struct val v;
	int k;

	for (k = 0; k < 3; k++) {
		if (counter(s, keys[k], &v))
			continue;
		fprintf(f, "%s%s %s", sep, fmt(buf, sizeof(buf), v), words[k]);
		sep = ", ";
	}
	if (*sep == ',')
		fputc('\n', f);
}

void lg_server_table(FILE *f, const struct lg_server *s, double duration_s)
{
	static const char *const known[] = { RECOMPUTED, SWAPS, SWAP_INS, RECOMPUTES, YIELDS,
					     SWAPPED, SWAP_BW };
	const struct lg_sample *bw;
	char b1[32], b2[32];
	struct val r, c;
	double x;
	size_t i;

	if (!s->ok)
		return;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (lg_metrics_find(&s->after, known[i]))
			break;
	if (i == sizeof(known) / sizeof(known[0]))
		return;
	fprintf(f, "server (its /metrics, changes over the run):\n");
	if (!counter(s, RECOMPUTED, &r)) {
		x = tax(s, &r, &c);
		fprintf(f, "  recompute tax: %s recomputed tokens", fmt(b1, sizeof(b1), r));
		if (x >= 0 && isfinite(x))
			fprintf(f, " of %s computed (%.1f%%)\n", fmt(b2, sizeof(b2), c), 100 * x);
		else if (!counter(s, COMPUTED, &c))
			fprintf(f, " of %s computed (-)\n", fmt(b2, sizeof(b2), c));
		else
			fprintf(f, " (no computed tokens counter)\n");
	}
	preemptions(f, s);
	if (!counter(s, YIELDS, &r))
		fprintf(f, "  yields: %s\n", fmt(b1, sizeof(b1), r));
	bw = lg_metrics_find(&s->after, SWAP_BW);
	if (!counter(s, SWAPPED, &r)) {
		x = swap_rate(s, duration_s, &r);
		fprintf(f, "  swapped: %s bytes", fmt(b1, sizeof(b1), r));
		if (x >= 0 && isfinite(x))
			fprintf(f, " (%.0f bytes/s)", x);
		if (bw)
			fprintf(f, "; swap bandwidth %s bytes/s", fmt(b2, sizeof(b2), value(bw)));
		fputc('\n', f);
	} else if (bw) {
		fprintf(f, "  swap bandwidth: %s bytes/s\n", fmt(b2, sizeof(b2), value(bw)));
	}
}
