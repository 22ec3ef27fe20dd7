// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-offload-gpu - KV offload between a GPU and host memory
 * through libaccel's data mover (accel_mover_*), the way an offloading
 * connector drives it: a device tier (accel_tier_create_cuda) and a host
 * tier (a memfd tier, registered with the driver by the mover), and per
 * round a store of scattered device blocks into scattered host blocks and
 * a load back into other scattered device blocks, each one mover job of
 * single-block runs; the data is checked after every round. The baseline
 * is the same bytes as one contiguous run each way (one copy). Then the
 * same store layer by layer (ACCEL_MOVER_LAYERS, one job per layer of a
 * 32-layer block) against whole blocks, the pattern of an engine
 * overlapping the transfer with compute.
 *
 * usage: kvaccel-bench-offload-gpu [-d GPU] [-s SIZE_MIB] [-r ROUNDS]
 *        (defaults: GPU 0, 512 MiB moved per direction, 3 rounds)
 * KV block sizes 64 KiB, 256 KiB and 2 MiB. Exit status: 0; 1 on an error
 * or wrong data; 4 (a skip) with no CUDA driver or no such GPU.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "accel.h"
#include "bench-common.h"

#define MAX_ROUNDS	16
#define KSFT_SKIP	4
#define LAYERS		32

static void die(const char *what, int err)
{
	fprintf(stderr, "kvaccel-bench-offload-gpu: %s: %s\n", what,
		strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(uint32_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state % n);
}

/* A random permutation of 0..n-1. */
static void shuffle(uint32_t *p, uint32_t n)
{
	uint32_t i, j, t;

	for (i = 0; i < n; i++)
		p[i] = i;
	for (i = n - 1; i > 0; i--) {
		j = rnd(i + 1);
		t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
}

/* Run one job and wait for it; its status. */
static int job(struct accel_mover *m, const struct accel_tier *const tiers[2],
	       const struct accel_bm_run *runs, uint32_t n,
	       const struct accel_mover_submit_opts *o)
{
	struct accel_mover_done d;
	uint64_t id;
	int ret = accel_mover_submit(m, tiers, 2, runs, n, o, &id);

	if (ret)
		return ret;
	ret = accel_mover_poll(m, &d, 1, -1);
	if (ret != 1)
		return ret < 0 ? ret : -EIO;
	return d.job_id == id ? d.status : -EPROTO;
}

struct size_run {
	uint64_t bb;
	uint32_t n;		/* blocks moved per direction */
	struct accel_tier *host, *dev;
	struct accel_bm_run *runs;
	uint32_t *hpos, *dpos;
};

/* Single-block runs @from[i] -> @to[i] from tier @src to tier @dst. */
static void scattered(struct accel_bm_run *r, uint32_t n, uint32_t src, const uint32_t *from,
		      uint32_t dst, const uint32_t *to)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		r[i] = (struct accel_bm_run) { .src_tier = src, .src_block = from[i],
					       .dst_tier = dst, .dst_block = to[i], .count = 1 };
}

static void fill(struct size_run *s, uint32_t round)
{
	uint32_t b;
	uint64_t i;

	for (b = 0; b < s->n; b++) {
		uint64_t *p = accel_tier_block_addr(s->host, b);

		for (i = 0; i < s->bb / 8; i++)
			p[i] = ((uint64_t)round << 56) ^ ((uint64_t)b << 24) ^ i;
	}
}

/* Host block hpos[i] holds what block i was filled with. */
static void verify(struct size_run *s, uint32_t round, const char *what)
{
	uint32_t b;
	uint64_t i;

	for (b = 0; b < s->n; b++) {
		const uint64_t *p = accel_tier_block_addr(s->host, s->hpos[b]);

		for (i = 0; i < s->bb / 8; i++) {
			if (p[i] != (((uint64_t)round << 56) ^ ((uint64_t)b << 24) ^ i)) {
				fprintf(stderr, "kvaccel-bench-offload-gpu: %s: block %u word %llu "
					"wrong\n", what, b, (unsigned long long)i);
				exit(1);
			}
		}
	}
}

static double gbps(uint64_t bytes, double s)
{
	return bytes / s / 1e9;
}

static void bench_size(struct accel_mover *m, int gpu, uint64_t bb, uint64_t total, int rounds)
{
	double t_sc[MAX_ROUNDS], t_one[MAX_ROUNDS], t_lay[MAX_ROUNDS], t0;
	const struct accel_tier *tiers[2];
	struct size_run s = { .bb = bb };
	struct accel_bm_run one, *hr, *dr;
	uint32_t *to_dev, *id, l, nd;
	int r, ret;

	s.n = (uint32_t)(total / bb);
	if (s.n < 2)
		s.n = 2;
	nd = s.n * 2;	/* the device tier: room to land in other blocks */
	{
		ACCEL_OPTS(accel_tier_opts, ho, .block_bytes = bb, .blocks = s.n * 2,
			   .layers = LAYERS);
		ACCEL_OPTS(accel_tier_cuda_opts, dop, .device = gpu, .block_bytes = bb,
			   .blocks = nd, .layers = LAYERS);

		s.host = accel_tier_create_memfd(&ho);
		if (!s.host)
			die("host tier", errno);
		s.dev = accel_tier_create_cuda(&dop);
		if (!s.dev)
			die("device tier", errno);
	}
	tiers[0] = s.dev;
	tiers[1] = s.host;
	s.runs = calloc(s.n, sizeof(*s.runs));
	hr = calloc(s.n, sizeof(*hr));
	dr = calloc(s.n, sizeof(*dr));
	s.hpos = calloc(s.n * 2, sizeof(*s.hpos));
	s.dpos = calloc(nd, sizeof(*s.dpos));
	to_dev = calloc(nd, sizeof(*to_dev));
	id = calloc(s.n, sizeof(*id));
	if (!s.runs || !hr || !dr || !s.hpos || !s.dpos || !to_dev || !id)
		die("memory", ENOMEM);
	for (l = 0; l < s.n; l++)
		id[l] = l;

	for (r = 0; r < rounds + 1; r++) {
		/* Host blocks 0..n-1 -> scattered device blocks (untimed set-up). */
		fill(&s, (uint32_t)r);
		shuffle(s.dpos, nd);
		scattered(s.runs, s.n, 1, id, 0, s.dpos);
		ret = job(m, tiers, s.runs, s.n, NULL);
		if (ret)
			die("set-up copy", ret);
		/* Store: scattered device blocks -> scattered host blocks n..2n-1. */
		shuffle(s.hpos, s.n * 2);
		scattered(hr, s.n, 0, s.dpos, 1, s.hpos);
		t0 = bench_now();
		ret = job(m, tiers, hr, s.n, NULL);
		if (ret)
			die("store", ret);
		/* Load back into other scattered device blocks. */
		shuffle(to_dev, nd);
		scattered(dr, s.n, 1, s.hpos, 0, to_dev);
		ret = job(m, tiers, dr, s.n, NULL);
		if (ret)
			die("load", ret);
		if (r)
			t_sc[r - 1] = bench_now() - t0;
		/* Back to the host once more, in order, to check the load. */
		scattered(s.runs, s.n, 0, to_dev, 1, id);
		memcpy(s.hpos, id, s.n * sizeof(*id));
		ret = job(m, tiers, s.runs, s.n, NULL);
		if (ret)
			die("check copy", ret);
		verify(&s, (uint32_t)r, "scattered store and load");

		/* The baseline: one contiguous run each way. */
		t0 = bench_now();
		one = (struct accel_bm_run) { 0, 0, 1, s.n, s.n };
		ret = job(m, tiers, &one, 1, NULL);
		one = (struct accel_bm_run) { 1, s.n, 0, 0, s.n };
		if (!ret)
			ret = job(m, tiers, &one, 1, NULL);
		if (ret)
			die("contiguous copy", ret);
		if (r)
			t_one[r - 1] = bench_now() - t0;

		/* The store again, layer by layer: one job per layer. */
		t0 = bench_now();
		for (l = 0; l < LAYERS && !ret; l++) {
			ACCEL_OPTS(accel_mover_submit_opts, lo, .flags = ACCEL_MOVER_LAYERS,
				   .layer_first = l, .layer_count = 1);

			ret = job(m, tiers, hr, s.n, &lo);
		}
		if (ret)
			die("layer-wise store", ret);
		if (r)
			t_lay[r - 1] = bench_now() - t0;
	}
	printf("%4llu KiB blocks  %6u blocks  scattered store+load %6.2f GB/s  contiguous "
	       "%6.2f GB/s  ratio %.2f  layer-wise store (%d jobs) %6.2f GB/s\n",
	       (unsigned long long)(bb >> 10), s.n,
	       gbps(2 * s.n * bb, bench_median(t_sc, rounds)),
	       gbps(2 * s.n * bb, bench_median(t_one, rounds)),
	       bench_median(t_one, rounds) / bench_median(t_sc, rounds), LAYERS,
	       gbps(s.n * bb, bench_median(t_lay, rounds)));
	accel_tier_destroy(s.dev);
	accel_tier_destroy(s.host);
	free(s.runs);
	free(hr);
	free(dr);
	free(s.hpos);
	free(s.dpos);
	free(to_dev);
	free(id);
}

int main(int argc, char **argv)
{
	static const uint64_t sizes[] = { 64 << 10, 256 << 10, 2 << 20 };
	unsigned int mib = 512;
	int gpu = 0, rounds = 3, opt;
	struct accel_tier *probe;
	struct accel_mover *m;
	size_t i;

	while ((opt = getopt(argc, argv, "d:s:r:")) != -1) {
		switch (opt) {
		case 'd': gpu = atoi(optarg); break;
		case 's': mib = (unsigned int)atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc || gpu < 0 || !mib || mib > 65536 || rounds < 1 ||
	    rounds > MAX_ROUNDS)
		goto usage;
	{
		ACCEL_OPTS(accel_tier_cuda_opts, po, .device = gpu, .block_bytes = 64 << 10,
			   .blocks = 1);

		probe = accel_tier_create_cuda(&po);
		if (!probe && errno == ENODEV) {
			printf("kvaccel-bench-offload-gpu: SKIP: no CUDA driver or no GPU %d\n", gpu);
			return KSFT_SKIP;
		}
		if (!probe)
			die("device tier", errno);
		accel_tier_destroy(probe);
	}
	m = accel_mover_create(NULL);
	if (!m)
		die("mover", errno);
	printf("kvaccel-bench-offload-gpu: GPU %d, %u MiB per direction, %d rounds (median)\n",
	       gpu, mib, rounds);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		bench_size(m, gpu, sizes[i], (uint64_t)mib << 20, rounds);
	printf("summary: goal: scattered >= 0.80 of contiguous for 64 KiB and larger blocks\n");
	accel_mover_destroy(m);
	return 0;

usage:
	fprintf(stderr, "usage: kvaccel-bench-offload-gpu [-d GPU] [-s SIZE_MIB (1-65536)] "
		"[-r ROUNDS (1-16)]\n");
	return 2;
}
