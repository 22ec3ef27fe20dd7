// SPDX-License-Identifier: GPL-2.0-only
/*
 * Regions: create, info, mmap, data, zero-fill, fork, and every validation
 * rule of REGION_CREATE, REGION_INFO and mmap, one per subtest.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <signal.h>

#include "kvtest.h"
#include "kselftest_harness.h"

FIXTURE(region) {
	int fd;
	uint64_t usage0, pages0;
};

FIXTURE_VARIANT(region) {
	uint32_t block_size;
	uint32_t blocks;
};

#define REGION_VARIANT(name, bs, n) \
	FIXTURE_VARIANT_ADD(region, name) { .block_size = (bs), .blocks = (n) }
REGION_VARIANT(bs_4k, 4096, 64);
REGION_VARIANT(bs_8k, 8192, 33);
REGION_VARIANT(bs_16k, 16384, 17);
REGION_VARIANT(bs_32k, 32768, 9);
REGION_VARIANT(bs_64k, 65536, 8);
REGION_VARIANT(bs_128k, 131072, 5);
REGION_VARIANT(bs_256k, 262144, 4);
REGION_VARIANT(bs_512k, 524288, 3);
REGION_VARIANT(bs_1m, 1048576, 2);
REGION_VARIANT(bs_2m, 2097152, 3);

FIXTURE_SETUP(region)
{
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	self->usage0 = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);
	self->pages0 = kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD);
}

FIXTURE_TEARDOWN(region)
{
	close(self->fd);
}

static uint64_t region_size(const FIXTURE_VARIANT(region) *v)
{
	return (uint64_t)v->block_size * v->blocks;
}

TEST_F(region, create_info_close)
{
	uint64_t size = region_size(variant);
	struct drm_kvaccel_region_info info;
	uint32_t h;

	ASSERT_EQ(0, kvt_region_create(self->fd, size, variant->block_size, &h));
	EXPECT_NE(0, h);
	ASSERT_EQ(0, kvt_region_info(self->fd, h, &info));
	EXPECT_EQ(size, info.size);
	EXPECT_EQ(variant->block_size, info.block_size);
	EXPECT_EQ(KVACCEL_OBJECT_REGION, info.type);
	EXPECT_EQ(0, info.object_flags);
	EXPECT_NE(0, info.mmap_offset);
	EXPECT_EQ(0, info.mmap_offset % (uint64_t)sysconf(_SC_PAGESIZE));
	EXPECT_EQ(self->usage0 + size,
		  kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(self->pages0 + size / sysconf(_SC_PAGESIZE),
		  kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD));
	ASSERT_EQ(0, kvt_close_handle(self->fd, h));
	EXPECT_EQ(-ENOENT, kvt_region_info(self->fd, h, &info));
	EXPECT_EQ(self->usage0, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(self->pages0, kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD));
}

TEST_F(region, mmap_write_read_back)
{
	uint64_t size = region_size(variant);
	uint32_t h;
	void *p, *q;

	ASSERT_EQ(0, kvt_region_create(self->fd, size, variant->block_size, &h));
	p = kvt_region_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_TRUE(kvt_all_zero(p, size));
	kvt_fill(p, size, 0x1234);

	/* A second mapping of the same region sees the same bytes. */
	q = kvt_region_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_TRUE(kvt_check(q, size, 0x1234));

	/* Zapped pages fault back in with their data, on read and on write. */
	ASSERT_EQ(0, madvise(p, size, MADV_DONTNEED));
	EXPECT_TRUE(kvt_check(p, size, 0x1234));
	ASSERT_EQ(0, madvise(p, size, MADV_DONTNEED));
	kvt_fill(p, size, 0x4321);
	EXPECT_TRUE(kvt_check(q, size, 0x4321));
	kvt_fill(q, size, 0x1234);

	ASSERT_EQ(0, munmap(q, size));
	/* The mapping keeps the region alive after its handle is closed. */
	ASSERT_EQ(0, kvt_close_handle(self->fd, h));
	EXPECT_TRUE(kvt_check(p, size, 0x1234));
	EXPECT_EQ(self->usage0 + size,
		  kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	ASSERT_EQ(0, munmap(p, size));
	EXPECT_EQ(self->usage0, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(self->pages0, kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD));
}

/* The pages are inserted at mmap time: touching them takes no fault. */
/* One read per page; out of line, so its code is faulted in before it is measured. */
static __attribute__((noinline)) unsigned int touch_pages(volatile unsigned char *c,
							   uint64_t size)
{
	unsigned int sum = 0;
	uint64_t off;

	for (off = 0; off < size; off += 4096)
		sum += c[off];
	return sum;
}

TEST_F(region, mmap_populates)
{
	static unsigned char warm[2 * 4096];
	uint64_t size = region_size(variant);
	struct rusage before, after;
	unsigned int sum;
	uint32_t h;
	void *p;

	ASSERT_EQ(0, kvt_region_create(self->fd, size, variant->block_size, &h));
	p = kvt_region_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, p);
	/*
	 * Only the mapping's pages may be measured: the loop's code, the
	 * stack and getrusage()'s own pages fault in first.
	 */
	memset(warm, 1, sizeof(warm));
	touch_pages(warm, sizeof(warm));
	ASSERT_EQ(0, getrusage(RUSAGE_SELF, &after));
	ASSERT_EQ(0, getrusage(RUSAGE_SELF, &before));
	sum = touch_pages(p, size);
	ASSERT_EQ(0, getrusage(RUSAGE_SELF, &after));
	EXPECT_EQ(0, sum);
	EXPECT_EQ(before.ru_minflt, after.ru_minflt);
	munmap(p, size);
}

/*
 * The mapping holds normal pages, so get_user_pages() works on it (DMA
 * registration of host memory needs that): process_vm_readv() pins the
 * pages it reads through GUP.
 */
TEST_F(region, gup_works)
{
	uint64_t size = region_size(variant);
	struct iovec local, remote;
	uint32_t h;
	void *p, *buf;

	ASSERT_EQ(0, kvt_region_create(self->fd, size, variant->block_size, &h));
	p = kvt_region_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, p);
	kvt_fill(p, size, 0x9a9a);
	buf = malloc(size);
	ASSERT_NE(NULL, buf);
	local.iov_base = buf;
	local.iov_len = size;
	remote.iov_base = p;
	remote.iov_len = size;
	ASSERT_EQ((ssize_t)size, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_TRUE(kvt_check(buf, size, 0x9a9a));
	free(buf);
	munmap(p, size);
}

TEST_F(region, fork_child_sees_same_bytes)
{
	uint64_t size = region_size(variant);
	int status;
	uint32_t h;
	pid_t pid;
	void *p;

	ASSERT_EQ(0, kvt_region_create(self->fd, size, variant->block_size, &h));
	p = kvt_region_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, p);
	kvt_fill(p, size, 0xabcd);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (!kvt_check(p, size, 0xabcd))
			_exit(1);
		kvt_fill(p, size, 0x5678);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(kvt_check(p, size, 0x5678));
	munmap(p, size);
}

/*
 * One process writes a pattern into a region and frees it; another
 * process allocates the same amount and must see only zeros.
 */
TEST_F(region, zero_filled_across_processes)
{
	uint64_t size = region_size(variant);
	int status, round;
	pid_t pid;

	for (round = 0; round < 2; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			int fd = kvt_open();
			uint32_t h;
			void *p;

			if (fd < 0 || kvt_region_create(fd, size, variant->block_size, &h))
				_exit(2);
			p = kvt_region_map(fd, h, size);
			if (p == MAP_FAILED)
				_exit(3);
			if (round == 1 && !kvt_all_zero(p, size))
				_exit(4);
			memset(p, 0xee, size);
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("round %d", round);
	}
}

TEST_F(region, numa_node_zero)
{
	struct drm_kvaccel_region_info info;
	uint32_t h;

	ASSERT_EQ(0, kvt_region_create_ex(self->fd, region_size(variant),
					  variant->block_size,
					  KVACCEL_REGION_CREATE_NUMA_NODE, 0, &h));
	ASSERT_EQ(0, kvt_region_info(self->fd, h, &info));
	EXPECT_EQ(0, info.numa_node);
	ASSERT_EQ(0, kvt_close_handle(self->fd, h));
}

/* ---- validation: one rule per subtest, otherwise valid input ---- */

FIXTURE(val) {
	int fd;
	uint32_t h;
	uint64_t usage0;
};

FIXTURE_SETUP(val)
{
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	self->usage0 = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);
	ASSERT_EQ(0, kvt_region_create(self->fd, 2 * KVT_MIB, 64 * KVT_KIB, &self->h));
}

FIXTURE_TEARDOWN(val)
{
	/* Nothing a rejected call did may linger. */
	EXPECT_EQ(self->usage0 + 2 * KVT_MIB,
		  kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	close(self->fd);
}

#define EXPECT_CREATE(err, size, bs, flags, node) \
	EXPECT_EQ(err, kvt_region_create_ex(self->fd, size, bs, flags, node, NULL))

TEST_F(val, create_unknown_flag)
{
	EXPECT_CREATE(-EINVAL, KVT_MIB, 4096, 1u << 1, 0);
	EXPECT_CREATE(-EINVAL, KVT_MIB, 4096, 1u << 31, 0);
}

TEST_F(val, create_block_size_zero)
{
	EXPECT_CREATE(-EINVAL, KVT_MIB, 0, 0, 0);
}

TEST_F(val, create_block_size_not_power_of_two)
{
	EXPECT_CREATE(-EINVAL, 12 * KVT_KIB * 64, 12 * KVT_KIB, 0, 0);
}

TEST_F(val, create_block_size_too_small)
{
	EXPECT_CREATE(-EINVAL, KVT_MIB, 2048, 0, 0);
	EXPECT_CREATE(-EINVAL, KVT_MIB, 1, 0, 0);
}

TEST_F(val, create_block_size_too_large)
{
	EXPECT_CREATE(-EINVAL, 8 * KVT_MIB, 4 * KVT_MIB, 0, 0);
	EXPECT_CREATE(-EINVAL, 1ull << 32, 1u << 31, 0, 0);
}

TEST_F(val, create_size_zero)
{
	EXPECT_CREATE(-EINVAL, 0, 4096, 0, 0);
}

TEST_F(val, create_size_not_block_multiple)
{
	EXPECT_CREATE(-EINVAL, 2 * KVT_MIB + 4096, 2 * KVT_MIB, 0, 0);
	EXPECT_CREATE(-EINVAL, 4097, 4096, 0, 0);
}

TEST_F(val, create_too_many_blocks)
{
	EXPECT_CREATE(-EINVAL, ((uint64_t)KVACCEL_REGION_MAX_BLOCKS + 1) * 4096,
		      4096, 0, 0);
}

TEST_F(val, create_oversized)
{
	/* Within the block count but far over any limit. */
	EXPECT_CREATE(-ENOMEM, (uint64_t)KVACCEL_REGION_MAX_BLOCKS * 2 * KVT_MIB,
		      2 * KVT_MIB, 0, 0);
	EXPECT_CREATE(-EINVAL, ~0ull & ~(2 * KVT_MIB - 1), 2 * KVT_MIB, 0, 0);
}

TEST_F(val, create_unknown_numa_node)
{
	EXPECT_CREATE(-EINVAL, KVT_MIB, 4096, KVACCEL_REGION_CREATE_NUMA_NODE, 1u << 20);
	EXPECT_CREATE(-EINVAL, KVT_MIB, 4096, KVACCEL_REGION_CREATE_NUMA_NODE, ~0u);
}

TEST_F(val, create_offline_numa_node)
{
	char path[64];
	unsigned int node;

	for (node = 0; node < 1024; node++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%u", node);
		if (access(path, F_OK))
			break;
	}
	EXPECT_CREATE(-EINVAL, KVT_MIB, 4096, KVACCEL_REGION_CREATE_NUMA_NODE, node);
}

TEST_F(val, create_numa_node_without_flag)
{
	EXPECT_CREATE(-EINVAL, KVT_MIB, 4096, 0, 1);
}

TEST_F(val, create_efault)
{
	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_REGION_CREATE, NULL));
	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_REGION_CREATE,
				     (void *)(uintptr_t)4096));
}

TEST_F(val, info_bad_handle)
{
	struct drm_kvaccel_region_info info;

	EXPECT_EQ(-ENOENT, kvt_region_info(self->fd, self->h + 1000, &info));
	EXPECT_EQ(-ENOENT, kvt_region_info(self->fd, 0, &info));
}

TEST_F(val, info_unknown_flags)
{
	struct drm_kvaccel_region_info info = { .handle = self->h, .flags = 1 };

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_REGION_INFO, &info));
}

TEST_F(val, info_efault)
{
	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_REGION_INFO, NULL));
}

TEST_F(val, info_handle_of_other_client)
{
	struct drm_kvaccel_region_info info;
	int fd2 = kvt_open();

	ASSERT_LE(0, fd2);
	EXPECT_EQ(-ENOENT, kvt_region_info(fd2, self->h, &info));
	close(fd2);
}

TEST_F(val, close_bad_handle)
{
	EXPECT_EQ(-EINVAL, kvt_close_handle(self->fd, self->h + 1000));
}

TEST_F(val, mmap_private)
{
	struct drm_kvaccel_region_info info;

	ASSERT_EQ(0, kvt_region_info(self->fd, self->h, &info));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * KVT_MIB, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, self->fd, (off_t)info.mmap_offset));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(val, mmap_past_end)
{
	struct drm_kvaccel_region_info info;

	ASSERT_EQ(0, kvt_region_info(self->fd, self->h, &info));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * KVT_MIB + 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED, self->fd, (off_t)info.mmap_offset));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(val, mmap_inside_offset)
{
	struct drm_kvaccel_region_info info;

	/* Only the object's own offset maps it, from its start. */
	ASSERT_EQ(0, kvt_region_info(self->fd, self->h, &info));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
				   self->fd, (off_t)(info.mmap_offset + 4096)));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(val, mmap_unknown_offset)
{
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd,
				   (off_t)1 << 30));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(val, mmap_other_client)
{
	struct drm_kvaccel_region_info info;
	int fd2 = kvt_open();

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, kvt_region_info(self->fd, self->h, &info));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2,
				   (off_t)info.mmap_offset));
	EXPECT_EQ(EACCES, errno);
	close(fd2);
}

TEST_F(val, mremap_grow_refused)
{
	void *p = kvt_region_map(self->fd, self->h, KVT_MIB);

	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(MAP_FAILED, mremap(p, KVT_MIB, 2 * KVT_MIB, 0));
	munmap(p, KVT_MIB);
}

/*
 * Struct-size sweep: handle comes first, so a short REGION_CREATE either
 * lacks block_size (-EINVAL) or gets the default NUMA placement and still
 * receives its handle; extra bytes are ignored and come back unchanged.
 */
TEST_F(val, create_size_sweep)
{
	unsigned char buf[sizeof(struct drm_kvaccel_region_create) + 16];
	struct drm_kvaccel_region_create *rc = (void *)buf;
	unsigned int size, i;

	for (size = 0; size <= sizeof(buf); size += 4) {
		int ret;

		memset(buf, 0xa5, sizeof(buf));
		rc->handle = 0;
		rc->flags = 0;
		rc->size = KVT_MIB;
		rc->block_size = 64 * KVT_KIB;
		rc->numa_node = 0;
		ret = kvt_ioctl(self->fd, KVT_IOWR_SIZED(DRM_KVACCEL_REGION_CREATE, size),
				buf);
		if (size < offsetof(struct drm_kvaccel_region_create, numa_node)) {
			EXPECT_EQ(-EINVAL, ret) TH_LOG("size %u", size);
			continue;
		}
		EXPECT_EQ(0, ret) TH_LOG("size %u", size);
		if (ret)
			continue;
		EXPECT_NE(0, rc->handle);
		EXPECT_EQ(0, kvt_close_handle(self->fd, rc->handle));
		for (i = sizeof(*rc); i < size; i++)
			EXPECT_EQ(0xa5, buf[i]);
	}
}

TEST_F(val, info_size_sweep)
{
	unsigned char buf[sizeof(struct drm_kvaccel_region_info) + 16];
	struct drm_kvaccel_region_info *info = (void *)buf;
	unsigned int size, i;

	for (size = 0; size <= sizeof(buf); size += 4) {
		memset(buf, 0xa5, sizeof(buf));
		info->handle = self->h;
		info->flags = 0;
		if (size < 4) {
			/* handle 0 after zero-extension */
			EXPECT_EQ(-ENOENT, kvt_ioctl(self->fd,
				KVT_IOWR_SIZED(DRM_KVACCEL_REGION_INFO, size), buf));
			continue;
		}
		EXPECT_EQ(0, kvt_ioctl(self->fd,
			KVT_IOWR_SIZED(DRM_KVACCEL_REGION_INFO, size), buf)) TH_LOG("size %u", size);
		if (size >= 16)
			EXPECT_EQ(2 * KVT_MIB, info->size);
		/* handle and flags were written; the rest is Out or beyond */
		for (i = size > sizeof(*info) ? sizeof(*info) : size < 8 ? 8 : size;
		     i < sizeof(buf); i++)
			EXPECT_EQ(0xa5, buf[i]);
	}
}

TEST_HARNESS_MAIN
