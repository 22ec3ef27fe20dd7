/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the tiers and the data mover, private: what a tier is, for
 * the mover (mover.c) and the tiers' own code (tier.c).
 */
#ifndef ACCEL_MOVER_PRIV_H
#define ACCEL_MOVER_PRIV_H

#include "../internal.h"

struct accel_tier {
	enum accel_tier_kind kind;
	uint64_t block_bytes;
	uint32_t blocks;
	uint32_t region_block;
	struct accel_device *dev;	/* host tiers */
	struct accel_region *region;
	int memfd;			/* memfd tiers */
	unsigned char *base;
	size_t map_size;
};

#endif
