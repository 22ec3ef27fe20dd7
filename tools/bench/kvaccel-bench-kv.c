// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-kv - libaccel's KV cache on the host backend: swap a
 * sequence of SIZE MiB of KV in 16 KiB blocks, scattered over the device
 * pool (runs of at most two blocks between another sequence's), out to the
 * host tier and back in (into scattered blocks again), with coalesced
 * transfers against one copy job per block, and against one memcpy of the
 * same bytes between the tiers' mappings. Data is checked after each round.
 *
 * usage: kvaccel-bench-kv [SIZE_MIB [ROUNDS]]   (default 1024 3)
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "accel.h"
#include "bench-common.h"

#define BT	16
#define BB	(16u * 1024)
#define MAX_ROUNDS	16

static void die(const char *what, int err)
{
	fprintf(stderr, "kvaccel-bench-kv: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static int32_t toks[BT];

/* Append one block of tokens that no other block shares. */
static void append_block(struct accel_kv *kv, uint32_t seq, int32_t *next)
{
	int i, ret;

	for (i = 0; i < BT; i++)
		toks[i] = (*next)++;
	ret = accel_kv_seq_append(kv, seq, toks, BT);
	if (ret)
		die("append", ret);
}

static uint32_t new_seq(struct accel_kv *kv)
{
	uint32_t s;
	int ret = accel_kv_seq_create(kv, NULL, 0, &s, NULL);

	if (ret)
		die("seq_create", ret);
	return s;
}

/* One round: times of swap out and swap in; checks the data. */
static void round_trip(struct accel_kv *kv, uint32_t nblocks, uint32_t dev_blocks,
		       int32_t *next, double *out, double *in)
{
	uint32_t t = new_seq(kv), f = new_seq(kv), g, i, *blocks;
	int n, ret;
	double t0;

	for (i = 0; i < nblocks; i++) {
		append_block(kv, t, next);
		if (!(i % 2))
			append_block(kv, f, next);
	}
	blocks = malloc(nblocks * sizeof(*blocks));
	if (!blocks || (n = accel_kv_seq_blocks(kv, t, blocks, nblocks)) != (int)nblocks)
		die("blocks", ENOMEM);
	for (i = 0; i < nblocks; i += 97)
		memset(accel_kv_block_addr(kv, ACCEL_KV_DEVICE, blocks[i]), (int)(i & 0xff), BB);

	t0 = bench_now();
	ret = accel_kv_swap_out(kv, t, NULL);
	if (ret || (ret = accel_kv_progress(kv, -1)))
		die("swap out", ret ? ret : EIO);
	*out = bench_now() - t0;
	if (accel_kv_seq_place(kv, t) != ACCEL_KV_HOST)
		die("swap out", EIO);

	/* Another sequence takes the device blocks, so nothing stays cached. */
	g = new_seq(kv);
	for (i = 0; i < dev_blocks - (nblocks + 1) / 2; i++)
		append_block(kv, g, next);
	accel_kv_seq_free(kv, g);

	t0 = bench_now();
	ret = accel_kv_swap_in(kv, t, NULL);
	if (ret || (ret = accel_kv_progress(kv, -1)))
		die("swap in", ret ? ret : EIO);
	*in = bench_now() - t0;

	if (accel_kv_seq_blocks(kv, t, blocks, nblocks) != (int)nblocks)
		die("blocks after swap in", EIO);
	for (i = 0; i < nblocks; i += 97) {
		unsigned char *p = accel_kv_block_addr(kv, ACCEL_KV_DEVICE, blocks[i]);

		if (p[0] != (i & 0xff) || p[BB - 1] != (i & 0xff))
			die("data after the round trip", EIO);
	}
	free(blocks);
	accel_kv_seq_free(kv, t);
	accel_kv_seq_free(kv, f);
}

int main(int argc, char **argv)
{
	uint32_t mib = argc > 1 ? (uint32_t)atoi(argv[1]) : 1024;
	int rounds = argc > 2 ? atoi(argv[2]) : 3, r, mode;
	uint32_t nblocks = mib * (1024 * 1024 / BB);
	uint32_t dev_blocks = nblocks + nblocks / 2 + 16;
	double out[2][MAX_ROUNDS], in[2][MAX_ROUNDS], mc[MAX_ROUNDS], o[2], i[2], m;
	double bytes = (double)nblocks * BB;
	struct accel_kv_stats st[2] = { { .sz = sizeof(st[0]) }, { .sz = sizeof(st[1]) } };
	struct accel_device *dev;
	int32_t next = 1;

	if (!mib || rounds < 1 || rounds > MAX_ROUNDS)
		die("usage: kvaccel-bench-kv [SIZE_MIB [ROUNDS 1-16]]", EINVAL);
	dev = accel_device_open(NULL);
	if (!dev)
		die("accel_device_open", errno);

	for (mode = 0; mode < 2; mode++) {
		struct accel_kv_config cfg = {
		.sz = sizeof(cfg),
			.block_tokens = BT, .block_bytes = BB, .device_blocks = dev_blocks,
			.host_blocks = nblocks + 16,
			.flags = mode ? ACCEL_KV_PER_BLOCK_COPIES : 0,
		};
		struct accel_kv *kv = accel_kv_create(dev, &cfg);

		if (!kv)
			die("accel_kv_create", errno);
		for (r = 0; r < rounds; r++)
			round_trip(kv, nblocks, dev_blocks, &next, &out[mode][r], &in[mode][r]);
		accel_kv_stats(kv, &st[mode]);
		if (!mode) {
			/* memcpy of the same bytes between the two tiers' mappings. */
			unsigned char *d = accel_kv_block_addr(kv, ACCEL_KV_DEVICE, 0);
			unsigned char *h = accel_kv_block_addr(kv, ACCEL_KV_HOST, 0);

			for (r = 0; r < rounds; r++) {
				double t0 = bench_now();

				memcpy(h, d, (size_t)nblocks * BB);
				mc[r] = bench_now() - t0;
			}
		}
		accel_kv_destroy(kv);
		o[mode] = bench_median(out[mode], rounds);
		i[mode] = bench_median(in[mode], rounds);
	}
	m = bench_median(mc, rounds);

	printf("kvaccel-bench-kv: %u MiB of KV in %u KiB blocks, scattered (runs of <= 2 blocks), "
	       "median of %d\n", mib, BB / 1024, rounds);
	printf("%-28s %10s %10s\n", "", "out MB/s", "in MB/s");
	printf("%-28s %10.0f %10.0f   (%llu transfers for %llu blocks)\n", "coalesced",
	       bytes / o[0] / 1e6, bytes / i[0] / 1e6, (unsigned long long)st[0].transfers,
	       (unsigned long long)(st[0].blocks_out + st[0].blocks_in));
	printf("%-28s %10.0f %10.0f\n", "one copy job per block", bytes / o[1] / 1e6,
	       bytes / i[1] / 1e6);
	printf("%-28s %10.0f\n", "memcpy, one contiguous", bytes / m / 1e6);
	printf("coalesced vs per-block: out %.1fx, in %.1fx (goal >= 5x); "
	       "vs memcpy: out %.2f, in %.2f (goal >= 0.80)\n",
	       o[1] / o[0], i[1] / i[0], m / o[0], m / i[0]);
	accel_device_close(dev);
	return 0;
}
