// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - the profile loader: "key = value" lines, '#' to the end of a line a comment,
 * blank lines skipped; every key known, given once; the link presets; the model's derived sizes
 * (see profile.h).
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

/*
 * The link presets (Documentation/sim.rst, "Links"): usable bandwidth, not line rate, and a
 * fixed cost per transfer (the copy's launch, the DMA or RDMA set-up, its completion seen).
 */
const struct sim_link sim_links[] = {
	{ "pcie4", 25, 20, "PCIe Gen4 x16 (32 GB/s raw one way)" },
	{ "pcie5", 55, 20, "PCIe Gen5 x16 (64 GB/s raw one way)" },
	{ "nvlink3", 270, 10, "A100 NVLink3 (300 GB/s one way)" },
	{ "nvlink4", 405, 10, "H100 NVLink4 (450 GB/s one way)" },
	{ "100gbe", 11, 30, "100 GbE RDMA (12.5 GB/s line rate)" },
	{ "400gbe", 45, 30, "400 GbE RDMA (50 GB/s line rate)" },
};

const unsigned int sim_nr_links = sizeof(sim_links) / sizeof(sim_links[0]);

const struct sim_link *sim_link_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < sim_nr_links; i++)
		if (!strcmp(sim_links[i].name, name))
			return &sim_links[i];
	return NULL;
}

enum { NUM, TEXT, LINK };
/* Required: always, or unless the key's link preset is given. */
enum { OPT, REQ, REQ_NO_LINK };

/* A key: its field, its kind, whether required, and the least and most value (numbers). */
static const struct key {
	const char *name;
	size_t off;
	int kind, required;
	double min, max;
} keys[] = {
	{ "name", OFF(name), TEXT, REQ, 0, 0 },
	{ "model", OFF(model), TEXT, REQ, 0, 0 },
	{ "gpu", OFF(gpu), TEXT, REQ, 0, 0 },
	{ "swap_link", OFF(swap_link), LINK, OPT, 0, 0 },
	{ "net_link", OFF(net_link), LINK, OPT, 0, 0 },
	{ "layers", OFF(layers), NUM, REQ, 1, 1000 },
	{ "kv_heads", OFF(kv_heads), NUM, REQ, 1, 1024 },
	{ "head_dim", OFF(head_dim), NUM, REQ, 1, 4096 },
	{ "dtype_bytes", OFF(dtype_bytes), NUM, REQ, 0.5, 8 },
	{ "tp", OFF(tp), NUM, OPT, 1, 64 },
	{ "block_tokens", OFF(block_tokens), NUM, OPT, 1, 65536 },
	{ "gpu_mem_gib", OFF(gpu_mem_gib), NUM, REQ, 0.001, 1e6 },
	{ "mem_util", OFF(mem_util), NUM, OPT, 0.01, 1 },
	{ "weights_gib", OFF(weights_gib), NUM, REQ, 0, 1e6 },
	{ "reserve_gib", OFF(reserve_gib), NUM, OPT, 0, 1e6 },
	{ "host_mem_gib", OFF(host_mem_gib), NUM, OPT, 0, 1e7 },
	{ "swap_gbps", OFF(swap_gbps), NUM, REQ_NO_LINK, 0.001, 1e5 },
	{ "swap_transfer_us", OFF(swap_transfer_us), NUM, OPT, 0, 1e7 },
	{ "net_gbps", OFF(net_gbps), NUM, OPT, 0.001, 1e5 },
	{ "net_transfer_us", OFF(net_transfer_us), NUM, OPT, 0, 1e7 },
	{ "step_floor_us", OFF(step_floor_us), NUM, OPT, 0, 1e9 },
	{ "floor_linear", OFF(floor_linear), NUM, OPT, 0, 1 },
	{ "step_base_us", OFF(step_base_us), NUM, REQ, 0, 1e9 },
	{ "prefill_token_us", OFF(prefill_token_us), NUM, REQ, 0, 1e9 },
	{ "decode_token_us", OFF(decode_token_us), NUM, REQ, 0, 1e9 },
	{ "context_token_us", OFF(context_token_us), NUM, OPT, 0, 1e9 },
	{ "prefill_quad_us", OFF(prefill_quad_us), NUM, OPT, 0, 1e9 },
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

	if (k->kind == LINK && !sim_link_find(v)) {
		char names[256];
		size_t n = 0;
		unsigned int i;

		for (i = 0; i < sim_nr_links && n < sizeof(names); i++)
			n += snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "",
				      sim_links[i].name);
		return fail(err, errlen, path, line, "%s: unknown link \"%s\" (%s)", k->name, v,
			    names);
	}
	if (k->kind != NUM) {
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

static size_t key_index(const char *name)
{
	size_t i;

	for (i = 0; i < NR_KEYS; i++)
		if (!strcmp(keys[i].name, name))
			break;
	return i;
}

/* A link preset's figures, where the file gave no number of its own. */
static void apply_link(const char *link, double *gbps, double *transfer_us, const int *seen,
		       const char *gbps_key, const char *transfer_key)
{
	const struct sim_link *l = *link ? sim_link_find(link) : NULL;

	if (!l)
		return;
	if (!seen[key_index(gbps_key)])
		*gbps = l->gbps;
	if (!seen[key_index(transfer_key)])
		*transfer_us = l->transfer_us;
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
		i = key_index(s);
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
	apply_link(p->swap_link, &p->swap_gbps, &p->swap_transfer_us, seen, "swap_gbps",
		   "swap_transfer_us");
	apply_link(p->net_link, &p->net_gbps, &p->net_transfer_us, seen, "net_gbps",
		   "net_transfer_us");
	for (i = 0; i < NR_KEYS; i++)
		if ((keys[i].required == REQ && !seen[i]) ||
		    (keys[i].required == REQ_NO_LINK && !seen[i] && !*p->swap_link)) {
			fail(err, errlen, path, 0, "no \"%s\"%s", keys[i].name,
			     keys[i].required == REQ_NO_LINK ? " (nor swap_link)" : "");
			goto out;
		}
	if (p->floor_linear != 0 && p->floor_linear != 1) {
		fail(err, errlen, path, 0, "floor_linear: not 0 or 1");
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
	double lin = p->step_base_us + p->prefill_token_us * b->prefill_tokens +
		     p->decode_token_us * b->decode_tokens;
	double attn = p->context_token_us * b->context_tokens + p->prefill_quad_us * b->quad;
	double us;

	if (p->floor_linear)
		us = fmax(lin, p->step_floor_us) + attn;
	else
		us = fmax(lin + attn, p->step_floor_us);
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
