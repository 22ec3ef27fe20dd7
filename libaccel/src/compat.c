// SPDX-License-Identifier: MIT
/*
 * libaccel - entry points kept for binaries linked against an older
 * version (Documentation/libaccel.rst, "ABI"). Each is bound to its old
 * version node with .symver, and this file does not include accel.h: it
 * declares the old structs under their old names, so each old entry point
 * keeps exactly the types it was released with (tests/libaccel/abi.sh
 * compares them with libaccel/abi/libaccel-0.1.abi). Compat functions are
 * named <symbol>__v<major>_<minor>; libaccel.a keeps them local.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef ACCEL_COMPAT_PLAIN
/*
 * tests/libaccel/abi.sh builds this file alone, renames each entry point
 * to its plain symbol and compares the result with 0.1's dump: abidiff
 * does not compare a library's non-default symbol versions.
 */
#define ACCEL_COMPAT(symbol, node) __attribute__((visibility("default")))
#else
#define ACCEL_COMPAT(symbol, node) \
	__attribute__((symver(symbol "@" node), visibility("default")))
#endif

struct accel_device;

/* LIBACCEL_0.1's struct accel_device_info: no sz. */
struct accel_device_info {
	char path[64];
	uint32_t abi_major, abi_minor;
	uint64_t caps;
	uint64_t block_sizes;
	uint64_t limit;
	uint64_t usage;
	uint64_t process_usage;
	uint64_t process_quota;
};

/* device.c (internal.h, which this file cannot include). */
#define ACCEL_DEVICE_INFO_0_1_SIZE	120
int accel_device_info_bytes(struct accel_device *dev, void *dst, size_t len);

_Static_assert(sizeof(struct accel_device_info) == ACCEL_DEVICE_INFO_0_1_SIZE,
	       "LIBACCEL_0.1's struct accel_device_info");

ACCEL_COMPAT("accel_device_info", "LIBACCEL_0.1")
int accel_device_info__v0_1(struct accel_device *dev, struct accel_device_info *info);

int accel_device_info__v0_1(struct accel_device *dev, struct accel_device_info *info)
{
	if (!dev || !info)
		return -EINVAL;
	return accel_device_info_bytes(dev, info, sizeof(*info));
}

/* LIBACCEL_0.1's KV cache: its config and stats had no sz. */
struct accel_kv;
struct accel_fence;

struct accel_kv_config {
	uint32_t block_tokens;
	uint32_t block_bytes;
	uint32_t device_blocks, host_blocks;
	const char *backend;
	uint32_t transfer_unit;
	int host_node;		/* 0.1: a node or ACCEL_NODE_ANY (-1), 0 meaning node 0 */
	uint32_t flags;
};

struct accel_kv_stats {
	uint64_t swaps_out, swaps_in;
	uint64_t blocks_out, blocks_in;
	uint64_t blocks_reused;
	uint64_t transfers;
	uint64_t bytes_moved;
	uint64_t cow_copies;
	uint64_t prefix_hit_tokens;
	uint32_t device_free, host_free;
};

_Static_assert(sizeof(struct accel_kv_config) == 40, "LIBACCEL_0.1's struct accel_kv_config");
_Static_assert(sizeof(struct accel_kv_stats) == 80, "LIBACCEL_0.1's struct accel_kv_stats");

/* kv_create.c, kv_cache.c (internal.h, which this file cannot include). */
#define KV_FLAG_PER_BLOCK_COPIES	(1u << 0)
#define KV_FLAG_HOST_NODE		(1u << 1)
struct accel_kv *kv_create_fields(struct accel_device *dev, uint32_t block_tokens,
				  uint32_t block_bytes, uint32_t device_blocks,
				  uint32_t host_blocks, const char *backend,
				  uint32_t transfer_unit, int host_node, uint32_t flags);
int kv_stats_legacy(struct accel_kv *kv, void *dst, size_t len);
int kv_swap_legacy(struct accel_kv *kv, uint32_t seq, int in, struct accel_fence **fence);

ACCEL_COMPAT("accel_kv_create", "LIBACCEL_0.1")
struct accel_kv *accel_kv_create__v0_1(struct accel_device *dev,
				       const struct accel_kv_config *cfg);

struct accel_kv *accel_kv_create__v0_1(struct accel_device *dev,
				       const struct accel_kv_config *cfg)
{
	if (!cfg || (cfg->flags & ~KV_FLAG_PER_BLOCK_COPIES)) {
		errno = EINVAL;
		return NULL;
	}
	return kv_create_fields(dev, cfg->block_tokens, cfg->block_bytes, cfg->device_blocks,
				cfg->host_blocks, cfg->backend, cfg->transfer_unit, cfg->host_node,
				cfg->flags | (cfg->host_node >= 0 ? KV_FLAG_HOST_NODE : 0));
}

ACCEL_COMPAT("accel_kv_stats", "LIBACCEL_0.1")
int accel_kv_stats__v0_1(struct accel_kv *kv, struct accel_kv_stats *stats);

int accel_kv_stats__v0_1(struct accel_kv *kv, struct accel_kv_stats *stats)
{
	return kv_stats_legacy(kv, stats, sizeof(*stats));
}

/* 0.1's swaps: the fence is the cache's, valid until the move completes. */
ACCEL_COMPAT("accel_kv_swap_out", "LIBACCEL_0.1")
int accel_kv_swap_out__v0_1(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence);
ACCEL_COMPAT("accel_kv_swap_in", "LIBACCEL_0.1")
int accel_kv_swap_in__v0_1(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence);

int accel_kv_swap_out__v0_1(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence)
{
	return kv_swap_legacy(kv, seq, 0, fence);
}

int accel_kv_swap_in__v0_1(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence)
{
	return kv_swap_legacy(kv, seq, 1, fence);
}
