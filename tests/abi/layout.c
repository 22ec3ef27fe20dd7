// SPDX-License-Identifier: GPL-2.0-only
/*
 * The uapi layout rules, checked for the ABI the program is built for
 * (built with -m64 and -m32; the two must agree): sizes are multiples of
 * 8, members sit at the documented offsets, nothing has holes.
 */
#include <stddef.h>

#include "drm.h"
#include "kvaccel.h"
#include "kvacceld.h"
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

CHECK_SIZE(drm_kvaccel_region_info, 48);
CHECK_MEMBER(drm_kvaccel_region_info, handle, 0);
CHECK_MEMBER(drm_kvaccel_region_info, flags, 4);
CHECK_MEMBER(drm_kvaccel_region_info, size, 8);
CHECK_MEMBER(drm_kvaccel_region_info, mmap_offset, 16);
CHECK_MEMBER(drm_kvaccel_region_info, block_size, 24);
CHECK_MEMBER(drm_kvaccel_region_info, numa_node, 28);
CHECK_MEMBER(drm_kvaccel_region_info, type, 32);
CHECK_MEMBER(drm_kvaccel_region_info, object_flags, 36);
CHECK_MEMBER(drm_kvaccel_region_info, region_id, 40);

CHECK_SIZE(drm_kvaccel_space_create, 16);
CHECK_MEMBER(drm_kvaccel_space_create, handle, 0);
CHECK_MEMBER(drm_kvaccel_space_create, flags, 4);
CHECK_MEMBER(drm_kvaccel_space_create, nr_slots, 8);
CHECK_MEMBER(drm_kvaccel_space_create, block_size, 12);

CHECK_SIZE(drm_kvaccel_space_control, 16);
CHECK_MEMBER(drm_kvaccel_space_control, generation, 0);
CHECK_MEMBER(drm_kvaccel_space_control, bound_slots, 8);

CHECK_SIZE(drm_kvaccel_bind_op, 32);
CHECK_MEMBER(drm_kvaccel_bind_op, op, 0);
CHECK_MEMBER(drm_kvaccel_bind_op, flags, 4);
CHECK_MEMBER(drm_kvaccel_bind_op, slot, 8);
CHECK_MEMBER(drm_kvaccel_bind_op, other, 12);
CHECK_MEMBER(drm_kvaccel_bind_op, handle, 16);
CHECK_MEMBER(drm_kvaccel_bind_op, pad, 20);
CHECK_MEMBER(drm_kvaccel_bind_op, block, 24);

CHECK_SIZE(drm_kvaccel_space_bind, 32);
CHECK_MEMBER(drm_kvaccel_space_bind, handle, 0);
CHECK_MEMBER(drm_kvaccel_space_bind, flags, 4);
CHECK_MEMBER(drm_kvaccel_space_bind, count, 8);
CHECK_MEMBER(drm_kvaccel_space_bind, pad, 12);
CHECK_MEMBER(drm_kvaccel_space_bind, ops, 16);
CHECK_MEMBER(drm_kvaccel_space_bind, generation, 24);

CHECK_SIZE(drm_kvaccel_slot_binding, 24);
CHECK_MEMBER(drm_kvaccel_slot_binding, region_id, 0);
CHECK_MEMBER(drm_kvaccel_slot_binding, block, 8);
CHECK_MEMBER(drm_kvaccel_slot_binding, flags, 16);
CHECK_MEMBER(drm_kvaccel_slot_binding, pad, 20);

CHECK_SIZE(drm_kvaccel_space_info, 64);
CHECK_MEMBER(drm_kvaccel_space_info, handle, 0);
CHECK_MEMBER(drm_kvaccel_space_info, flags, 4);
CHECK_MEMBER(drm_kvaccel_space_info, nr_slots, 8);
CHECK_MEMBER(drm_kvaccel_space_info, block_size, 12);
CHECK_MEMBER(drm_kvaccel_space_info, generation, 16);
CHECK_MEMBER(drm_kvaccel_space_info, mmap_offset, 24);
CHECK_MEMBER(drm_kvaccel_space_info, map_size, 32);
CHECK_MEMBER(drm_kvaccel_space_info, bound_slots, 40);
CHECK_MEMBER(drm_kvaccel_space_info, first_slot, 44);
CHECK_MEMBER(drm_kvaccel_space_info, count, 48);
CHECK_MEMBER(drm_kvaccel_space_info, pad, 52);
CHECK_MEMBER(drm_kvaccel_space_info, bindings, 56);

CHECK_SIZE(drm_kvaccel_copy_segment, 40);
CHECK_MEMBER(drm_kvaccel_copy_segment, src_handle, 0);
CHECK_MEMBER(drm_kvaccel_copy_segment, dst_handle, 4);
CHECK_MEMBER(drm_kvaccel_copy_segment, src_offset, 8);
CHECK_MEMBER(drm_kvaccel_copy_segment, dst_offset, 16);
CHECK_MEMBER(drm_kvaccel_copy_segment, length, 24);
CHECK_MEMBER(drm_kvaccel_copy_segment, flags, 32);
CHECK_MEMBER(drm_kvaccel_copy_segment, pad, 36);

CHECK_SIZE(drm_kvaccel_copy_submit, 56);
CHECK_MEMBER(drm_kvaccel_copy_submit, job_id, 0);
CHECK_MEMBER(drm_kvaccel_copy_submit, flags, 8);
CHECK_MEMBER(drm_kvaccel_copy_submit, count, 12);
CHECK_MEMBER(drm_kvaccel_copy_submit, segments, 16);
CHECK_MEMBER(drm_kvaccel_copy_submit, in_syncobj, 24);
CHECK_MEMBER(drm_kvaccel_copy_submit, out_syncobj, 28);
CHECK_MEMBER(drm_kvaccel_copy_submit, status, 32);
CHECK_MEMBER(drm_kvaccel_copy_submit, pad, 36);
CHECK_MEMBER(drm_kvaccel_copy_submit, in_point, 40);
CHECK_MEMBER(drm_kvaccel_copy_submit, out_point, 48);

CHECK_SIZE(drm_kvaccel_copy_status, 16);
CHECK_MEMBER(drm_kvaccel_copy_status, job_id, 0);
CHECK_MEMBER(drm_kvaccel_copy_status, flags, 8);
CHECK_MEMBER(drm_kvaccel_copy_status, status, 12);

TEST(ioctl_numbers_encode_sizes)
{
	EXPECT_EQ(sizeof(struct drm_kvaccel_get_param),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_GET_PARAM));
	EXPECT_EQ(sizeof(struct drm_kvaccel_region_create),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_REGION_CREATE));
	EXPECT_EQ(sizeof(struct drm_kvaccel_region_info),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_REGION_INFO));
	EXPECT_EQ(sizeof(struct drm_kvaccel_space_create),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_SPACE_CREATE));
	EXPECT_EQ(sizeof(struct drm_kvaccel_space_bind),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_SPACE_BIND));
	EXPECT_EQ(sizeof(struct drm_kvaccel_space_info),
		  _IOC_SIZE(DRM_IOCTL_KVACCEL_SPACE_INFO));
	EXPECT_EQ(_IOC_READ | _IOC_WRITE, _IOC_DIR(DRM_IOCTL_KVACCEL_REGION_CREATE));
}

TEST(ioctl_numbers_distinct)
{
	const unsigned int nr[] = {
		DRM_KVACCEL_GET_PARAM, DRM_KVACCEL_REGION_CREATE, DRM_KVACCEL_REGION_INFO,
		DRM_KVACCEL_SPACE_CREATE, DRM_KVACCEL_SPACE_BIND, DRM_KVACCEL_SPACE_INFO,
		DRM_KVACCEL_COPY_SUBMIT, DRM_KVACCEL_COPY_STATUS,
	};
	unsigned int i, j;

	for (i = 0; i < sizeof(nr) / sizeof(nr[0]); i++)
		for (j = i + 1; j < sizeof(nr) / sizeof(nr[0]); j++)
			EXPECT_NE(nr[i], nr[j]);
}

/* kvacceld's engine socket: the same rules (32- and 64-bit engines share a daemon). */
CHECK_SIZE(kvd_hdr, 16);
CHECK_MEMBER(kvd_hdr, size, 4);
CHECK_MEMBER(kvd_hdr, seq, 8);
CHECK_SIZE(kvd_register, 80);
CHECK_MEMBER(kvd_register, priority, 48);
CHECK_MEMBER(kvd_register, revision, 56);	/* revision 0 ends here */
CHECK_MEMBER(kvd_register, features, 64);
CHECK_MEMBER(kvd_register, incarnation, 72);
CHECK_SIZE(kvd_registered, 48);
CHECK_MEMBER(kvd_registered, revision, 32);	/* revision 0 ends here */
CHECK_MEMBER(kvd_registered, features, 40);
CHECK_SIZE(kvd_handoff_ext, 24);
CHECK_MEMBER(kvd_handoff_ext, uid, 8);
CHECK_MEMBER(kvd_handoff_ext, pid, 12);
CHECK_MEMBER(kvd_handoff_ext, flags, 16);
_Static_assert(KVD_HANDOFF_EXT_V1_SIZE == offsetof(struct kvd_handoff_ext, uid),
	       "revision 1's extension is the incarnation");
CHECK_SIZE(kvd_quota, 24);
CHECK_SIZE(kvd_release, 40);
CHECK_MEMBER(kvd_release, deadline_ms, 32);
CHECK_SIZE(kvd_released, 32);
CHECK_SIZE(kvd_obj, 16);
CHECK_SIZE(kvd_handoff, 72);
CHECK_MEMBER(kvd_handoff, tag, 48);
CHECK_MEMBER(kvd_handoff, count, 64);
CHECK_MEMBER(kvd_handoff, objs, 72);
CHECK_SIZE(kvd_handoff_id, 32);
CHECK_SIZE(kvd_handoff_ack, 40);
CHECK_MEMBER(kvd_handoff_ack, status, 32);
CHECK_SIZE(kvd_engine_info, 104);
CHECK_MEMBER(kvd_engine_info, quota, 72);
CHECK_SIZE(kvd_handoff_info, 120);
CHECK_MEMBER(kvd_handoff_info, age_ms, 112);
CHECK_SIZE(kvd_error, 152);
CHECK_MEMBER(kvd_error, message, 24);
CHECK_SIZE(kvd_load_req, 24);
CHECK_MEMBER(kvd_load_req, tokens, 8);
CHECK_MEMBER(kvd_load_req, priority, 16);
CHECK_SIZE(kvd_load, 56);
CHECK_MEMBER(kvd_load, block_bytes, 16);
CHECK_MEMBER(kvd_load, hol_blocks, 40);
CHECK_MEMBER(kvd_load, count, 48);
CHECK_MEMBER(kvd_load, reqs, 56);
CHECK_SIZE(kvd_migrate, 72);
CHECK_MEMBER(kvd_migrate, to, 32);
CHECK_MEMBER(kvd_migrate, reason, 64);
CHECK_SIZE(kvd_migrate_started, 32);
CHECK_MEMBER(kvd_migrate_started, status, 24);
CHECK_SIZE(kvd_migrated, 56);
CHECK_MEMBER(kvd_migrated, blocks, 28);
CHECK_MEMBER(kvd_migrated, bytes_copied, 48);
CHECK_SIZE(kvd_migrate_abort, 40);
CHECK_MEMBER(kvd_migrate_abort, error, 32);
CHECK_SIZE(kvd_migrate_req, 152);
CHECK_MEMBER(kvd_migrate_req, req, 80);
CHECK_MEMBER(kvd_migrate_req, to_node, 88);
CHECK_SIZE(kvd_drain, 56);
CHECK_MEMBER(kvd_drain, flags, 48);
CHECK_MEMBER(kvd_migration_info, state, 96);
CHECK_MEMBER(kvd_migration_info, age_ms, 136);
CHECK_SIZE(kvd_cluster_info, 1024);
CHECK_MEMBER(kvd_cluster_info, capacity, 184);
CHECK_MEMBER(kvd_cluster_info, age_ms, 248);
CHECK_MEMBER(kvd_cluster_info, ucx_address, 312);
CHECK_MEMBER(kvd_cluster_info, error, 824);
CHECK_SIZE(kvd_migration_info, 208);
CHECK_MEMBER(kvd_migration_info, to_node, 144);
CHECK_SIZE(kvd_migrate_remote, 200);
CHECK_MEMBER(kvd_migrate_remote, node, 32);
CHECK_MEMBER(kvd_migrate_remote, to, 96);
CHECK_MEMBER(kvd_migrate_remote, addr, 128);
CHECK_MEMBER(kvd_migrate_remote, reason, 192);
CHECK_SIZE(kvd_xfer_addr, 80);
CHECK_MEMBER(kvd_xfer_addr, addr, 16);
_Static_assert(sizeof(struct kvd_load) + KVD_LOAD_REQS_MAX * sizeof(struct kvd_load_req) <=
	       KVD_MSG_MAX, "a full LOAD fits a message");
_Static_assert(sizeof(struct kvd_handoff) + KVD_HANDOFF_MAX_FDS * sizeof(struct kvd_obj) <=
	       KVD_MSG_MAX, "the largest hand-off fits a message");

TEST(flag_masks)
{
	EXPECT_EQ(0, KVACCEL_GET_PARAM_FLAGS);
	EXPECT_EQ(0, KVACCEL_REGION_INFO_FLAGS);
	EXPECT_EQ(KVACCEL_REGION_CREATE_NUMA_NODE, KVACCEL_REGION_CREATE_FLAGS);
	EXPECT_EQ(KVACCEL_SPACE_CREATE_NO_OFFSET | KVACCEL_SPACE_CREATE_SHARE_REBIND,
		  KVACCEL_SPACE_CREATE_FLAGS);
	EXPECT_EQ(0, KVACCEL_SPACE_BIND_FLAGS);
	EXPECT_EQ(0, KVACCEL_BIND_OP_FLAGS);
	EXPECT_EQ(0, KVACCEL_SPACE_INFO_FLAGS);
	EXPECT_EQ(0, KVACCEL_COPY_SEGMENT_FLAGS);
	EXPECT_EQ(KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT, KVACCEL_COPY_SUBMIT_FLAGS);
	EXPECT_EQ(0, KVACCEL_COPY_STATUS_FLAGS);
}

TEST(block_size_range)
{
	EXPECT_EQ(4096, 1u << KVACCEL_BLOCK_SHIFT_MIN);
	EXPECT_EQ(2u << 20, 1u << KVACCEL_BLOCK_SHIFT_MAX);
}

TEST_HARNESS_MAIN
