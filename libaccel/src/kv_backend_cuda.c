// SPDX-License-Identifier: MIT
/*
 * libaccel - the KV cache's cuda backend (kv/kv_backend.h): both tiers
 * tiers of the data mover. The device tier is an allocated device tier in
 * one GPU's memory whose chunks, all created with the cache, are mapped
 * when a block in them is first used (accel_tier_create_cuda_lazy(),
 * ->prepare()); the host tier a host tier (a kvaccel region,
 * accel_tier_create_host()) registered for DMA (accel_tier_host_dma()).
 * Copies go down the mover's own CUDA path (accel_mover_cuda_queue(),
 * without the mover's waiter thread: the cache waits), on the device
 * tier's stream; a transfer is the (tier, ticket) pairs to wait for. A
 * caller orders them against its own streams with CUDA events (struct
 * kv_order): the copies wait for one, and record another.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "cuda/cuda_tier.h"
#include "kv/kv_backend.h"
#include "mover/mover.h"

/* Whole blocks (a KV block is one piece: neither tier has layers here). */
static const struct accel_piece_sel whole_blocks;

struct cuda_backend {
	struct kv_backend b;
	struct accel_device *dev;
	/* [KV_TIER_DEV]: the device tier, [KV_TIER_HOST]: the host tier (a region). */
	struct accel_tier *tier[KV_TIER_NR];
};

struct kv_xfer {
	struct accel_cuda_wait *waits;
	uint32_t nr;
};

static struct cuda_backend *to_cuda(struct kv_backend *b)
{
	return (struct cuda_backend *)b;
}

static const struct accel_tier *const *tiers_of(struct cuda_backend *c)
{
	return (const struct accel_tier *const *)c->tier;
}

static struct accel_cuda_tier *gpu_of(struct cuda_backend *c)
{
	return accel_tier_cuda(c->tier[KV_TIER_DEV]);
}

_Static_assert(KV_NO_BLOCK == UINT32_MAX, "accel_tier_cuda_prepare()'s holes");

static int cuda_prepare(struct kv_backend *b, const uint32_t *blocks, uint32_t n)
{
	/* KV_NO_BLOCK entries are holes: skipped. */
	return accel_tier_cuda_prepare(to_cuda(b)->tier[KV_TIER_DEV], blocks, n);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Wait for @n (tier, ticket) pairs under one deadline (@timeout_ns -1:
 * none, 0: a poll of each): each later pair gets what is left of it.
 */
static int waits_wait(const struct accel_cuda_wait *w, uint32_t n, int64_t timeout_ns)
{
	int64_t end = 0, left = timeout_ns, t0;
	uint32_t i;
	int ret = 0;

	if (timeout_ns > 0 && n > 1) {
		t0 = now_ns();
		/* A deadline past the clock's range is none. */
		if (timeout_ns > INT64_MAX - t0)
			timeout_ns = left = -1;
		else
			end = t0 + timeout_ns;
	}
	for (i = 0; !ret && i < n; i++) {
		if (timeout_ns > 0 && i) {
			left = end - now_ns();
			left = left > 0 ? left : 0;
		}
		ret = accel_cuda_tier_wait(w[i].ct, w[i].ticket, left);
	}
	return ret;
}

/* Every pair waited for, whatever the first failure: nothing is left in flight. */
static int waits_drain(struct accel_cuda_wait *w, uint32_t n, int status)
{
	uint32_t i;
	int r;

	for (i = 0; i < n; i++) {
		r = accel_cuda_tier_wait(w[i].ct, w[i].ticket, -1);
		status = status ? status : r;
	}
	free(w);
	return status;
}

/*
 * The naive mover ACCEL_KV_PER_BLOCK_COPIES asks for (benchmarks only):
 * one copy call per block, the order's wait before the first and its
 * record after the last, all waited for here.
 */
static int per_block(struct cuda_backend *c, const struct accel_bm_run *runs, uint32_t n,
		     const struct kv_order *order)
{
	uint64_t blocks = 0, total = 0;
	struct accel_cuda_wait last = { 0 };
	uint32_t i, k;
	int ret = 0;

	for (i = 0; i < n; i++)
		total += runs[i].count;
	for (i = 0; i < n && !ret; i++) {
		for (k = 0; k < runs[i].count && !ret; k++) {
			struct accel_bm_run one = runs[i];
			struct accel_cuda_wait *w = NULL;
			uint32_t nr = 0;
			int st = 0;

			one.src_block += k;
			one.dst_block += k;
			one.count = 1;
			ret = accel_mover_cuda_queue(tiers_of(c), &one, 1, &whole_blocks,
						     !blocks && order ? order->wait_event : NULL,
						     blocks + 1 == total && order ?
						     order->done_event : NULL, &w, &nr, &st);
			blocks++;
			if (ret)
				break;
			/* One stream (the device tier's): its latest ticket covers the rest. */
			if (nr)
				last = w[nr - 1];
			free(w);
			ret = st;
		}
	}
	if (last.ct) {
		int r = accel_cuda_tier_wait(last.ct, last.ticket, -1);

		ret = ret ? ret : r;
	}
	c->b.transfers += blocks;
	c->b.bytes_moved += blocks * c->b.block_bytes;
	return ret;
}

static int cuda_copy(struct kv_backend *b, const struct accel_bm_run *runs, uint32_t n,
		     const struct kv_order *order, struct kv_xfer **x)
{
	struct cuda_backend *c = to_cuda(b);
	struct accel_cuda_wait *w = NULL;
	uint32_t nr = 0, i;
	uint64_t blocks = 0;
	int ret, st = 0;

	*x = NULL;
	if (!n) {
		/* No copies: the done event still comes after the wait, on the tier's stream. */
		ret = order && order->wait_event ?
		      accel_cuda_tier_wait_event(gpu_of(c), order->wait_event) : 0;
		if (!ret && order && order->done_event)
			ret = accel_cuda_tier_record(gpu_of(c), order->done_event);
		return ret;
	}
	if (b->flags & ACCEL_KV_PER_BLOCK_COPIES)
		return per_block(c, runs, n, order);
	/*
	 * The plan's runs are coalesced already, each within transfer_unit;
	 * every one has the device tier at one end (swaps, copy-on-write on
	 * the device), whose stream runs them all: one (tier, ticket) pair.
	 */
	ret = accel_mover_cuda_queue(tiers_of(c), runs, n, &whole_blocks,
				     order ? order->wait_event : NULL,
				     order ? order->done_event : NULL, &w, &nr, &st);
	if (ret)
		return ret;
	if (!st) {
		*x = malloc(sizeof(**x));
		st = *x ? 0 : -ENOMEM;
	}
	if (st)
		return waits_drain(w, nr, st);	/* on error nothing may still be in flight */
	for (i = 0; i < n; i++)
		blocks += runs[i].count;
	b->transfers += n;
	b->bytes_moved += blocks * b->block_bytes;
	**x = (struct kv_xfer){ .waits = w, .nr = nr };
	return 0;
}

static int cuda_wait(struct kv_backend *b, struct kv_xfer *x, int64_t timeout_ns)
{
	int ret = waits_wait(x->waits, x->nr, timeout_ns);

	(void)b;
	return ret == -ETIMEDOUT ? -ETIME : ret;
}

static void cuda_xfer_free(struct kv_backend *b, struct kv_xfer *x)
{
	(void)b;
	free(x->waits);
	free(x);
}

static struct accel_fence *cuda_xfer_fence(struct kv_backend *b, struct kv_xfer *x)
{
	(void)b;
	(void)x;
	return NULL;	/* order with CUDA events (struct accel_kv_swap_opts) */
}

/* A device pointer (device tier) or a host address: what the tier's copies use. */
static void *cuda_block_addr(struct kv_backend *b, enum kv_tier_id t, uint32_t block)
{
	return (void *)(uintptr_t)accel_tier_piece(to_cuda(b)->tier[t], block, 0, 1);
}

struct cuda_window {
	cu_deviceptr ptr;
	uint32_t n;
	struct accel_space *space;	/* a host-tier window */
};

static int cuda_window(struct kv_backend *b, enum kv_tier_id t, const uint32_t *blocks,
		       uint32_t n, void **win, void **addr, size_t *len)
{
	struct cuda_backend *c = to_cuda(b);
	uint64_t chunk = accel_cuda_tier_chunk_size(gpu_of(c));
	struct cuda_window *w;
	struct accel_bind_op *ops;
	uint32_t i;
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (t == KV_TIER_DEV) {
		/*
		 * A CUDA window maps whole chunks: blocks of one chunk each
		 * (block_bytes = 2 MiB, mapped: they are a sequence's) map
		 * again in sequence order.
		 */
		ret = b->block_bytes != chunk ? -EOPNOTSUPP :
		      accel_cuda_tier_window(gpu_of(c), blocks, n, &w->ptr);
		if (ret) {
			free(w);
			return ret;
		}
		w->n = n;
		*addr = (void *)(uintptr_t)w->ptr;
		if (len)
			*len = (size_t)n * chunk;
		*win = w;
		return 0;
	}
	w->space = accel_space_create(c->dev, n, b->block_bytes);
	ops = calloc(n, sizeof(*ops));
	ret = !w->space ? -errno : !ops ? -ENOMEM : 0;
	for (i = 0; !ret && i < n; i++)
		ops[i] = (struct accel_bind_op) {
			.kind = ACCEL_BIND, .slot = i, .region = c->tier[KV_TIER_HOST]->region,
			.block = blocks[i],
		};
	if (!ret)
		ret = accel_space_bind(w->space, ops, n, NULL);
	if (!ret) {
		*addr = accel_space_map(w->space, len);
		ret = *addr ? 0 : -errno;
	}
	free(ops);
	if (ret) {
		accel_space_destroy(w->space);
		free(w);
		return ret;
	}
	*win = w;
	return 0;
}

static void cuda_window_free(struct kv_backend *b, void *win)
{
	struct cuda_window *w = win;

	if (w->ptr)
		accel_cuda_tier_window_free(gpu_of(to_cuda(b)), w->ptr, w->n);
	accel_space_destroy(w->space);
	free(w);
}

/* The host tier's region, or the whole device tier (mapped first) as one dma-buf. */
static int cuda_tier_export(struct kv_backend *b, enum kv_tier_id t, int *fd)
{
	return accel_tier_export(to_cuda(b)->tier[t], fd);
}

/* The device tier first: its destruction waits for its stream's copies. */
static void cuda_destroy(struct kv_backend *b)
{
	struct cuda_backend *c = to_cuda(b);

	accel_tier_destroy(c->tier[KV_TIER_DEV]);
	accel_tier_destroy(c->tier[KV_TIER_HOST]);
	free(c);
}

static const struct kv_backend_ops cuda_ops = {
	.prepare = cuda_prepare,
	.copy = cuda_copy,
	.wait = cuda_wait,
	.xfer_free = cuda_xfer_free,
	.xfer_fence = cuda_xfer_fence,
	.block_addr = cuda_block_addr,
	.window = cuda_window,
	.window_free = cuda_window_free,
	.tier_export = cuda_tier_export,
	.destroy = cuda_destroy,
};

int kv_backend_cuda_create(struct accel_device *dev, const struct kv_backend_config *cfg,
			   struct kv_backend **out)
{
	struct cuda_backend *c = calloc(1, sizeof(*c));
	ACCEL_OPTS(accel_tier_opts, to, .block_bytes = cfg->block_bytes, .blocks = cfg->host_blocks,
		   .node = cfg->host_node,
		   .flags = cfg->host_node == ACCEL_NODE_ANY ? 0 : ACCEL_TIER_ON_NODE);
	char why[160] = "";
	int ret;

	if (!c)
		return -ENOMEM;
	c->b = (struct kv_backend) {
		.ops = &cuda_ops, .name = "cuda", .block_bytes = cfg->block_bytes,
		.transfer_unit = cfg->transfer_unit, .flags = cfg->flags,
	};
	c->dev = dev;
	ret = accel_tier_create_cuda_lazy(cfg->gpu, cfg->block_bytes, cfg->device_blocks,
					  &c->tier[KV_TIER_DEV], why, sizeof(why));
	if (ret) {
		accel_log(ACCEL_LOG_ERR, "kv: cuda backend: %s", why[0] ? why : strerror(-ret));
		free(c);
		return ret;
	}
	c->tier[KV_TIER_HOST] = accel_tier_create_host(dev, &to);
	if (!c->tier[KV_TIER_HOST]) {
		ret = -errno;
		goto err;
	}
	/* Registered now, through the tier's GPU: a failure fails the cache, not a swap. */
	ret = accel_tier_host_dma(c->tier[KV_TIER_HOST], cfg->gpu);
	if (ret)
		goto err;
	*out = &c->b;
	return 0;
err:
	cuda_destroy(&c->b);
	return ret;
}
