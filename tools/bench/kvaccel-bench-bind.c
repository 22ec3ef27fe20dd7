// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-bind - the cost of zero-copy remapping, against the ways to
 * get the same bytes at a virtual address without kvaccel, in one run:
 *
 *   bind       SPACE_BIND of 1024 slots, in batches of 1, 64 and 1024,
 *              per block (the slots were empty: nothing to tear down)
 *   touch      the first access to each bound slot, which maps the block
 *              (one PMD for a 2 MiB slot where the kernel allows)
 *   memcpy     copying a block's bytes (source and destination resident)
 *   memfd      the userspace way to remap: mmap(MAP_FIXED) of a memfd
 *              offset into a reserved window, then touching the block:
 *              its first page ("touch1") or all its pages ("touchall",
 *              which is what one touch of a kvaccel slot makes reachable)
 *
 * For 4 KiB, 64 KiB and 2 MiB blocks; medians over ROUNDS; ratios printed.
 * usage: kvaccel-bench-bind [ROUNDS]   (default 5)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "drm.h"
#include "kvaccel.h"
#include "bench-common.h"

#define SLOTS		1024
#define MAX_ROUNDS	16

static void die(const char *what)
{
	fprintf(stderr, "kvaccel-bench-bind: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void bind_all(int fd, uint32_t space, struct drm_kvaccel_bind_op *ops,
		     uint32_t batch)
{
	uint32_t i;

	for (i = 0; i < SLOTS; i += batch) {
		struct drm_kvaccel_space_bind sb = {
			.handle = space, .count = batch, .ops = (uintptr_t)&ops[i],
		};

		if (ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_BIND, &sb))
			die("SPACE_BIND");
	}
}

struct result {
	double bind[3], touch, memcpy, memfd_map, memfd_touch1, memfd_touchall;
};

static const uint32_t batches[3] = { 1, 64, 1024 };

static void bench(int fd, uint32_t bs, int rounds, struct result *res)
{
	uint32_t pool_blocks = bs >= (1u << 21) ? 64 : bs >= (64u << 10) ? 256 : SLOTS;
	double t[3][MAX_ROUNDS], touch[MAX_ROUNDS], cp[MAX_ROUNDS];
	double fmap[MAX_ROUNDS], ft1[MAX_ROUNDS], fta[MAX_ROUNDS];
	static struct drm_kvaccel_bind_op ops[SLOTS], unbind[SLOTS];
	struct drm_kvaccel_region_create rc = { .size = (uint64_t)pool_blocks * bs,
						.block_size = bs };
	struct drm_kvaccel_space_create sc = { .nr_slots = SLOTS, .block_size = bs };
	struct drm_kvaccel_space_info info = { 0 };
	size_t window = (size_t)SLOTS * bs;
	volatile unsigned char *win;
	unsigned char *src, *dst, *fwin, *reserve;
	uint32_t i, b;
	int r, memfd;
	void *p;

	if (ioctl(fd, DRM_IOCTL_KVACCEL_REGION_CREATE, &rc) ||
	    ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_CREATE, &sc))
		die("create");
	info.handle = sc.handle;
	if (ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info))
		die("SPACE_INFO");
	p = mmap(NULL, info.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)info.mmap_offset);
	if (p == MAP_FAILED)
		die("mmap space");
	win = p;
	for (i = 0; i < SLOTS; i++) {
		ops[i] = (struct drm_kvaccel_bind_op) {
			.op = KVACCEL_BIND_OP_BIND, .slot = i, .handle = rc.handle,
			.block = i % pool_blocks,
		};
		unbind[i] = (struct drm_kvaccel_bind_op) {
			.op = KVACCEL_BIND_OP_UNBIND, .slot = i,
		};
	}

	for (r = 0; r < rounds; r++) {
		for (b = 0; b < 3; b++) {
			double t0 = bench_now();

			bind_all(fd, sc.handle, ops, batches[b]);
			t[b][r] = (bench_now() - t0) / SLOTS;
			if (b == 2) {
				volatile unsigned int sum = 0;

				t0 = bench_now();
				for (i = 0; i < SLOTS; i++)
					sum += win[(size_t)i * bs];
				touch[r] = (bench_now() - t0) / SLOTS;
			}
			bind_all(fd, sc.handle, unbind, SLOTS);
		}
	}

	/* memcpy of one block, both sides resident. */
	src = malloc(bs * 2);
	dst = malloc(bs * 2);
	if (!src || !dst)
		die("malloc");
	memset(src, 1, bs * 2);
	memset(dst, 2, bs * 2);
	for (r = 0; r < rounds; r++) {
		uint32_t n = bs >= (1u << 21) ? 32 : 256;
		double t0 = bench_now();

		for (i = 0; i < n; i++)
			memcpy(dst + (i & 1) * bs, src + ((i + 1) & 1) * bs, bs);
		cp[r] = (bench_now() - t0) / n;
	}

	/* memfd: remap blocks of a resident memfd into a window. */
	memfd = syscall(SYS_memfd_create, "bench", 0);
	if (memfd < 0 || ftruncate(memfd, (off_t)pool_blocks * bs))
		die("memfd");
	p = mmap(NULL, (size_t)pool_blocks * bs, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED)
		die("mmap memfd");
	memset(p, 3, (size_t)pool_blocks * bs);	/* resident: faults only map */
	munmap(p, (size_t)pool_blocks * bs);
	reserve = mmap(NULL, window + (2u << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (reserve == MAP_FAILED)
		die("reserve");
	fwin = (unsigned char *)(((uintptr_t)reserve + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
	for (r = 0; r < rounds; r++) {
		volatile unsigned int sum = 0;
		double t0 = bench_now(), t1, t2;
		size_t off;

		for (i = 0; i < SLOTS; i++)
			if (mmap(fwin + (size_t)i * bs, bs, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, memfd,
				 (off_t)(i % pool_blocks) * bs) == MAP_FAILED)
				die("mmap fixed");
		t1 = bench_now();
		for (i = 0; i < SLOTS; i++)
			sum += fwin[(size_t)i * bs];
		t2 = bench_now();
		for (i = 0; i < SLOTS; i++)
			for (off = 4096; off < bs; off += 4096)
				sum += fwin[(size_t)i * bs + off];
		fmap[r] = (t1 - t0) / SLOTS;
		ft1[r] = (t2 - t1) / SLOTS;
		fta[r] = (bench_now() - t0) / SLOTS - fmap[r];
		/* Back to nothing mapped for the next round. */
		if (mmap(fwin, window, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			 -1, 0) == MAP_FAILED)
			die("unmap window");
	}

	for (b = 0; b < 3; b++)
		res->bind[b] = bench_median(t[b], rounds);
	res->touch = bench_median(touch, rounds);
	res->memcpy = bench_median(cp, rounds);
	res->memfd_map = bench_median(fmap, rounds);
	res->memfd_touch1 = bench_median(ft1, rounds);
	res->memfd_touchall = bench_median(fta, rounds);

	munmap(reserve, window + (2u << 20));
	close(memfd);
	free(src);
	free(dst);
	munmap((void *)win, info.map_size);
	{
		struct drm_gem_close gc = { .handle = sc.handle };

		ioctl(fd, DRM_IOCTL_GEM_CLOSE, &gc);
		gc.handle = rc.handle;
		ioctl(fd, DRM_IOCTL_GEM_CLOSE, &gc);
	}
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[3] = { 4096, 65536, 2u << 20 };
	int rounds = argc > 1 ? atoi(argv[1]) : 5, fd = bench_open_kvaccel(), s;
	struct drm_kvaccel_get_param gp = { .param = KVACCEL_PARAM_CAPABILITIES };

	if (fd < 0) {
		errno = ENODEV;
		die("no kvaccel device");
	}
	if (rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "kvaccel-bench-bind: rounds must be 1..%d\n", MAX_ROUNDS);
		return 1;
	}
	if (ioctl(fd, DRM_IOCTL_KVACCEL_GET_PARAM, &gp))
		die("GET_PARAM");
	printf("kvaccel-bench-bind: %d slots, median of %d rounds, 2 MiB slots map with %s\n",
	       SLOTS, rounds, gp.value & KVACCEL_CAP_SPACE_PMD ? "one PMD" : "PTEs");
	printf("times in microseconds per block\n");
	printf("%-7s %8s %8s %8s %8s %9s %9s %9s\n", "block", "bind/1", "bind/64",
	       "bind/1k", "touch", "memcpy", "memfd+t1", "memfd+all");
	for (s = 0; s < 3; s++) {
		struct result res;
		double ours;

		bench(fd, sizes[s], rounds, &res);
		ours = res.bind[2] + res.touch;
		printf("%-7s %8.2f %8.2f %8.2f %8.2f %9.2f %9.2f %9.2f\n",
		       sizes[s] == 4096 ? "4 KiB" : sizes[s] == 65536 ? "64 KiB" : "2 MiB",
		       res.bind[0] * 1e6, res.bind[1] * 1e6, res.bind[2] * 1e6,
		       res.touch * 1e6, res.memcpy * 1e6,
		       (res.memfd_map + res.memfd_touch1) * 1e6,
		       (res.memfd_map + res.memfd_touchall) * 1e6);
		printf("  ratios: memcpy / (bind+touch) = %.1fx; (memfd+touch all) / (bind+touch) = %.2fx;"
		       " (memfd+touch1) / (bind+touch) = %.2fx; batch 1024 / 1024 single binds = %.3f\n",
		       res.memcpy / ours, (res.memfd_map + res.memfd_touchall) / ours,
		       (res.memfd_map + res.memfd_touch1) / ours, res.bind[2] / res.bind[0]);
	}
	close(fd);
	return 0;
}
