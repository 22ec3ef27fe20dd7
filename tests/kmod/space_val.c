// SPDX-License-Identifier: GPL-2.0-only
/*
 * Validation of SPACE_CREATE, SPACE_BIND and SPACE_INFO: one rule per
 * subtest with otherwise valid input; a rejected batch changes nothing.
 */
#include "kvtest.h"
#include "kselftest_harness.h"

#define BS	65536u

FIXTURE(sv) {
	int fd;
	uint32_t region, small, space;
	uint64_t gen0;
};

FIXTURE_SETUP(sv)
{
	struct drm_kvaccel_space_info info;

	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, kvt_region_create(self->fd, 4 * BS, BS, &self->region));
	ASSERT_EQ(0, kvt_region_create(self->fd, 4 * 4096, 4096, &self->small));
	ASSERT_EQ(0, kvt_space_create(self->fd, 8, BS, &self->space));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(0, self->region, 0)));
	ASSERT_EQ(0, kvt_space_info(self->fd, self->space, &info));
	self->gen0 = info.generation;
}

FIXTURE_TEARDOWN(sv)
{
	struct drm_kvaccel_slot_binding b[8];
	struct drm_kvaccel_space_info info = {
		.handle = self->space, .count = 8, .bindings = (uintptr_t)b,
	};
	int i;

	/* Whatever was rejected left the space exactly as set up. */
	EXPECT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info));
	EXPECT_EQ(self->gen0, info.generation);
	EXPECT_EQ(1, info.bound_slots);
	EXPECT_EQ(KVACCEL_SLOT_BOUND, b[0].flags);
	EXPECT_EQ(0, b[0].block);
	for (i = 1; i < 8; i++)
		EXPECT_EQ(0, b[i].flags);
	close(self->fd);
}

static int bind_args(int fd, struct drm_kvaccel_space_bind *sb)
{
	return kvt_ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_BIND, sb);
}

#define EXPECT_OP(err, op) EXPECT_EQ(err, kvt_bind1(self->fd, self->space, op))

TEST_F(sv, slot_out_of_range)
{
	EXPECT_OP(-EINVAL, kvt_op_bind(8, self->region, 1));
	EXPECT_OP(-EINVAL, kvt_op_bind(~0u, self->region, 1));
	EXPECT_OP(-EINVAL, kvt_op(KVACCEL_BIND_OP_MOVE, 0, 8));
	EXPECT_OP(-EINVAL, kvt_op(KVACCEL_BIND_OP_SWAP, 8, 0));
}

TEST_F(sv, count_zero)
{
	struct drm_kvaccel_bind_op op = kvt_op_bind(1, self->region, 1);

	EXPECT_EQ(-EINVAL, kvt_space_bind(self->fd, self->space, &op, 0, NULL));
}

TEST_F(sv, count_over_limit)
{
	struct drm_kvaccel_space_bind sb = {
		.handle = self->space, .count = KVACCEL_BIND_MAX_OPS + 1, .ops = 4096,
	};

	EXPECT_EQ(-EINVAL, bind_args(self->fd, &sb));
}

TEST_F(sv, count_multiplication_overflow)
{
	/* count * sizeof(op) wraps a 32-bit size_t. */
	struct drm_kvaccel_space_bind sb = {
		.handle = self->space, .count = 0x80000000u, .ops = 4096,
	};

	EXPECT_EQ(-EINVAL, bind_args(self->fd, &sb));
	sb.count = ~0u;
	EXPECT_EQ(-EINVAL, bind_args(self->fd, &sb));
}

TEST_F(sv, duplicate_targets)
{
	struct drm_kvaccel_bind_op ops[2] = {
		kvt_op_bind(1, self->region, 1), kvt_op_bind(1, self->region, 2),
	};

	EXPECT_EQ(-EINVAL, kvt_space_bind(self->fd, self->space, ops, 2, NULL));
	ops[1] = kvt_op(KVACCEL_BIND_OP_SWAP, 0, 1);
	EXPECT_EQ(-EINVAL, kvt_space_bind(self->fd, self->space, ops, 2, NULL));
	ops[1] = kvt_op(KVACCEL_BIND_OP_MOVE, 0, 1);
	EXPECT_EQ(-EINVAL, kvt_space_bind(self->fd, self->space, ops, 2, NULL));
}

TEST_F(sv, same_slot_move_or_swap)
{
	EXPECT_OP(-EINVAL, kvt_op(KVACCEL_BIND_OP_MOVE, 0, 0));
	EXPECT_OP(-EINVAL, kvt_op(KVACCEL_BIND_OP_SWAP, 0, 0));
}

TEST_F(sv, block_index_out_of_range)
{
	EXPECT_OP(-EINVAL, kvt_op_bind(1, self->region, 4));
	EXPECT_OP(-EINVAL, kvt_op_bind(1, self->region, ~0ull));
}

TEST_F(sv, block_size_mismatch)
{
	EXPECT_OP(-EINVAL, kvt_op_bind(1, self->small, 0));
}

TEST_F(sv, handle_of_other_client)
{
	uint32_t theirs;
	int fd2 = kvt_open();

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, kvt_region_create(fd2, 4 * BS, BS, &theirs));
	/* Their handle number means nothing here, or something else. */
	if (theirs != self->region && theirs != self->small && theirs != self->space)
		EXPECT_OP(-ENOENT, kvt_op_bind(1, theirs, 0));
	EXPECT_OP(-ENOENT, kvt_op_bind(1, 1000, 0));
	close(fd2);
}

TEST_F(sv, handle_not_a_region)
{
	EXPECT_OP(-EINVAL, kvt_op_bind(1, self->space, 0));
}

TEST_F(sv, space_handle_not_a_space)
{
	EXPECT_EQ(-EINVAL, kvt_bind1(self->fd, self->region, kvt_op_bind(1, self->region, 0)));
	EXPECT_EQ(-ENOENT, kvt_bind1(self->fd, 1000, kvt_op_bind(1, self->region, 0)));
}

TEST_F(sv, unknown_op)
{
	EXPECT_OP(-EINVAL, kvt_op(0, 1, 2));
	EXPECT_OP(-EINVAL, kvt_op(5, 1, 2));
	EXPECT_OP(-EINVAL, kvt_op(~0u, 1, 2));
}

TEST_F(sv, unknown_flags)
{
	struct drm_kvaccel_bind_op op = kvt_op_bind(1, self->region, 1);
	struct drm_kvaccel_space_bind sb = {
		.handle = self->space, .flags = 1, .count = 1, .ops = (uintptr_t)&op,
	};

	EXPECT_EQ(-EINVAL, bind_args(self->fd, &sb));
}

TEST_F(sv, op_unknown_flags)
{
	struct drm_kvaccel_bind_op op = kvt_op_bind(1, self->region, 1);

	op.flags = 1;
	EXPECT_OP(-EINVAL, op);
}

TEST_F(sv, nonzero_pad)
{
	struct drm_kvaccel_bind_op op = kvt_op_bind(1, self->region, 1);
	struct drm_kvaccel_space_bind sb = {
		.handle = self->space, .pad = 1, .count = 1, .ops = (uintptr_t)&op,
	};

	EXPECT_EQ(-EINVAL, bind_args(self->fd, &sb));
}

TEST_F(sv, op_nonzero_pad)
{
	struct drm_kvaccel_bind_op op = kvt_op_bind(1, self->region, 1);

	op.pad = 1;
	EXPECT_OP(-EINVAL, op);
}

TEST_F(sv, op_unused_fields)
{
	struct drm_kvaccel_bind_op op = kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 0);

	op.handle = self->region;
	EXPECT_OP(-EINVAL, op);
	op = kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 0);
	op.block = 1;
	EXPECT_OP(-EINVAL, op);
	op = kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 3);
	EXPECT_OP(-EINVAL, op);
	op = kvt_op_bind(1, self->region, 1);
	op.other = 2;
	EXPECT_OP(-EINVAL, op);
	op = kvt_op(KVACCEL_BIND_OP_SWAP, 0, 1);
	op.handle = self->region;
	EXPECT_OP(-EINVAL, op);
}

TEST_F(sv, unbind_empty_slot)
{
	EXPECT_OP(-ENOENT, kvt_op(KVACCEL_BIND_OP_UNBIND, 1, 0));
}

TEST_F(sv, move_from_empty_slot)
{
	EXPECT_OP(-ENOENT, kvt_op(KVACCEL_BIND_OP_MOVE, 1, 2));
}

TEST_F(sv, ops_efault)
{
	struct drm_kvaccel_space_bind sb = {
		.handle = self->space, .count = 1, .ops = 0,
	};

	EXPECT_EQ(-EFAULT, bind_args(self->fd, &sb));
	sb.ops = 4096;
	EXPECT_EQ(-EFAULT, bind_args(self->fd, &sb));
	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_BIND, NULL));
}

/* A valid op followed by an invalid one: nothing is applied. */
TEST_F(sv, batch_all_or_nothing)
{
	struct drm_kvaccel_bind_op ops[3] = {
		kvt_op_bind(1, self->region, 1),
		kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 0),
		kvt_op_bind(2, self->region, 9),
	};

	EXPECT_EQ(-EINVAL, kvt_space_bind(self->fd, self->space, ops, 3, NULL));
	ops[2] = kvt_op(KVACCEL_BIND_OP_UNBIND, 5, 0);	/* empty: -ENOENT */
	EXPECT_EQ(-ENOENT, kvt_space_bind(self->fd, self->space, ops, 3, NULL));
}

TEST_F(sv, map_private)
{
	struct drm_kvaccel_space_info info;

	ASSERT_EQ(0, kvt_space_info(self->fd, self->space, &info));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, info.map_size, PROT_READ, MAP_PRIVATE,
				   self->fd, (off_t)info.mmap_offset));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, info.map_size + 4096, PROT_READ, MAP_SHARED,
				   self->fd, (off_t)info.mmap_offset));
}

/* ---- SPACE_CREATE ---- */

TEST_F(sv, create_unknown_flags)
{
	struct drm_kvaccel_space_create sc = {
		.flags = (uint32_t)~KVACCEL_SPACE_CREATE_FLAGS, .nr_slots = 4, .block_size = BS,
	};

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_CREATE, &sc));
}

TEST_F(sv, create_bad_block_size)
{
	EXPECT_EQ(-EINVAL, kvt_space_create(self->fd, 4, 0, NULL));
	EXPECT_EQ(-EINVAL, kvt_space_create(self->fd, 4, 2048, NULL));
	EXPECT_EQ(-EINVAL, kvt_space_create(self->fd, 4, 3 * 4096, NULL));
	EXPECT_EQ(-EINVAL, kvt_space_create(self->fd, 4, 4u << 20, NULL));
}

TEST_F(sv, create_slots_zero)
{
	EXPECT_EQ(-EINVAL, kvt_space_create(self->fd, 0, BS, NULL));
}

TEST_F(sv, create_slots_over_limit)
{
	EXPECT_EQ(-EINVAL, kvt_space_create(self->fd, KVACCEL_SPACE_MAX_SLOTS + 1, 4096, NULL));
}

TEST_F(sv, create_window_over_limit)
{
	EXPECT_EQ(-EINVAL, kvt_space_create(self->fd,
			KVACCEL_SPACE_MAX_SIZE / (2u << 20) + 1, 2u << 20, NULL));
}

TEST_F(sv, create_size_sweep)
{
	unsigned char buf[sizeof(struct drm_kvaccel_space_create) + 8];
	struct drm_kvaccel_space_create *sc = (void *)buf;
	unsigned int size;

	for (size = 0; size <= sizeof(buf); size += 4) {
		int ret;

		memset(buf, 0xa5, sizeof(buf));
		sc->handle = 0;
		sc->flags = 0;
		sc->nr_slots = 4;
		sc->block_size = BS;
		ret = kvt_ioctl(self->fd, KVT_IOWR_SIZED(DRM_KVACCEL_SPACE_CREATE, size), buf);
		if (size < sizeof(*sc)) {
			EXPECT_EQ(-EINVAL, ret) TH_LOG("size %u", size);
			continue;
		}
		EXPECT_EQ(0, ret);
		if (!ret)
			EXPECT_EQ(0, kvt_close_handle(self->fd, sc->handle));
	}
}

/* ---- SPACE_INFO ---- */

TEST_F(sv, info_unknown_flags)
{
	struct drm_kvaccel_space_info info = { .handle = self->space, .flags = 1 };

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info));
}

TEST_F(sv, info_nonzero_pad)
{
	struct drm_kvaccel_space_info info = { .handle = self->space, .pad = 1 };

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info));
}

TEST_F(sv, info_range_past_end)
{
	struct drm_kvaccel_slot_binding b[8];
	struct drm_kvaccel_space_info info = {
		.handle = self->space, .first_slot = 5, .count = 4, .bindings = (uintptr_t)b,
	};

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info));
	info.first_slot = ~0u;
	info.count = 2;
	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info));
}

TEST_F(sv, info_count_over_limit)
{
	struct drm_kvaccel_space_info info = {
		.handle = self->space, .count = KVACCEL_BIND_MAX_OPS + 1, .bindings = 4096,
	};

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info));
}

TEST_F(sv, info_bindings_efault)
{
	struct drm_kvaccel_space_info info = {
		.handle = self->space, .count = 2, .bindings = 4096,
	};

	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info));
}

TEST_F(sv, info_not_a_space)
{
	struct drm_kvaccel_space_info info;

	EXPECT_EQ(-EINVAL, kvt_space_info(self->fd, self->region, &info));
	EXPECT_EQ(-ENOENT, kvt_space_info(self->fd, 1000, &info));
}

TEST_HARNESS_MAIN
