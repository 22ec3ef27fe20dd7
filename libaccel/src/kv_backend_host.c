// SPDX-License-Identifier: MIT
/*
 * libaccel - the KV cache's host backend (kv/kv_backend.h): both tiers in
 * kvaccel regions (the device tier is where an engine without a GPU
 * computes, the host tier what it swaps to), bytes moved by the module's
 * copy engine. A transfer is the fence of its last copy job.
 */
#include <stdlib.h>

#include "internal.h"
#include "kv/kv_backend.h"

struct host_tier {
	struct accel_region *region;
	unsigned char *base;
};

struct host_backend {
	struct kv_backend b;
	struct accel_device *dev;
	struct host_tier tier[KV_TIER_NR];
};

static struct host_backend *to_host(struct kv_backend *b)
{
	return (struct host_backend *)b;
}

static int tier_init(struct host_backend *h, enum kv_tier_id t, uint32_t blocks, int node)
{
	struct host_tier *tier = &h->tier[t];

	tier->region = accel_region_create(h->dev, (uint64_t)blocks * h->b.block_bytes,
					   h->b.block_bytes, node);
	if (!tier->region)
		return -errno;
	tier->base = accel_region_map(tier->region);
	return tier->base ? 0 : -errno;
}

static struct accel_copy_seg seg_of(struct host_backend *h, enum kv_tier_id from,
				    enum kv_tier_id to, uint32_t src, uint32_t dst, uint32_t count)
{
	uint64_t bb = h->b.block_bytes;

	return (struct accel_copy_seg) {
		.src = accel_region_obj(h->tier[from].region), .src_offset = src * bb,
		.dst = accel_region_obj(h->tier[to].region), .dst_offset = dst * bb,
		.length = count * bb,
	};
}

/*
 * The naive mover ACCEL_KV_PER_BLOCK_COPIES asks for (benchmarks only):
 * one job per block, at most WINDOW in flight, all waited for here.
 */
static int per_block(struct host_backend *h, enum kv_tier_id from, enum kv_tier_id to,
		     const struct kv_copy *c, uint32_t n)
{
	enum { WINDOW = 256 };
	struct accel_fence *f[WINDOW] = { NULL };
	uint32_t i;
	int ret = 0, r;

	for (i = 0; i < n && !ret; i++) {
		struct accel_copy_seg seg = seg_of(h, from, to, c[i].src, c[i].dst, 1);

		if (f[i % WINDOW]) {
			ret = accel_fence_wait(f[i % WINDOW], -1);
			accel_fence_destroy(f[i % WINDOW]);
		}
		f[i % WINDOW] = ret ? NULL : accel_copy_ordered(h->dev, &seg, 1, NULL);
		if (!ret && !f[i % WINDOW])
			ret = -errno;
	}
	for (i = 0; i < WINDOW; i++) {
		if (!f[i])
			continue;
		r = accel_fence_wait(f[i], -1);
		ret = ret ? ret : r;
		accel_fence_destroy(f[i]);
	}
	h->b.transfers += n;
	h->b.bytes_moved += (uint64_t)n * h->b.block_bytes;
	return ret;
}

/*
 * Coalesced segments in one job, or a chain of jobs (accel_copy_chain(),
 * within the kernel's segment and byte bounds), each after the previous
 * (an error anywhere reaches the last fence, the transfer's).
 */
static int host_copy(struct kv_backend *b, enum kv_tier_id from, enum kv_tier_id to,
		     struct kv_copy *c, uint32_t n, const struct kv_order *order,
		     struct kv_xfer **x)
{
	struct host_backend *h = to_host(b);
	uint32_t unit = b->transfer_unit / b->block_bytes, nr, i;
	struct accel_fence *fence = NULL;
	struct accel_copy_seg *segs;
	struct kv_run *runs;
	int ret = 0;

	*x = NULL;
	if (order && (order->wait_event || order->done_event))
		return -EOPNOTSUPP;	/* CUDA events: the cuda backend's */
	if (!n)
		return 0;
	if (b->flags & ACCEL_KV_PER_BLOCK_COPIES)
		return per_block(h, from, to, c, n);
	runs = calloc(n, sizeof(*runs));
	segs = calloc(n, sizeof(*segs));
	if (!runs || !segs) {
		ret = -ENOMEM;
		goto out;
	}
	nr = kv_coalesce(c, n, unit ? unit : 1, runs);
	for (i = 0; i < nr; i++)
		segs[i] = seg_of(h, from, to, runs[i].src, runs[i].dst, runs[i].count);
	ret = accel_copy_chain(h->dev, segs, nr, &fence);
	if (ret)
		goto out;
	b->transfers += nr;
	b->bytes_moved += (uint64_t)n * b->block_bytes;
	*x = (struct kv_xfer *)fence;
out:
	free(runs);
	free(segs);
	return ret;
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
	return to_host(b)->tier[t].base + (size_t)block * b->block_bytes;
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
			.kind = ACCEL_BIND, .slot = i, .region = h->tier[t].region,
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
	return accel_region_export(to_host(b)->tier[t].region, fd);
}

static void host_destroy(struct kv_backend *b)
{
	struct host_backend *h = to_host(b);

	accel_region_destroy(h->tier[KV_TIER_DEV].region);
	accel_region_destroy(h->tier[KV_TIER_HOST].region);
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
