// SPDX-License-Identifier: GPL-2.0-only
/*
 * Hot unplug: kvaccel's platform device unbound through sysfs while a
 * client holds regions, mappings (of the device file and of a dma-buf),
 * a space and queued copy jobs. Every ioctl then fails with -ENODEV, the
 * device file's mappings give SIGBUS, queued jobs still signal, closing
 * frees everything, and binding the device again gives a working device.
 * Runs last among the module's tests that need the device (it is named so).
 */
#include "kvtest.h"
#include "kselftest_harness.h"

#define DRV	"/sys/bus/platform/drivers/kvaccel"
#define RS	(4 * KVT_MIB)

TEST(unbind_under_clients_then_bind_again)
{
	int fd = kvt_open(), fd2, dmabuf, sf, i, status;
	struct drm_kvaccel_get_param gp = { .param = KVACCEL_PARAM_ABI_VERSION };
	struct drm_kvaccel_copy_segment seg;
	uint32_t r, r2, sp, out, gate_sync;
	unsigned char *m, *dm, *w;
	uint64_t u0, p0;
	struct kvt_gate g;
	size_t wsize;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, access(DRV "/unbind", W_OK));
	kvt_settled(fd, &u0, &p0);
	ASSERT_EQ(0, kvt_region_create(fd, RS, 2 * KVT_MIB, &r));
	ASSERT_EQ(0, kvt_region_create(fd, RS, 4096, &r2));
	m = kvt_region_map(fd, r, RS);
	ASSERT_NE(MAP_FAILED, m);
	kvt_fill(m, RS, 0x0b0b);
	ASSERT_EQ(0, kvt_export(fd, r2, &dmabuf));
	dm = mmap(NULL, RS, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	ASSERT_NE(MAP_FAILED, dm);
	ASSERT_EQ(0, kvt_space_create(fd, 2, 2 * KVT_MIB, &sp));
	ASSERT_EQ(0, kvt_bind1(fd, sp, kvt_op_bind(0, r, 1)));
	w = kvt_space_map(fd, sp, &wsize);
	ASSERT_NE(MAP_FAILED, w);
	EXPECT_EQ(0, memcmp(w, m + 2 * KVT_MIB, 4096));
	/* Jobs waiting for a fence that signals only after the unbind. */
	KVT_GATE_ARM(&g, 4096);
	ASSERT_EQ(0, kvt_syncobj_create(fd, &gate_sync));
	ASSERT_EQ(0, kvt_syncobj_create(fd, &out));
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(fd, gate_sync, g.sync_file));
	seg = kvt_seg(r, 0, r2, 0, RS);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, kvt_copy(fd, &seg, 1, gate_sync, i == 3 ? out : 0, NULL));
	sf = -1;
	ASSERT_EQ(0, kvt_syncobj_export_sync_file(fd, out, &sf));

	ASSERT_EQ(0, kvt_write_file(DRV "/unbind", "kvaccel"));
	EXPECT_EQ(-ENODEV, kvt_ioctl(fd, DRM_IOCTL_KVACCEL_GET_PARAM, &gp));
	EXPECT_EQ(-ENODEV, kvt_region_create(fd, RS, 4096, NULL));
	kvt_bus_install();
	EXPECT_EQ(-1, kvt_read_or_bus((uint32_t *)m));
	EXPECT_EQ(-1, kvt_read_or_bus((uint32_t *)w));
	/* A dma-buf's mapping made before stays or faults; it never crashes. */
	kvt_read_or_bus((uint32_t *)dm);
	EXPECT_GT(0, kvt_open());
	/* The queued jobs still end. */
	ASSERT_EQ(0, kvt_gate_open(&g));
	EXPECT_EQ(1, kvt_fence_fd_wait(sf, 30000));
	status = kvt_sync_file_status(sf);
	EXPECT_TRUE(status == 1 || status < 0);
	close(sf);
	munmap(w, wsize);
	munmap(dm, RS);
	munmap(m, RS);
	close(dmabuf);
	close(fd);
	kvt_gate_fini(&g);

	ASSERT_EQ(0, kvt_write_file(DRV "/bind", "kvaccel"));
	fd2 = kvt_open();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, kvt_param_or_die(fd2, KVACCEL_PARAM_DEVICE_USAGE));
	ASSERT_EQ(0, kvt_region_create(fd2, RS, 4096, &r));
	ASSERT_EQ(0, kvt_region_create(fd2, RS, 4096, &r2));
	ASSERT_EQ(0, kvt_syncobj_create(fd2, &out));
	seg = kvt_seg(r, 0, r2, 0, RS);
	ASSERT_EQ(0, kvt_copy(fd2, &seg, 1, 0, out, NULL));
	ASSERT_EQ(0, kvt_syncobj_wait(fd2, out, 20000));
	close(fd2);
}

TEST_HARNESS_MAIN
