// SPDX-License-Identifier: MIT
/*
 * libaccel - host tiers (a kvaccel region, or a memfd), what every tier
 * shares (info, addresses, destroy), and the pieces a run is copied in
 * (accel_mover.h; device tiers: tier_cuda.c; window tiers' space and
 * rebinding: tier_window.c).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mover.h"

static int tier_opts_check(const struct accel_tier_opts *opts, uint64_t *size)
{
	int ret = accel_opts_valid(opts, sizeof(*opts));
	uint32_t n, layers;
	uint64_t bb;

	if (ret)
		return ret;
	if (!opts)
		return -EINVAL;
	bb = ACCEL_OPTS_GET(opts, block_bytes, 0);
	n = ACCEL_OPTS_GET(opts, blocks, 0);
	layers = ACCEL_OPTS_GET(opts, layers, 0);
	if (!bb || bb % 4096 || bb > ACCEL_TIER_BLOCK_MAX || !n ||
	    ACCEL_OPTS_GET(opts, flags, 0) & ~(ACCEL_TIER_ON_NODE | ACCEL_TIER_WINDOW) ||
	    (layers && bb % layers))
		return -EINVAL;
	if (bb * n / n != bb || bb * n > SIZE_MAX)
		return -EOVERFLOW;
	*size = bb * n;
	return 0;
}

struct accel_tier *accel_tier_alloc(enum accel_tier_kind kind, uint64_t block_bytes,
				    uint32_t blocks, uint32_t layers)
{
	struct accel_tier *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->kind = kind;
	t->block_bytes = block_bytes;
	t->blocks = blocks;
	t->layers = layers ? layers : 1;
	t->memfd = -1;
	t->cuda_device = -1;
	t->layout = ACCEL_TIER_LAYOUT_BLOCKS;
	t->stride = block_bytes;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->peer_lock, NULL);
	return t;
}

void accel_tier_free(struct accel_tier *t)
{
	pthread_mutex_destroy(&t->peer_lock);
	pthread_mutex_destroy(&t->lock);
	free(t->layer_base);
	free(t->mapped);
	free(t);
}

ACCEL_EXPORT struct accel_tier *accel_tier_create_host(struct accel_device *dev,
						       const struct accel_tier_opts *opts)
{
	struct accel_tier *t;
	uint64_t size, low;
	int ret, node;

	ret = dev ? tier_opts_check(opts, &size) : -EINVAL;
	if (ret) {
		errno = -ret;
		return NULL;
	}
	t = accel_tier_alloc(ACCEL_TIER_HOST, opts->block_bytes, opts->blocks,
			     ACCEL_OPTS_GET(opts, layers, 0));
	if (!t)
		return NULL;
	t->dev = dev;
	t->flags = ACCEL_OPTS_GET(opts, flags, 0);
	/* The largest power of two dividing block_bytes, at most 2 MiB. */
	low = t->block_bytes & -t->block_bytes;
	t->region_block = low > (2u << 20) ? 2u << 20 : (uint32_t)low;
	node = ACCEL_OPTS_GET(opts, flags, 0) & ACCEL_TIER_ON_NODE ?
	       ACCEL_OPTS_GET(opts, node, 0) : ACCEL_NODE_ANY;
	t->region = accel_region_create(dev, size, t->region_block, node);
	if (!t->region)
		goto err;
	t->map_size = size;
	if (t->flags & ACCEL_TIER_WINDOW) {
		/* Addressed through a space bound to the region (tier_window.c). */
		ret = accel_tier_window_init(t);
		if (ret) {
			errno = -ret;
			goto err;
		}
		return t;
	}
	t->base = accel_region_map(t->region);
	if (!t->base)
		goto err;
	return t;
err:
	ret = errno;
	accel_region_destroy(t->region);
	accel_tier_free(t);
	errno = ret;
	return NULL;
}

ACCEL_EXPORT struct accel_tier *accel_tier_create_memfd(const struct accel_tier_opts *opts)
{
	struct accel_tier *t;
	uint64_t size;
	void *p;
	int ret;

	ret = tier_opts_check(opts, &size);
	if (!ret && ACCEL_OPTS_GET(opts, flags, 0) & ACCEL_TIER_ON_NODE)
		ret = -EINVAL;	/* no placement without a region */
	if (!ret && ACCEL_OPTS_GET(opts, flags, 0) & ACCEL_TIER_WINDOW)
		ret = -EOPNOTSUPP;	/* no space to rebind without a region */
	if (ret) {
		errno = -ret;
		return NULL;
	}
	t = accel_tier_alloc(ACCEL_TIER_MEMFD, opts->block_bytes, opts->blocks,
			     ACCEL_OPTS_GET(opts, layers, 0));
	if (!t)
		return NULL;
	t->memfd = memfd_create("accel-tier", MFD_CLOEXEC);
	if (t->memfd < 0)
		goto err;
	if (ftruncate(t->memfd, (off_t)size))
		goto err;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
	if (p == MAP_FAILED)
		goto err;
	t->base = p;
	t->map_size = size;
	return t;
err:
	ret = errno;
	if (t->memfd >= 0)
		close(t->memfd);
	accel_tier_free(t);
	errno = ret;
	return NULL;
}

ACCEL_EXPORT void accel_tier_destroy(struct accel_tier *tier)
{
	if (!tier)
		return;
	/* Device tiers' streams and memory; host tiers' DMA registration (before the unmap). */
	accel_tier_cuda_release(tier);
	if (tier->kind == ACCEL_TIER_MEMFD) {
		munmap(tier->base, tier->map_size);
		close(tier->memfd);
	} else if (tier->kind == ACCEL_TIER_HOST) {
		/* A window tier's space first, then the regions it held, then its own. */
		accel_tier_window_fini(tier);
		accel_region_destroy(tier->region);
	}
	accel_tier_free(tier);
}

ACCEL_EXPORT int accel_tier_info(const struct accel_tier *tier, struct accel_tier_info *info)
{
	int ret;

	if (!tier || !info)
		return -EINVAL;
	ret = accel_opts_valid(info, sizeof(*info));
	if (ret)
		return ret;
	ACCEL_OPTS_SET(info, kind, tier->kind);
	ACCEL_OPTS_SET(info, blocks, tier->blocks);
	ACCEL_OPTS_SET(info, block_bytes, tier->block_bytes);
	ACCEL_OPTS_SET(info, region_block_bytes, tier->region_block);
	ACCEL_OPTS_SET(info, pad, 0);
	ACCEL_OPTS_SET(info, layers, tier->layers);
	ACCEL_OPTS_SET(info, device, tier->cuda_device);
	ACCEL_OPTS_SET(info, layout, tier->layout);
	ACCEL_OPTS_SET(info, pad2, 0);
	ACCEL_OPTS_SET(info, block_stride, tier->stride);
	ACCEL_OPTS_SET(info, flags, tier->flags);
	ACCEL_OPTS_SET(info, pad3, 0);
	return 0;
}

ACCEL_EXPORT void *accel_tier_block_addr(const struct accel_tier *tier, uint32_t block)
{
	if (!tier || block >= tier->blocks || !accel_tier_contiguous(tier)) {
		errno = EINVAL;
		return NULL;
	}
	return (void *)(uintptr_t)accel_tier_piece(tier, block, 0, 1);
}

ACCEL_EXPORT int accel_tier_export(struct accel_tier *tier, int *fd)
{
	int f;

	if (!tier || !fd)
		return -EINVAL;
	if (accel_tier_is_cuda(tier))
		return accel_tier_cuda_export(tier, fd);
	if (tier->kind == ACCEL_TIER_HOST)
		return accel_region_export(tier->region, fd);
	f = fcntl(tier->memfd, F_DUPFD_CLOEXEC, 0);
	if (f < 0)
		return -errno;
	*fd = f;
	return 0;
}

/* How a run's blocks are cut: *pieces per block, of which [*first, *first + *count). */
static void run_cut(const struct accel_tier *s, const struct accel_tier *d,
		    const struct accel_piece_sel *sel, uint32_t *pieces, uint32_t *first,
		    uint32_t *count)
{
	if (sel->layers) {
		*pieces = s->layers;
		*first = sel->first;
		*count = sel->count;
		return;
	}
	/* Whole blocks: one piece, unless a tier keeps its layers apart. */
	*pieces = !accel_tier_contiguous(s) ? s->layers : !accel_tier_contiguous(d) ? d->layers : 1;
	*first = 0;
	*count = *pieces;
}

uint64_t accel_run_pieces_max(const struct accel_tier *s, const struct accel_tier *d,
			      const struct accel_bm_run *r, const struct accel_piece_sel *sel)
{
	uint32_t pieces, first, count;

	run_cut(s, d, sel, &pieces, &first, &count);
	return (uint64_t)r->count * count;
}

size_t accel_run_pieces(const struct accel_tier *s, const struct accel_tier *d,
			const struct accel_bm_run *r, const struct accel_piece_sel *sel,
			struct accel_piece *out, size_t nr, uint64_t max_len)
{
	uint32_t pieces, first, count, i, l;
	uint64_t len;

	run_cut(s, d, sel, &pieces, &first, &count);
	len = s->block_bytes / pieces;
	for (i = 0; i < r->count; i++) {
		for (l = first; l < first + count; l++) {
			uint64_t src = accel_tier_piece(s, r->src_block + i, l, pieces);
			uint64_t dst = accel_tier_piece(d, r->dst_block + i, l, pieces);
			struct accel_piece *p = nr ? &out[nr - 1] : NULL;

			if (p && p->src + p->len == src && p->dst + p->len == dst &&
			    p->len + len <= max_len)
				p->len += len;
			else
				out[nr++] = (struct accel_piece){ .src = src, .dst = dst, .len = len };
		}
	}
	return nr;
}
