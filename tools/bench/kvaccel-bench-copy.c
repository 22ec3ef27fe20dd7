// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-copy - the copy engine against userspace memcpy, in one run:
 *
 *   throughput  one job copying 64 MiB between two regions as 64 KiB,
 *               2 MiB or 64 MiB segments (non-adjacent, so not merged),
 *               submit to fence; against the best userspace copy of the
 *               same bytes through the regions' mappings on one thread:
 *               glibc's memcpy or a plain vector loop, whichever is faster
 *               (under emulation glibc picks `rep movsb` for 64 KiB pieces,
 *               which TCG runs byte by byte: 45 MB/s against 2300 MB/s for
 *               2 MiB pieces, so memcpy alone is no baseline there)
 *   latency     a 4 KiB copy from submit to its fence signalled, against a
 *               GET_PARAM round trip: the submit alone when it reports the
 *               job done (status 1: copied by the caller), else submit plus
 *               syncobj wait; the same without an out syncobj; and, for
 *               comparison, submit plus a syncobj wait every time
 *
 * The worker count is the module's copy_workers parameter: run it once per
 * setting (make bench reloads the module with 1, 2 and the default).
 * usage: kvaccel-bench-copy [ROUNDS]   (default 5)
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "kvaccel.h"
#include "bench-common.h"

#define TOTAL		(64u << 20)
#define MAX_ROUNDS	16

typedef uint64_t bench_vec __attribute__((vector_size(16), aligned(1)));

/*
 * The plain vector loop: 128 bytes per iteration. Built so that GCC does
 * not turn it back into a memcpy call.
 */
__attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))
static void vec_copy(void *dst, const void *src, size_t n)
{
	bench_vec *d = dst;
	const bench_vec *s = src;
	size_t i;

	for (i = 0; i + 8 <= n / sizeof(*d); i += 8) {
		bench_vec a = s[i], b = s[i + 1], c = s[i + 2], e = s[i + 3];
		bench_vec f = s[i + 4], g = s[i + 5], h = s[i + 6], k = s[i + 7];

		d[i] = a;
		d[i + 1] = b;
		d[i + 2] = c;
		d[i + 3] = e;
		d[i + 4] = f;
		d[i + 5] = g;
		d[i + 6] = h;
		d[i + 7] = k;
	}
	memcpy((char *)dst + i * sizeof(*d), (const char *)src + i * sizeof(*d),
	       n - i * sizeof(*d));
}

static void die(const char *what, int err)
{
	fprintf(stderr, "kvaccel-bench-copy: %s: %s\n", what, strerror(err));
	exit(1);
}

static uint32_t region(int fd, uint64_t size, uint32_t bs, unsigned char **map)
{
	struct drm_kvaccel_region_create rc = { .size = size, .block_size = bs };
	struct drm_kvaccel_region_info info = { 0 };

	if (ioctl(fd, DRM_IOCTL_KVACCEL_REGION_CREATE, &rc))
		die("REGION_CREATE", errno);
	info.handle = rc.handle;
	if (ioctl(fd, DRM_IOCTL_KVACCEL_REGION_INFO, &info))
		die("REGION_INFO", errno);
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)info.mmap_offset);
	if (*map == MAP_FAILED)
		die("mmap", errno);
	return rc.handle;
}

/* Submit, then wait for the fence unless @trust_status and the job is done. */
static void submit_wait(int fd, struct drm_kvaccel_copy_segment *segs, uint32_t n,
			uint32_t sync, int trust_status)
{
	struct drm_kvaccel_copy_submit cs = {
		.count = n, .segments = (uintptr_t)segs, .out_syncobj = sync,
	};
	struct drm_syncobj_wait w = {
		.handles = (uintptr_t)&sync, .count_handles = 1, .timeout_nsec = INT64_MAX,
	};

	if (ioctl(fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs))
		die("COPY_SUBMIT", errno);
	if (cs.status < 0)
		die("copy job", -cs.status);
	if (trust_status && cs.status == 1)
		return;
	if (ioctl(fd, DRM_IOCTL_SYNCOBJ_WAIT, &w))
		die("SYNCOBJ_WAIT", errno);
}

int main(int argc, char **argv)
{
	static struct drm_kvaccel_copy_segment segs[TOTAL / (64u << 10)];
	static const uint32_t seg_sizes[3] = { 64u << 10, 2u << 20, 64u << 20 };
	int rounds = argc > 1 ? atoi(argv[1]) : 5, fd = bench_open_kvaccel(), r, k;
	struct drm_kvaccel_get_param gp = { .param = KVACCEL_PARAM_ABI_VERSION };
	struct drm_syncobj_create sc = { 0 };
	double t[MAX_ROUNDS], m[MAX_ROUNDS], v[MAX_ROUNDS], w[MAX_ROUNDS], n0[MAX_ROUNDS];
	double lat, rt, waited, base, mm, vm;
	unsigned char *src, *dst;
	uint32_t a, b, i;
	char workers[32] = "?";
	FILE *f;

	if (fd < 0)
		die("no kvaccel device", ENODEV);
	if (rounds < 1 || rounds > MAX_ROUNDS)
		die("rounds must be 1..16", EINVAL);
	if (ioctl(fd, DRM_IOCTL_SYNCOBJ_CREATE, &sc))
		die("SYNCOBJ_CREATE", errno);
	f = fopen("/sys/module/kvaccel/parameters/copy_workers", "r");
	if (f) {
		if (!fgets(workers, sizeof(workers), f))
			strcpy(workers, "?");
		workers[strcspn(workers, "\n")] = 0;
		fclose(f);
	}
	/* Twice the data, so segments can be spread out and never merge. */
	a = region(fd, 2ull * TOTAL, 2u << 20, &src);
	b = region(fd, 2ull * TOTAL, 2u << 20, &dst);
	memset(src, 0x5a, 2ull * TOTAL);
	memset(dst, 0, 2ull * TOTAL);

	printf("kvaccel-bench-copy: copy_workers=%s (0 = default), 64 MiB per job, median of %d\n",
	       workers, rounds);
	printf("%-14s %12s %12s %12s %10s  %s\n", "segment", "engine MB/s", "memcpy MB/s",
	       "vector MB/s", "ratio", "(against the faster)");
	for (k = 0; k < 3; k++) {
		uint32_t n = TOTAL / seg_sizes[k];

		for (i = 0; i < n; i++) {
			/* every other slot of the doubled regions: not adjacent */
			uint64_t off = (uint64_t)i * 2 * seg_sizes[k];

			if (seg_sizes[k] == TOTAL)
				off = 0;
			segs[i] = (struct drm_kvaccel_copy_segment) {
				.src_handle = a, .dst_handle = b, .src_offset = off,
				.dst_offset = off, .length = seg_sizes[k],
			};
		}
		for (r = 0; r < rounds; r++) {
			double t0 = bench_now();

			submit_wait(fd, segs, n, sc.handle, 0);
			t[r] = bench_now() - t0;
			t0 = bench_now();
			for (i = 0; i < n; i++)
				memcpy(dst + segs[i].dst_offset, src + segs[i].src_offset,
				       seg_sizes[k]);
			m[r] = bench_now() - t0;
			t0 = bench_now();
			for (i = 0; i < n; i++)
				vec_copy(dst + segs[i].dst_offset, src + segs[i].src_offset,
					 seg_sizes[k]);
			v[r] = bench_now() - t0;
		}
		mm = bench_median(m, rounds);
		vm = bench_median(v, rounds);
		base = mm < vm ? mm : vm;
		printf("%-14s %12.0f %12.0f %12.0f %9.2fx  %s\n",
		       k == 0 ? "64 KiB" : k == 1 ? "2 MiB" : "64 MiB",
		       TOTAL / bench_median(t, rounds) / 1e6, TOTAL / mm / 1e6, TOTAL / vm / 1e6,
		       base / bench_median(t, rounds), mm < vm ? "memcpy" : "vector");
	}

	/* Latency of a small copy against an ioctl round trip. */
	segs[0] = (struct drm_kvaccel_copy_segment) {
		.src_handle = a, .dst_handle = b, .length = 4096,
	};
	for (r = 0; r < rounds; r++) {
		double t0 = bench_now();

		for (i = 0; i < 200; i++)
			submit_wait(fd, segs, 1, sc.handle, 1);
		t[r] = (bench_now() - t0) / 200;
		t0 = bench_now();
		for (i = 0; i < 200; i++)
			submit_wait(fd, segs, 1, sc.handle, 0);
		w[r] = (bench_now() - t0) / 200;
		t0 = bench_now();
		for (i = 0; i < 200; i++)
			submit_wait(fd, segs, 1, 0, 1);
		n0[r] = (bench_now() - t0) / 200;
		t0 = bench_now();
		for (i = 0; i < 2000; i++)
			if (ioctl(fd, DRM_IOCTL_KVACCEL_GET_PARAM, &gp))
				die("GET_PARAM", errno);
		m[r] = (bench_now() - t0) / 2000;
	}
	lat = bench_median(t, rounds);
	rt = bench_median(m, rounds);
	waited = bench_median(w, rounds);
	printf("4 KiB copy submit->signalled %.1f us, GET_PARAM round trip %.1f us: %.1fx"
	       " (target < 5x)\n", lat * 1e6, rt * 1e6, lat / rt);
	printf("4 KiB copy without an out syncobj %.1f us: %.1fx\n",
	       bench_median(n0, rounds) * 1e6, bench_median(n0, rounds) / rt);
	printf("4 KiB copy submit + syncobj wait %.1f us: %.1fx\n", waited * 1e6, waited / rt);
	close(fd);
	return 0;
}
