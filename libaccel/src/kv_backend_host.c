// SPDX-License-Identifier: MIT
/*
 * libaccel - the KV cache's host backend (kv/kv_backend.h): both tiers in
 * host tiers of the data mover (accel_tier_create_host(): kvaccel regions;
 * the device tier is where an engine without a GPU computes, the host tier
 * what it swaps to), bytes moved by the module's copy engine through the
 * mover's own path (accel_tier_copy_engine(), without the mover's worker:
 * the cache waits on fences). A transfer is the fence of its last copy job.
 */
#include <stdlib.h>

#include "internal.h"
#include "kv/kv_backend.h"
#include "mover/mover.h"

/* Whole blocks (a KV block is one piece: host tiers have no layers here). */
static const struct accel_piece_sel whole_blocks;

struct host_backend {
	struct kv_backend b;
	struct accel_device *dev;
	/* accel_tier_create_host() tiers: one region each, block_bytes region blocks. */
	struct accel_tier *tier[KV_TIER_NR];
};

static struct host_backend *to_host(struct kv_backend *b)
{
	return (struct host_backend *)b;
}

static int tier_init(struct host_backend *h, enum kv_tier_id t, uint32_t blocks, int node)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = h->b.block_bytes, .blocks = blocks,
		   .node = node, .flags = node == ACCEL_NODE_ANY ? 0 : ACCEL_TIER_ON_NODE);

	h->tier[t] = accel_tier_create_host(h->dev, &o);
	return h->tier[t] ? 0 : -errno;
}

static const struct accel_tier *const *tiers_of(struct host_backend *h)
{
	return (const struct accel_tier *const *)h->tier;
}

/*
 * The naive mover ACCEL_KV_PER_BLOCK_COPIES asks for (benchmarks only):
 * one job per block, at most WINDOW in flight, all waited for here.
 */
static int per_block(struct host_backend *h, const struct accel_bm_run *runs, uint32_t n)
{
	enum { WINDOW = 256 };
	struct accel_fence *f[WINDOW] = { NULL };
	uint64_t blocks = 0;
	uint32_t i, k, w;
	int ret = 0, r;

	for (i = 0; i < n && !ret; i++) {
		for (k = 0; k < runs[i].count && !ret; k++, blocks++) {
			struct accel_bm_run one = runs[i];

			one.src_block += k;
			one.dst_block += k;
			one.count = 1;
			w = (uint32_t)(blocks % WINDOW);
			if (f[w]) {
				ret = accel_fence_wait(f[w], -1);
				accel_fence_destroy(f[w]);
				f[w] = NULL;
			}
			if (!ret)
				ret = accel_tier_copy_engine(tiers_of(h), &one, 1, &whole_blocks, 0,
							     &f[w]);
		}
	}
	for (i = 0; i < WINDOW; i++) {
		if (!f[i])
			continue;
		r = accel_fence_wait(f[i], -1);
		ret = ret ? ret : r;
		accel_fence_destroy(f[i]);
	}
	h->b.transfers += blocks;
	h->b.bytes_moved += blocks * h->b.block_bytes;
	return ret;
}

/*
 * The plan's runs (coalesced, each within transfer_unit) as segments of
 * one job, or a chain of jobs within the kernel's segment and byte bounds
 * (accel_tier_copy_engine(), the mover's own path), each after the
 * previous (an error anywhere reaches the last fence, the transfer's).
 */
static int host_copy(struct kv_backend *b, const struct accel_bm_run *runs, uint32_t n,
		     const struct kv_order *order, struct kv_xfer **x)
{
	struct host_backend *h = to_host(b);
	uint32_t unit = b->transfer_unit / b->block_bytes, i;
	struct accel_fence *fence = NULL;
	uint64_t blocks = 0;
	int ret;

	*x = NULL;
	if (order && (order->wait_event || order->done_event))
		return -EOPNOTSUPP;	/* CUDA events: the cuda backend's */
	if (!n)
		return 0;
	if (b->flags & ACCEL_KV_PER_BLOCK_COPIES)
		return per_block(h, runs, n);
	for (i = 0; i < n; i++)
		blocks += runs[i].count;
	ret = accel_tier_copy_engine(tiers_of(h), runs, n, &whole_blocks,
				     (uint64_t)(unit ? unit : 1) * b->block_bytes, &fence);
	if (ret)
		return ret;
	b->transfers += n;
	b->bytes_moved += blocks * b->block_bytes;
	*x = (struct kv_xfer *)fence;
	return 0;
}

static int host_wait(struct kv_backend *b, struct kv_xfer *x, int64_t timeout_ns)
{
	struct accel_fence *f = (struct accel_fence *)x;
	int st;

	(void)b;
	if (timeout_ns)
		return accel_fence_wait(f, timeout_ns);
	st = accel_fence_status(f);
	return st == 1 ? 0 : st == 0 ? -ETIME : st;
}

static void host_xfer_free(struct kv_backend *b, struct kv_xfer *x)
{
	(void)b;
	accel_fence_destroy((struct accel_fence *)x);
}

static struct accel_fence *host_xfer_fence(struct kv_backend *b, struct kv_xfer *x)
{
	(void)b;
	return accel_fence_get((struct accel_fence *)x);
}

static void *host_block_addr(struct kv_backend *b, enum kv_tier_id t, uint32_t block)
{
	return accel_tier_block_addr(to_host(b)->tier[t], block);
}

static int host_window(struct kv_backend *b, enum kv_tier_id t, const uint32_t *blocks,
		       uint32_t n, void **win, void **addr, size_t *len)
{
	struct host_backend *h = to_host(b);
	struct accel_bind_op *ops;
	struct accel_space *sp;
	uint32_t i;
	int ret;

	sp = accel_space_create(h->dev, n, b->block_bytes);
	ops = calloc(n, sizeof(*ops));
	if (!sp || !ops) {
		ret = sp ? -ENOMEM : -errno;
		goto err;
	}
	for (i = 0; i < n; i++)
		ops[i] = (struct accel_bind_op) {
			.kind = ACCEL_BIND, .slot = i, .region = h->tier[t]->region,
			.block = blocks[i],
		};
	ret = accel_space_bind(sp, ops, n, NULL);
	if (!ret) {
		*addr = accel_space_map(sp, len);
		ret = *addr ? 0 : -errno;
	}
	if (ret)
		goto err;
	free(ops);
	*win = sp;
	return 0;
err:
	free(ops);
	accel_space_destroy(sp);
	return ret;
}

static void host_window_free(struct kv_backend *b, void *win)
{
	(void)b;
	accel_space_destroy(win);
}

static int host_tier_export(struct kv_backend *b, enum kv_tier_id t, int *fd)
{
	return accel_tier_export(to_host(b)->tier[t], fd);
}

static void host_destroy(struct kv_backend *b)
{
	struct host_backend *h = to_host(b);

	accel_tier_destroy(h->tier[KV_TIER_DEV]);
	accel_tier_destroy(h->tier[KV_TIER_HOST]);
	free(h);
}

static const struct kv_backend_ops host_ops = {
	.copy = host_copy,
	.wait = host_wait,
	.xfer_free = host_xfer_free,
	.xfer_fence = host_xfer_fence,
	.block_addr = host_block_addr,
	.window = host_window,
	.window_free = host_window_free,
	.tier_export = host_tier_export,
	.destroy = host_destroy,
};

int kv_backend_host_create(struct accel_device *dev, const struct kv_backend_config *cfg,
			   struct kv_backend **out)
{
	struct host_backend *h = calloc(1, sizeof(*h));
	int ret;

	if (!h)
		return -ENOMEM;
	h->b = (struct kv_backend) {
		.ops = &host_ops, .name = "host", .block_bytes = cfg->block_bytes,
		.transfer_unit = cfg->transfer_unit, .flags = cfg->flags,
	};
	h->dev = dev;
	ret = tier_init(h, KV_TIER_DEV, cfg->device_blocks, ACCEL_NODE_ANY);
	if (!ret)
		ret = tier_init(h, KV_TIER_HOST, cfg->host_blocks, cfg->host_node);
	if (ret) {
		host_destroy(&h->b);
		return ret;
	}
	*out = &h->b;
	return 0;
}
