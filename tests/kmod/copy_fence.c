// SPDX-License-Identifier: GPL-2.0-only
/*
 * The copy engine's fence model: dependencies fixed before a job's fence
 * is published (a job cannot be made to wait for itself), implicit
 * synchronisation in and out through reservation objects (regions and
 * imports), the dependency timeout, cancellation of every pending job when
 * its file closes, the per-process cap on bytes in flight, and the module
 * references fences hold.
 */
#include "kvtest.h"
#include "kselftest_harness.h"

#define RS	(4 * KVT_MIB)
#define TIMEOUT_PARAM	"/sys/module/kvaccel/parameters/copy_timeout_ms"
#define INFLIGHT_PARAM	"/sys/module/kvaccel/parameters/copy_inflight_mb"
#define REFCNT		"/sys/module/kvaccel/refcnt"

FIXTURE(fence) {
	int fd;
	uint32_t src, dst, sync, gate_sync;
	unsigned char *msrc, *mdst;
	long long timeout0, inflight0;
};

FIXTURE_SETUP(fence)
{
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, kvt_region_create(self->fd, RS, 2 * KVT_MIB, &self->src));
	ASSERT_EQ(0, kvt_region_create(self->fd, RS, 4096, &self->dst));
	self->msrc = kvt_region_map(self->fd, self->src, RS);
	self->mdst = kvt_region_map(self->fd, self->dst, RS);
	ASSERT_NE(MAP_FAILED, self->msrc);
	ASSERT_NE(MAP_FAILED, self->mdst);
	kvt_fill(self->msrc, RS, 0xf00d);
	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &self->sync));
	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &self->gate_sync));
	self->timeout0 = kvt_read_ll(TIMEOUT_PARAM);
	self->inflight0 = kvt_read_ll(INFLIGHT_PARAM);
	ASSERT_LT(0, self->timeout0);
	ASSERT_LT(0, self->inflight0);
}

FIXTURE_TEARDOWN(fence)
{
	kvt_set_modparam("copy_timeout_ms", self->timeout0, NULL);
	kvt_set_modparam("copy_inflight_mb", self->inflight0, NULL);
	munmap(self->msrc, RS);
	munmap(self->mdst, RS);
	close(self->fd);
}

/* Arm a vgem gate and put its fence in the fixture's gate syncobj. */
#define GATE(g) do {								\
	KVT_GATE_ARM(g, 4096);							\
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(self->fd, self->gate_sync,	\
						  (g)->sync_file));		\
} while (0)

static int submit1(int fd, struct drm_kvaccel_copy_segment seg, uint32_t in, uint32_t out,
		   uint64_t *job)
{
	return kvt_copy(fd, &seg, 1, in, out, job);
}

/* Another client's 4 MiB copy (split across the workers) completes. */
static void other_client_copies(struct __test_metadata *_metadata)
{
	int fd = kvt_open(), status = 0;
	uint32_t a, b, sync;
	uint64_t job;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kvt_region_create(fd, RS, 2 * KVT_MIB, &a));
	ASSERT_EQ(0, kvt_region_create(fd, RS, 4096, &b));
	ASSERT_EQ(0, kvt_syncobj_create(fd, &sync));
	ASSERT_EQ(0, submit1(fd, kvt_seg(a, 0, b, 0, RS), 0, sync, &job));
	ASSERT_EQ(0, kvt_syncobj_wait(fd, sync, 20000));
	ASSERT_EQ(0, kvt_copy_status(fd, job, &status));
	EXPECT_EQ(1, status);
	close(fd);
}

/* The module's reference count falls back to @base (fences gone) within 20 s. */
static long long refcnt_back_to(long long base)
{
	long long now = kvt_read_ll(REFCNT);
	int i;

	for (i = 0; i < 200 && now > base; i++) {
		usleep(100000);
		now = kvt_read_ll(REFCNT);
	}
	return now;
}

static int export_sync_file(int fd, uint32_t syncobj)
{
	int sf = -1;

	return kvt_syncobj_export_sync_file(fd, syncobj, &sf) ? -1 : sf;
}

static int dmabuf_add_fence(int dmabuf, int sync_file, uint32_t flags)
{
	struct dma_buf_import_sync_file is = { .flags = flags, .fd = sync_file };

	return ioctl(dmabuf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &is) ? -errno : 0;
}

static int dmabuf_busy(int dmabuf, short events)
{
	struct pollfd pfd = { .fd = dmabuf, .events = events };

	return poll(&pfd, 1, 0) == 0;
}

/*
 * The self-wait of the review: J2 reads buffer B after J1 (gated), and
 * J2's own fence is then inserted into B's reservation object. J2's
 * dependencies were fixed at its submission, so it completes when J1
 * does; with more such pairs than copy workers, another client's copy
 * still runs meanwhile, and once the file and the buffers are closed every
 * fence is gone (the module's reference count is back).
 */
TEST(self_wait_through_import_cannot_wedge)
{
	enum { PAIRS = 3 };
	uint32_t bh[PAIRS], imp[PAIRS], mid[PAIRS], out[PAIRS], src, dst, gate_sync;
	int bbuf[PAIRS], sf[PAIRS], i, status, fd;
	long long base = kvt_read_ll(REFCNT);
	uint64_t j2[PAIRS];
	struct kvt_gate g;

	ASSERT_LE(0, base);
	fd = kvt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kvt_region_create(fd, RS, 2 * KVT_MIB, &src));
	ASSERT_EQ(0, kvt_region_create(fd, RS, 4096, &dst));
	KVT_GATE_ARM(&g, 4096);
	ASSERT_EQ(0, kvt_syncobj_create(fd, &gate_sync));
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(fd, gate_sync, g.sync_file));
	for (i = 0; i < PAIRS; i++) {
		ASSERT_EQ(0, kvt_vgem_buffer(g.vgem, KVT_MIB, &bh[i], &bbuf[i]));
		ASSERT_EQ(0, kvt_import(fd, bbuf[i], &imp[i]));
		ASSERT_EQ(0, kvt_syncobj_create(fd, &mid[i]));
		ASSERT_EQ(0, kvt_syncobj_create(fd, &out[i]));
		ASSERT_EQ(0, submit1(fd, kvt_seg(src, i * KVT_MIB, dst, i * KVT_MIB, KVT_MIB),
				     gate_sync, mid[i], NULL));
		ASSERT_EQ(0, submit1(fd, kvt_seg(imp[i], 0, dst, 3 * KVT_MIB + i * 65536, 65536),
				     mid[i], out[i], &j2[i]));
		sf[i] = export_sync_file(fd, out[i]);
		ASSERT_LE(0, sf[i]);
		ASSERT_EQ(0, dmabuf_add_fence(bbuf[i], sf[i], DMA_BUF_SYNC_WRITE));
	}
	other_client_copies(_metadata);
	ASSERT_EQ(0, kvt_gate_open(&g));
	for (i = 0; i < PAIRS; i++) {
		ASSERT_EQ(1, kvt_fence_fd_wait(sf[i], 30000));
		EXPECT_EQ(1, kvt_sync_file_status(sf[i]));
		ASSERT_EQ(0, kvt_copy_status(fd, j2[i], &status));
		EXPECT_EQ(1, status);
	}
	other_client_copies(_metadata);
	for (i = 0; i < PAIRS; i++) {
		close(sf[i]);
		close(bbuf[i]);
	}
	close(fd);
	kvt_gate_fini(&g);
	EXPECT_EQ(base, refcnt_back_to(base));
}

/*
 * A dependency that never signals fails the job with -ETIMEDOUT after
 * copy_timeout_ms, on its fence (sync_file) and in COPY_STATUS; a job
 * chained on it inherits the error; other clients' copies run meanwhile.
 */
TEST_F(fence, dependency_timeout)
{
	uint32_t out2;
	uint64_t job, job2;
	int sf, status;
	struct kvt_gate g;
	int64_t t0;

	ASSERT_EQ(0, kvt_set_modparam("copy_timeout_ms", 1000, NULL));
	GATE(&g);
	t0 = kvt_now_ns();
	ASSERT_EQ(0, submit1(self->fd, kvt_seg(self->src, 0, self->dst, 0, KVT_MIB),
			     self->gate_sync, self->sync, &job));
	sf = export_sync_file(self->fd, self->sync);
	ASSERT_LE(0, sf);
	EXPECT_EQ(0, kvt_sync_file_status(sf));
	other_client_copies(_metadata);
	ASSERT_EQ(1, kvt_fence_fd_wait(sf, 20000));
	EXPECT_LE(900000000ll, kvt_now_ns() - t0);
	EXPECT_EQ(-ETIMEDOUT, kvt_sync_file_status(sf));
	ASSERT_EQ(0, kvt_copy_status(self->fd, job, &status));
	EXPECT_EQ(-ETIMEDOUT, status);

	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &out2));
	ASSERT_EQ(0, submit1(self->fd, kvt_seg(self->src, 0, self->dst, KVT_MIB, 4096),
			     self->sync, out2, &job2));
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, out2, 20000));
	ASSERT_EQ(0, kvt_copy_status(self->fd, job2, &status));
	EXPECT_EQ(-ETIMEDOUT, status);
	EXPECT_TRUE(kvt_all_zero(self->mdst, 2 * KVT_MIB));
	close(sf);
	kvt_gate_open(&g);
	kvt_gate_fini(&g);
}

TEST_F(fence, timeout_param_validated)
{
	EXPECT_NE(0, kvt_write_file(TIMEOUT_PARAM, "0"));
	EXPECT_NE(0, kvt_write_file(INFLIGHT_PARAM, "0"));
	EXPECT_NE(0, kvt_write_file(TIMEOUT_PARAM, "x"));
	EXPECT_EQ(self->timeout0, kvt_read_ll(TIMEOUT_PARAM));
	EXPECT_EQ(self->inflight0, kvt_read_ll(INFLIGHT_PARAM));
}

/*
 * Implicit sync in, on a region: a foreign write fence in the region's
 * reservation object (through its dma-buf) gates a job reading it, without
 * blocking the submission; a foreign read fence gates writers only.
 */
TEST_F(fence, region_reservation_gates_job)
{
	struct kvt_gate g;
	uint64_t job;
	int dmabuf, status;

	ASSERT_EQ(0, kvt_export(self->fd, self->src, &dmabuf));
	KVT_GATE_ARM(&g, 4096);
	ASSERT_EQ(0, dmabuf_add_fence(dmabuf, g.sync_file, DMA_BUF_SYNC_WRITE));
	ASSERT_EQ(0, submit1(self->fd, kvt_seg(self->src, 0, self->dst, 0, KVT_MIB), 0,
			     self->sync, &job));
	usleep(200000);
	ASSERT_EQ(0, kvt_copy_status(self->fd, job, &status));
	EXPECT_EQ(0, status);
	ASSERT_EQ(0, kvt_gate_open(&g));
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, self->sync, 20000));
	ASSERT_EQ(0, kvt_copy_status(self->fd, job, &status));
	EXPECT_EQ(1, status);
	EXPECT_EQ(0, memcmp(self->msrc, self->mdst, KVT_MIB));
	kvt_gate_fini(&g);
	close(dmabuf);
}

TEST_F(fence, region_read_fence_gates_writers_only)
{
	struct drm_kvaccel_copy_segment seg;
	struct drm_kvaccel_copy_submit cs = { .count = 1, .segments = (uintptr_t)&seg };
	struct kvt_gate g;
	int dmabuf;

	ASSERT_EQ(0, kvt_export(self->fd, self->src, &dmabuf));
	KVT_GATE_ARM(&g, 4096);
	ASSERT_EQ(0, dmabuf_add_fence(dmabuf, g.sync_file, DMA_BUF_SYNC_READ));
	/* Reading the region: nothing to wait for, copied at once. */
	seg = kvt_seg(self->src, 0, self->dst, 0, 4096);
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
	EXPECT_EQ(1, cs.status);
	/* Writing it waits for the reader. */
	seg = kvt_seg(self->dst, 0, self->src, RS - 4096, 4096);
	cs.out_syncobj = self->sync;
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
	EXPECT_EQ(0, cs.status);
	ASSERT_EQ(0, kvt_gate_open(&g));
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, self->sync, 20000));
	EXPECT_EQ(0, memcmp(self->msrc + RS - 4096, self->msrc, 4096));
	kvt_gate_fini(&g);
	close(dmabuf);
}

/*
 * KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT: the job does not wait for a
 * region's reservation fences (the caller orders its jobs), but its own
 * fence still goes into the region's reservation object.
 */
TEST_F(fence, no_implicit_wait_skips_reservations)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->src, 0, self->dst, 0, 4096);
	struct drm_kvaccel_copy_submit cs = {
		.count = 1, .segments = (uintptr_t)&seg,
		.flags = KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT,
	};
	struct kvt_gate g;
	int dsrc, ddst;

	ASSERT_NE(0, kvt_param_or_die(self->fd, KVACCEL_PARAM_CAPABILITIES) &
		     KVACCEL_CAP_COPY_IMPLICIT_SYNC);
	ASSERT_EQ(0, kvt_export(self->fd, self->src, &dsrc));
	ASSERT_EQ(0, kvt_export(self->fd, self->dst, &ddst));
	GATE(&g);
	ASSERT_EQ(0, dmabuf_add_fence(dsrc, g.sync_file, DMA_BUF_SYNC_WRITE));
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
	EXPECT_EQ(1, cs.status);
	EXPECT_EQ(0, memcmp(self->msrc, self->mdst, 4096));
	cs.flags = 0;
	cs.out_syncobj = self->sync;
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
	EXPECT_EQ(0, cs.status);
	/* Gated by its input fence, a job without implicit wait still shows. */
	seg = kvt_seg(self->src, 0, self->dst, KVT_MIB, 4096);
	cs.flags = KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT;
	cs.in_syncobj = self->gate_sync;
	cs.out_syncobj = 0;
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
	EXPECT_EQ(0, cs.status);
	EXPECT_TRUE(dmabuf_busy(ddst, POLLIN));
	ASSERT_EQ(0, kvt_gate_open(&g));
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, self->sync, 20000));
	kvt_gate_fini(&g);
	close(dsrc);
	close(ddst);
}

/* An import's fence that does not signal fails the submission after copy_timeout_ms. */
TEST_F(fence, import_fence_timeout_at_submit)
{
	struct kvt_gate g;
	uint32_t imp;
	int64_t t0;

	ASSERT_EQ(0, kvt_set_modparam("copy_timeout_ms", 500, NULL));
	KVT_GATE_ARM(&g, KVT_MIB);
	ASSERT_EQ(0, kvt_import(self->fd, g.dmabuf, &imp));
	t0 = kvt_now_ns();
	EXPECT_EQ(-ETIMEDOUT, submit1(self->fd, kvt_seg(imp, 0, self->dst, 0, 4096), 0, 0, NULL));
	EXPECT_LE(400000000ll, kvt_now_ns() - t0);
	/* Writing it must wait as well (for readers and writers). */
	EXPECT_EQ(-ETIMEDOUT, submit1(self->fd, kvt_seg(self->src, 0, imp, 0, 4096), 0, 0, NULL));
	EXPECT_TRUE(kvt_all_zero(self->mdst, 4096));
	kvt_gate_open(&g);
	kvt_gate_fini(&g);
}

/*
 * Implicit sync out, on regions: while a job that writes a region is
 * pending, the region's dma-buf is busy for readers (POLLIN); while one
 * that reads a region is pending, it is busy for writers only (POLLOUT).
 */
TEST_F(fence, region_reservation_shows_jobs)
{
	int dsrc, ddst;
	struct kvt_gate g;

	ASSERT_EQ(0, kvt_export(self->fd, self->src, &dsrc));
	ASSERT_EQ(0, kvt_export(self->fd, self->dst, &ddst));
	EXPECT_FALSE(dmabuf_busy(ddst, POLLOUT));
	GATE(&g);
	ASSERT_EQ(0, submit1(self->fd, kvt_seg(self->src, 0, self->dst, 0, KVT_MIB),
			     self->gate_sync, self->sync, NULL));
	EXPECT_TRUE(dmabuf_busy(ddst, POLLIN));
	EXPECT_TRUE(dmabuf_busy(ddst, POLLOUT));
	EXPECT_FALSE(dmabuf_busy(dsrc, POLLIN));
	EXPECT_TRUE(dmabuf_busy(dsrc, POLLOUT));
	ASSERT_EQ(0, kvt_gate_open(&g));
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, self->sync, 20000));
	EXPECT_FALSE(dmabuf_busy(ddst, POLLOUT));
	EXPECT_FALSE(dmabuf_busy(dsrc, POLLOUT));
	kvt_gate_fini(&g);
	close(dsrc);
	close(ddst);
}

/*
 * Implicit sync out, to another driver: a vgem-side waiter (the buffer's
 * implicit fences exported as a sync_file) sees the pending kvaccel job
 * that writes the buffer, and its completion.
 */
TEST_F(fence, import_reservation_shows_jobs)
{
	struct dma_buf_export_sync_file es = { .flags = DMA_BUF_SYNC_READ, .fd = -1 };
	struct drm_mode_map_dumb md = { 0 };
	uint32_t vh, imp;
	unsigned char *vm;
	struct kvt_gate g;
	int vbuf;

	GATE(&g);
	ASSERT_EQ(0, kvt_vgem_buffer(g.vgem, KVT_MIB, &vh, &vbuf));
	md.handle = vh;
	ASSERT_EQ(0, kvt_ioctl(g.vgem, DRM_IOCTL_MODE_MAP_DUMB, &md));
	vm = mmap(NULL, KVT_MIB, PROT_READ | PROT_WRITE, MAP_SHARED, g.vgem, (off_t)md.offset);
	ASSERT_NE(MAP_FAILED, vm);
	ASSERT_EQ(0, kvt_import(self->fd, vbuf, &imp));
	ASSERT_EQ(0, submit1(self->fd, kvt_seg(self->src, 0, imp, 0, KVT_MIB),
			     self->gate_sync, self->sync, NULL));
	ASSERT_EQ(0, ioctl(vbuf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &es));
	EXPECT_EQ(0, kvt_sync_file_status(es.fd));
	ASSERT_EQ(0, kvt_gate_open(&g));
	ASSERT_EQ(1, kvt_fence_fd_wait(es.fd, 20000));
	EXPECT_EQ(1, kvt_sync_file_status(es.fd));
	EXPECT_EQ(0, memcmp(vm, self->msrc, KVT_MIB));
	close(es.fd);
	munmap(vm, KVT_MIB);
	close(vbuf);
	kvt_gate_fini(&g);
}

/*
 * A file closed with the most jobs a process may have queued, all waiting
 * for a fence: every one of them is cancelled at once (the first and the
 * last carry -ECANCELED before the fence signals), and none copies
 * anything once it does. The destination is watched through its dma-buf
 * (a mapping of the device file would keep the file open).
 */
TEST(close_cancels_every_pending_job)
{
	int fd = kvt_open(), dmabuf, sf_first, sf_last, i, ret = 0;
	uint32_t src, dst, in, first, last;
	unsigned char *m;
	struct kvt_gate g;
	int64_t t0;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kvt_region_create(fd, RS, 4096, &src));
	ASSERT_EQ(0, kvt_region_create(fd, RS, 4096, &dst));
	ASSERT_EQ(0, kvt_export(fd, dst, &dmabuf));
	m = mmap(NULL, RS, PROT_READ, MAP_SHARED, dmabuf, 0);
	ASSERT_NE(MAP_FAILED, m);
	KVT_GATE_ARM(&g, 4096);
	ASSERT_EQ(0, kvt_syncobj_create(fd, &in));
	ASSERT_EQ(0, kvt_syncobj_create(fd, &first));
	ASSERT_EQ(0, kvt_syncobj_create(fd, &last));
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(fd, in, g.sync_file));
	/* Something to copy: the source is not all zero. */
	ASSERT_EQ(0, submit1(fd, kvt_seg(dst, 0, src, 0, 4096), 0, 0, NULL));
	t0 = kvt_now_ns();
	for (i = 0; i < (int)KVACCEL_COPY_MAX_INFLIGHT && !ret; i++) {
		uint32_t out = i == 0 ? first : i == KVACCEL_COPY_MAX_INFLIGHT - 1 ? last : 0;

		ret = submit1(fd, kvt_seg(src, 0, dst, (uint64_t)(i % 1024) * 4096, 4096),
			      in, out, NULL);
	}
	ASSERT_EQ(0, ret);
	if (kvt_now_ns() - t0 > 6000000000ll)
		SKIP(return, "submissions too slow to beat vgem's 10 s fence timeout");
	sf_first = export_sync_file(fd, first);
	sf_last = export_sync_file(fd, last);
	ASSERT_LE(0, sf_first);
	ASSERT_LE(0, sf_last);
	close(fd);
	ASSERT_EQ(1, kvt_fence_fd_wait(sf_first, 3000));
	ASSERT_EQ(1, kvt_fence_fd_wait(sf_last, 3000));
	EXPECT_EQ(-ECANCELED, kvt_sync_file_status(sf_first));
	EXPECT_EQ(-ECANCELED, kvt_sync_file_status(sf_last));
	ASSERT_EQ(0, kvt_gate_open(&g));
	usleep(500000);
	EXPECT_TRUE(kvt_all_zero(m, RS));
	close(sf_first);
	close(sf_last);
	munmap(m, RS);
	close(dmabuf);
	kvt_gate_fini(&g);
}

/* A process's bytes in flight are capped by copy_inflight_mb: -EBUSY beyond. */
TEST_F(fence, bytes_in_flight_cap)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->src, 0, self->dst, 0, RS);
	struct kvt_gate g;
	int i, ret = 0;

	ASSERT_EQ(0, kvt_set_modparam("copy_inflight_mb", 8, NULL));
	GATE(&g);
	EXPECT_EQ(0, kvt_copy(self->fd, &seg, 1, self->gate_sync, 0, NULL));
	EXPECT_EQ(0, kvt_copy(self->fd, &seg, 1, self->gate_sync, self->sync, NULL));
	EXPECT_EQ(-EBUSY, kvt_copy(self->fd, &seg, 1, self->gate_sync, 0, NULL));
	seg.length = 4096;
	EXPECT_EQ(-EBUSY, kvt_copy(self->fd, &seg, 1, 0, 0, NULL));
	ASSERT_EQ(0, kvt_gate_open(&g));
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, self->sync, 20000));
	/* Drained (the release may trail the signal): submission works again. */
	seg.length = RS;
	for (i = 0; i < 200; i++) {
		ret = kvt_copy(self->fd, &seg, 1, 0, self->sync, NULL);
		if (ret != -EBUSY)
			break;
		usleep(50000);
	}
	EXPECT_EQ(0, ret);
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, self->sync, 20000));
	EXPECT_EQ(0, memcmp(self->msrc, self->mdst, RS));
	kvt_gate_fini(&g);
}

/* Submit with timeline points. */
static int submit_points(int fd, struct drm_kvaccel_copy_segment seg, uint32_t in,
			 uint64_t in_point, uint32_t out, uint64_t out_point)
{
	struct drm_kvaccel_copy_submit cs = {
		.count = 1, .segments = (uintptr_t)&seg, .in_syncobj = in,
		.in_point = in_point, .out_syncobj = out, .out_point = out_point,
	};

	return kvt_ioctl(fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs);
}

static int timeline_wait(int fd, uint32_t syncobj, uint64_t point, int ms)
{
	struct drm_syncobj_timeline_wait w = {
		.handles = (uintptr_t)&syncobj, .points = (uintptr_t)&point,
		.timeout_nsec = kvt_now_ns() + (int64_t)ms * 1000000, .count_handles = 1,
	};

	return kvt_ioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &w);
}

static uint64_t timeline_point(int fd, uint32_t syncobj)
{
	uint64_t point = 0;
	struct drm_syncobj_timeline_array q = {
		.handles = (uintptr_t)&syncobj, .points = (uintptr_t)&point, .count_handles = 1,
	};

	return kvt_ioctl(fd, DRM_IOCTL_SYNCOBJ_QUERY, &q) ? ~0ull : point;
}

/*
 * Timeline syncobjs: a chain of copies on one syncobj, each waiting for
 * the previous point and signalling the next, as Vulkan-style pipelines
 * use them; the device says it supports them.
 */
TEST_F(fence, timeline_chain)
{
	struct drm_get_cap cap = { .capability = DRM_CAP_SYNCOBJ_TIMELINE };
	struct drm_syncobj_create c = { 0 };
	struct kvt_gate g;
	uint32_t tl;
	int i;

	ASSERT_NE(0, kvt_param_or_die(self->fd, KVACCEL_PARAM_CAPABILITIES) &
		     KVACCEL_CAP_COPY_TIMELINE);
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_GET_CAP, &cap));
	EXPECT_EQ(1, cap.value);
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_SYNCOBJ_CREATE, &c));
	tl = c.handle;
	/* A point without a fence cannot be waited for. */
	EXPECT_EQ(-EINVAL, submit_points(self->fd, kvt_seg(self->src, 0, self->dst, 0, 4096),
					 tl, 1, 0, 0));
	/* A point without a syncobj is refused. */
	EXPECT_EQ(-EINVAL, submit_points(self->fd, kvt_seg(self->src, 0, self->dst, 0, 4096),
					 0, 1, 0, 0));
	EXPECT_EQ(-EINVAL, submit_points(self->fd, kvt_seg(self->src, 0, self->dst, 0, 4096),
					 0, 0, 0, 1));
	GATE(&g);
	/* src -> dst block 0 (gated), then dst block i-1 -> dst block i. */
	ASSERT_EQ(0, submit_points(self->fd, kvt_seg(self->src, 0, self->dst, 0, 4096),
				   self->gate_sync, 0, tl, 1));
	for (i = 1; i < 8; i++)
		ASSERT_EQ(0, submit_points(self->fd, kvt_seg(self->dst, (i - 1) * 4096, self->dst,
							     i * 4096, 4096),
					   tl, i, tl, i + 1));
	EXPECT_EQ(0, timeline_point(self->fd, tl));
	EXPECT_EQ(-ETIME, timeline_wait(self->fd, tl, 8, 100));
	ASSERT_EQ(0, kvt_gate_open(&g));
	ASSERT_EQ(0, timeline_wait(self->fd, tl, 8, 20000));
	EXPECT_EQ(8, timeline_point(self->fd, tl));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(0, memcmp(self->msrc, self->mdst + i * 4096, 4096));
	kvt_gate_fini(&g);
}

TEST_HARNESS_MAIN
