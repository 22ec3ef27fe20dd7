// SPDX-License-Identifier: GPL-2.0-only
/*
 * Spaces: bind, unbind, move and swap checked through the mapping for 4 KiB,
 * 64 KiB and 2 MiB blocks; generation and control page; slot queries;
 * mapping cost (one fault per block, a PMD per 2 MiB slot where the kernel
 * allows); fork; dma-buf mappings; lifetimes.
 */
#include "kvtest.h"
#include "kselftest_harness.h"

#define NBLOCKS	8
#define NSLOTS	12

FIXTURE(space) {
	int fd;
	uint32_t region, space;
	size_t bs, map_size;
	volatile unsigned char *win;
	volatile struct drm_kvaccel_space_control *ctl;
	uint64_t usage0;
};

FIXTURE_VARIANT(space) {
	uint32_t block_size;
};

FIXTURE_VARIANT_ADD(space, bs_4k) { .block_size = 4096 };
FIXTURE_VARIANT_ADD(space, bs_64k) { .block_size = 65536 };
FIXTURE_VARIANT_ADD(space, bs_2m) { .block_size = 2097152 };

static uint32_t tag(uint32_t block)
{
	return 0x7a900000u + block;
}

FIXTURE_SETUP(space)
{
	void *p;
	int i;

	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	self->bs = variant->block_size;
	self->usage0 = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);
	ASSERT_EQ(0, kvt_region_create(self->fd, NBLOCKS * self->bs, self->bs,
				       &self->region));
	p = kvt_region_map(self->fd, self->region, NBLOCKS * self->bs);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < NBLOCKS; i++)
		kvt_tag_fill((char *)p + i * self->bs, self->bs, tag(i));
	munmap(p, NBLOCKS * self->bs);
	ASSERT_EQ(0, kvt_space_create(self->fd, NSLOTS, self->bs, &self->space));
	p = kvt_space_map(self->fd, self->space, &self->map_size);
	ASSERT_NE(MAP_FAILED, p);
	self->win = p;
	self->ctl = (void *)((char *)p + NSLOTS * self->bs);
}

FIXTURE_TEARDOWN(space)
{
	munmap((void *)self->win, self->map_size);
	close(self->fd);
}

static const volatile unsigned char *slot_ptr(FIXTURE_DATA(space) *self, uint32_t slot)
{
	return self->win + (size_t)slot * self->bs;
}

/* The tag a slot shows, 0 for a torn block, -1 for SIGBUS (empty). */
static long long slot_tag(FIXTURE_DATA(space) *self, uint32_t slot)
{
	return kvt_tag_or_bus(slot_ptr(self, slot), self->bs);
}

TEST_F(space, info_and_map_size)
{
	struct drm_kvaccel_space_info info;
	struct drm_kvaccel_region_info ri;

	ASSERT_EQ(0, kvt_space_info(self->fd, self->space, &info));
	EXPECT_EQ(NSLOTS, info.nr_slots);
	EXPECT_EQ(self->bs, info.block_size);
	EXPECT_EQ(NSLOTS * self->bs + 4096, info.map_size);
	EXPECT_EQ(0, info.bound_slots);
	EXPECT_EQ(0, info.generation);
	EXPECT_EQ(0, self->ctl->generation);
	ASSERT_EQ(0, kvt_region_info(self->fd, self->space, &ri));
	EXPECT_EQ(KVACCEL_OBJECT_SPACE, ri.type);
	EXPECT_EQ(info.mmap_offset, ri.mmap_offset);
	/* A space holds no memory of its own. */
	EXPECT_EQ(self->usage0 + NBLOCKS * self->bs,
		  kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
}

TEST_F(space, empty_slot_sigbus)
{
	EXPECT_EQ(-1, slot_tag(self, 0));
	EXPECT_EQ(-1, slot_tag(self, NSLOTS - 1));
	EXPECT_EQ(-1, kvt_write_or_bus((volatile uint32_t *)slot_ptr(self, 3), 1));
}

TEST_F(space, bind_then_read_write)
{
	struct drm_kvaccel_bind_op ops[NBLOCKS];
	uint64_t gen;
	void *r;
	int i;

	for (i = 0; i < NBLOCKS; i++)
		ops[i] = kvt_op_bind(i, self->region, NBLOCKS - 1 - i);
	ASSERT_EQ(0, kvt_space_bind(self->fd, self->space, ops, NBLOCKS, &gen));
	EXPECT_EQ(2, gen);
	EXPECT_EQ(2, self->ctl->generation);
	EXPECT_EQ(NBLOCKS, self->ctl->bound_slots);
	for (i = 0; i < NBLOCKS; i++)
		EXPECT_EQ(tag(NBLOCKS - 1 - i), slot_tag(self, i)) TH_LOG("slot %d", i);
	EXPECT_EQ(-1, slot_tag(self, NBLOCKS));

	/* Zero copy: a write through the space is in the region's block. */
	*(volatile uint32_t *)(slot_ptr(self, 0) + 8) = 0xdeadbeef;
	r = kvt_region_map(self->fd, self->region, NBLOCKS * self->bs);
	ASSERT_NE(MAP_FAILED, r);
	EXPECT_EQ(0xdeadbeef, *(uint32_t *)((char *)r + (NBLOCKS - 1) * self->bs + 8));
	munmap(r, NBLOCKS * self->bs);
}

TEST_F(space, unbind)
{
	struct drm_kvaccel_space_info info;

	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(1, self->region, 5)));
	EXPECT_EQ(tag(5), slot_tag(self, 1));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_UNBIND, 1, 0)));
	EXPECT_EQ(-1, slot_tag(self, 1));
	ASSERT_EQ(0, kvt_space_info(self->fd, self->space, &info));
	EXPECT_EQ(0, info.bound_slots);
	EXPECT_EQ(4, info.generation);
}

TEST_F(space, rebind_replaces)
{
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(2, self->region, 1)));
	EXPECT_EQ(tag(1), slot_tag(self, 2));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(2, self->region, 6)));
	EXPECT_EQ(tag(6), slot_tag(self, 2));
}

TEST_F(space, move)
{
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(0, self->region, 3)));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(7, self->region, 4)));
	EXPECT_EQ(tag(3), slot_tag(self, 0));
	EXPECT_EQ(tag(4), slot_tag(self, 7));
	/* Onto an empty slot, then onto a bound one (replacing it). */
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_MOVE, 0, 9)));
	EXPECT_EQ(-1, slot_tag(self, 0));
	EXPECT_EQ(tag(3), slot_tag(self, 9));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_MOVE, 9, 7)));
	EXPECT_EQ(-1, slot_tag(self, 9));
	EXPECT_EQ(tag(3), slot_tag(self, 7));
	EXPECT_EQ(1, self->ctl->bound_slots);
}

TEST_F(space, swap)
{
	struct drm_kvaccel_bind_op ops[2] = {
		kvt_op_bind(4, self->region, 0), kvt_op_bind(5, self->region, 1),
	};

	ASSERT_EQ(0, kvt_space_bind(self->fd, self->space, ops, 2, NULL));
	EXPECT_EQ(tag(0), slot_tag(self, 4));
	EXPECT_EQ(tag(1), slot_tag(self, 5));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_SWAP, 4, 5)));
	EXPECT_EQ(tag(1), slot_tag(self, 4));
	EXPECT_EQ(tag(0), slot_tag(self, 5));
	/* With an empty slot: the binding moves over. */
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_SWAP, 5, 11)));
	EXPECT_EQ(-1, slot_tag(self, 5));
	EXPECT_EQ(tag(0), slot_tag(self, 11));
}

/* A batch mixing all four operations applies as one. */
TEST_F(space, mixed_batch)
{
	struct drm_kvaccel_bind_op setup[3] = {
		kvt_op_bind(0, self->region, 0), kvt_op_bind(1, self->region, 1),
		kvt_op_bind(2, self->region, 2),
	};
	struct drm_kvaccel_bind_op ops[4] = {
		kvt_op(KVACCEL_BIND_OP_SWAP, 0, 1),
		kvt_op(KVACCEL_BIND_OP_MOVE, 2, 5),
		kvt_op_bind(6, self->region, 7),
		kvt_op_bind(3, self->region, 3),
	};
	uint64_t gen;

	ASSERT_EQ(0, kvt_space_bind(self->fd, self->space, setup, 3, NULL));
	ASSERT_EQ(0, kvt_space_bind(self->fd, self->space, ops, 4, &gen));
	EXPECT_EQ(4, gen);
	EXPECT_EQ(tag(1), slot_tag(self, 0));
	EXPECT_EQ(tag(0), slot_tag(self, 1));
	EXPECT_EQ(-1, slot_tag(self, 2));
	EXPECT_EQ(tag(3), slot_tag(self, 3));
	EXPECT_EQ(tag(2), slot_tag(self, 5));
	EXPECT_EQ(tag(7), slot_tag(self, 6));
	EXPECT_EQ(5, self->ctl->bound_slots);
}

/* The same block may back several slots (a shared prefix). */
TEST_F(space, alias_one_block)
{
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(0, self->region, 2)));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(10, self->region, 2)));
	*(volatile uint32_t *)(slot_ptr(self, 0) + 64) = 0x5151;
	EXPECT_EQ(0x5151, *(volatile uint32_t *)(slot_ptr(self, 10) + 64));
}

TEST_F(space, query_bindings)
{
	struct drm_kvaccel_slot_binding b[NSLOTS];
	struct drm_kvaccel_space_info info;
	struct drm_kvaccel_region_info ri;

	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(3, self->region, 6)));
	ASSERT_EQ(0, kvt_region_info(self->fd, self->region, &ri));
	EXPECT_NE(0, ri.region_id);
	memset(b, 0xff, sizeof(b));
	memset(&info, 0, sizeof(info));
	info.handle = self->space;
	info.first_slot = 2;
	info.count = 3;
	info.bindings = (uintptr_t)b;
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info));
	EXPECT_EQ(0, b[0].flags);
	EXPECT_EQ(0, b[0].region_id);
	EXPECT_EQ(KVACCEL_SLOT_BOUND, b[1].flags);
	EXPECT_EQ(ri.region_id, b[1].region_id);
	EXPECT_EQ(6, b[1].block);
	EXPECT_EQ(0, b[2].flags);
	EXPECT_EQ(0xffffffffu, b[3].flags);	/* past count: untouched */
	EXPECT_EQ(1, info.bound_slots);
}

/* The control page is read-only, whatever the mapping allows. */
TEST_F(space, control_page_read_only)
{
	EXPECT_EQ(0, kvt_read_or_bus((const volatile uint32_t *)&self->ctl->generation));
	EXPECT_EQ(-1, kvt_write_or_bus((volatile uint32_t *)&self->ctl->generation, 7));
	EXPECT_EQ(0, self->ctl->generation);
}

/*
 * Mapping cost: the first touch of a block maps all of it, with one PMD
 * entry for a 2 MiB slot where the kernel calls huge_fault for PFN
 * mappings (KVACCEL_CAP_SPACE_PMD), with page table entries otherwise.
 */
TEST_F(space, one_fault_per_block)
{
	uint64_t caps = kvt_param_or_die(self->fd, KVACCEL_PARAM_CAPABILITIES);
	long long pmd0 = kvt_debugfs_counter("space_pmd_maps");
	long long blk0 = kvt_debugfs_counter("space_block_maps");
	struct drm_kvaccel_bind_op ops[NBLOCKS];
	volatile unsigned int sum = 0;
	long f0, f1, f2;
	size_t off;
	int i;

	for (i = 0; i < NBLOCKS; i++)
		ops[i] = kvt_op_bind(i, self->region, i);
	ASSERT_EQ(0, kvt_space_bind(self->fd, self->space, ops, NBLOCKS, NULL));
	/* A mapping of 2 MiB or more starts on a 2 MiB boundary. */
	if (self->map_size >= (2u << 20))
		EXPECT_EQ(0, (uintptr_t)self->win % (2u << 20));

	f0 = kvt_minflt();
	for (i = 0; i < NBLOCKS; i++)
		sum += slot_ptr(self, i)[self->bs / 2];
	f1 = kvt_minflt();
	for (off = 0; off < NBLOCKS * self->bs; off += 4096)
		sum += self->win[off];
	f2 = kvt_minflt();
	EXPECT_EQ(NBLOCKS, f1 - f0);
	EXPECT_EQ(0, f2 - f1);
	if (pmd0 < 0)
		return;	/* no debugfs */
	if (self->bs == (2u << 20) && (caps & KVACCEL_CAP_SPACE_PMD)) {
		EXPECT_EQ(NBLOCKS, kvt_debugfs_counter("space_pmd_maps") - pmd0);
		EXPECT_EQ(0, kvt_debugfs_counter("space_block_maps") - blk0);
	} else {
		EXPECT_EQ(0, kvt_debugfs_counter("space_pmd_maps") - pmd0);
		EXPECT_EQ(NBLOCKS, kvt_debugfs_counter("space_block_maps") - blk0);
	}
}

/*
 * The same for writes: the first write to a block of a writable mapping
 * maps all of it writable at once, so writing every page of it takes one
 * fault (not one more per page to make each writable).
 */
TEST_F(space, one_fault_per_block_for_writes)
{
	struct drm_kvaccel_bind_op ops[NBLOCKS];
	long f0, f1, f2;
	size_t off;
	int i;

	for (i = 0; i < NBLOCKS; i++)
		ops[i] = kvt_op_bind(i, self->region, i);
	ASSERT_EQ(0, kvt_space_bind(self->fd, self->space, ops, NBLOCKS, NULL));
	f0 = kvt_minflt();
	for (i = 0; i < NBLOCKS; i++)
		self->win[(size_t)i * self->bs + self->bs / 2] = (unsigned char)i;
	f1 = kvt_minflt();
	for (off = 0; off < NBLOCKS * self->bs; off += 4096)
		self->win[off] = 1;
	f2 = kvt_minflt();
	EXPECT_EQ(NBLOCKS, f1 - f0);
	EXPECT_EQ(0, f2 - f1);
	/* The control page after the window stays read-only. */
	kvt_bus_install();
	EXPECT_EQ(-1, kvt_write_or_bus((volatile uint32_t *)self->ctl, 1));
}

/* After fork, the child's inherited mapping follows rebinds. */
TEST_F(space, fork_follows_rebind)
{
	int to_child[2], to_parent[2], status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(0, self->region, 1)));
	EXPECT_EQ(tag(1), slot_tag(self, 0));
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (slot_tag(self, 0) != tag(1))
			_exit(1);
		if (write(to_parent[1], "a", 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(2);
		if (slot_tag(self, 0) != tag(6))
			_exit(3);
		if (write(to_parent[1], "b", 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(4);
		_exit(slot_tag(self, 0) == -1 ? 0 : 5);
	}
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(0, self->region, 6)));
	ASSERT_EQ(1, write(to_child[1], "x", 1));
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 0)));
	ASSERT_EQ(1, write(to_child[1], "y", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* Teardown covers mappings of the space's exported dma-buf too. */
TEST_F(space, dmabuf_mapping_follows_rebind)
{
	volatile unsigned char *m;
	int dmabuf, fd2;
	uint32_t h2;

	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(1, self->region, 2)));
	ASSERT_EQ(0, kvt_export(self->fd, self->space, &dmabuf));
	m = mmap(NULL, self->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	ASSERT_NE(MAP_FAILED, (void *)m);
	EXPECT_EQ(tag(2), kvt_tag_of(m + self->bs, self->bs));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(1, self->region, 5)));
	EXPECT_EQ(tag(5), kvt_tag_of(m + self->bs, self->bs));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_UNBIND, 1, 0)));
	EXPECT_EQ(-1, kvt_read_or_bus((const volatile uint32_t *)(m + self->bs)));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->map_size, PROT_READ, MAP_PRIVATE, dmabuf, 0));
	/*
	 * Imported into another client, it is the same space, but that client
	 * may bind only regions it holds.
	 */
	fd2 = kvt_open();
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, kvt_import(fd2, dmabuf, &h2));
	if (self->region != h2)
		ASSERT_EQ(-ENOENT, kvt_bind1(fd2, h2, kvt_op_bind(1, self->region, 5)));
	close(fd2);
	munmap((void *)m, self->map_size);
	close(dmabuf);
}

/* A region stays alive while bound, and dies with its last binding. */
TEST_F(space, region_lives_while_bound)
{
	uint64_t u = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);

	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(0, self->region, 3)));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(1, self->region, 4)));
	ASSERT_EQ(0, kvt_close_handle(self->fd, self->region));
	EXPECT_EQ(u, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(tag(3), slot_tag(self, 0));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 0)));
	EXPECT_EQ(u, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(tag(4), slot_tag(self, 1));
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_UNBIND, 1, 0)));
	EXPECT_EQ(self->usage0, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
}

/* Closing a space releases its bindings once its mappings are gone. */
TEST_F(space, close_space_while_mapped)
{
	uint64_t p0 = kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD);

	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op_bind(0, self->region, 7)));
	ASSERT_EQ(0, kvt_close_handle(self->fd, self->region));
	ASSERT_EQ(0, kvt_close_handle(self->fd, self->space));
	EXPECT_EQ(tag(7), slot_tag(self, 0));
	EXPECT_EQ(p0, kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD));
	munmap((void *)self->win, self->map_size);
	self->win = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->map_size = 4096;
	EXPECT_EQ(self->usage0, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
}

/* A process killed in the middle of binding leaks nothing. */
TEST(killed_while_binding)
{
	int fd = kvt_open(), status, round;
	uint64_t u0, p0;

	ASSERT_LE(0, fd);
	u0 = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	p0 = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
	for (round = 0; round < 3; round++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid) {
			static struct drm_kvaccel_bind_op ops[1024];
			int cfd = kvt_open(), i, n = 0;
			uint32_t r, s;
			volatile char *w;

			if (kvt_region_create(cfd, 64 * 4096, 4096, &r) ||
			    kvt_space_create(cfd, 1024, 4096, &s))
				_exit(1);
			w = kvt_space_map(cfd, s, NULL);
			if (w == MAP_FAILED)
				_exit(2);
			for (;;) {
				for (i = 0; i < 1024; i++)
					ops[i] = kvt_op_bind(i, r, (i + n) % 64);
				kvt_space_bind(cfd, s, ops, 1024, NULL);
				w[(n % 1024) * 4096] = 1;
				n++;
			}
		}
		usleep(50000 + round * 40000);
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
	}
	EXPECT_EQ(u0, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(p0, kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD));
	close(fd);
}

TEST_HARNESS_MAIN
