// SPDX-License-Identifier: GPL-2.0-only
/*
 * The uapi layout rules, checked for the ABI the program is built for
 * (built with -m64 and -m32; the two must agree): sizes are multiples of
 * 8, members sit at the documented offsets, nothing has holes.
 */
#include <stddef.h>

#include "drm.h"
#include "kvaccel.h"
#include "kselftest_harness.h"

#define CHECK_MEMBER(s, m, off) \
	_Static_assert(offsetof(struct s, m) == (off), #s "." #m " offset")
#define CHECK_SIZE(s, size)						\
	_Static_assert(sizeof(struct s) == (size), #s " size");	\
	_Static_assert(sizeof(struct s) % 8 == 0, #s " not 8-byte multiple")

CHECK_SIZE(drm_kvaccel_get_param, 16);
CHECK_MEMBER(drm_kvaccel_get_param, param, 0);
CHECK_MEMBER(drm_kvaccel_get_param, flags, 4);
CHECK_MEMBER(drm_kvaccel_get_param, value, 8);

CHECK_SIZE(drm_kvaccel_region_create, 24);
CHECK_MEMBER(drm_kvaccel_region_create, handle, 0);
CHECK_MEMBER(drm_kvaccel_region_create, flags, 4);
CHECK_MEMBER(drm_kvaccel_region_create, size, 8);
CHECK_MEMBER(drm_kvaccel_region_create, block_size, 16);
CHECK_MEMBER(drm_kvaccel_region_create, numa_node, 20);

CHECK_SIZE(drm_kvaccel_region_info, 40);
CHECK_MEMBER(drm_kvaccel_region_info, handle, 0);
CHECK_MEMBER(drm_kvaccel_region_info, flags, 4);
CHECK_MEMBER(drm_kvaccel_region_info, size, 8);
CHECK_MEMBER(drm_kvaccel_region_info, mmap_offset, 16);
CHECK_MEMBER(drm_kvaccel_region_info, block_size, 24);
CHECK_MEMBER(drm_kvaccel_region_info, numa_node, 28);
CHECK_MEMBER(drm_kvaccel_region_info, type, 32);
CHECK_MEMBER(drm_kvaccel_region_info, object_flags, 36);

TEST(ioctl_numbers_encode_sizes)
{
	EXPECT_EQ(sizeof(struct drm_kvaccel_get_param),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_GET_PARAM));
	EXPECT_EQ(sizeof(struct drm_kvaccel_region_create),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_REGION_CREATE));
	EXPECT_EQ(sizeof(struct drm_kvaccel_region_info),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_REGION_INFO));
	EXPECT_EQ(_IOC_READ | _IOC_WRITE, _IOC_DIR(DRM_IOCTL_KVACCEL_REGION_CREATE));
}

TEST(ioctl_numbers_distinct)
{
	EXPECT_NE(DRM_IOCTL_KVACCEL_GET_PARAM, DRM_IOCTL_KVACCEL_REGION_CREATE);
	EXPECT_NE(DRM_IOCTL_KVACCEL_REGION_CREATE, DRM_IOCTL_KVACCEL_REGION_INFO);
}

TEST(flag_masks)
{
	EXPECT_EQ(0, KVACCEL_GET_PARAM_FLAGS);
	EXPECT_EQ(0, KVACCEL_REGION_INFO_FLAGS);
	EXPECT_EQ(KVACCEL_REGION_CREATE_NUMA_NODE, KVACCEL_REGION_CREATE_FLAGS);
}

TEST(block_size_range)
{
	EXPECT_EQ(4096, 1u << KVACCEL_BLOCK_SHIFT_MIN);
	EXPECT_EQ(2u << 20, 1u << KVACCEL_BLOCK_SHIFT_MAX);
}

TEST_HARNESS_MAIN
