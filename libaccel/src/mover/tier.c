// SPDX-License-Identifier: MIT
/*
 * libaccel - host tiers: a kvaccel region, or a memfd (accel_mover.h).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mover.h"

static int tier_opts_check(const struct accel_tier_opts *opts, uint64_t *size)
{
	int ret = accel_opts_valid(opts, sizeof(*opts));
	uint64_t bb;
	uint32_t n;

	if (ret)
		return ret;
	if (!opts)
		return -EINVAL;
	bb = ACCEL_OPTS_GET(opts, block_bytes, 0);
	n = ACCEL_OPTS_GET(opts, blocks, 0);
	if (!bb || bb % 4096 || bb > ACCEL_TIER_BLOCK_MAX || !n ||
	    ACCEL_OPTS_GET(opts, flags, 0) & ~ACCEL_TIER_ON_NODE)
		return -EINVAL;
	if (bb * n / n != bb || bb * n > SIZE_MAX)
		return -EOVERFLOW;
	*size = bb * n;
	return 0;
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
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->kind = ACCEL_TIER_HOST;
	t->block_bytes = opts->block_bytes;
	t->blocks = opts->blocks;
	t->memfd = -1;
	t->dev = dev;
	/* The largest power of two dividing block_bytes, at most 2 MiB. */
	low = t->block_bytes & -t->block_bytes;
	t->region_block = low > (2u << 20) ? 2u << 20 : (uint32_t)low;
	node = ACCEL_OPTS_GET(opts, flags, 0) & ACCEL_TIER_ON_NODE ?
	       ACCEL_OPTS_GET(opts, node, 0) : ACCEL_NODE_ANY;
	t->region = accel_region_create(dev, size, t->region_block, node);
	if (!t->region)
		goto err;
	t->base = accel_region_map(t->region);
	if (!t->base)
		goto err;
	t->map_size = size;
	return t;
err:
	ret = errno;
	accel_region_destroy(t->region);
	free(t);
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
	if (ret) {
		errno = -ret;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->kind = ACCEL_TIER_MEMFD;
	t->block_bytes = opts->block_bytes;
	t->blocks = opts->blocks;
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
	free(t);
	errno = ret;
	return NULL;
}

ACCEL_EXPORT void accel_tier_destroy(struct accel_tier *tier)
{
	if (!tier)
		return;
	if (tier->kind == ACCEL_TIER_MEMFD) {
		munmap(tier->base, tier->map_size);
		close(tier->memfd);
	} else {
		accel_region_destroy(tier->region);
	}
	free(tier);
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
	return 0;
}

ACCEL_EXPORT void *accel_tier_block_addr(const struct accel_tier *tier, uint32_t block)
{
	if (!tier || block >= tier->blocks) {
		errno = EINVAL;
		return NULL;
	}
	return tier->base + (size_t)block * tier->block_bytes;
}

ACCEL_EXPORT int accel_tier_export(struct accel_tier *tier, int *fd)
{
	int f;

	if (!tier || !fd)
		return -EINVAL;
	if (tier->kind == ACCEL_TIER_HOST)
		return accel_region_export(tier->region, fd);
	f = fcntl(tier->memfd, F_DUPFD_CLOEXEC, 0);
	if (f < 0)
		return -errno;
	*fd = f;
	return 0;
}

