// SPDX-License-Identifier: GPL-2.0-only
/*
 * dma-buf sharing: export a region, pass the fd to another process, import
 * it there and see the same bytes; import dma-bufs of other drivers (vgem,
 * udmabuf, and the tests' exporter, which refuses attachments like a GPU
 * driver); a region exported by a process that exits stays charged to it
 * until the last reference goes.
 */
#include <linux/udmabuf.h>
#include <sys/syscall.h>

#include "kvtest.h"
#include "kselftest_harness.h"
#include "kvaccel_test_exporter.h"

#define SIZE (4 * KVT_MIB)

FIXTURE(prime) {
	int fd;
	uint32_t h;
	void *map;
	uint64_t u0;
};

FIXTURE_SETUP(prime)
{
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	self->u0 = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);
	ASSERT_EQ(0, kvt_region_create(self->fd, SIZE, 2 * KVT_MIB, &self->h));
	self->map = kvt_region_map(self->fd, self->h, SIZE);
	ASSERT_NE(MAP_FAILED, self->map);
	kvt_fill(self->map, SIZE, 0xfeed);
}

FIXTURE_TEARDOWN(prime)
{
	munmap(self->map, SIZE);
	close(self->fd);
}

TEST_F(prime, export_is_cloexec_and_flagged)
{
	struct drm_kvaccel_region_info info;
	int dmabuf;

	ASSERT_EQ(0, kvt_export(self->fd, self->h, &dmabuf));
	EXPECT_TRUE(fcntl(dmabuf, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, kvt_region_info(self->fd, self->h, &info));
	EXPECT_TRUE(info.object_flags & KVACCEL_OBJECT_EXPORTED);
	EXPECT_EQ(SIZE, (uint64_t)lseek(dmabuf, 0, SEEK_END));
	close(dmabuf);
}

TEST_F(prime, mmap_dmabuf_same_bytes)
{
	int dmabuf;
	void *p;

	ASSERT_EQ(0, kvt_export(self->fd, self->h, &dmabuf));
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_TRUE(kvt_check(p, SIZE, 0xfeed));
	kvt_fill(p, SIZE, 0xbeef);
	EXPECT_TRUE(kvt_check(self->map, SIZE, 0xbeef));
	munmap(p, SIZE);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE, dmabuf, 0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, SIZE + 4096, PROT_READ, MAP_SHARED, dmabuf, 0));
	close(dmabuf);
}

TEST_F(prime, reimport_same_client_same_handle)
{
	uint32_t h2;
	int dmabuf;

	ASSERT_EQ(0, kvt_export(self->fd, self->h, &dmabuf));
	ASSERT_EQ(0, kvt_import(self->fd, dmabuf, &h2));
	EXPECT_EQ(self->h, h2);
	close(dmabuf);
}

/* Export, send over a Unix socket, import in another process: same bytes. */
TEST_F(prime, pass_to_other_process)
{
	int sv[2], dmabuf, status;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct drm_kvaccel_region_info info;
		int fd, buf;
		uint32_t h;
		void *p;

		close(sv[0]);
		buf = kvt_recv_fd(sv[1]);
		fd = kvt_open();
		if (buf < 0 || fd < 0)
			_exit(1);
		if (kvt_import(fd, buf, &h))
			_exit(2);
		close(buf);
		if (kvt_region_info(fd, h, &info) || info.type != KVACCEL_OBJECT_REGION ||
		    info.size != SIZE || info.block_size != 2 * KVT_MIB)
			_exit(3);
		p = kvt_region_map(fd, h, SIZE);
		if (p == MAP_FAILED)
			_exit(4);
		if (!kvt_check(p, SIZE, 0xfeed))
			_exit(5);
		kvt_fill(p, SIZE, 0xc0de);
		/* The importer is not charged: the region is the creator's. */
		if (kvt_param_or_die(fd, KVACCEL_PARAM_CLIENT_USAGE) != 0)
			_exit(6);
		_exit(0);
	}
	close(sv[1]);
	ASSERT_EQ(0, kvt_export(self->fd, self->h, &dmabuf));
	ASSERT_EQ(0, kvt_send_fd(sv[0], dmabuf));
	close(dmabuf);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(kvt_check(self->map, SIZE, 0xc0de));
	close(sv[0]);
}

/*
 * A region whose creator exits stays alive (and charged to the creator)
 * while another process holds its dma-buf, and is freed with it.
 */
TEST(outlives_creator_through_dmabuf)
{
	int fd = kvt_open(), sv[2], dmabuf, status;
	uint64_t u0, p0;
	pid_t pid;
	void *p;

	ASSERT_LE(0, fd);
	u0 = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	p0 = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int cfd = kvt_open(), buf;
		uint32_t h;
		void *m;

		if (kvt_region_create(cfd, SIZE, 4096, &h))
			_exit(1);
		m = kvt_region_map(cfd, h, SIZE);
		if (m == MAP_FAILED)
			_exit(2);
		kvt_fill(m, SIZE, 0x77);
		if (kvt_export(cfd, h, &buf) || kvt_send_fd(sv[1], buf))
			_exit(3);
		_exit(0);
	}
	dmabuf = kvt_recv_fd(sv[0]);
	ASSERT_LE(0, dmabuf);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));

	EXPECT_EQ(u0 + SIZE, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(0, kvt_param_or_die(fd, KVACCEL_PARAM_CLIENT_USAGE));
	p = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, dmabuf, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_TRUE(kvt_check(p, SIZE, 0x77));
	close(dmabuf);
	/* The mapping still holds it. */
	EXPECT_EQ(u0 + SIZE, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	munmap(p, SIZE);
	EXPECT_EQ(u0, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(p0, kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD));
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

TEST_F(prime, import_bad_fd)
{
	uint32_t h;

	EXPECT_EQ(-EBADF, kvt_import(self->fd, -1, &h));
	EXPECT_EQ(-EBADF, kvt_import(self->fd, 1000, &h));
}

TEST_F(prime, import_not_a_dmabuf)
{
	uint32_t h;
	int pfd[2];

	ASSERT_EQ(0, pipe(pfd));
	EXPECT_EQ(-EINVAL, kvt_import(self->fd, pfd[0], &h));
	close(pfd[0]);
	close(pfd[1]);
}

TEST_F(prime, export_bad_handle)
{
	int dmabuf;

	EXPECT_EQ(-ENOENT, kvt_export(self->fd, self->h + 1000, &dmabuf));
}

static void check_foreign_import(struct __test_metadata *_metadata, int fd,
				 int dmabuf, uint64_t size)
{
	struct drm_kvaccel_region_info info;
	uint64_t u0 = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	uint32_t h, h2;

	ASSERT_EQ(0, kvt_import(fd, dmabuf, &h));
	ASSERT_EQ(0, kvt_region_info(fd, h, &info));
	EXPECT_EQ(KVACCEL_OBJECT_IMPORT, info.type);
	EXPECT_EQ(size, info.size);
	EXPECT_EQ(0, info.block_size);
	EXPECT_EQ(-1, info.numa_node);
	EXPECT_EQ(0, info.mmap_offset);
	/* Imports are the exporter's memory: not charged here. */
	EXPECT_EQ(u0, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	/* Importing again gives the same handle. */
	ASSERT_EQ(0, kvt_import(fd, dmabuf, &h2));
	EXPECT_EQ(h, h2);
	/* The import holds the buffer after the exporter's fd is gone. */
	close(dmabuf);
	ASSERT_EQ(0, kvt_region_info(fd, h, &info));
	EXPECT_EQ(0, kvt_close_handle(fd, h));
}

TEST_F(prime, import_vgem)
{
	struct drm_mode_create_dumb dumb = { .width = 1024, .height = 64, .bpp = 32 };
	struct drm_prime_handle ph = { 0 };
	int vgem = kvt_open_driver("vgem", 1);

	if (vgem < 0)
		SKIP(return, "no vgem device");
	ASSERT_EQ(0, kvt_ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &dumb));
	ph.handle = dumb.handle;
	ph.flags = DRM_CLOEXEC | DRM_RDWR;
	ASSERT_EQ(0, kvt_ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph));
	close(vgem);
	check_foreign_import(_metadata, self->fd, ph.fd, dumb.size);
}

TEST_F(prime, import_udmabuf)
{
	struct udmabuf_create create = { 0 };
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC), memfd, dmabuf;

	if (dev < 0)
		SKIP(return, "no /dev/udmabuf on this kernel");
	memfd = syscall(SYS_memfd_create, "kvtest", MFD_ALLOW_SEALING);
	ASSERT_LE(0, memfd);
	ASSERT_EQ(0, ftruncate(memfd, 2 * KVT_MIB));
	ASSERT_EQ(0, fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK));
	create.memfd = memfd;
	create.size = 2 * KVT_MIB;
	create.flags = UDMABUF_FLAGS_CLOEXEC;
	dmabuf = ioctl(dev, UDMABUF_CREATE, &create);
	ASSERT_LE(0, dmabuf);
	close(memfd);
	close(dev);
	check_foreign_import(_metadata, self->fd, dmabuf, 2 * KVT_MIB);
}

/* A buffer of the tests' exporter (tests/exporter/), or -ENODEV without it. */
static int kvtx_buffer(uint64_t size, uint32_t flags, int *dmabuf, uint64_t *attach0)
{
	struct kvtx_create c = { .size = size, .flags = flags, .fd = -1 };
	int dev = open("/dev/kvaccel-test-exporter", O_RDWR | O_CLOEXEC), ret = 0;

	if (dev < 0)
		return -ENODEV;
	if (ioctl(dev, KVTX_IOCTL_ATTACH_COUNT, attach0) || ioctl(dev, KVTX_IOCTL_CREATE, &c))
		ret = -errno;
	*dmabuf = c.fd;
	close(dev);
	return ret;
}

static uint64_t kvtx_attach_count(void)
{
	int dev = open("/dev/kvaccel-test-exporter", O_RDWR | O_CLOEXEC);
	uint64_t n = ~0ull;

	if (dev >= 0 && ioctl(dev, KVTX_IOCTL_ATTACH_COUNT, &n))
		n = ~0ull;
	close(dev);
	return n;
}

#define KVTX_BUFFER(size, flags, dmabuf, attach0) do {			\
	int __r = kvtx_buffer(size, flags, dmabuf, attach0);		\
	if (__r == -ENODEV)						\
		SKIP(return, "no kvaccel_test_exporter module");	\
	ASSERT_EQ(0, __r);						\
} while (0)

/*
 * A dma-buf the CPU cannot map (like a GPU's VRAM) from an exporter that
 * refuses attachments: the import holds it without attaching, reports it
 * held, passes it on unchanged, and copies touching it fail with
 * -EOPNOTSUPP.
 */
TEST_F(prime, held_import_never_attaches)
{
	struct drm_kvaccel_region_info info;
	struct drm_kvaccel_copy_segment seg;
	struct stat a, b;
	uint64_t attach0;
	uint32_t imp, imp2;
	int dmabuf, again;

	KVTX_BUFFER(SIZE, 0, &dmabuf, &attach0);
	ASSERT_EQ(0, kvt_import(self->fd, dmabuf, &imp));
	ASSERT_EQ(0, kvt_region_info(self->fd, imp, &info));
	EXPECT_EQ(KVACCEL_OBJECT_IMPORT, info.type);
	EXPECT_EQ(SIZE, info.size);
	EXPECT_TRUE(info.object_flags & KVACCEL_OBJECT_HELD);
	EXPECT_NE(0, info.region_id);
	/* The same dma-buf again: the same handle. */
	ASSERT_EQ(0, kvt_import(self->fd, dmabuf, &imp2));
	EXPECT_EQ(imp, imp2);
	seg = kvt_seg(self->h, 0, imp, 0, 4096);
	EXPECT_EQ(-EOPNOTSUPP, kvt_copy(self->fd, &seg, 1, 0, 0, NULL));
	seg = kvt_seg(imp, 0, self->h, 0, 4096);
	EXPECT_EQ(-EOPNOTSUPP, kvt_copy(self->fd, &seg, 1, 0, 0, NULL));
	/* Exported again, it is the exporter's own dma-buf. */
	ASSERT_EQ(0, kvt_export(self->fd, imp, &again));
	ASSERT_EQ(0, fstat(dmabuf, &a));
	ASSERT_EQ(0, fstat(again, &b));
	EXPECT_EQ(a.st_ino, b.st_ino);
	EXPECT_EQ(attach0, kvtx_attach_count());
	close(again);
	/* The import keeps the buffer alive after its fd is closed. */
	close(dmabuf);
	ASSERT_EQ(0, kvt_region_info(self->fd, imp, &info));
	EXPECT_EQ(0, kvt_close_handle(self->fd, imp));
	EXPECT_EQ(attach0, kvtx_attach_count());
}

/*
 * A CPU-mappable buffer of an exporter that refuses attachments: copies
 * reach it through vmap only, both ways.
 */
TEST_F(prime, cpu_import_copies_without_attachment)
{
	struct drm_kvaccel_region_info info;
	struct drm_kvaccel_copy_segment seg;
	uint32_t imp, r2, sync;
	uint64_t attach0;
	void *m2;
	int dmabuf;

	KVTX_BUFFER(SIZE, KVTX_CREATE_VMAP, &dmabuf, &attach0);
	ASSERT_EQ(0, kvt_import(self->fd, dmabuf, &imp));
	ASSERT_EQ(0, kvt_region_info(self->fd, imp, &info));
	EXPECT_FALSE(info.object_flags & KVACCEL_OBJECT_HELD);
	ASSERT_EQ(0, kvt_region_create(self->fd, SIZE, 4096, &r2));
	m2 = kvt_region_map(self->fd, r2, SIZE);
	ASSERT_NE(MAP_FAILED, m2);
	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &sync));
	seg = kvt_seg(self->h, 0, imp, 0, SIZE);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, 0, NULL));
	seg = kvt_seg(imp, 0, r2, 0, SIZE);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, sync, NULL));
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, sync, 20000));
	EXPECT_TRUE(kvt_check(m2, SIZE, 0xfeed));
	EXPECT_EQ(attach0, kvtx_attach_count());
	munmap(m2, SIZE);
	close(dmabuf);
}

TEST_HARNESS_MAIN
