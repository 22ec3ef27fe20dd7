// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench - region allocation cost against the userspace way of
 * getting pinned memory, measured in the same run:
 *   baseline   mmap(MAP_ANONYMOUS | MAP_POPULATE) + mlock, then munmap
 *   region     REGION_CREATE + GEM close, 2 MiB and 4 KiB blocks
 *   region+map REGION_CREATE + mmap (pages inserted at mmap) + close
 * Prints the median of each over N rounds and the ratio to the baseline
 * (below 1.0 means faster than mmap+mlock). Figures from an emulated
 * kernel are only meaningful as these ratios.
 *
 * usage: kvaccel-bench [SIZE_MIB] [ROUNDS]     (default 1024 MiB, 5 rounds)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "drm.h"
#include "kvaccel.h"
#include "bench-common.h"

#define MIB (1024ull * 1024)
#define MAX_ROUNDS 32

struct sample {
	double alloc, free;
};

static int run_mmap_mlock(uint64_t size, struct sample *s)
{
	double t0 = bench_now(), t1;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED || mlock(p, size))
		return -errno;
	t1 = bench_now();
	munmap(p, size);
	s->alloc = t1 - t0;
	s->free = bench_now() - t1;
	return 0;
}

static int run_region(int fd, uint64_t size, uint32_t bs, int map, struct sample *s)
{
	struct drm_kvaccel_region_create rc = { .size = size, .block_size = bs };
	struct drm_gem_close gc = { 0 };
	double t0 = bench_now(), t1;
	void *p = NULL;

	if (ioctl(fd, DRM_IOCTL_KVACCEL_REGION_CREATE, &rc))
		return -errno;
	if (map) {
		struct drm_kvaccel_region_info info = { .handle = rc.handle };

		if (ioctl(fd, DRM_IOCTL_KVACCEL_REGION_INFO, &info))
			return -errno;
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 (off_t)info.mmap_offset);
		if (p == MAP_FAILED)
			return -errno;
	}
	t1 = bench_now();
	if (map)
		munmap(p, size);
	gc.handle = rc.handle;
	if (ioctl(fd, DRM_IOCTL_GEM_CLOSE, &gc))
		return -errno;
	s->alloc = t1 - t0;
	s->free = bench_now() - t1;
	return 0;
}

enum { BASE, R2M, R4K, R2M_MAP, R4K_MAP, NCASES };
static const char *const names[NCASES] = {
	"mmap(MAP_POPULATE)+mlock", "region, 2 MiB blocks", "region, 4 KiB blocks",
	"region+mmap, 2 MiB blocks", "region+mmap, 4 KiB blocks",
};

int main(int argc, char **argv)
{
	uint64_t size = (argc > 1 ? strtoull(argv[1], NULL, 0) : 1024) * MIB;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	double a[NCASES][MAX_ROUNDS], f[NCASES][MAX_ROUNDS], ma[NCASES], mf[NCASES];
	int fd = bench_open_kvaccel(), r, c, ret;

	if (fd < 0) {
		fprintf(stderr, "kvaccel-bench: no kvaccel device\n");
		return 1;
	}
	if (rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "kvaccel-bench: rounds must be 1..%d\n", MAX_ROUNDS);
		return 1;
	}
	/* Interleave the cases so drift on a shared machine hits all alike. */
	for (r = 0; r < rounds; r++) {
		for (c = 0; c < NCASES; c++) {
			struct sample s;

			switch (c) {
			case BASE: ret = run_mmap_mlock(size, &s); break;
			case R2M: ret = run_region(fd, size, 2 * MIB, 0, &s); break;
			case R4K: ret = run_region(fd, size, 4096, 0, &s); break;
			case R2M_MAP: ret = run_region(fd, size, 2 * MIB, 1, &s); break;
			default: ret = run_region(fd, size, 4096, 1, &s); break;
			}
			if (ret) {
				fprintf(stderr, "kvaccel-bench: %s: %s\n", names[c], strerror(-ret));
				return 1;
			}
			a[c][r] = s.alloc;
			f[c][r] = s.free;
		}
	}
	printf("kvaccel-bench: %llu MiB, median of %d rounds\n",
	       (unsigned long long)(size / MIB), rounds);
	printf("%-28s %10s %10s %10s %12s\n", "case", "alloc ms", "free ms",
	       "total ms", "vs baseline");
	for (c = 0; c < NCASES; c++) {
		ma[c] = bench_median(a[c], rounds);
		mf[c] = bench_median(f[c], rounds);
	}
	for (c = 0; c < NCASES; c++)
		printf("%-28s %10.1f %10.1f %10.1f %11.2fx\n", names[c], ma[c] * 1e3,
		       mf[c] * 1e3, (ma[c] + mf[c]) * 1e3,
		       (ma[c] + mf[c]) / (ma[BASE] + mf[BASE]));
	printf("ratio region(2 MiB) create / mmap+mlock alloc: %.2f (goal: <= 1.00)\n",
	       ma[R2M] / ma[BASE]);
	close(fd);
	return 0;
}
