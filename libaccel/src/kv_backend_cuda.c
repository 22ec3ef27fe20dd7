// SPDX-License-Identifier: MIT
/*
 * libaccel - the KV cache's cuda backend (kv/kv_backend.h): the device
 * tier in one GPU's memory (cuda/cuda_tier.c: a reserved virtual range
 * whose chunks, all created with the cache, are mapped when a block in
 * them is first used), the host tier a host tier of the data mover (a
 * kvaccel region, accel_tier_create_host()) registered with the driver.
 * Copies are batches on the tier's stream; a transfer is the batch's
 * ticket. A caller orders them against its own streams with CUDA events
 * (struct kv_order): the copies wait for one, and record another.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "cuda/cuda_tier.h"
#include "kv/kv_backend.h"
#include "mover/mover.h"

struct cuda_backend {
	struct kv_backend b;
	struct accel_device *dev;
	struct accel_cuda_tier *gpu;
	uint64_t chunk;
	uint8_t *mapped;	/* per chunk of the device tier */
	struct accel_tier *host;	/* a host tier of the data mover (a region) */
	unsigned char *host_base;
	bool registered;
};

struct kv_xfer {
	uint64_t ticket;
};

static struct cuda_backend *to_cuda(struct kv_backend *b)
{
	return (struct cuda_backend *)b;
}

/* A block's address for the tier's copies: a device pointer or a host address. */
static cu_deviceptr addr_of(struct cuda_backend *c, enum kv_tier_id t, uint32_t block)
{
	uint64_t off = (uint64_t)block * c->b.block_bytes;

	return t == KV_TIER_DEV ? accel_cuda_tier_base(c->gpu) + off :
	       (cu_deviceptr)(uintptr_t)(c->host_base + off);
}

static int map_chunk(struct cuda_backend *c, uint64_t chunk)
{
	int ret;

	if (c->mapped[chunk])
		return 0;
	ret = accel_cuda_tier_map(c->gpu, chunk * c->chunk, c->chunk);
	if (!ret)
		c->mapped[chunk] = 1;
	return ret;
}

static int cuda_prepare(struct kv_backend *b, const uint32_t *blocks, uint32_t n)
{
	struct cuda_backend *c = to_cuda(b);
	uint32_t i;
	int ret = 0;

	for (i = 0; !ret && i < n; i++)
		if (blocks[i] != KV_NO_BLOCK)
			ret = map_chunk(c, (uint64_t)blocks[i] * b->block_bytes / c->chunk);
	return ret;
}

static int cuda_copy(struct kv_backend *b, const struct accel_bm_run *runs, uint32_t n,
		     const struct kv_order *order, struct kv_xfer **x)
{
	struct cuda_backend *c = to_cuda(b);
	uint64_t bb = b->block_bytes, tk = 0, blocks = 0;
	struct accel_cuda_copy *v = NULL;
	uint32_t i, k;
	int ret = 0;

	*x = NULL;
	if (order && order->wait_event) {
		ret = accel_cuda_tier_wait_event(c->gpu, order->wait_event);
		if (ret)
			return ret;
	}
	if (n && (b->flags & ACCEL_KV_PER_BLOCK_COPIES)) {
		/* The naive mover (benchmarks only): one call per block, all waited for. */
		for (i = 0; i < n && !ret; i++) {
			for (k = 0; k < runs[i].count && !ret; k++, blocks++) {
				struct accel_cuda_copy one = {
					addr_of(c, runs[i].dst_tier, runs[i].dst_block + k),
					addr_of(c, runs[i].src_tier, runs[i].src_block + k), bb
				};

				ret = accel_cuda_tier_copy(c->gpu, &one, 1, &tk);
			}
		}
		if (tk) {
			int r = accel_cuda_tier_wait(c->gpu, tk, -1);

			ret = ret ? ret : r;
		}
		b->transfers += blocks;
		b->bytes_moved += blocks * bb;
		tk = 0;
	} else if (n) {
		/* The plan's runs are coalesced already, each within transfer_unit. */
		v = calloc(n, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			v[i] = (struct accel_cuda_copy) {
				addr_of(c, runs[i].dst_tier, runs[i].dst_block),
				addr_of(c, runs[i].src_tier, runs[i].src_block), runs[i].count * bb
			};
			blocks += runs[i].count;
		}
		ret = accel_cuda_tier_copy(c->gpu, v, n, &tk);
		free(v);
		if (!ret) {
			b->transfers += n;
			b->bytes_moved += blocks * bb;
		}
	}
	if (!ret && order && order->done_event)
		ret = accel_cuda_tier_record(c->gpu, order->done_event);
	if (!ret && tk) {
		*x = malloc(sizeof(**x));
		if (*x)
			(*x)->ticket = tk;
	}
	if (ret || (tk && !*x)) {
		/* On error nothing may still be in flight. */
		if (tk)
			accel_cuda_tier_wait(c->gpu, tk, -1);
		ret = ret ? ret : -ENOMEM;
	}
	return ret;
}

static int cuda_wait(struct kv_backend *b, struct kv_xfer *x, int64_t timeout_ns)
{
	int ret = accel_cuda_tier_wait(to_cuda(b)->gpu, x->ticket, timeout_ns);

	return ret == -ETIMEDOUT ? -ETIME : ret;
}

static void cuda_xfer_free(struct kv_backend *b, struct kv_xfer *x)
{
	(void)b;
	free(x);
}

static struct accel_fence *cuda_xfer_fence(struct kv_backend *b, struct kv_xfer *x)
{
	(void)b;
	(void)x;
	return NULL;	/* order with CUDA events (struct accel_kv_swap_opts) */
}

static void *cuda_block_addr(struct kv_backend *b, enum kv_tier_id t, uint32_t block)
{
	return (void *)(uintptr_t)addr_of(to_cuda(b), t, block);
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
		 * (block_bytes = 2 MiB) map again in sequence order.
		 */
		ret = b->block_bytes != c->chunk ? -EOPNOTSUPP :
		      accel_cuda_tier_window(c->gpu, blocks, n, &w->ptr);
		if (ret) {
			free(w);
			return ret;
		}
		w->n = n;
		*addr = (void *)(uintptr_t)w->ptr;
		if (len)
			*len = (size_t)n * c->chunk;
		*win = w;
		return 0;
	}
	w->space = accel_space_create(c->dev, n, b->block_bytes);
	ops = calloc(n, sizeof(*ops));
	ret = !w->space ? -errno : !ops ? -ENOMEM : 0;
	for (i = 0; !ret && i < n; i++)
		ops[i] = (struct accel_bind_op) {
			.kind = ACCEL_BIND, .slot = i, .region = c->host->region,
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
		accel_cuda_tier_window_free(to_cuda(b)->gpu, w->ptr, w->n);
	accel_space_destroy(w->space);
	free(w);
}

static int cuda_tier_export(struct kv_backend *b, enum kv_tier_id t, int *fd)
{
	struct cuda_backend *c = to_cuda(b);
	uint64_t size, i;
	int ret = 0;

	if (t == KV_TIER_HOST)
		return accel_tier_export(c->host, fd);
	/* The whole tier, mapped, as one dma-buf. */
	size = accel_cuda_tier_size(c->gpu);
	for (i = 0; !ret && i < size / c->chunk; i++)
		ret = map_chunk(c, i);
	return ret ? ret : accel_cuda_tier_export_dmabuf(c->gpu, 0, size, fd);
}

static void cuda_destroy(struct kv_backend *b)
{
	struct cuda_backend *c = to_cuda(b);

	if (c->registered)
		accel_cuda_tier_host_unregister(c->gpu, c->host_base);
	accel_cuda_tier_destroy(c->gpu);
	accel_tier_destroy(c->host);
	free(c->mapped);
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
	uint64_t bytes = (uint64_t)cfg->device_blocks * cfg->block_bytes;
	struct accel_cuda_tier_opts o = { .device = cfg->gpu, .reserve = bytes };
	struct cuda_backend *c = calloc(1, sizeof(*c));
	uint64_t host_bytes = (uint64_t)cfg->host_blocks * cfg->block_bytes;
	ACCEL_OPTS(accel_tier_opts, to, .block_bytes = cfg->block_bytes, .blocks = cfg->host_blocks,
		   .node = cfg->host_node,
		   .flags = cfg->host_node == ACCEL_NODE_ANY ? 0 : ACCEL_TIER_ON_NODE);
	char why[160];
	int ret;

	if (!c)
		return -ENOMEM;
	c->b = (struct kv_backend) {
		.ops = &cuda_ops, .name = "cuda", .block_bytes = cfg->block_bytes,
		.transfer_unit = cfg->transfer_unit, .flags = cfg->flags,
	};
	c->dev = dev;
	ret = accel_cuda_tier_create(&o, &c->gpu, why, sizeof(why));
	if (ret) {
		accel_log(ACCEL_LOG_ERR, "kv: cuda backend: %s", why);
		free(c);
		return ret;
	}
	c->chunk = accel_cuda_tier_chunk_size(c->gpu);
	c->mapped = calloc(accel_cuda_tier_size(c->gpu) / c->chunk, 1);
	if (!c->mapped) {
		ret = -ENOMEM;
		goto err;
	}
	ret = accel_cuda_tier_prealloc(c->gpu,
				       (unsigned int)(accel_cuda_tier_size(c->gpu) / c->chunk));
	if (ret) {
		accel_log(ACCEL_LOG_ERR, "kv: cuda backend: creating %llu bytes of GPU memory: %s",
			  (unsigned long long)accel_cuda_tier_size(c->gpu), strerror(-ret));
		goto err;
	}
	c->host = accel_tier_create_host(dev, &to);
	c->host_base = c->host ? accel_tier_block_addr(c->host, 0) : NULL;
	if (!c->host_base) {
		ret = -errno;
		goto err;
	}
	ret = accel_cuda_tier_host_register(c->gpu, c->host_base, (size_t)host_bytes);
	if (ret)
		goto err;
	c->registered = true;
	*out = &c->b;
	return 0;
err:
	cuda_destroy(&c->b);
	return ret;
}
