// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim calibrate - the step logs read, the step model fitted by non-negative least
 * squares, the profile written (calibrate.h).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"

#define PROG		"kvaccel-sim calibrate"
#define HEADER		"# kvaccel-serve step log v1"
#define COLUMNS		"kind,t_ns,runs,prefill_tokens,decode_runs,context_tokens,quad,yielded," \
			"computed,compute_ns,step_ns,after_idle"
#define NR_STEP_FIELDS	12
#define NR_SWAP_FIELDS	7
#define MAX_FIELDS	16

static const char *const step_fields[NR_STEP_FIELDS] = {
	"kind", "t_ns", "runs", "prefill_tokens", "decode_runs", "context_tokens", "quad",
	"yielded", "computed", "compute_ns", "step_ns", "after_idle",
};

static const char *const swap_fields[NR_SWAP_FIELDS] = {
	"kind", "t_ns", "dir", "blocks", "bytes", "ns", "status",
};

static int fail(char *err, size_t errlen, const char *path, size_t line, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	if (line)
		n = snprintf(err, errlen, "%s:%zu: ", path, line);
	else
		n = snprintf(err, errlen, "%s: ", path);
	if (n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A whole number of at most 2^63 (and its double). */
static int whole(const char *s, double *v)
{
	unsigned long long u;
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	u = strtoull(s, &end, 10);
	if (*end || errno || u > (1ull << 63))
		return -1;
	*v = (double)u;
	return 0;
}

/* The header's key=value pairs: the shape must be there; -1 said. */
static int header(struct sim_calib *c, char *s, const char *path, size_t line, char *err,
		  size_t errlen)
{
	static const struct {
		const char *key;
		size_t off;
		int required;
	} keys[] = {
#define K(f, r) { #f, offsetof(struct sim_calib, f), r }
		K(layers, 1), K(kv_heads, 1), K(head_dim, 1), K(dtype_bytes, 1),
		K(block_tokens, 1), K(block_bytes, 1), K(blocks, 1), K(swap_blocks, 1),
		K(budget, 0), K(chunk, 0), K(max_seqs, 0), K(threads, 0),
#undef K
	};
	const size_t nr = sizeof(keys) / sizeof(keys[0]);
	struct sim_calib h = { 0 };
	int seen[16] = { 0 };
	char *tok, *save = NULL;
	size_t i;

	for (tok = strtok_r(s, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			return fail(err, errlen, path, line, "header: \"%s\" is not key=value",
				    tok);
		*eq++ = 0;
		if (!strcmp(tok, "policy") || !strcmp(tok, "preempt")) {
			char *dst = tok[1] == 'o' ? h.policy : h.preempt;

			snprintf(dst, sizeof(h.policy), "%s", eq);
			continue;
		}
		for (i = 0; i < nr; i++)
			if (!strcmp(keys[i].key, tok))
				break;
		if (i == nr)
			continue;	/* a later version's key: not needed here */
		if (whole(eq, (double *)((char *)&h + keys[i].off)))
			return fail(err, errlen, path, line, "header: %s: \"%s\" is not a number",
				    tok, eq);
		seen[i] = 1;
	}
	for (i = 0; i < nr; i++)
		if (keys[i].required && !seen[i])
			return fail(err, errlen, path, line, "header: no %s=", keys[i].key);
	if (h.layers < 1 || h.kv_heads < 1 || h.head_dim < 1 || h.dtype_bytes < 1 ||
	    h.block_tokens < 1 || h.block_bytes < 1 || h.blocks < 1)
		return fail(err, errlen, path, line, "header: a zero in the model's shape or pool");
	if (c->have_header) {
		/* The model's shape must agree; the pool is the first log's. */
		for (i = 0; i < 6; i++) {
			double a = *(double *)((char *)c + keys[i].off);
			double b = *(double *)((char *)&h + keys[i].off);

			if (a != b)
				return fail(err, errlen, path, line, "header: %s=%.0f, the first "
					    "log's is %.0f (one engine's logs only)", keys[i].key,
					    b, a);
		}
		return 0;
	}
	for (i = 0; i < nr; i++)
		*(double *)((char *)c + keys[i].off) = *(double *)((char *)&h + keys[i].off);
	memcpy(c->policy, h.policy, sizeof(c->policy));
	memcpy(c->preempt, h.preempt, sizeof(c->preempt));
	c->have_header = 1;
	return 0;
}

static int split(char *s, char **f)
{
	int n = 0;

	for (;;) {
		char *comma = strchr(s, ',');

		if (n == MAX_FIELDS)
			return n + 1;
		f[n++] = s;
		if (!comma)
			return n;
		*comma = 0;
		s = comma + 1;
	}
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	void *q;

	if (n < *cap)
		return 0;
	q = realloc(*p, (*cap ? *cap * 2 : 1024) * size);
	if (!q)
		return -1;
	*p = q;
	*cap = *cap ? *cap * 2 : 1024;
	return 0;
}

/* Numbers of fields 1.. (field 2 of a swap, its direction, is text). */
static int numbers(char **f, int nr, const char *const *names, double *v, int skip,
		   const char *path, size_t line, char *err, size_t errlen)
{
	int i;

	for (i = 1; i < nr; i++) {
		if (i == skip)
			continue;
		if (whole(f[i], &v[i]))
			return fail(err, errlen, path, line, "%s: %s \"%s\" is not a whole number",
				    f[0], names[i], f[i]);
	}
	return 0;
}

/* A step line; *prev_t: the start of the file's previous step line (< 0: none to end). */
static int step_line(struct sim_calib *c, char **f, int nr, double *prev_t, const char *path,
		     size_t line, char *err, size_t errlen)
{
	struct sim_calib_step *s;
	double v[NR_STEP_FIELDS];

	if (nr != NR_STEP_FIELDS)
		return fail(err, errlen, path, line, "step: %d fields, not %d", nr,
			    NR_STEP_FIELDS);
	if (numbers(f, nr, step_fields, v, 0, path, line, err, errlen))
		return -1;
	if (v[11] > 1)
		return fail(err, errlen, path, line, "step: after_idle %.0f is neither 0 nor 1",
			    v[11]);
	if (v[3] + v[4] < 1 || v[2] < 1)
		return fail(err, errlen, path, line, "step: no run and no token");
	if (v[9] > v[10])
		return fail(err, errlen, path, line, "step: compute_ns over step_ns");
	if (*prev_t >= 0 && v[1] < *prev_t)
		return fail(err, errlen, path, line, "step: t_ns goes back");
	/* The previous step's period: this start, if the engine did not idle in between. */
	if (*prev_t >= 0 && !v[11] && c->nr_steps)
		c->step[c->nr_steps - 1].period_ns = v[1] - *prev_t;
	*prev_t = v[1];
	if (v[7]) {
		/* A yielded run computed part of its layers: not the model's step. */
		c->yielded++;
		*prev_t = -1;
		return 0;
	}
	if (grow((void **)&c->step, &c->cap_steps, c->nr_steps, sizeof(*c->step)))
		return fail(err, errlen, path, line, "out of memory");
	s = &c->step[c->nr_steps++];
	*s = (struct sim_calib_step) { .x = { 1, v[3], v[4], v[5], v[6] }, .period_ns = -1,
				       .step_ns = v[10], .compute_ns = v[9] };
	return 0;
}

static int swap_line(struct sim_calib *c, char **f, int nr, const char *path, size_t line,
		     char *err, size_t errlen)
{
	double v[NR_SWAP_FIELDS];

	if (nr != NR_SWAP_FIELDS)
		return fail(err, errlen, path, line, "swap: %d fields, not %d", nr,
			    NR_SWAP_FIELDS);
	if (strcmp(f[2], "in") && strcmp(f[2], "out"))
		return fail(err, errlen, path, line, "swap: dir \"%s\" is neither in nor out",
			    f[2]);
	if (strcmp(f[6], "0")) {
		char *end;

		if (!*f[6] || (strtol(f[6], &end, 10), *end))
			return fail(err, errlen, path, line, "swap: status \"%s\" is not a number",
				    f[6]);
		return 0;	/* a failed copy: its time says nothing of the link */
	}
	if (numbers(f, nr, swap_fields, v, 2, path, line, err, errlen))
		return -1;
	if (v[3] < 1)
		return fail(err, errlen, path, line, "swap: no block");
	if (grow((void **)&c->swap, &c->cap_swaps, c->nr_swaps, sizeof(*c->swap)))
		return fail(err, errlen, path, line, "out of memory");
	c->swap[c->nr_swaps++] = (struct sim_calib_swap) { v[3], v[5] };
	return 0;
}

int sim_calib_read(const char *path, struct sim_calib *c, char *err, size_t errlen)
{
	size_t line = 0, cap = 0;
	double prev_t = -1;
	char *buf = NULL, *f[MAX_FIELDS + 1];
	ssize_t len;
	FILE *in;
	int ret = -1, nr;

	in = fopen(path, "r");
	if (!in)
		return fail(err, errlen, path, 0, "%s", strerror(errno));
	while ((len = getline(&buf, &cap, in)) > 0) {
		line++;
		while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = 0;
		if (line == 1) {
			if (strncmp(buf, HEADER " ", strlen(HEADER) + 1)) {
				fail(err, errlen, path, line, "not a kvaccel-serve step log (no "
				     "\"" HEADER "\" header)");
				goto out;
			}
			if (header(c, buf + strlen(HEADER) + 1, path, line, err, errlen))
				goto out;
			continue;
		}
		if (line == 2) {
			if (strcmp(buf, COLUMNS)) {
				fail(err, errlen, path, line, "not the columns \"%s\"", COLUMNS);
				goto out;
			}
			continue;
		}
		if (!len || buf[0] == '#')
			continue;
		nr = split(buf, f);
		if (!strcmp(f[0], "step")) {
			if (step_line(c, f, nr, &prev_t, path, line, err, errlen))
				goto out;
		} else if (!strcmp(f[0], "swap")) {
			if (swap_line(c, f, nr, path, line, err, errlen))
				goto out;
		} else {
			fail(err, errlen, path, line, "\"%s\" is neither a step nor a swap line",
			     f[0]);
			goto out;
		}
	}
	if (ferror(in))
		fail(err, errlen, path, 0, "%s", strerror(errno));
	else if (line < 2)
		fail(err, errlen, path, line, "not a kvaccel-serve step log (%s)",
		     line ? "no column line" : "empty");
	else
		ret = 0;
out:
	free(buf);
	fclose(in);
	return ret;
}

void sim_calib_free(struct sim_calib *c)
{
	free(c->step);
	free(c->swap);
	memset(c, 0, sizeof(*c));
}

/* Solve M z = r (n x n, row major, copied) by Gaussian elimination; -1 if singular. */
static int solve(int n, const double *M, const double *r, double *z)
{
	double a[SIM_CALIB_NR][SIM_CALIB_NR + 1];
	int i, j, k;

	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++)
			a[i][j] = M[i * n + j];
		a[i][n] = r[i];
	}
	for (k = 0; k < n; k++) {
		int p = k;

		for (i = k + 1; i < n; i++)
			if (fabs(a[i][k]) > fabs(a[p][k]))
				p = i;
		if (fabs(a[p][k]) < 1e-12)
			return -1;
		for (j = 0; j <= n; j++) {
			double t = a[k][j];

			a[k][j] = a[p][j];
			a[p][j] = t;
		}
		for (i = k + 1; i < n; i++) {
			double m = a[i][k] / a[k][k];

			for (j = k; j <= n; j++)
				a[i][j] -= m * a[k][j];
		}
	}
	for (i = n - 1; i >= 0; i--) {
		double s = a[i][n];

		for (j = i + 1; j < n; j++)
			s -= a[i][j] * z[j];
		z[i] = s / a[i][i];
	}
	return 0;
}

/* The unconstrained least squares over the passive set @in; z is 0 elsewhere. */
static int solve_passive(int n, const double *G, const double *h, const int *in, double *z)
{
	double M[SIM_CALIB_NR * SIM_CALIB_NR], r[SIM_CALIB_NR], y[SIM_CALIB_NR];
	int idx[SIM_CALIB_NR], m = 0, i, j;

	for (i = 0; i < n; i++) {
		z[i] = 0;
		if (in[i])
			idx[m++] = i;
	}
	for (i = 0; i < m; i++) {
		for (j = 0; j < m; j++)
			M[i * m + j] = G[idx[i] * n + idx[j]];
		r[i] = h[idx[i]];
	}
	if (m && solve(m, M, r, y))
		return -1;
	for (i = 0; i < m; i++)
		z[idx[i]] = y[i];
	return 0;
}

/*
 * Lawson and Hanson's active-set NNLS (Solving Least Squares Problems, 1974, ch. 23) on the
 * normal equations: the gradient's components w = h - G x say which variable to free next.
 */
int sim_nnls(int n, const double *G, const double *h, double *x)
{
	int in[SIM_CALIB_NR] = { 0 }, iter, i, j;
	double w[SIM_CALIB_NR], z[SIM_CALIB_NR], tol = 1e-10;

	for (i = 0; i < n; i++) {
		x[i] = 0;
		tol = fmax(tol, 1e-10 * fabs(h[i]));
	}
	for (iter = 0; iter < 100; iter++) {
		int best = -1, inner;

		for (i = 0; i < n; i++) {
			w[i] = h[i];
			for (j = 0; j < n; j++)
				w[i] -= G[i * n + j] * x[j];
			if (!in[i] && G[i * n + i] > 0 && w[i] > tol &&
			    (best < 0 || w[i] > w[best]))
				best = i;
		}
		if (best < 0)
			return 0;
		in[best] = 1;
		for (inner = 0; inner < 100; inner++) {
			double alpha = 1;
			int neg = 0;

			if (solve_passive(n, G, h, in, z)) {
				/* Dependent on the passive ones: leave it out. */
				in[best] = 0;
				break;
			}
			for (i = 0; i < n; i++)
				if (in[i] && z[i] <= 0) {
					double a = x[i] / (x[i] - z[i]);

					if (!neg || a < alpha)
						alpha = a;
					neg = 1;
				}
			if (!neg) {
				memcpy(x, z, n * sizeof(*x));
				break;
			}
			for (i = 0; i < n; i++) {
				x[i] += alpha * (z[i] - x[i]);
				if (in[i] && x[i] <= 1e-15 * (1 + fabs(z[i]))) {
					x[i] = 0;
					in[i] = 0;
				}
			}
		}
		if (inner == 100)
			return -1;
		if (!in[best])
			return 0;	/* the only candidate was dependent: x stays optimal */
	}
	return -1;
}

double sim_calib_predict(const struct sim_calib_fit *f, const double *x)
{
	double us = 0;
	int j;

	for (j = 0; j < SIM_CALIB_NR; j++)
		us += f->coef_us[j] * x[j];
	return us < f->floor_us ? f->floor_us : us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The step's measured duration in us (< 0: none). */
static double measured(const struct sim_calib_step *s, enum sim_calib_time time, double over)
{
	switch (time) {
	case SIM_CALIB_PERIOD:
		return (s->period_ns >= 0 ? s->period_ns : s->step_ns + over) / 1000;
	case SIM_CALIB_STEP:
		return s->step_ns / 1000;
	default:
		return s->compute_ns / 1000;
	}
}

/* R^2 and the relative errors' median and p90 of the fit over @y. */
static void quality(const struct sim_calib *c, const double *y, struct sim_calib_fit *f,
		    double *rel)
{
	double mean = 0, sst = 0, sse = 0;
	size_t i, n = c->nr_steps;

	for (i = 0; i < n; i++)
		mean += y[i] / n;
	for (i = 0; i < n; i++) {
		double p = sim_calib_predict(f, c->step[i].x);

		sst += (y[i] - mean) * (y[i] - mean);
		sse += (y[i] - p) * (y[i] - p);
		rel[i] = y[i] > 0 ? fabs(p - y[i]) / y[i] : 0;
	}
	f->r2 = sst > 0 ? 1 - sse / sst : 1;
	qsort(rel, n, sizeof(*rel), cmp_double);
	f->rel_p50 = rel[n / 2];
	f->rel_p90 = rel[(size_t)(0.9 * (n - 1))];
}

/* The squared error of @f over the steps, each weighted by @w (NULL: 1). */
static double sse_of(const struct sim_calib *c, const double *y, const double *w,
		     const struct sim_calib_fit *f)
{
	double sse = 0;
	size_t i;

	for (i = 0; i < c->nr_steps; i++) {
		double d = (y[i] - sim_calib_predict(f, c->step[i].x)) * (w ? w[i] : 1);

		sse += d * d;
	}
	return sse;
}

/*
 * The NNLS fit of y over the steps' shapes, row i weighted by w[i] (NULL: 1), into coef (us).
 * The columns are scaled to unit RMS first: Q is ~1e6 a step where the base is 1.
 */
static int nnls_fit(const struct sim_calib *c, const double *y, const double *w, double *coef)
{
	double G[SIM_CALIB_NR * SIM_CALIB_NR] = { 0 }, h[SIM_CALIB_NR] = { 0 };
	double scale[SIM_CALIB_NR] = { 0 }, x[SIM_CALIB_NR];
	size_t i, n = c->nr_steps;
	int j, l;

	for (i = 0; i < n; i++)
		for (j = 0; j < SIM_CALIB_NR; j++)
			scale[j] += pow(c->step[i].x[j] * (w ? w[i] : 1), 2);
	for (j = 0; j < SIM_CALIB_NR; j++)
		scale[j] = scale[j] > 0 ? sqrt(scale[j] / n) : 0;
	for (i = 0; i < n; i++) {
		double a[SIM_CALIB_NR], wi = w ? w[i] : 1;

		for (j = 0; j < SIM_CALIB_NR; j++)
			a[j] = scale[j] > 0 ? c->step[i].x[j] * wi / scale[j] : 0;
		for (j = 0; j < SIM_CALIB_NR; j++) {
			h[j] += a[j] * y[i] * wi;
			for (l = 0; l < SIM_CALIB_NR; l++)
				G[j * SIM_CALIB_NR + l] += a[j] * a[l];
		}
	}
	if (sim_nnls(SIM_CALIB_NR, G, h, x))
		return -1;
	for (j = 0; j < SIM_CALIB_NR; j++)
		coef[j] = scale[j] > 0 ? x[j] / scale[j] : 0;
	return 0;
}

/* The swap link: ns = fixed + blocks x per block, NNLS; GB/s of the simulator's block bytes. */
static void fit_swaps(const struct sim_calib *c, struct sim_calib_fit *f)
{
	double G[4] = { 0 }, h[2] = { 0 }, x[2], s[2] = { 0 }, bb;
	size_t i;

	f->nr_swaps = c->nr_swaps;
	if (!c->nr_swaps)
		return;
	for (i = 0; i < c->nr_swaps; i++) {
		s[0] += 1;
		s[1] += c->swap[i].blocks * c->swap[i].blocks;
	}
	s[0] = sqrt(s[0]);
	s[1] = sqrt(s[1]);
	for (i = 0; i < c->nr_swaps; i++) {
		double a[2] = { 1 / s[0], c->swap[i].blocks / s[1] };

		G[0] += a[0] * a[0];
		G[1] += a[0] * a[1];
		G[3] += a[1] * a[1];
		h[0] += a[0] * c->swap[i].ns;
		h[1] += a[1] * c->swap[i].ns;
	}
	G[2] = G[1];
	bb = 2 * c->layers * c->kv_heads * c->head_dim * c->dtype_bytes * c->block_tokens;
	if (sim_nnls(2, G, h, x) || x[1] <= 0) {
		double blocks = 0, ns = 0;

		for (i = 0; i < c->nr_swaps; i++) {
			blocks += c->swap[i].blocks;
			ns += c->swap[i].ns;
		}
		f->swap_transfer_us = 0;
		f->swap_gbps = ns > 0 ? blocks * bb / ns : 1e5;
		return;
	}
	f->swap_transfer_us = x[0] / s[0] / 1000;
	f->swap_gbps = bb / (x[1] / s[1]);
	if (f->swap_gbps > 1e5)
		f->swap_gbps = 1e5;
}

int sim_calib_fit(const struct sim_calib *c, enum sim_calib_time time, unsigned int flags,
		  struct sim_calib_fit *f, char *err, size_t errlen)
{
	double *y, *tmp, *w = NULL, sse;
	size_t i, n = c->nr_steps, k;
	int it, ret = -1;

	memset(f, 0, sizeof(*f));
	if (n < SIM_CALIB_NR) {
		snprintf(err, errlen, "%zu steps to fit (at least %d wanted)", n, SIM_CALIB_NR);
		return -1;
	}
	y = calloc(n, sizeof(*y));
	tmp = calloc(n, sizeof(*tmp));
	if (flags & SIM_CALIB_RELATIVE)
		w = calloc(n, sizeof(*w));
	if (!y || !tmp || ((flags & SIM_CALIB_RELATIVE) && !w)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* The loop's own time between two steps, for the steps whose period is not known. */
	for (i = k = 0; i < n; i++)
		if (c->step[i].period_ns >= 0)
			tmp[k++] = c->step[i].period_ns - c->step[i].step_ns;
	if (k) {
		qsort(tmp, k, sizeof(*tmp), cmp_double);
		f->overhead_ns = fmax(0, tmp[k / 2]);
	}
	for (i = 0; i < n; i++)
		y[i] = measured(&c->step[i], time, f->overhead_ns);
	/*
	 * The mean step time of a shape, by least squares. Relative: iteratively reweighted, each
	 * step by 1 / the previous fit's time for it (not 1 / its own time, which would favour
	 * the steps the noise made short), so that the many short steps count as much as the
	 * few long ones.
	 */
	for (it = 0; it < ((flags & SIM_CALIB_RELATIVE) ? 6 : 1); it++) {
		if (it)
			for (i = 0; i < n; i++)
				w[i] = 1 / fmax(sim_calib_predict(f, c->step[i].x), 1e-3);
		if (nnls_fit(c, y, it ? w : NULL, f->coef_us)) {
			snprintf(err, errlen, "the least squares did not converge");
			goto out;
		}
	}
	f->n = n;
	sse = sse_of(c, y, it > 1 ? w : NULL, f);
	if (flags & SIM_CALIB_FLOOR) {
		/* A floor: the median of the tenth of the steps the model makes shortest. */
		struct sim_calib_fit g = *f;
		double lim;
		size_t m = 0;

		for (i = 0; i < n; i++)
			tmp[i] = sim_calib_predict(f, c->step[i].x);
		qsort(tmp, n, sizeof(*tmp), cmp_double);
		k = n / 10 > 5 ? n / 10 : 5;
		lim = tmp[k - 1];
		for (i = 0; i < n; i++)
			if (sim_calib_predict(f, c->step[i].x) <= lim)
				tmp[m++] = y[i];
		qsort(tmp, m, sizeof(*tmp), cmp_double);
		g.floor_us = tmp[m / 2];
		if (sse_of(c, y, it > 1 ? w : NULL, &g) < 0.99 * sse)
			*f = g;
	}
	quality(c, y, f, tmp);
	fit_swaps(c, f);
	ret = 0;
out:
	free(y);
	free(tmp);
	free(w);
	return ret;
}

void sim_calib_write_profile(FILE *out, const struct sim_calib *c, const struct sim_calib_fit *f,
			     const char *name, const char *gpu, const char *sources)
{
	double gib = 1024.0 * 1024 * 1024;
	double bb = 2 * c->layers * c->kv_heads * c->head_dim * c->dtype_bytes * c->block_tokens;

	fprintf(out, "# %s: kvaccel-serve (the reference engine), fitted by kvaccel-sim calibrate\n"
		"# from %s.\n"
		"# %zu steps, R^2 %.4f, relative error per step: median %.1f %%, p90 %.1f %%%s.\n",
		name, sources, f->n, f->r2, 100 * f->rel_p50, 100 * f->rel_p90,
		f->floor_us > 0 ? " (with the floor)" : "");
	fprintf(out, "name = %s\nmodel = kvaccel-serve %.0fL %.0fx%.0f fp32\ngpu = %s\n", name,
		c->layers, c->kv_heads, c->head_dim, gpu);
	fprintf(out, "layers = %.0f\nkv_heads = %.0f\nhead_dim = %.0f\ndtype_bytes = %.0f\n"
		"block_tokens = %.0f\n", c->layers, c->kv_heads, c->head_dim, c->dtype_bytes,
		c->block_tokens);
	fprintf(out, "# The engine's pool: %.0f compute blocks and %.0f swap blocks of %.0f bytes\n"
		"# (the simulator's block bytes; kvaccel-serve's are %.0f). The loader derives\n"
		"# blocks from GiB: 1 GiB of \"weights\" keeps gpu_mem_gib in its range, half a\n"
		"# block more than the pool keeps the floor() exact.\n", c->blocks, c->swap_blocks,
		bb, c->block_bytes);
	fprintf(out, "gpu_mem_gib = %.17g\nmem_util = 1\nweights_gib = 1\n",
		1 + (c->blocks + 0.5) * bb / gib);
	fprintf(out, "host_mem_gib = %.17g\n", c->swap_blocks ? (c->swap_blocks + 0.5) * bb / gib :
		0.0);
	if (f->nr_swaps)
		fprintf(out, "# The swap link: %zu measured transfers.\n", f->nr_swaps);
	else
		fprintf(out, "# No swap measured: the link is a placeholder.\n");
	fprintf(out, "swap_gbps = %.6g\nswap_transfer_us = %.6g\n", f->nr_swaps ? f->swap_gbps : 1,
		f->swap_transfer_us);
	fprintf(out, "step_floor_us = %.6g\nstep_base_us = %.6g\nprefill_token_us = %.6g\n"
		"decode_token_us = %.6g\ncontext_token_us = %.6g\nprefill_quad_us = %.6g\n",
		f->floor_us, f->coef_us[0], f->coef_us[1], f->coef_us[2], f->coef_us[3],
		f->coef_us[4]);
}

static const char usage[] =
	"usage: kvaccel-sim calibrate [options] STEP_LOG...\n"
	"  STEP_LOG            kvaccel-serve --step-log files (one engine's)\n"
	"  --out FILE          write the fitted profile (default: print it)\n"
	"  --name NAME         the profile's name (default kvaccel-serve)\n"
	"  --gpu TEXT          what it ran on (default \"kvaccel-serve host CPU\")\n"
	"  --time period|step|compute   the step's duration (default period: start to the\n"
	"                      next step's start)\n"
	"  --weight relative|absolute   minimise the steps' relative errors (default) or the\n"
	"                      absolute ones (the long steps count more)\n"
	"  --no-floor          no step_floor_us\n";

static int bad(const char *opt, const char *v, const char *why)
{
	fprintf(stderr, PROG ": %s %s: %s\n", opt, v, why);
	return 2;
}

int sim_calibrate_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'n' },
		{ "gpu", required_argument, NULL, 'g' },
		{ "time", required_argument, NULL, 't' },
		{ "no-floor", no_argument, NULL, 'F' },
		{ "weight", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *name = "kvaccel-serve", *gpu = "kvaccel-serve host CPU";
	static const char *const time_names[] = { "period", "step", "compute" };
	enum sim_calib_time time = SIM_CALIB_PERIOD;
	struct sim_calib c = { 0 };
	struct sim_calib_fit f;
	char err[512], sources[512] = "";
	unsigned int flags = SIM_CALIB_FLOOR | SIM_CALIB_RELATIVE;
	int o, ret = 2, i;
	FILE *pf;

	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (o) {
		case 'o':
			out = optarg;
			break;
		case 'n':
			if (!*optarg || strlen(optarg) > 63 || strchr(optarg, '#'))
				return bad("--name", optarg, "1 to 63 characters, no '#'");
			name = optarg;
			break;
		case 'g':
			if (!*optarg || strlen(optarg) > 63 || strchr(optarg, '#'))
				return bad("--gpu", optarg, "1 to 63 characters, no '#'");
			gpu = optarg;
			break;
		case 't':
			for (i = 0; i < 3; i++)
				if (!strcmp(optarg, time_names[i]))
					break;
			if (i == 3)
				return bad("--time", optarg, "none of period, step, compute");
			time = (enum sim_calib_time)i;
			break;
		case 'F':
			flags &= ~SIM_CALIB_FLOOR;
			break;
		case 'w':
			if (!strcmp(optarg, "absolute"))
				flags &= ~SIM_CALIB_RELATIVE;
			else if (!strcmp(optarg, "relative"))
				flags |= SIM_CALIB_RELATIVE;
			else
				return bad("--weight", optarg, "neither relative nor absolute");
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case ':':
			fprintf(stderr, PROG ": %s needs a value\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, PROG ": unknown option '%s'\n%s", argv[optind - 1], usage);
			return 2;
		}
	}
	if (optind == argc) {
		fprintf(stderr, PROG ": no step log given\n%s", usage);
		return 2;
	}
	for (i = optind; i < argc; i++) {
		size_t len = strlen(sources);

		if (sim_calib_read(argv[i], &c, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			goto out;
		}
		snprintf(sources + len, sizeof(sources) - len, "%s%s", len ? ", " : "", argv[i]);
	}
	if (sim_calib_fit(&c, time, flags, &f, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	printf("kvaccel-sim calibrate: %zu steps (%zu yielded, left out), %zu swaps; time: %s"
	       " (the loop's own time between steps: %.1f us); %s errors\n", f.n, c.yielded,
	       c.nr_swaps, time_names[time], f.overhead_ns / 1000,
	       flags & SIM_CALIB_RELATIVE ? "relative" : "absolute");
	printf("  step_us = max(%.4g, %.4g + %.4g P + %.4g D + %.4g C + %.4g Q)\n", f.floor_us,
	       f.coef_us[0], f.coef_us[1], f.coef_us[2], f.coef_us[3], f.coef_us[4]);
	printf("  R^2 %.4f; relative error per step: median %.1f %%, p90 %.1f %%\n", f.r2,
	       100 * f.rel_p50, 100 * f.rel_p90);
	if (f.nr_swaps)
		printf("  swap: %.4g us + blocks x %.0f bytes / %.4g GB/s\n", f.swap_transfer_us,
		       2 * c.layers * c.kv_heads * c.head_dim * c.dtype_bytes * c.block_tokens,
		       f.swap_gbps);
	ret = 0;
	if (!out) {
		sim_calib_write_profile(stdout, &c, &f, name, gpu, sources);
		goto out;
	}
	pf = fopen(out, "w");
	if (!pf) {
		fprintf(stderr, PROG ": --out %s: %s\n", out, strerror(errno));
		ret = 1;
		goto out;
	}
	sim_calib_write_profile(pf, &c, &f, name, gpu, sources);
	if (fclose(pf)) {
		fprintf(stderr, PROG ": --out %s: %s\n", out, strerror(errno));
		ret = 1;
	}
out:
	sim_calib_free(&c);
	return ret;
}
