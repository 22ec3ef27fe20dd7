// SPDX-License-Identifier: GPL-2.0-only
/*
 * Allocation-failure sweep, in the manner of the kernel's own
 * iommufd_fail_nth.c: every kernel path kvaccel's ioctls (and open, mmap,
 * export, import) take is run with its 1st, 2nd, ... fault-injectable
 * allocation failing (/proc/thread-self/fail-nth), until it completes
 * without reaching the n-th. Each failure must give a clean -ENOMEM, leave
 * usage and the page count exactly as before, and leave the kernel log
 * clean (no leak: kmemleak runs after the suite). Needs a kernel with
 * FAULT_INJECTION, FAILSLAB and FAIL_PAGE_ALLOC (the debug kernel);
 * skipped elsewhere.
 */
#include "kvtest.h"
#include "kselftest_harness.h"

#define DBG "/sys/kernel/debug"

struct sweep_ctx {
	int fd, fd2, dmabuf, ret_fd;
	uint32_t h, space, sync;
	int submitted;
	void *map;
	size_t map_size;
	char path[64];
};

static int fail_nth_set(int fd, unsigned int n)
{
	char b[16];
	int l = snprintf(b, sizeof(b), "%u", n);

	return pwrite(fd, b, l, 0) == l ? 0 : -errno;
}

static long fail_nth_get(int fd)
{
	char b[16] = { 0 };

	if (pread(fd, b, sizeof(b) - 1, 0) <= 0)
		return -1;
	return strtol(b, NULL, 10);
}

FIXTURE(fail_nth) {
	int nth;
	struct sweep_ctx c;
};

FIXTURE_SETUP(fail_nth)
{
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (self->nth < 0)
		SKIP(return, "no fail-nth: kernel without fault injection");
	/*
	 * Make the injection reach every allocation the paths make: sleeping
	 * ones, order 0 pages, quietly (a stack dump per failure would read
	 * as a kernel warning).
	 */
	ASSERT_EQ(0, kvt_write_file(DBG "/failslab/ignore-gfp-wait", "0"));
	ASSERT_EQ(0, kvt_write_file(DBG "/failslab/verbose", "0"));
	ASSERT_EQ(0, kvt_write_file(DBG "/fail_page_alloc/ignore-gfp-wait", "0"));
	ASSERT_EQ(0, kvt_write_file(DBG "/fail_page_alloc/min-order", "0"));
	ASSERT_EQ(0, kvt_write_file(DBG "/fail_page_alloc/verbose", "0"));
	memset(&self->c, 0, sizeof(self->c));
	self->c.fd = self->c.fd2 = self->c.dmabuf = self->c.ret_fd = -1;
}

FIXTURE_TEARDOWN(fail_nth)
{
	if (self->nth >= 0)
		close(self->nth);
}

typedef int (*step_fn)(struct sweep_ctx *c);

/*
 * Run setup(), body() with the n-th allocation failing, cleanup(), for
 * n = 1, 2, ... Returns the number of runs; every failed body must be
 * -ENOMEM and every run must leave usage and pages where they were.
 */
static int sweep(struct __test_metadata *_metadata, int nth, struct sweep_ctx *c,
		 step_fn setup, step_fn body, step_fn cleanup, int *failures)
{
	int probe = kvt_open();
	unsigned int n;

	*failures = 0;
	if (probe < 0)
		return 0;
	for (n = 1; n < 100000; n++) {
		uint64_t u0, p0;
		long left;
		int ret;

		/* Before setup: cleanup() undoes setup() and body() both. */
		u0 = kvt_param_or_die(probe, KVACCEL_PARAM_DEVICE_USAGE);
		p0 = kvt_param_or_die(probe, KVACCEL_PARAM_PAGES_HELD);
		if (setup && setup(c)) {
			EXPECT_TRUE(0) TH_LOG("setup failed at n=%u", n);
			break;
		}

		if (fail_nth_set(nth, n)) {
			EXPECT_TRUE(0) TH_LOG("cannot arm fail-nth");
			break;
		}
		ret = body(c);
		left = fail_nth_get(nth);
		fail_nth_set(nth, 0);

		if (cleanup)
			cleanup(c);
		/*
		 * A copy job lets go of its objects just after its fence signals
		 * (kvt_settled()): what the run held may still be on its way out.
		 */
		EXPECT_EQ(u0, kvt_usage_back_to(probe, u0))
			TH_LOG("usage changed after a run with allocation %u failing", n);
		EXPECT_EQ(p0, kvt_pages_back_to(probe, p0))
			TH_LOG("page count changed after a run with allocation %u failing", n);
		if (ret) {
			(*failures)++;
			EXPECT_EQ(-ENOMEM, ret) TH_LOG("allocation %u failing gave %s",
						       n, strerror(-ret));
		}
		if (left > 0) {
			/* The body made fewer than n allocations: done. */
			EXPECT_EQ(0, ret);
			break;
		}
	}
	close(probe);
	return n;
}

#define SWEEP(setup, body, cleanup) do {					\
	int runs, failures;							\
	runs = sweep(_metadata, self->nth, &self->c, setup, body, cleanup,	\
		     &failures);							\
	TH_LOG("%d runs, %d injected failures", runs, failures);		\
	/* A sweep that never failed anything tested nothing. */		\
	EXPECT_LE(2, runs);							\
	EXPECT_LE(1, failures);							\
} while (0)

static int open_dev(struct sweep_ctx *c)
{
	int fd = kvt_open();
	struct stat st;

	if (fd < 0)
		return fd;
	/* Remember the node's path: the body opens it directly. */
	if (fstat(fd, &st)) {
		close(fd);
		return -errno;
	}
	snprintf(c->path, sizeof(c->path), "/proc/self/fd/%d", fd);
	c->fd = fd;
	return 0;
}

static int close_all(struct sweep_ctx *c)
{
	if (c->map)
		munmap(c->map, c->map_size);
	if (c->dmabuf >= 0)
		close(c->dmabuf);
	if (c->ret_fd >= 0)
		close(c->ret_fd);
	if (c->fd2 >= 0)
		close(c->fd2);
	if (c->fd >= 0)
		close(c->fd);
	c->map = NULL;
	c->fd = c->fd2 = c->dmabuf = c->ret_fd = -1;
	return 0;
}

static int body_open(struct sweep_ctx *c)
{
	c->ret_fd = open(c->path, O_RDWR | O_CLOEXEC);
	return c->ret_fd < 0 ? -errno : 0;
}

TEST_F(fail_nth, open)
{
	SWEEP(open_dev, body_open, close_all);
}

static int body_create_4k(struct sweep_ctx *c)
{
	return kvt_region_create(c->fd, 64 * KVT_KIB, 4096, &c->h);
}

static int body_create_2m(struct sweep_ctx *c)
{
	return kvt_region_create(c->fd, 4 * KVT_MIB, 2 * KVT_MIB, &c->h);
}

static int body_create_numa(struct sweep_ctx *c)
{
	return kvt_region_create_ex(c->fd, 256 * KVT_KIB, 64 * KVT_KIB,
				    KVACCEL_REGION_CREATE_NUMA_NODE, 0, &c->h);
}

TEST_F(fail_nth, region_create_4k_blocks)
{
	SWEEP(open_dev, body_create_4k, close_all);
}

TEST_F(fail_nth, region_create_2m_blocks)
{
	SWEEP(open_dev, body_create_2m, close_all);
}

TEST_F(fail_nth, region_create_numa)
{
	SWEEP(open_dev, body_create_numa, close_all);
}

static int setup_region(struct sweep_ctx *c)
{
	int ret = open_dev(c);

	return ret ? ret : kvt_region_create(c->fd, 2 * KVT_MIB, 64 * KVT_KIB, &c->h);
}

static int body_mmap(struct sweep_ctx *c)
{
	struct drm_kvaccel_region_info info;
	int ret = kvt_region_info(c->fd, c->h, &info);
	void *p;

	if (ret)
		return ret;
	p = mmap(NULL, 2 * KVT_MIB, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd,
		 (off_t)info.mmap_offset);
	if (p == MAP_FAILED)
		return -errno;
	c->map = p;
	c->map_size = 2 * KVT_MIB;
	return 0;
}

TEST_F(fail_nth, region_mmap)
{
	SWEEP(setup_region, body_mmap, close_all);
}

static int body_export(struct sweep_ctx *c)
{
	return kvt_export(c->fd, c->h, &c->dmabuf);
}

TEST_F(fail_nth, region_export)
{
	SWEEP(setup_region, body_export, close_all);
}

static int setup_exported(struct sweep_ctx *c)
{
	int ret = setup_region(c);

	if (!ret)
		ret = kvt_export(c->fd, c->h, &c->dmabuf);
	if (!ret) {
		c->fd2 = kvt_open();
		ret = c->fd2 < 0 ? c->fd2 : 0;
	}
	return ret;
}

static int body_import(struct sweep_ctx *c)
{
	uint32_t h;

	return kvt_import(c->fd2, c->dmabuf, &h);
}

TEST_F(fail_nth, region_import_other_client)
{
	SWEEP(setup_exported, body_import, close_all);
}

static int setup_vgem(struct sweep_ctx *c)
{
	struct drm_mode_create_dumb dumb = { .width = 256, .height = 16, .bpp = 32 };
	struct drm_prime_handle ph = { .flags = DRM_CLOEXEC | DRM_RDWR };
	int vgem = kvt_open_driver("vgem", 1), ret;

	if (vgem < 0)
		return vgem;
	ret = kvt_ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &dumb);
	ph.handle = dumb.handle;
	if (!ret)
		ret = kvt_ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph);
	close(vgem);
	if (ret)
		return ret;
	c->dmabuf = ph.fd;
	return open_dev(c);
}

static int body_import_foreign(struct sweep_ctx *c)
{
	uint32_t h;

	return kvt_import(c->fd, c->dmabuf, &h);
}

TEST_F(fail_nth, import_vgem)
{
	int vgem = kvt_open_driver("vgem", 1);

	if (vgem < 0)
		SKIP(return, "no vgem");
	close(vgem);
	SWEEP(setup_vgem, body_import_foreign, close_all);
}

static int body_space_create(struct sweep_ctx *c)
{
	return kvt_space_create(c->fd, 64, 64 * KVT_KIB, &c->h);
}

TEST_F(fail_nth, space_create)
{
	SWEEP(open_dev, body_space_create, close_all);
}

static int setup_space(struct sweep_ctx *c)
{
	int ret = setup_region(c);

	return ret ? ret : kvt_space_create(c->fd, 32, 64 * KVT_KIB, &c->space);
}

static int body_space_bind(struct sweep_ctx *c)
{
	struct drm_kvaccel_bind_op ops[4] = {
		kvt_op_bind(0, c->h, 0), kvt_op_bind(5, c->h, 1),
		kvt_op_bind(6, c->h, 1), kvt_op_bind(31, c->h, 31),
	};

	return kvt_space_bind(c->fd, c->space, ops, 4, NULL);
}

TEST_F(fail_nth, space_bind)
{
	SWEEP(setup_space, body_space_bind, close_all);
}

static int body_space_mmap(struct sweep_ctx *c)
{
	size_t size;
	void *p = kvt_space_map(c->fd, c->space, &size);

	if (p == MAP_FAILED)
		return -errno;
	c->map = p;
	c->map_size = size;
	return 0;
}

TEST_F(fail_nth, space_mmap)
{
	SWEEP(setup_space, body_space_mmap, close_all);
}

static int body_copy_submit(struct sweep_ctx *c)
{
	struct drm_kvaccel_copy_segment segs[2] = {
		kvt_seg(c->h, 0, c->h, KVT_MIB, 64 * KVT_KIB),
		kvt_seg(c->space, 0, c->h, KVT_MIB + 64 * KVT_KIB, 2 * 64 * KVT_KIB),
	};

	/* cleanup_copy() waits for the job, outside the injection. */
	int ret = kvt_copy(c->fd, segs, 2, 0, c->sync, NULL);

	c->submitted = !ret;
	return ret;
}

static int cleanup_copy(struct sweep_ctx *c)
{
	if (c->submitted)
		kvt_syncobj_wait(c->fd, c->sync, 60000);
	c->submitted = 0;
	return close_all(c);
}

static int setup_copy(struct sweep_ctx *c)
{
	int ret = setup_space(c);

	if (!ret)
		ret = kvt_space_bind(c->fd, c->space, (struct drm_kvaccel_bind_op[]) {
			kvt_op_bind(0, c->h, 3), kvt_op_bind(1, c->h, 4) }, 2, NULL);
	if (!ret)
		ret = kvt_syncobj_create(c->fd, &c->sync);
	return ret;
}

TEST_F(fail_nth, copy_submit)
{
	SWEEP(setup_copy, body_copy_submit, cleanup_copy);
}

TEST_HARNESS_MAIN
