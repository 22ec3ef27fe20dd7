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

#define ACCEL_COMPAT(symbol, node) \
	__attribute__((symver(symbol "@" node), visibility("default")))

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
