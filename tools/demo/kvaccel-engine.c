// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-engine - a small serving engine for `make demo`, built on
 * libaccel's engine API (kvacceld's socket):
 *
 *   kvaccel-engine prefill  priority 1: writes a request's KV into a
 *                           region, exposes its blocks as a space, hands the
 *                           space to "decode" through kvacceld (no copy),
 *                           then keeps a 24 MiB prefix cache that it frees
 *                           when the daemon asks it to release memory.
 *   kvaccel-engine decode   priority 5: takes the space, checks the KV it
 *                           sees through it (the prefill engine's pages),
 *                           then grows its own KV by 8 MiB, which pushes
 *                           the node over the high watermark.
 *
 * Socket: KVACCELD_SOCKET or kvacceld's default. Runs until its part is
 * done (prefill) or SIGTERM (decode).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel.h"

#define MIB	(1024ull * 1024)

static volatile sig_atomic_t stop;
static struct accel_device *dev;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "kvaccel-engine: %s: %s\n", what, strerror(err));
	exit(1);
}

/* ---- prefill ---------------------------------------------------------- */

static struct accel_region *cache[3];
static int released;

static int prefill_release(void *arg, uint64_t bytes, uint64_t *freed)
{
	int i;

	(void)arg;
	*freed = 0;
	for (i = 0; i < 3; i++) {
		if (!cache[i])
			continue;
		*freed += accel_region_size(cache[i]);
		accel_region_destroy(cache[i]);
		cache[i] = NULL;
	}
	printf("prefill: kvacceld asks for %llu MiB back: prefix cache dropped, %llu MiB freed\n",
	       (unsigned long long)(bytes / MIB), (unsigned long long)(*freed / MIB));
	released = 1;
	return 0;
}

static int prefill(void)
{
	struct accel_engine_ops ops = { .release = prefill_release };
	enum accel_handoff_kind kind = ACCEL_HANDOFF_SPACE;
	struct accel_bind_op bind[4];
	struct accel_engine *e;
	struct accel_region *kv;
	struct accel_space *sp;
	unsigned char *p;
	int fd, i, ret;

	e = accel_engine_connect(NULL, "prefill", 1, &ops, NULL);
	if (!e)
		die("registering", errno);
	ret = accel_engine_quota(e, 128 * MIB, NULL);
	if (ret)
		die("quota", -ret);
	printf("prefill: registered (priority 1), quota 128 MiB granted\n");

	/* The request's KV: 4 blocks of 2 MiB, block i filled with 'A' + i. */
	kv = accel_region_create(dev, 8 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	p = kv ? accel_region_map(kv) : NULL;
	if (!p)
		die("KV region", errno);
	for (i = 0; i < 4; i++)
		memset(p + i * 2 * MIB, 'A' + i, 2 * MIB);
	/* The sequence's order is 3, 1, 0, 2: the space shows it contiguous. */
	sp = accel_space_create(dev, 4, 2 * MIB);
	if (!sp)
		die("space", errno);
	for (i = 0; i < 4; i++)
		bind[i] = (struct accel_bind_op){ .kind = ACCEL_BIND, .slot = (uint32_t)i,
						  .region = kv, .block = (uint64_t[]){ 3, 1, 0, 2 }[i] };
	ret = accel_space_bind(sp, bind, 4, NULL);
	if (!ret)
		ret = accel_space_export(sp, &fd);
	if (ret)
		die("binding and exporting the space", -ret);
	ret = accel_engine_handoff(e, "decode", 1, &fd, &kind, 1);
	close(fd);
	if (!ret)
		ret = accel_engine_handoff_wait(e, 1, 30000000000ll);
	if (ret)
		die("hand-off to decode", -ret);
	printf("prefill: request 1's KV (8 MiB, blocks 3,1,0,2) handed to decode: done\n");

	/* Now the prefix cache: what the daemon may ask back. */
	for (i = 0; i < 3; i++) {
		cache[i] = accel_region_create(dev, 8 * MIB, 2 * MIB, ACCEL_NODE_ANY);
		if (!cache[i])
			die("prefix cache", errno);
	}
	printf("prefill: prefix cache of 24 MiB allocated\n");
	fflush(stdout);
	for (i = 0; i < 300 && !released; i++)
		accel_engine_dispatch(e, 100000000);
	accel_engine_close(e);
	accel_space_destroy(sp);
	accel_region_destroy(kv);
	return released ? 0 : 1;
}

/* ---- decode ----------------------------------------------------------- */

static struct accel_space *taken;

static int decode_receive(void *arg, const struct accel_handoff *h)
{
	unsigned char *p;
	size_t size;
	int i;

	(void)arg;
	if (h->count != 1 || h->kinds[0] != ACCEL_HANDOFF_SPACE)
		return -EINVAL;
	taken = accel_space_import(dev, h->fds[0]);
	close(h->fds[0]);
	if (!taken)
		return -errno;
	p = accel_space_map(taken, &size);
	if (!p)
		return -errno;
	printf("decode: took a %llu MiB space from %s (tag %llu); its blocks read:",
	       (unsigned long long)(size / MIB),
	       h->from, (unsigned long long)h->tag);
	for (i = 0; i < 4; i++)
		printf(" %c", p[i * 2 * MIB]);
	printf(" (prefill's own pages, no copy)\n");
	fflush(stdout);
	return 0;
}

static int decode(void)
{
	struct accel_engine_ops ops = { .receive = decode_receive };
	struct accel_region *grow = NULL;
	struct accel_engine *e;

	e = accel_engine_connect(NULL, "decode", 5, &ops, NULL);
	if (!e)
		die("registering", errno);
	printf("decode: registered (priority 5)\n");
	fflush(stdout);
	while (!stop) {
		if (accel_engine_dispatch(e, 100000000) == -ECONNRESET)
			break;
		if (taken && !grow) {
			grow = accel_region_create(dev, 8 * MIB, 2 * MIB, ACCEL_NODE_ANY);
			printf("decode: KV grows by 8 MiB%s\n", grow ? "" : " (refused)");
			fflush(stdout);
		}
	}
	accel_engine_close(e);
	accel_region_destroy(grow);
	accel_space_destroy(taken);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	int ret;

	if (argc != 2 || (strcmp(argv[1], "prefill") && strcmp(argv[1], "decode"))) {
		fprintf(stderr, "usage: kvaccel-engine prefill|decode\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	dev = accel_device_open(NULL);
	if (!dev)
		die("opening the kvaccel device", errno);
	ret = strcmp(argv[1], "prefill") ? decode() : prefill();
	accel_device_close(dev);
	return ret;
}
