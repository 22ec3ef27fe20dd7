// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - the profile loader: "key = value" lines, '#' to the end of a line a comment,
 * blank lines skipped; every key known, given once; the model's derived sizes (see profile.h).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

#define OFF(f) offsetof(struct sim_profile, f)

/* A key: its field, whether text, whether required, and the least value (numbers). */
static const struct key {
	const char *name;
	size_t off;
	int text, required;
	double min, max;
} keys[] = {
	{ "name", OFF(name), 1, 1, 0, 0 },
	{ "model", OFF(model), 1, 1, 0, 0 },
	{ "gpu", OFF(gpu), 1, 1, 0, 0 },
	{ "layers", OFF(layers), 0, 1, 1, 1000 },
	{ "kv_heads", OFF(kv_heads), 0, 1, 1, 1024 },
	{ "head_dim", OFF(head_dim), 0, 1, 1, 4096 },
	{ "dtype_bytes", OFF(dtype_bytes), 0, 1, 0.5, 8 },
	{ "tp", OFF(tp), 0, 0, 1, 64 },
	{ "block_tokens", OFF(block_tokens), 0, 0, 1, 65536 },
	{ "gpu_mem_gib", OFF(gpu_mem_gib), 0, 1, 0.001, 1e6 },
	{ "mem_util", OFF(mem_util), 0, 0, 0.01, 1 },
	{ "weights_gib", OFF(weights_gib), 0, 1, 0, 1e6 },
	{ "reserve_gib", OFF(reserve_gib), 0, 0, 0, 1e6 },
	{ "host_mem_gib", OFF(host_mem_gib), 0, 0, 0, 1e7 },
	{ "swap_gbps", OFF(swap_gbps), 0, 1, 0.001, 1e5 },
	{ "swap_transfer_us", OFF(swap_transfer_us), 0, 0, 0, 1e7 },
	{ "net_gbps", OFF(net_gbps), 0, 0, 0.001, 1e5 },
	{ "net_transfer_us", OFF(net_transfer_us), 0, 0, 0, 1e7 },
	{ "step_floor_us", OFF(step_floor_us), 0, 0, 0, 1e9 },
	{ "step_base_us", OFF(step_base_us), 0, 1, 0, 1e9 },
	{ "prefill_token_us", OFF(prefill_token_us), 0, 1, 0, 1e9 },
	{ "decode_token_us", OFF(decode_token_us), 0, 1, 0, 1e9 },
	{ "context_token_us", OFF(context_token_us), 0, 0, 0, 1e9 },
	{ "prefill_quad_us", OFF(prefill_quad_us), 0, 0, 0, 1e9 },
};

#define NR_KEYS (sizeof(keys) / sizeof(keys[0]))

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

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static void defaults(struct sim_profile *p)
{
	memset(p, 0, sizeof(*p));
	p->tp = 1;
	p->block_tokens = 16;
	p->mem_util = 0.9;
}

static int set(const struct key *k, struct sim_profile *p, const char *v, const char *path,
	       size_t line, char *err, size_t errlen)
{
	char *end;
	double d;

	if (k->text) {
		if (!*v || strlen(v) >= SIM_NAME_MAX)
			return fail(err, errlen, path, line, "%s: empty or longer than %d", k->name,
				    SIM_NAME_MAX - 1);
		strcpy((char *)p + k->off, v);
		return 0;
	}
	errno = 0;
	d = strtod(v, &end);
	if (end == v || *end || errno || !isfinite(d))
		return fail(err, errlen, path, line, "%s: \"%s\" is not a number", k->name, v);
	if (d < k->min || d > k->max)
		return fail(err, errlen, path, line, "%s: %g not in %g..%g", k->name, d, k->min,
			    k->max);
	*(double *)((char *)p + k->off) = d;
	return 0;
}

int sim_profile_load(const char *path, struct sim_profile *p, char *err, size_t errlen)
{
	int seen[NR_KEYS] = { 0 };
	size_t line = 0, cap = 0, i;
	char *buf = NULL;
	FILE *f;
	int ret = -1;

	defaults(p);
	f = fopen(path, "r");
	if (!f)
		return fail(err, errlen, path, 0, "%s", strerror(errno));
	while (getline(&buf, &cap, f) > 0) {
		char *s = buf, *eq, *hash;

		line++;
		hash = strchr(s, '#');
		if (hash)
			*hash = 0;
		s = trim(s);
		if (!*s)
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			fail(err, errlen, path, line, "not \"key = value\"");
			goto out;
		}
		*eq = 0;
		s = trim(s);
		for (i = 0; i < NR_KEYS; i++)
			if (!strcmp(keys[i].name, s))
				break;
		if (i == NR_KEYS) {
			fail(err, errlen, path, line, "unknown key \"%s\"", s);
			goto out;
		}
		if (seen[i]) {
			fail(err, errlen, path, line, "%s given twice", s);
			goto out;
		}
		seen[i] = 1;
		if (set(&keys[i], p, trim(eq + 1), path, line, err, errlen))
			goto out;
	}
	if (ferror(f)) {
		fail(err, errlen, path, 0, "%s", strerror(errno));
		goto out;
	}
	for (i = 0; i < NR_KEYS; i++)
		if (keys[i].required && !seen[i]) {
			fail(err, errlen, path, 0, "no \"%s\"", keys[i].name);
			goto out;
		}
	if (p->block_tokens != floor(p->block_tokens)) {
		fail(err, errlen, path, 0, "block_tokens: not a whole number");
		goto out;
	}
	ret = sim_profile_derive(p, err, errlen);
	if (ret) {
		/* err names the problem; prefix the file. */
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "%s", err);
		fail(err, errlen, path, 0, "%s", tmp);
	}
out:
	free(buf);
	fclose(f);
	return ret;
}

int sim_profile_derive(struct sim_profile *p, char *err, size_t errlen)
{
	double kv = 2 * p->layers * p->kv_heads * p->head_dim * p->dtype_bytes / p->tp;
	double gib = 1024.0 * 1024 * 1024, dev, blocks;

	p->kv_bytes_per_token = (uint64_t)ceil(kv);
	p->block_bytes = p->kv_bytes_per_token * (uint64_t)p->block_tokens;
	dev = p->gpu_mem_gib * p->mem_util - p->weights_gib - p->reserve_gib;
	blocks = floor(dev * gib / p->block_bytes);
	if (!(blocks >= 1)) {
		snprintf(err, errlen, "no GPU memory left for the KV cache (%.2f GiB)", dev);
		return -1;
	}
	p->gpu_blocks = blocks > 16777216 ? 16777216 : (uint32_t)blocks;
	blocks = floor(p->host_mem_gib * gib / p->block_bytes);
	p->host_blocks = blocks > 16777216 ? 16777216 : (uint32_t)blocks;
	return 0;
}

uint64_t sim_step_ns(const struct sim_profile *p, const struct sim_batch *b)
{
	double us = p->step_base_us + p->prefill_token_us * b->prefill_tokens +
		    p->decode_token_us * b->decode_tokens +
		    p->context_token_us * b->context_tokens + p->prefill_quad_us * b->quad;

	if (us < p->step_floor_us)
		us = p->step_floor_us;
	us = llround(us * 1000);
	return us < 1 ? 1 : (uint64_t)us;
}

uint64_t sim_swap_ns(const struct sim_profile *p, uint64_t blocks)
{
	double ns = p->swap_transfer_us * 1000 + (double)blocks * p->block_bytes / p->swap_gbps;

	ns = llround(ns);
	return ns < 1 ? 1 : (uint64_t)ns;
}

uint64_t sim_net_ns(const struct sim_profile *p, uint64_t blocks)
{
	double ns = p->net_transfer_us * 1000 + (double)blocks * p->block_bytes / p->net_gbps;

	ns = llround(ns);
	return ns < 1 ? 1 : (uint64_t)ns;
}
