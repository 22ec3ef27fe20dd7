// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-xfer - accel_xfer's put bandwidth between two processes on
 * this machine (UCX_TLS=tcp over 127.0.0.1 unless the environment says
 * otherwise), for the KV blocks of a 1k, 4k, 16k and 32k-token request
 * (64 KiB blocks of 16 tokens: 64, 256, 1024, 2048 blocks, one iov each),
 * from unregistered memory and from memory registered with
 * accel_xfer_mem_map() (as a host tier's would be), against a plain memcpy
 * of the same bytes in this process (the baseline of the same run:
 * figures are ratios).
 *
 * Usage: kvaccel-bench-xfer [REPEATS]   (default 5; the median is shown)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"

#define BLK		(64u << 10)
#define TOK_PER_BLK	16u
#define MAXBLK		2048u
#define S		1000000000LL

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "kvaccel-bench-xfer: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void *buf(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap", errno);
	memset(p, 0x5a, len);	/* faulted in: no page faults timed */
	return p;
}

/* The target: registers its memory, sends the descriptor, serves until "bye". */
static int server(int port_fd)
{
	unsigned char desc[ACCEL_XFER_DESC_MAX], m[8];
	struct accel_xfer_mem *mem;
	struct accel_xfer_ep *ep;
	struct accel_xfer *x;
	size_t len = sizeof(desc);
	uint16_t port;
	int r;

	x = accel_xfer_create(NULL);
	if (!x)
		die("accel_xfer_create (server)", errno);
	r = accel_xfer_listen(x, "127.0.0.1", 0, &port);
	if (r)
		die("listen", r);
	if (write(port_fd, &port, sizeof(port)) != sizeof(port))
		die("write", errno);
	r = accel_xfer_accept(x, &ep, 10 * S);
	if (!r)
		r = accel_xfer_mem_map(x, buf((size_t)MAXBLK * BLK), (size_t)MAXBLK * BLK, &mem);
	if (!r)
		r = accel_xfer_mem_pack(mem, desc, &len);
	if (!r)
		r = accel_xfer_send(ep, desc, len, 5 * S);
	if (r)
		die("server setup", r);
	len = sizeof(m);
	r = accel_xfer_recv(x, NULL, m, &len, 600 * S);
	accel_xfer_ep_close(ep);
	accel_xfer_mem_unmap(mem);
	accel_xfer_destroy(x);
	return r ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = { 64, 256, 1024, 2048 };
	unsigned char desc[ACCEL_XFER_DESC_MAX], *src, *dst;
	int reps = argc > 1 ? atoi(argv[1]) : 5, pfd[2], r, i, st;
	struct accel_xfer_iov *iov;
	struct accel_xfer_rkey *rk;
	struct accel_xfer_ep *ep;
	struct accel_xfer *x;
	double *tp, *tr, *tm, t0;
	struct accel_xfer_mem *lm;
	size_t len, k;
	uint16_t port;
	pid_t pid;

	if (reps < 1)
		reps = 1;
	setenv("UCX_TLS", "tcp", 0);
	setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 0);
	/* The server forks before anything of UCX exists here. */
	if (pipe(pfd))
		die("pipe", errno);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		close(pfd[0]);
		_exit(server(pfd[1]));
	}
	close(pfd[1]);
	if (read(pfd[0], &port, sizeof(port)) != sizeof(port))
		die("the server did not start", EIO);
	x = accel_xfer_create(NULL);
	if (!x)
		die("accel_xfer_create", errno);
	r = accel_xfer_connect(x, "127.0.0.1", port, 5 * S, &ep);
	if (r)
		die("connect", r);
	len = sizeof(desc);
	r = accel_xfer_recv(x, NULL, desc, &len, 10 * S);
	if (!r)
		r = accel_xfer_rkey(ep, desc, len, &rk);
	if (r)
		die("descriptor", r);
	src = buf((size_t)MAXBLK * BLK);
	dst = buf((size_t)MAXBLK * BLK);
	iov = calloc(MAXBLK, sizeof(*iov));
	tp = calloc(reps, sizeof(double));
	tm = calloc(reps, sizeof(double));
	tr = calloc(reps, sizeof(double));
	if (!iov || !tp || !tm || !tr)
		die("calloc", ENOMEM);
	for (k = 0; k < MAXBLK; k++)
		/* Scattered on the target, as a KV tier's free blocks are. */
		iov[k] = (struct accel_xfer_iov){ src + k * BLK,
						  (uint64_t)((k * 7) % MAXBLK) * BLK, BLK };
	printf("accel_xfer put bandwidth, %u KiB blocks of %u tokens, UCX_TLS=%s, median of %d\n",
	       BLK >> 10, TOK_PER_BLK, getenv("UCX_TLS"), reps);
	printf("%7s %6s %5s %8s %6s %8s %6s %8s %6s %6s\n", "tokens", "blocks", "MiB",
	       "put ms", "GB/s", "reg ms", "GB/s", "cpy ms", "GB/s", "ratio");
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint32_t n = sizes[k], b;
		double bytes = (double)n * BLK, p, q, m;

		/* One warm-up round of each. */
		for (i = -1; i < reps; i++) {
			t0 = now();
			r = accel_xfer_put(ep, iov, n, rk);
			if (!r)
				r = accel_xfer_flush(ep, 60 * S);
			if (r)
				die("put", r);
			if (i >= 0)
				tp[i] = now() - t0;
			r = accel_xfer_mem_map(x, src, (size_t)MAXBLK * BLK, &lm);
			if (r)
				die("mem_map", r);
			t0 = now();
			r = accel_xfer_put(ep, iov, n, rk);
			if (!r)
				r = accel_xfer_flush(ep, 60 * S);
			if (r)
				die("put (registered)", r);
			if (i >= 0)
				tr[i] = now() - t0;
			accel_xfer_mem_unmap(lm);
			t0 = now();
			for (b = 0; b < n; b++)
				memcpy(dst + ((size_t)b * 7 % MAXBLK) * BLK, src + (size_t)b * BLK, BLK);
			__asm__ __volatile__("" : : "r"(dst) : "memory");
			if (i >= 0)
				tm[i] = now() - t0;
		}
		p = median(tp, reps);
		q = median(tr, reps);
		m = median(tm, reps);
		printf("%7u %6u %5.0f %8.2f %6.2f %8.2f %6.2f %8.2f %6.2f %6.1f\n",
		       n * TOK_PER_BLK, n, bytes / (1 << 20), p * 1e3, bytes / p / 1e9, q * 1e3,
		       bytes / q / 1e9, m * 1e3, bytes / m / 1e9, p / m);
	}
	printf("put: from unregistered memory; reg: registered (accel_xfer_mem_map);\n"
	       "ratio: put time / memcpy time (1.0 would be a local memcpy's speed)\n");
	r = accel_xfer_send(ep, "bye", 4, 5 * S);
	accel_xfer_flush(ep, 5 * S);
	accel_xfer_rkey_destroy(rk);
	accel_xfer_ep_close(ep);
	accel_xfer_destroy(x);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		fprintf(stderr, "kvaccel-bench-xfer: the server failed\n");
	return 0;
}
