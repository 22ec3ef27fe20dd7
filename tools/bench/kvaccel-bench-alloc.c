// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-alloc - the KV block pool's allocator at the sizes engines
 * use (native, no device): alloc + free of one block and of a 64-block run
 * on pools of 64k to 4M blocks, empty and fragmented:
 *   empty      nothing used
 *   random50   half the blocks used, chosen at random (runs of 64 are rare)
 *   alternate  every other block used (no run of 2 exists: a 64-block
 *              allocation takes the 64 lowest free blocks)
 *   tail       everything used but the last 64 blocks (the one run that
 *              exists is at the far end)
 * Each figure is the median over rounds of (alloc + free) / pair, in ns.
 *
 *   kvaccel-bench-alloc [max_blocks]    (default 4194304)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench-common.h"
#include "kv/kv_pool.h"

enum { PAIRS = 2000, ROUNDS = 7 };

static uint32_t rng = 12345;

static uint32_t next_rand(void)
{
	rng = rng * 1103515245u + 12345u;
	return rng >> 1;
}

/* Fill @p with the pattern; the blocks taken stay referenced in @held. */
static uint32_t shape(struct kv_pool *p, const char *how, uint32_t *held)
{
	uint32_t n = p->nr_blocks, b, nheld = 0, tmp;

	if (!strcmp(how, "empty"))
		return 0;
	/* Take everything, then give back what the pattern leaves free. */
	for (b = 0; b < n; b++)
		kv_pool_alloc(p, 1, &tmp);
	for (b = 0; b < n; b++) {
		int keep = !strcmp(how, "random50") ? (int)(next_rand() % 2) :
			   !strcmp(how, "alternate") ? (int)(b % 2) : b < n - 64;

		if (keep)
			held[nheld++] = b;
		else
			kv_pool_put(p, b);
	}
	return nheld;
}

static double measure(struct kv_pool *p, uint32_t n)
{
	double t[ROUNDS];
	uint32_t out[64], r, i;

	for (r = 0; r < ROUNDS; r++) {
		double t0 = bench_now();

		for (i = 0; i < PAIRS; i++) {
			if (kv_pool_alloc(p, n, out)) {
				fprintf(stderr, "alloc of %u failed\n", n);
				exit(1);
			}
			if (n == 1)
				kv_pool_put(p, out[0]);
			else
				kv_pool_put_many(p, out, n);
		}
		t[r] = (bench_now() - t0) / PAIRS * 1e9;
	}
	return bench_median(t, ROUNDS);
}

int main(int argc, char **argv)
{
	static const char *const shapes[] = { "empty", "random50", "alternate", "tail" };
	uint32_t max = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 4u << 20, n, s;

	printf("# kv pool allocator: ns per alloc + free (median of %d rounds of %d)\n",
	       ROUNDS, PAIRS);
	printf("%-10s %-10s %12s %12s\n", "blocks", "shape", "1 block", "64 blocks");
	for (n = 64 << 10; n <= max; n *= 4) {
		for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
			uint32_t *held = malloc((size_t)n * sizeof(*held)), nheld, i;
			struct kv_pool p;
			double one, run;

			if (!held || kv_pool_init(&p, n)) {
				fprintf(stderr, "out of memory\n");
				return 1;
			}
			nheld = shape(&p, shapes[s], held);
			one = measure(&p, 1);
			run = measure(&p, 64);
			printf("%-10u %-10s %12.1f %12.1f\n", n, shapes[s], one, run);
			for (i = 0; i < nheld; i++)
				kv_pool_put(&p, held[i]);
			kv_pool_fini(&p);
			free(held);
		}
	}
	return 0;
}
