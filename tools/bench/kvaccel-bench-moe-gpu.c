// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-moe-gpu - libaccel's MoE expert store on GPUs
 * (ACCEL_MOE_STORE_CUDA): the rebalance's expert copies between GPUs and
 * the zero-copy rebinds within one.
 *
 * A store of LAYERS layers over D devices (every GPU, each one device; on
 * one GPU two devices on it, so the copies are device to device) with X
 * experts per device of EXPERT MiB each (default 44 MiB: one DeepSeek-V3
 * expert in fp8, 7168 x 2048 x 3 bytes). Each round:
 * 1. Rotate: every expert to the next device (each copy a cross-device
 *    move: peer to peer where the GPUs allow it, else staged through host
 *    memory), the executor on its thread, K copies in flight per device,
 *    while a stepper thread takes and ends steps as an engine would: the
 *    rebalance's time and bytes, and its copy bandwidth;
 * 2. Permute within each device: rebinds only (cuMemMap of the same
 *    chunks into window slots), no byte copied: the time per layer.
 * After each, every replica of every expert is read back through its
 * window slot (on its own GPU's stream) and checked.
 * 3. Scale-up: a second store of the same shape made from the running
 *    one's memory (accel_moe_store_opts.from_store: device to device on a
 *    GPU, peer to peer or staged across), against one made and written
 *    from host memory (what loading the weights ends in; the file's read
 *    is not counted, so the ratio is a lower bound), both checked.
 *
 * usage: kvaccel-bench-moe-gpu [-e EXPERT_MIB] [-x PER_DEVICE] [-l LAYERS]
 *        [-k K] [-r ROUNDS]   (defaults: 44 MiB, 4, 4 layers, K 2, 3 rounds)
 * Exit status: 0; 1 on an error or wrong data; 2 on bad arguments; 4 (a
 * skip) with no driver or no GPU.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "accel.h"
#include "accel_moe.h"
#include "bench-common.h"
#include "cuda/cuda_loader.h"
#include "cuda/cuda_tier.h"

#define KSFT_SKIP	4
#define MAX_ROUNDS	16

struct bench {
	struct accel_moe_store *s;
	uint32_t layers, experts, devices, spd, slots;
	uint64_t ebytes;
	int gpu[ACCEL_MOE_STORE_MAX_DEVICES];
	/* One tier with no memory per GPU: its stream reads the windows back. */
	struct accel_cuda_tier *rd[ACCEL_MOE_STORE_MAX_DEVICES];
	unsigned char *buf, *want;
	volatile bool stop;
	uint64_t steps;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "kvaccel-bench-moe-gpu: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* Expert @e of layer @l's bytes: a word per 4 KiB naming it and the offset. */
static void pattern(const struct bench *b, unsigned char *p, uint32_t l, uint32_t e)
{
	uint64_t o;

	memset(p, (int)(l * 31 + e), b->ebytes);
	for (o = 0; o + 8 <= b->ebytes; o += 4096) {
		uint64_t w = ((uint64_t)l << 48 | (uint64_t)e << 32 | o / 4096) * 0x9e3779b97f4a7c15ull;

		memcpy(p + o, &w, 8);
	}
}

/* Every replica of every expert at a step's version reads its bytes. */
static void check_all(struct bench *b)
{
	uint32_t l, e, slots[ACCEL_MOE_STORE_MAX_DEVICES * 64];
	uint64_t v;
	int n, r, ret;

	ret = accel_moe_store_step_begin(b->s, &v);
	if (ret)
		die("step begin", ret);
	for (l = 0; l < b->layers; l++)
		for (e = 0; e < b->experts; e++) {
			n = accel_moe_store_replicas(b->s, v, l, e, slots,
						     sizeof(slots) / sizeof(slots[0]));
			if (n < 1)
				die("replicas", n);
			pattern(b, b->want, l, e);
			for (r = 0; r < n; r++) {
				const void *p = accel_moe_store_expert(b->s, v, l, e, (uint32_t)r);
				struct accel_cuda_tier *t = b->rd[b->gpu[slots[r] / b->spd]];
				struct accel_cuda_copy cp = { (cu_deviceptr)(uintptr_t)b->buf,
							      (cu_deviceptr)(uintptr_t)p, b->ebytes };
				uint64_t tk;

				if (!p)
					die("expert lookup", errno);
				ret = accel_cuda_tier_copy(t, &cp, 1, &tk);
				if (!ret)
					ret = accel_cuda_tier_wait(t, tk, -1);
				if (ret)
					die("reading a window slot back", ret);
				if (memcmp(b->buf, b->want, b->ebytes)) {
					fprintf(stderr, "kvaccel-bench-moe-gpu: layer %u expert %u "
						"replica %d: wrong bytes\n", l, e, r);
					exit(1);
				}
			}
		}
	accel_moe_store_step_end(b->s, v);
}

/* An engine's steps: a version taken and given back, over and over. */
static void *stepper(void *arg)
{
	struct bench *b = arg;
	uint64_t v;

	while (!b->stop) {
		if (accel_moe_store_step_begin(b->s, &v))
			break;
		accel_moe_store_step_end(b->s, v);
		b->steps++;
	}
	return NULL;
}

/* Apply @p and time it to idle under steps; the rebalance's stats into @st. */
static double rebalance(struct bench *b, const int32_t *p, struct accel_moe_store_stats *st)
{
	pthread_t th;
	double t0, t;
	int ret;

	b->stop = false;
	b->steps = 0;
	if (pthread_create(&th, NULL, stepper, b))
		die("stepper thread", EAGAIN);
	t0 = bench_now();
	ret = accel_moe_store_apply(b->s, p, (size_t)b->layers * b->slots);
	if (!ret)
		ret = accel_moe_store_settle(b->s, 600 * 1000000000LL);
	t = bench_now() - t0;
	b->stop = true;
	pthread_join(th, NULL);
	if (ret)
		die("rebalance", ret);
	ret = accel_moe_store_stats(b->s, st);
	if (ret)
		die("stats", ret);
	if (st->last_error)
		die("rebalance", st->last_error);
	return t;
}

/* Every expert's bytes into @s. */
static void fill(struct bench *b, struct accel_moe_store *s)
{
	uint32_t l, e;
	int err;

	for (l = 0; l < b->layers; l++)
		for (e = 0; e < b->experts; e++) {
			pattern(b, b->want, l, e);
			err = accel_moe_store_write(s, l, e, b->want, b->ebytes);
			if (err)
				die("writing the experts", err);
		}
}

static int usage(void)
{
	fprintf(stderr, "usage: kvaccel-bench-moe-gpu [-e EXPERT_MIB] [-x PER_DEVICE] [-l LAYERS] "
		"[-k K] [-r ROUNDS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	double tcopy[MAX_ROUNDS], tbind[MAX_ROUNDS], gbs[MAX_ROUNDS];
	double tpeer[MAX_ROUNDS], thost[MAX_ROUNDS];
	double copy_gbs, bind_ms, up = 0, host = 0;
	uint32_t mib = 44, per = 4, k = 2, rounds = 3, i, l, d, round;
	uint64_t copies0, bytes0, rebinds0;
	const struct accel_cuda *cu;
	int32_t *p, *q;
	struct bench b = { .layers = 4 };
	char why[160];
	int c, err, ngpu;

	while ((c = getopt(argc, argv, "e:x:l:k:r:")) != -1) {
		long v = optarg ? strtol(optarg, NULL, 10) : 0;

		switch (c) {
		case 'e': if (v < 1 || v > 4096) return usage(); mib = (uint32_t)v; break;
		case 'x': if (v < 1 || v > 64) return usage(); per = (uint32_t)v; break;
		case 'l': if (v < 1 || v > 64) return usage(); b.layers = (uint32_t)v; break;
		case 'k': if (v < 1 || v > 64) return usage(); k = (uint32_t)v; break;
		case 'r': if (v < 1 || v > MAX_ROUNDS) return usage(); rounds = (uint32_t)v; break;
		default: return usage();
		}
	}
	if (optind < argc)
		return usage();
	cu = accel_cuda_load(&err, why, sizeof(why));
	if (!cu || cu->devices < 1) {
		printf("SKIP: %s\n", cu ? "no GPU" : why);
		return KSFT_SKIP;
	}
	ngpu = cu->devices < ACCEL_MOE_STORE_MAX_DEVICES ? cu->devices : ACCEL_MOE_STORE_MAX_DEVICES;
	b.devices = ngpu > 1 ? (uint32_t)ngpu : 2;
	for (d = 0; d < b.devices; d++)
		b.gpu[d] = (int)(d % (uint32_t)ngpu);
	b.spd = per;
	b.experts = b.devices * per;
	b.slots = b.experts;
	b.ebytes = (uint64_t)mib << 20;
	for (c = 0; c < ngpu; c++) {
		struct accel_cuda_tier_opts o = { .device = c, .stream_only = true };

		err = accel_cuda_tier_create(&o, &b.rd[c], why, sizeof(why));
		if (err) {
			printf("SKIP: %s\n", why);
			return KSFT_SKIP;
		}
	}
	b.buf = malloc(b.ebytes);
	b.want = malloc(b.ebytes);
	p = calloc((size_t)b.layers * b.slots, sizeof(*p));
	q = calloc((size_t)b.layers * b.slots, sizeof(*q));
	if (!b.buf || !b.want || !p || !q)
		die("memory", ENOMEM);
	/* Expert e on device e / per, no redundant slot: every move is a copy. */
	for (l = 0; l < b.layers; l++)
		for (i = 0; i < b.slots; i++)
			p[l * b.slots + i] = (int32_t)i;
	{
		ACCEL_OPTS(accel_moe_store_opts, o, .layers = b.layers, .experts = b.experts,
			   .devices = b.devices, .slots_per_device = b.spd, .expert_bytes = b.ebytes,
			   .max_inflight = k, .flags = ACCEL_MOE_STORE_THREAD,
			   .backend = ACCEL_MOE_STORE_CUDA, .device_gpu = b.gpu);

		b.s = accel_moe_store_create(NULL, &o, p, (size_t)b.layers * b.slots);
		if (!b.s)
			die("the store", errno);
	}
	fill(&b, b.s);
	check_all(&b);
	printf("MoE expert store on %d GPU%s: %u devices (%s), %u layers x %u experts of %u MiB, "
	       "K %u, %u rounds\n", ngpu, ngpu > 1 ? "s" : "", b.devices,
	       ngpu > 1 ? "one per GPU" : "two on the GPU: device-to-device copies", b.layers,
	       b.experts, mib, k, rounds);
	for (round = 0; round < rounds; round++) {
		if (accel_moe_store_stats(b.s, &st))
			die("stats", EINVAL);
		copies0 = st.copies;
		bytes0 = st.copy_bytes;
		rebinds0 = st.rebinds;
		/* 1. Every expert to the next device. */
		for (l = 0; l < b.layers; l++)
			for (i = 0; i < b.slots; i++)
				q[l * b.slots + (i + b.spd) % b.slots] = p[l * b.slots + i];
		memcpy(p, q, (size_t)b.layers * b.slots * sizeof(*p));
		tcopy[round] = rebalance(&b, p, &st);
		gbs[round] = (double)(st.copy_bytes - bytes0) / tcopy[round] / 1e9;
		printf("round %u: rotate: %llu copies, %.1f MiB in %.1f ms: %.2f GB/s "
		       "(%llu steps meanwhile)\n", round,
		       (unsigned long long)(st.copies - copies0),
		       (double)(st.copy_bytes - bytes0) / (1 << 20), tcopy[round] * 1e3,
		       gbs[round], (unsigned long long)b.steps);
		check_all(&b);
		/* 2. A permutation within each device: rebinds only. */
		for (l = 0; l < b.layers; l++)
			for (d = 0; d < b.devices; d++)
				for (i = 0; i < b.spd; i++)
					q[l * b.slots + d * b.spd + i] =
						p[l * b.slots + d * b.spd + (i + 1) % b.spd];
		memcpy(p, q, (size_t)b.layers * b.slots * sizeof(*p));
		copies0 = st.copies;
		tbind[round] = rebalance(&b, p, &st);
		if (st.copies != copies0) {
			fprintf(stderr, "kvaccel-bench-moe-gpu: a permutation within devices copied\n");
			return 1;
		}
		printf("round %u: permute: %llu rebinds, no copy, in %.2f ms (%.3f ms a layer)\n",
		       round, (unsigned long long)(st.rebinds - rebinds0), tbind[round] * 1e3,
		       tbind[round] * 1e3 / b.layers);
		check_all(&b);
	}
	copy_gbs = bench_median(gbs, (int)rounds);
	bind_ms = bench_median(tbind, (int)rounds) * 1e3 / b.layers;
	/* 3. Scale-up from the running store, against from host memory. */
	{
		ACCEL_OPTS(accel_moe_store_opts, o, .layers = b.layers, .experts = b.experts,
			   .devices = b.devices, .slots_per_device = b.spd,
			   .expert_bytes = b.ebytes, .backend = ACCEL_MOE_STORE_CUDA,
			   .device_gpu = b.gpu);
		struct accel_moe_store *old = b.s;
		double t0;

		for (round = 0; round < rounds; round++) {
			t0 = bench_now();
			o.from_store = old;
			b.s = accel_moe_store_create(NULL, &o, p, (size_t)b.layers * b.slots);
			if (!b.s)
				die("a store from the running one", errno);
			tpeer[round] = bench_now() - t0;
			check_all(&b);
			accel_moe_store_destroy(b.s);
			t0 = bench_now();
			o.from_store = NULL;
			b.s = accel_moe_store_create(NULL, &o, p, (size_t)b.layers * b.slots);
			if (!b.s)
				die("a store from host memory", errno);
			fill(&b, b.s);
			/* The patterns' making is not the copies': taken out below. */
			thost[round] = bench_now() - t0;
			check_all(&b);
			accel_moe_store_destroy(b.s);
		}
		b.s = old;
		t0 = bench_now();
		for (l = 0; l < b.layers; l++)
			for (i = 0; i < b.experts; i++)
				pattern(&b, b.want, l, i);
		t0 = bench_now() - t0;
		for (round = 0; round < rounds; round++)
			thost[round] = thost[round] > t0 ? thost[round] - t0 : 0;
		up = bench_median(tpeer, (int)rounds);
		host = bench_median(thost, (int)rounds);
		printf("scale-up: %u layers x %u experts of %u MiB: from the running store %.1f ms, "
		       "from host memory %.1f ms (median of %u)\n", b.layers, b.experts, mib,
		       up * 1e3, host * 1e3, rounds);
	}
	printf("summary: expert copies %.2f GB/s (median of %u), rebind %.3f ms a layer, "
	       "scale-up from a store %.1fx faster than from host memory, data checked\n",
	       copy_gbs, rounds, bind_ms, up > 0 ? host / up : 0.0);
	accel_moe_store_destroy(b.s);
	for (c = 0; c < ngpu; c++)
		accel_cuda_tier_destroy(b.rd[c]);
	free(b.buf);
	free(b.want);
	free(p);
	free(q);
	return 0;
}
