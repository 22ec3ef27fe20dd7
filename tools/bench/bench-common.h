/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the kvaccel benchmarks share: a monotonic clock, medians, and
 * finding the device (by driver name, on accel and render nodes alike).
 */
#ifndef KVACCEL_BENCH_COMMON_H
#define KVACCEL_BENCH_COMMON_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "drm.h"

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of @n samples (sorts them). */
static inline double bench_median(double *v, int n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The kvaccel device, or -1. */
static inline int bench_open_kvaccel(void)
{
	static const char *const fmt[] = { "/dev/accel/accel%d", "/dev/dri/renderD%d" };
	int k, i;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < 64; i++) {
			struct drm_version v = { 0 };
			char path[64], name[32] = { 0 };
			int fd;

			snprintf(path, sizeof(path), fmt[k], k ? 128 + i : i);
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				continue;
			v.name = name;
			v.name_len = sizeof(name) - 1;
			if (!ioctl(fd, DRM_IOCTL_VERSION, &v) && !strcmp(name, "kvaccel"))
				return fd;
			close(fd);
		}
	}
	return -1;
}

#endif /* KVACCEL_BENCH_COMMON_H */
