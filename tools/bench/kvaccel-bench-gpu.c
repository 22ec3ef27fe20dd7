// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-gpu - libaccel's cuda backend on a GPU (the device tier,
 * libaccel/src/cuda/cuda_tier.c), with the Driver API loaded at run time:
 *
 * 1. Swap. SIZE MiB of KV in 16 KiB blocks, out of the tier into pinned
 *    host memory and back in, data checked after every round trip. Block
 *    layouts in the tier: "contiguous" (the baseline's), "pairs" (runs of
 *    at most two blocks between other blocks, as kvaccel-bench-kv lays
 *    them out) and "random" (every block somewhere else: nothing
 *    coalesces). Movers: the tier's copy (adjacent blocks coalesced, the
 *    runs in one cuMemcpyBatchAsync), one cuMemcpyAsync per block, and
 *    one cuMemcpyAsync of the whole contiguous range (the baseline the
 *    issue's 80 % goal is measured against). Swap-in lands in another
 *    layout of the same kind than swap-out read from.
 * 2. Growing a device KV window: cuMemCreate per chunk (what the pool pays
 *    ahead of time), then per chunk from the pool cuMemMap +
 *    cuMemSetAccess (the goal is under 50 us per 2 MiB), again with a peer
 *    granted where there is one, a zero-copy window over all the chunks in
 *    reverse order, and unmapping.
 * 3. GPU to GPU, with two GPUs: staged through a host bounce buffer, and
 *    straight over the peer path once access is granted.
 *
 * usage: kvaccel-bench-gpu [-d GPU] [-s SIZE_MIB] [-r ROUNDS] [-c CHUNKS]
 *        (defaults: GPU 0, 1024 MiB, 3 rounds, 256 chunks)
 * Exit status: 0; 1 on an error or wrong data; 4 (a skip) with no driver
 * or no such GPU.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bench-common.h"
#include "cuda/cuda_loader.h"
#include "cuda/cuda_tier.h"

#define BB		(16u * 1024)
#define MAX_ROUNDS	16
#define KSFT_SKIP	4

enum layout { L_CONTIG, L_PAIRS, L_RANDOM, NR_LAYOUTS };
enum mover { M_TIER, M_BLOCK, M_ONE };

static const char *const layout_name[] = { "contiguous", "pairs", "random" };

struct bench {
	const struct accel_cuda_api *api;
	cu_context ctx;
	cu_stream stream;		/* the raw movers' stream */
	struct accel_cuda_tier *t;
	uint32_t nblocks, slots;
	size_t bytes;
	unsigned char *host, *check;
	uint32_t *pos[2];		/* the two layouts of the current kind */
	struct accel_cuda_copy *cp;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "kvaccel-bench-gpu: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* The two layouts of kind @l: where block i of the sequence lives in the tier. */
static void make_layouts(struct bench *b, enum layout l)
{
	uint32_t *all = NULL, i, k, j;

	if (l == L_RANDOM) {
		all = malloc(b->slots * sizeof(*all));
		if (!all)
			die("layout", ENOMEM);
	}
	for (k = 0; k < 2; k++) {
		if (l == L_RANDOM) {
			/* The first nblocks of a shuffle of every slot. */
			for (i = 0; i < b->slots; i++)
				all[i] = i;
			for (i = b->slots - 1; i > 0; i--) {
				uint32_t x;

				j = (uint32_t)(rnd() % (i + 1));
				x = all[i];
				all[i] = all[j];
				all[j] = x;
			}
		}
		for (i = 0; i < b->nblocks; i++) {
			if (l == L_CONTIG)
				b->pos[k][i] = i;
			else if (l == L_PAIRS)
				b->pos[k][i] = i / 2 * 3 + i % 2 + k;
			else
				b->pos[k][i] = all[i];
		}
	}
	free(all);
}

static uint64_t stamp(uint32_t block, unsigned int end)
{
	return ((uint64_t)block << 32 | end) * 0x9e3779b97f4a7c15ull;
}

/* Host block i's first and last words say i. */
static void fill(unsigned char *h, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		uint64_t a = stamp(i, 0), z = stamp(i, 1);

		memcpy(h + (size_t)i * BB, &a, sizeof(a));
		memcpy(h + (size_t)(i + 1) * BB - sizeof(z), &z, sizeof(z));
	}
}

static void verify(const unsigned char *h, uint32_t n, const char *what)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		uint64_t a, z;

		memcpy(&a, h + (size_t)i * BB, sizeof(a));
		memcpy(&z, h + (size_t)(i + 1) * BB - sizeof(z), sizeof(z));
		if (a != stamp(i, 0) || z != stamp(i, 1)) {
			fprintf(stderr, "kvaccel-bench-gpu: %s: block %u holds the wrong data\n",
				what, i);
			exit(1);
		}
	}
}

static cu_deviceptr dev_addr(const struct bench *b, uint32_t slot)
{
	return accel_cuda_tier_base(b->t) + (cu_deviceptr)slot * BB;
}

static cu_deviceptr host_addr(const unsigned char *h, uint32_t i)
{
	return (cu_deviceptr)(uintptr_t)(h + (size_t)i * BB);
}

/* Move every block between host buffer @h and layout @pos, one way; returns seconds. */
static double move(struct bench *b, enum mover m, const uint32_t *pos, unsigned char *h,
		   bool out)
{
	uint32_t i;
	uint64_t tk;
	double t0;
	int ret = 0;

	for (i = 0; i < b->nblocks; i++) {
		cu_deviceptr d = dev_addr(b, pos[i]), s = host_addr(h, i);

		b->cp[i] = out ? (struct accel_cuda_copy){ s, d, BB } :
				 (struct accel_cuda_copy){ d, s, BB };
	}
	t0 = bench_now();
	switch (m) {
	case M_TIER:
		ret = accel_cuda_tier_copy(b->t, b->cp, b->nblocks, &tk);
		if (!ret)
			ret = accel_cuda_tier_wait(b->t, tk, -1);
		break;
	case M_BLOCK:
		for (i = 0; !ret && i < b->nblocks; i++)
			ret = accel_cuda_errno(b->api->cuMemcpyAsync(b->cp[i].dst, b->cp[i].src,
								     BB, b->stream));
		if (!ret)
			ret = accel_cuda_errno(b->api->cuStreamSynchronize(b->stream));
		break;
	case M_ONE:
		ret = accel_cuda_errno(b->api->cuMemcpyAsync(b->cp[0].dst, b->cp[0].src, b->bytes,
							     b->stream));
		if (!ret)
			ret = accel_cuda_errno(b->api->cuStreamSynchronize(b->stream));
		break;
	}
	if (ret)
		die(out ? "swap out" : "swap in", ret);
	return bench_now() - t0;
}

/* Median swap-out and swap-in seconds of @rounds round trips, data checked. */
static void swap_rounds(struct bench *b, enum layout l, enum mover m, int rounds,
			double *out, double *in)
{
	double o[MAX_ROUNDS], n[MAX_ROUNDS];
	int r, a = 0;

	make_layouts(b, l);
	/* The sequence's data into layout 0, not timed. */
	fill(b->host, b->nblocks);
	move(b, M_TIER, b->pos[0], b->host, false);
	for (r = 0; r < rounds; r++) {
		memset(b->host, 0, b->bytes);
		o[r] = move(b, m, b->pos[a], b->host, true);
		verify(b->host, b->nblocks, "after swap out");
		n[r] = move(b, m, b->pos[!a], b->host, false);
		a = !a;
		memset(b->check, 0, b->bytes);
		move(b, M_TIER, b->pos[a], b->check, true);
		verify(b->check, b->nblocks, "after swap in");
	}
	*out = bench_median(o, rounds);
	*in = bench_median(n, rounds);
}

static void *pinned(struct accel_cuda_tier *t, size_t len)
{
	void *p = NULL;
	int ret;

	if (posix_memalign(&p, 2u << 20, len))
		die("host memory", ENOMEM);
	memset(p, 0, len);
	ret = accel_cuda_tier_host_register(t, p, len);
	if (ret)
		die("cuMemHostRegister", ret);
	return p;
}

static struct accel_cuda_tier *tier(int gpu, uint64_t reserve, unsigned int prealloc)
{
	struct accel_cuda_tier_opts o = { .device = gpu, .reserve = reserve,
					  .prealloc = prealloc };
	struct accel_cuda_tier *t;
	char why[192];
	int ret = accel_cuda_tier_create(&o, &t, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "kvaccel-bench-gpu: %s\n", why);
		exit(ret == -ENODEV ? KSFT_SKIP : 1);
	}
	return t;
}

static void bench_swap(struct bench *b, int rounds, double *goal_ratio)
{
	static const struct { enum layout l; enum mover m; const char *how; } rows[] = {
		{ L_CONTIG, M_ONE, "one cuMemcpyAsync (baseline)" },
		{ L_CONTIG, M_TIER, "tier copy" },
		{ L_PAIRS, M_TIER, "tier copy (coalesced, batched)" },
		{ L_PAIRS, M_BLOCK, "one cuMemcpyAsync per block" },
		{ L_RANDOM, M_TIER, "tier copy (batched)" },
		{ L_RANDOM, M_BLOCK, "one cuMemcpyAsync per block" },
	};
	double out[6], in[6], mb = (double)b->bytes / 1e6;
	struct accel_cuda_tier_stats st;
	unsigned int i;

	printf("swap: %zu MiB of KV in %u KiB blocks between GPU memory and pinned host memory, "
	       "median of %d\n", b->bytes >> 20, BB / 1024, rounds);
	printf("  %-11s %-32s %10s %10s %8s %8s\n", "layout", "mover", "out MB/s", "in MB/s",
	       "out vs", "in vs");
	for (i = 0; i < 6; i++) {
		swap_rounds(b, rows[i].l, rows[i].m, rounds, &out[i], &in[i]);
		printf("  %-11s %-32s %10.0f %10.0f %7.2fx %7.2fx\n", layout_name[rows[i].l],
		       rows[i].how, mb / out[i], mb / in[i], out[0] / out[i], in[0] / in[i]);
	}
	accel_cuda_tier_stats(b->t, &st);
	printf("  (\"vs\": against the baseline; the tier's copies: %llu pieces in %llu runs, "
	       "%llu batch calls, %llu single copies; cuMemcpyBatchAsync %s)\n",
	       (unsigned long long)st.pieces, (unsigned long long)st.runs,
	       (unsigned long long)st.batch_calls, (unsigned long long)st.copy_calls,
	       st.batched ? "used" : "absent");
	printf("  scattered 16 KiB blocks vs one contiguous copy: random out %.2f, in %.2f; "
	       "pairs out %.2f, in %.2f (goal >= 0.80)\n", out[0] / out[4], in[0] / in[4],
	       out[0] / out[2], in[0] / in[2]);
	printf("  coalesced vs one call per block: pairs out %.1fx, in %.1fx; "
	       "random out %.1fx, in %.1fx\n", out[3] / out[2], in[3] / in[2], out[5] / out[4],
	       in[5] / in[4]);
	*goal_ratio = out[0] / out[4] < in[0] / in[4] ? out[0] / out[4] : in[0] / in[4];
}

/* Map @n chunks one at a time; microseconds per chunk. */
static double map_each(struct accel_cuda_tier *w, unsigned int n)
{
	uint64_t c = accel_cuda_tier_chunk_size(w);
	double t0 = bench_now();
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = accel_cuda_tier_map(w, i * c, c);
		if (ret)
			die("map", ret);
	}
	return (bench_now() - t0) * 1e6 / n;
}

static double unmap_all(struct accel_cuda_tier *w, unsigned int n)
{
	double t0 = bench_now();
	int ret = accel_cuda_tier_unmap(w, 0, n * accel_cuda_tier_chunk_size(w));

	if (ret)
		die("unmap", ret);
	return (bench_now() - t0) * 1e6 / n;
}

static void bench_grow(int gpu, int peer, unsigned int n, uint64_t c, double *map_us)
{
	struct accel_cuda_tier *w = tier(gpu, (uint64_t)n * c, 0);
	uint32_t *order;
	cu_deviceptr win;
	double t0, create, map, remap, unmap, winfree, mapp = 0;
	unsigned int i;
	int ret;

	t0 = bench_now();
	ret = accel_cuda_tier_prealloc(w, n);
	if (ret)
		die("cuMemCreate", ret);
	create = (bench_now() - t0) * 1e6 / n;
	map = map_each(w, n);

	order = malloc(n * sizeof(*order));
	if (!order)
		die("window", ENOMEM);
	for (i = 0; i < n; i++)
		order[i] = n - 1 - i;
	t0 = bench_now();
	ret = accel_cuda_tier_window(w, order, n, &win);
	if (ret)
		die("window", ret);
	remap = (bench_now() - t0) * 1e6 / n;
	t0 = bench_now();
	ret = accel_cuda_tier_window_free(w, win, n);
	if (ret)
		die("window free", ret);
	winfree = (bench_now() - t0) * 1e6 / n;
	unmap = unmap_all(w, n);
	if (peer >= 0) {
		ret = accel_cuda_tier_grant_peer(w, peer);
		if (!ret) {
			mapp = map_each(w, n);
			unmap_all(w, n);
		} else if (ret != -EOPNOTSUPP) {
			die("peer access", ret);
		}
	}
	printf("growing a device KV window: %u chunks of %llu KiB, microseconds per chunk\n", n,
	       (unsigned long long)(c >> 10));
	printf("  cuMemCreate (the pool, ahead of time)          %8.1f\n", create);
	printf("  map from the pool (cuMemMap + cuMemSetAccess)  %8.1f   (goal < 50)\n", map);
	if (mapp)
		printf("  the same with GPU %d granted access too         %8.1f\n", peer, mapp);
	else if (peer >= 0)
		printf("  the same with a peer: GPU %d cannot reach GPU %d\n", peer, gpu);
	printf("  zero-copy window over them, reverse order      %8.1f\n", remap);
	printf("  window free                                    %8.1f\n", winfree);
	printf("  unmap back to the pool                         %8.1f\n", unmap);
	*map_us = map;
	free(order);
	accel_cuda_tier_destroy(w);
}

static double peer_copy(struct accel_cuda_tier *dst, struct accel_cuda_tier *src, size_t len)
{
	struct accel_cuda_copy cp = { accel_cuda_tier_base(dst), accel_cuda_tier_base(src), len };
	uint64_t tk;
	double t0 = bench_now();
	int ret = accel_cuda_tier_copy_peer(dst, src, &cp, 1, &tk);

	if (!ret)
		ret = accel_cuda_tier_wait(dst, tk, -1);
	if (ret)
		die("GPU-to-GPU copy", ret);
	return bench_now() - t0;
}

static void bench_peer(struct bench *b, int gpu, int peer, int rounds)
{
	struct accel_cuda_tier *dst = tier(peer, b->bytes, 0);
	double staged[MAX_ROUNDS], direct[MAX_ROUNDS], gb = (double)b->bytes / 1e9;
	int r, ret, grant;

	ret = accel_cuda_tier_prealloc(dst, (unsigned int)(accel_cuda_tier_size(dst) /
					accel_cuda_tier_chunk_size(dst)));
	if (!ret)
		ret = accel_cuda_tier_map(dst, 0, accel_cuda_tier_size(dst));
	if (ret)
		die("peer GPU memory", ret);
	/* The blocks' stamps at the start of @gpu's tier, checked on @peer after. */
	fill(b->host, b->nblocks);
	make_layouts(b, L_CONTIG);
	move(b, M_TIER, b->pos[0], b->host, false);
	for (r = 0; r < rounds; r++)
		staged[r] = peer_copy(dst, b->t, b->bytes);
	grant = accel_cuda_tier_grant_peer(b->t, peer);
	for (r = 0; !grant && r < rounds; r++)
		direct[r] = peer_copy(dst, b->t, b->bytes);
	if (grant && grant != -EOPNOTSUPP)
		die("peer access", grant);

	memset(b->check, 0, b->bytes);
	{
		struct accel_cuda_copy back = { (cu_deviceptr)(uintptr_t)b->check,
						accel_cuda_tier_base(dst), b->bytes };
		uint64_t tk;

		ret = accel_cuda_tier_copy(dst, &back, 1, &tk);
		if (!ret)
			ret = accel_cuda_tier_wait(dst, tk, -1);
		if (ret)
			die("reading the peer back", ret);
	}
	verify(b->check, b->nblocks, "after the GPU-to-GPU copies");
	printf("GPU %d -> GPU %d, %zu MiB, median of %d\n", gpu, peer, b->bytes >> 20, rounds);
	printf("  staged through pinned host memory   %8.2f GB/s\n",
	       gb / bench_median(staged, rounds));
	if (!grant)
		printf("  peer path (cuMemSetAccess)          %8.2f GB/s\n",
		       gb / bench_median(direct, rounds));
	else
		printf("  peer path: none between these GPUs (cuDeviceCanAccessPeer)\n");
	accel_cuda_tier_destroy(dst);
}

int main(int argc, char **argv)
{
	unsigned int mib = 1024, chunks = 256;
	int gpu = 0, rounds = 3, opt, err, peer;
	const struct accel_cuda *cu;
	struct bench b = { 0 };
	double ratio, map_us;
	cu_device dev;
	char why[192];

	while ((opt = getopt(argc, argv, "d:s:r:c:")) != -1) {
		switch (opt) {
		case 'd': gpu = atoi(optarg); break;
		case 's': mib = (unsigned int)atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'c': chunks = (unsigned int)atoi(optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc || gpu < 0 || !mib || mib > 65536 || rounds < 1 ||
	    rounds > MAX_ROUNDS || !chunks || chunks > 65536)
		goto usage;

	cu = accel_cuda_load(&err, why, sizeof(why));
	if (!cu) {
		printf("kvaccel-bench-gpu: SKIP: %s\n", why);
		return KSFT_SKIP;
	}
	if (gpu >= cu->devices) {
		printf("kvaccel-bench-gpu: SKIP: no GPU %d (%d present)\n", gpu, cu->devices);
		return KSFT_SKIP;
	}
	peer = cu->devices > 1 ? !gpu : -1;
	b.api = &cu->api;
	b.nblocks = mib * (1024u * 1024 / BB);
	b.slots = b.nblocks / 2 * 3 + 2;
	b.bytes = (size_t)b.nblocks * BB;
	b.t = tier(gpu, (uint64_t)b.slots * BB, 0);
	printf("kvaccel-bench-gpu: GPU %d of %d, driver %d, chunk %llu KiB\n", gpu, cu->devices,
	       cu->driver_version, (unsigned long long)(accel_cuda_tier_chunk_size(b.t) >> 10));
	err = accel_cuda_tier_prealloc(b.t, (unsigned int)(accel_cuda_tier_size(b.t) /
					accel_cuda_tier_chunk_size(b.t)));
	if (!err)
		err = accel_cuda_tier_map(b.t, 0, accel_cuda_tier_size(b.t));
	if (err)
		die("GPU memory for the swap", err);
	err = accel_cuda_errno(b.api->cuDeviceGet(&dev, gpu));
	if (!err)
		err = accel_cuda_errno(b.api->cuDevicePrimaryCtxRetain(&b.ctx, dev));
	if (!err)
		err = accel_cuda_errno(b.api->cuCtxSetCurrent(b.ctx));
	if (!err)
		err = accel_cuda_errno(b.api->cuStreamCreate(&b.stream, CU_STREAM_NON_BLOCKING));
	if (err)
		die("stream", err);
	b.host = pinned(b.t, b.bytes);
	b.check = pinned(b.t, b.bytes);
	b.pos[0] = malloc(b.nblocks * sizeof(*b.pos[0]));
	b.pos[1] = malloc(b.nblocks * sizeof(*b.pos[1]));
	b.cp = malloc(b.nblocks * sizeof(*b.cp));
	if (!b.pos[0] || !b.pos[1] || !b.cp)
		die("memory", ENOMEM);

	bench_swap(&b, rounds, &ratio);
	bench_grow(gpu, peer, chunks, accel_cuda_tier_chunk_size(b.t), &map_us);
	if (peer >= 0)
		bench_peer(&b, gpu, peer, rounds);
	else
		printf("GPU to GPU: one GPU, nothing to measure\n");
	printf("summary: scattered swap %.2f of contiguous (goal >= 0.80), map %.1f us per chunk "
	       "(goal < 50)\n", ratio, map_us);

	accel_cuda_tier_host_unregister(b.t, b.host);
	accel_cuda_tier_host_unregister(b.t, b.check);
	b.api->cuStreamDestroy(b.stream);
	b.api->cuDevicePrimaryCtxRelease(dev);
	accel_cuda_tier_destroy(b.t);
	free(b.host);
	free(b.check);
	free(b.pos[0]);
	free(b.pos[1]);
	free(b.cp);
	return 0;

usage:
	fprintf(stderr, "usage: kvaccel-bench-gpu [-d GPU] [-s SIZE_MIB (1-65536)] "
		"[-r ROUNDS (1-16)] [-c CHUNKS (1-65536)]\n");
	return 2;
}
