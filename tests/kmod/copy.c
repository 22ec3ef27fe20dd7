// SPDX-License-Identifier: GPL-2.0-only
/*
 * The copy engine: copies between every pair of object kinds (region,
 * space, CPU-mappable import), syncobj completion and chaining, import
 * reservation fences, errors seen through sync_file status and the job
 * query, cancellation on close, the in-flight cap, and every validation
 * rule of COPY_SUBMIT and COPY_STATUS.
 */
#include <linux/dma-buf.h>
#include <linux/sync_file.h>
#include <poll.h>

#include "kvtest.h"
#include "kselftest_harness.h"

#define RS	(4 * KVT_MIB)

FIXTURE(copy) {
	int fd;
	uint32_t r4k, r2m, space, sync;
	unsigned char *m4k, *m2m, *win;
	size_t win_size;
	uint64_t usage0, pages0;
};

FIXTURE_SETUP(copy)
{
	struct drm_kvaccel_bind_op ops[2];

	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	self->usage0 = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);
	self->pages0 = kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD);
	ASSERT_EQ(0, kvt_region_create(self->fd, RS, 4096, &self->r4k));
	ASSERT_EQ(0, kvt_region_create(self->fd, RS, 2 * KVT_MIB, &self->r2m));
	self->m4k = kvt_region_map(self->fd, self->r4k, RS);
	self->m2m = kvt_region_map(self->fd, self->r2m, RS);
	ASSERT_NE(MAP_FAILED, self->m4k);
	ASSERT_NE(MAP_FAILED, self->m2m);
	/* A space of two 2 MiB slots bound to r2m's blocks in reverse order. */
	ASSERT_EQ(0, kvt_space_create(self->fd, 2, 2 * KVT_MIB, &self->space));
	ops[0] = kvt_op_bind(0, self->r2m, 1);
	ops[1] = kvt_op_bind(1, self->r2m, 0);
	ASSERT_EQ(0, kvt_space_bind(self->fd, self->space, ops, 2, NULL));
	self->win = kvt_space_map(self->fd, self->space, &self->win_size);
	ASSERT_NE(MAP_FAILED, self->win);
	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &self->sync));
}

FIXTURE_TEARDOWN(copy)
{
	munmap(self->m4k, RS);
	munmap(self->m2m, RS);
	munmap(self->win, self->win_size);
	close(self->fd);
}

static void done(struct __test_metadata *_metadata, int fd, uint32_t sync, uint64_t job)
{
	int status = 0;

	ASSERT_EQ(0, kvt_syncobj_wait(fd, sync, 20000));
	ASSERT_EQ(0, kvt_copy_status(fd, job, &status));
	EXPECT_EQ(1, status);
}

TEST_F(copy, region_to_region_across_blocks)
{
	struct drm_kvaccel_copy_segment seg;
	uint64_t job;

	kvt_fill(self->m4k, RS, 0x1111);
	/* Unaligned, crossing many 4 KiB blocks and the 2 MiB block border. */
	seg = kvt_seg(self->r4k, 4096 + 12, self->r2m, 2 * KVT_MIB - 100000, 300000);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, self->sync, &job));
	done(_metadata, self->fd, self->sync, job);
	EXPECT_EQ(0, memcmp(self->m4k + 4096 + 12, self->m2m + 2 * KVT_MIB - 100000, 300000));
	EXPECT_TRUE(kvt_all_zero(self->m2m, 2 * KVT_MIB - 100000));
}

TEST_F(copy, large_copy_split_across_workers)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->r2m, 0, self->r4k, 0, RS);
	uint64_t job;

	kvt_fill(self->m2m, RS, 0x2222);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, self->sync, &job));
	done(_metadata, self->fd, self->sync, job);
	EXPECT_TRUE(kvt_check(self->m4k, RS, 0x2222));
}

TEST_F(copy, many_segments_merged_and_not)
{
	struct drm_kvaccel_copy_segment segs[64];
	uint64_t job;
	int i;

	kvt_fill(self->m4k, RS, 0x3333);
	/* 32 adjacent segments (merged), then 32 scattered ones. */
	for (i = 0; i < 32; i++)
		segs[i] = kvt_seg(self->r4k, i * 8192, self->r2m, i * 8192, 8192);
	for (i = 32; i < 64; i++)
		segs[i] = kvt_seg(self->r4k, i * 8192, self->r2m, RS - (i - 31) * 8192, 4096);
	ASSERT_EQ(0, kvt_copy(self->fd, segs, 64, 0, self->sync, &job));
	done(_metadata, self->fd, self->sync, job);
	EXPECT_EQ(0, memcmp(self->m4k, self->m2m, 32 * 8192));
	for (i = 32; i < 64; i++)
		EXPECT_EQ(0, memcmp(self->m4k + i * 8192, self->m2m + RS - (i - 31) * 8192, 4096));
}

TEST_F(copy, region_to_space_and_back)
{
	struct drm_kvaccel_copy_segment seg;
	uint64_t job;

	kvt_fill(self->m4k, RS, 0x4444);
	/* Window bytes 0..4 MiB are r2m block 1 then block 0. */
	seg = kvt_seg(self->r4k, 0, self->space, 0, RS);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, self->sync, &job));
	done(_metadata, self->fd, self->sync, job);
	EXPECT_EQ(0, memcmp(self->win, self->m4k, RS));
	EXPECT_EQ(0, memcmp(self->m2m + 2 * KVT_MIB, self->m4k, 2 * KVT_MIB));

	memset(self->m4k, 0, RS);
	seg = kvt_seg(self->space, 100, self->r4k, 0, RS - 100);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, self->sync, &job));
	done(_metadata, self->fd, self->sync, job);
	EXPECT_EQ(0, memcmp(self->m4k, self->win + 100, RS - 100));
}

TEST_F(copy, space_to_space)
{
	static struct drm_kvaccel_bind_op ops[1024];
	struct drm_kvaccel_copy_segment seg;
	int i;
	uint32_t s2;
	unsigned char *w2;
	size_t w2size;
	uint64_t job;

	ASSERT_EQ(0, kvt_space_create(self->fd, 1024, 4096, &s2));
	for (i = 0; i < 1024; i++)
		ops[i] = kvt_op_bind(i, self->r4k, 1023 - i);
	ASSERT_EQ(0, kvt_space_bind(self->fd, s2, ops, 1024, NULL));
	w2 = kvt_space_map(self->fd, s2, &w2size);
	ASSERT_NE(MAP_FAILED, w2);
	kvt_fill(self->win, RS, 0x5555);
	seg = kvt_seg(self->space, 0, s2, 0, RS);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, self->sync, &job));
	done(_metadata, self->fd, self->sync, job);
	EXPECT_EQ(0, memcmp(w2, self->win, RS));
	munmap(w2, w2size);
}

TEST_F(copy, import_both_ways)
{
	uint32_t vh, imp;
	struct drm_mode_map_dumb md = { 0 };
	int vgem = kvt_open_driver("vgem", 1), dmabuf;
	struct drm_kvaccel_copy_segment seg;
	unsigned char *vm;
	uint64_t job;

	if (vgem < 0)
		SKIP(return, "no vgem");
	ASSERT_EQ(0, kvt_vgem_buffer(vgem, KVT_MIB, &vh, &dmabuf));
	md.handle = vh;
	ASSERT_EQ(0, kvt_ioctl(vgem, DRM_IOCTL_MODE_MAP_DUMB, &md));
	vm = mmap(NULL, KVT_MIB, PROT_READ | PROT_WRITE, MAP_SHARED, vgem, (off_t)md.offset);
	ASSERT_NE(MAP_FAILED, vm);
	ASSERT_EQ(0, kvt_import(self->fd, dmabuf, &imp));

	kvt_fill(self->m4k, KVT_MIB, 0x6666);
	seg = kvt_seg(self->r4k, 0, imp, 0, KVT_MIB);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, self->sync, &job));
	done(_metadata, self->fd, self->sync, job);
	EXPECT_TRUE(kvt_check(vm, KVT_MIB, 0x6666));

	kvt_fill(vm, KVT_MIB, 0x7777);
	seg = kvt_seg(imp, 4096, self->space, 8192, KVT_MIB - 4096);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, self->sync, &job));
	done(_metadata, self->fd, self->sync, job);
	EXPECT_EQ(0, memcmp(self->win + 8192, vm + 4096, KVT_MIB - 4096));
	munmap(vm, KVT_MIB);
	close(dmabuf);
	close(vgem);
}

/*
 * CPU access to an import begins at submit (dma_buf_begin_cpu_access(),
 * which waits for the buffer's implicit fences before the job's own fence
 * exists): the submission of a job reading a buffer with an unsignalled
 * write fence returns once the fence signals, then the job copies.
 */
TEST_F(copy, import_fences_waited_at_submit)
{
	struct drm_kvaccel_copy_segment seg;
	struct drm_mode_map_dumb md = { 0 };
	int64_t t0, t1, opened = 0;
	int st, p[2], delay_ms;
	struct kvt_gate g;
	unsigned char *vm;
	uint32_t imp;
	uint64_t job;
	pid_t pid;

	/*
	 * A child opens the gate after a delay and says when; the submission
	 * must have started before that and returned after. A slow guest can
	 * start it too late to tell: then try again with a longer delay.
	 */
	for (delay_ms = 300; delay_ms <= 5000; delay_ms *= 4) {
		KVT_GATE_ARM(&g, KVT_MIB);
		md.handle = g.handle;
		ASSERT_EQ(0, kvt_ioctl(g.vgem, DRM_IOCTL_MODE_MAP_DUMB, &md));
		vm = mmap(NULL, KVT_MIB, PROT_READ | PROT_WRITE, MAP_SHARED, g.vgem,
			  (off_t)md.offset);
		ASSERT_NE(MAP_FAILED, vm);
		kvt_fill(vm, KVT_MIB, 0x7171 + delay_ms);
		ASSERT_EQ(0, kvt_import(self->fd, g.dmabuf, &imp));
		ASSERT_EQ(0, pipe(p));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			int64_t t;

			usleep(delay_ms * 1000);
			t = kvt_now_ns();
			if (write(p[1], &t, sizeof(t)) != sizeof(t) || kvt_gate_open(&g))
				_exit(1);
			_exit(0);
		}
		t0 = kvt_now_ns();
		seg = kvt_seg(imp, 0, self->r4k, 0, KVT_MIB);
		ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, 0, self->sync, &job));
		t1 = kvt_now_ns();
		ASSERT_EQ(pid, waitpid(pid, &st, 0));
		EXPECT_EQ(0, st);
		ASSERT_EQ(sizeof(opened), read(p[0], &opened, sizeof(opened)));
		close(p[0]);
		close(p[1]);
		done(_metadata, self->fd, self->sync, job);
		EXPECT_TRUE(kvt_check(self->m4k, KVT_MIB, 0x7171 + delay_ms));
		ASSERT_EQ(0, kvt_close_handle(self->fd, imp));
		munmap(vm, KVT_MIB);
		kvt_gate_fini(&g);
		if (t0 < opened)
			break;
	}
	ASSERT_LT(t0, opened);
	EXPECT_LE(opened, t1);
}

/*
 * COPY_SUBMIT reports the job's state on return: a small job with nothing
 * to wait for is done (copied by the caller), a gated one still running.
 */
TEST_F(copy, submit_reports_status)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->r4k, 0, self->r2m, 0, 4096);
	struct drm_kvaccel_copy_submit cs = {
		.count = 1, .segments = (uintptr_t)&seg, .status = 77,
	};
	struct kvt_gate g;
	uint32_t blocker;

	kvt_fill(self->m4k, 4096, 0x5151);
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
	EXPECT_EQ(1, cs.status);
	EXPECT_EQ(0, memcmp(self->m4k, self->m2m, 4096));

	KVT_GATE_ARM(&g, KVT_MIB);
	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &blocker));
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(self->fd, blocker, g.sync_file));
	cs.status = 77;
	cs.in_syncobj = blocker;
	cs.out_syncobj = self->sync;
	ASSERT_EQ(0, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
	EXPECT_EQ(0, cs.status);
	ASSERT_EQ(0, kvt_gate_open(&g));
	done(_metadata, self->fd, self->sync, cs.job_id);
	kvt_gate_fini(&g);
}

/* Job B waits for job A through a syncobj; B copies what A wrote. */
TEST_F(copy, chained_jobs)
{
	struct drm_kvaccel_copy_segment a, b;
	uint32_t mid;
	uint64_t ja, jb;

	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &mid));
	kvt_fill(self->m4k, RS, 0x8888);
	a = kvt_seg(self->r4k, 0, self->r2m, 0, 2 * KVT_MIB);
	b = kvt_seg(self->r2m, 0, self->r4k, 2 * KVT_MIB, 2 * KVT_MIB);
	ASSERT_EQ(0, kvt_copy(self->fd, &a, 1, 0, mid, &ja));
	ASSERT_EQ(0, kvt_copy(self->fd, &b, 1, mid, self->sync, &jb));
	done(_metadata, self->fd, self->sync, jb);
	done(_metadata, self->fd, mid, ja);
	EXPECT_EQ(0, memcmp(self->m4k + 2 * KVT_MIB, self->m4k, 2 * KVT_MIB));
}

/*
 * A job of a file closed before its input fence signalled is cancelled:
 * its fence carries -ECANCELED (seen through an exported sync_file), and
 * a job chained on it inherits the error (sync_file and job query).
 */
TEST_F(copy, cancel_on_close_and_error_propagation)
{
	int fd1, sf_a, sf_b, status;
	struct drm_kvaccel_copy_segment seg;
	uint32_t in1, out1, in2, out2, r1;
	struct pollfd pfd;
	uint64_t ja, jb;
	struct kvt_gate g;

	/* The unsignalled vgem fence, as a sync_file, feeds job A's syncobj. */
	KVT_GATE_ARM(&g, 4096);

	fd1 = kvt_open();
	ASSERT_LE(0, fd1);
	ASSERT_EQ(0, kvt_region_create(fd1, KVT_MIB, 4096, &r1));
	ASSERT_EQ(0, kvt_syncobj_create(fd1, &in1));
	ASSERT_EQ(0, kvt_syncobj_create(fd1, &out1));
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(fd1, in1, g.sync_file));
	seg = kvt_seg(r1, 0, r1, KVT_MIB / 2, KVT_MIB / 2);
	ASSERT_EQ(0, kvt_copy(fd1, &seg, 1, in1, out1, &ja));
	ASSERT_EQ(0, kvt_syncobj_export_sync_file(fd1, out1, &sf_a));
	EXPECT_EQ(0, kvt_sync_file_status(sf_a));

	/* Job B in another file waits for A. */
	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &in2));
	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &out2));
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(self->fd, in2, sf_a));
	seg = kvt_seg(self->r4k, 0, self->r2m, 0, 4096);
	ASSERT_EQ(0, kvt_copy(self->fd, &seg, 1, in2, out2, &jb));

	close(fd1);	/* A has not started: it is cancelled */
	ASSERT_EQ(0, kvt_gate_open(&g));

	pfd.fd = sf_a;
	pfd.events = POLLIN;
	ASSERT_EQ(1, poll(&pfd, 1, 20000));
	EXPECT_EQ(-ECANCELED, kvt_sync_file_status(sf_a));
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, out2, 20000));
	ASSERT_EQ(0, kvt_copy_status(self->fd, jb, &status));
	EXPECT_EQ(-ECANCELED, status);
	ASSERT_EQ(0, kvt_syncobj_export_sync_file(self->fd, out2, &sf_b));
	EXPECT_EQ(-ECANCELED, kvt_sync_file_status(sf_b));
	close(sf_a);
	close(sf_b);
	kvt_gate_fini(&g);
}

/*
 * The workers' failure points (the job's start, each part), walked with
 * the module's debugfs countdown: each injected failure completes the job
 * with -EIO (job query and sync_file), and nothing leaks.
 */
TEST(worker_failure_sweep)
{
	char knob[512];
	int fd = kvt_open(), n, failures = 0;
	uint64_t u0, p0;

	snprintf(knob, sizeof(knob), "%s", kvt_debugfs("copy_fail_nth"));
	ASSERT_LE(0, fd);
	if (access(knob, W_OK))
		SKIP(return, "no %s", knob);
	kvt_settled(fd, &u0, &p0);
	for (n = 1; n < 64; n++) {
		struct drm_kvaccel_copy_segment seg;
		uint32_t a, b, sync;
		int status, sf, cfd = kvt_open();
		char buf[16];
		uint64_t job;

		ASSERT_LE(0, cfd);
		/* 8 MiB: split into parts for every worker. */
		ASSERT_EQ(0, kvt_region_create(cfd, 8 * KVT_MIB, 2 * KVT_MIB, &a));
		ASSERT_EQ(0, kvt_region_create(cfd, 8 * KVT_MIB, 4096, &b));
		ASSERT_EQ(0, kvt_syncobj_create(cfd, &sync));
		snprintf(buf, sizeof(buf), "%d", n);
		ASSERT_EQ(0, kvt_write_file(knob, buf));
		seg = kvt_seg(a, 0, b, 0, 8 * KVT_MIB);
		ASSERT_EQ(0, kvt_copy(cfd, &seg, 1, 0, sync, &job));
		ASSERT_EQ(0, kvt_syncobj_wait(cfd, sync, 60000));
		ASSERT_EQ(0, kvt_copy_status(cfd, job, &status));
		ASSERT_EQ(0, kvt_syncobj_export_sync_file(cfd, sync, &sf));
		if (status < 0) {
			failures++;
			EXPECT_EQ(-EIO, status);
			EXPECT_EQ(-EIO, kvt_sync_file_status(sf));
		} else {
			EXPECT_EQ(1, status);
			EXPECT_EQ(1, kvt_sync_file_status(sf));
		}
		close(sf);
		close(cfd);
		if (kvt_read_ll(knob) > 0) {
			/* fewer failure points than n: the walk is complete */
			kvt_write_file(knob, "0");
			EXPECT_EQ(1, status);
			break;
		}
	}
	TH_LOG("%d failure points walked, %d failed", n - 1, failures);
	EXPECT_LE(2, failures);	/* the start and at least one part */
	EXPECT_EQ(u0, kvt_usage_back_to(fd, u0));
	EXPECT_EQ(p0, kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD));
	close(fd);
}

/* Jobs in flight when the file closes finish; nothing leaks. */
TEST(close_with_jobs_in_flight)
{
	int fd = kvt_open(), i;
	uint64_t u0, p0;

	ASSERT_LE(0, fd);
	kvt_settled(fd, &u0, &p0);
	for (i = 0; i < 4; i++) {
		int cfd = kvt_open(), j;
		struct drm_kvaccel_copy_segment seg;
		uint32_t a, b;

		ASSERT_LE(0, cfd);
		ASSERT_EQ(0, kvt_region_create(cfd, 4 * KVT_MIB, 2 * KVT_MIB, &a));
		ASSERT_EQ(0, kvt_region_create(cfd, 4 * KVT_MIB, 4096, &b));
		seg = kvt_seg(a, 0, b, 0, 4 * KVT_MIB);
		for (j = 0; j < 8; j++)
			ASSERT_EQ(0, kvt_copy(cfd, &seg, 1, 0, 0, NULL));
		close(cfd);
	}
	/* The jobs hold the regions until they finish (slowly under KASAN). */
	EXPECT_EQ(u0, kvt_usage_back_to(fd, u0));
	EXPECT_EQ(p0, kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD));
	close(fd);
}

/* A process killed with jobs in flight leaks nothing either. */
TEST(killed_with_jobs_in_flight)
{
	int fd = kvt_open(), status;
	uint64_t u0, p0;
	pid_t pid;

	ASSERT_LE(0, fd);
	kvt_settled(fd, &u0, &p0);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int cfd = kvt_open();
		struct drm_kvaccel_copy_segment seg;
		uint32_t a, b;

		if (kvt_region_create(cfd, 8 * KVT_MIB, 2 * KVT_MIB, &a) ||
		    kvt_region_create(cfd, 8 * KVT_MIB, 4096, &b))
			_exit(1);
		seg = kvt_seg(a, 0, b, 0, 8 * KVT_MIB);
		for (;;)
			kvt_copy(cfd, &seg, 1, 0, 0, NULL);
	}
	usleep(300000);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(u0, kvt_usage_back_to(fd, u0));
	EXPECT_EQ(p0, kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD));
	close(fd);
}

/*
 * In-flight jobs per process are capped: -EBUSY beyond the cap. The jobs
 * wait for an unsignalled vgem fence (vgem signals it by itself after 10 s,
 * so the submissions must be quick: no import in the segments).
 */
TEST_F(copy, inflight_cap)
{
	struct drm_kvaccel_copy_segment seg;
	uint32_t blocker;
	int i, ret = 0;
	struct kvt_gate g;
	int64_t t0;

	KVT_GATE_ARM(&g, 4096);
	ASSERT_EQ(0, kvt_syncobj_create(self->fd, &blocker));
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(self->fd, blocker, g.sync_file));
	seg = kvt_seg(self->r4k, 0, self->r2m, 0, 4096);
	t0 = kvt_now_ns();
	for (i = 0; i < (int)KVACCEL_COPY_MAX_INFLIGHT + 8; i++) {
		ret = kvt_copy(self->fd, &seg, 1, blocker, 0, NULL);
		if (ret)
			break;
	}
	TH_LOG("%d submissions in %lld ms", i, (long long)(kvt_now_ns() - t0) / 1000000);
	if (kvt_now_ns() - t0 > 8000000000ll)
		SKIP(return, "submissions too slow to beat vgem's 10 s fence timeout");
	EXPECT_EQ(-EBUSY, ret);
	EXPECT_EQ(KVACCEL_COPY_MAX_INFLIGHT, i);
	ASSERT_EQ(0, kvt_gate_open(&g));
	/* Once they drain, submission works again. */
	for (i = 0; i < 400; i++) {
		ret = kvt_copy(self->fd, &seg, 1, 0, self->sync, NULL);
		if (!ret)
			break;
		usleep(50000);
	}
	EXPECT_EQ(0, ret);
	ASSERT_EQ(0, kvt_syncobj_wait(self->fd, self->sync, 20000));
	kvt_gate_fini(&g);
}

/* ---- validation: one rule per subtest ---- */

#define EXPECT_SEG(err, seg) do {						\
	struct drm_kvaccel_copy_segment __s = (seg);				\
	EXPECT_EQ(err, kvt_copy(self->fd, &__s, 1, 0, 0, NULL));		\
} while (0)

TEST_F(copy, bad_flags)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->r4k, 0, self->r2m, 0, 4096);
	struct drm_kvaccel_copy_submit cs = {
		.flags = (uint32_t)~KVACCEL_COPY_SUBMIT_FLAGS, .count = 1, .segments = (uintptr_t)&seg,
	};

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
}

TEST_F(copy, bad_pad)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->r4k, 0, self->r2m, 0, 4096);
	struct drm_kvaccel_copy_submit cs = {
		.count = 1, .segments = (uintptr_t)&seg, .pad = 1,
	};

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
}

TEST_F(copy, bad_count)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->r4k, 0, self->r2m, 0, 4096);

	EXPECT_EQ(-EINVAL, kvt_copy(self->fd, &seg, 0, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, kvt_copy(self->fd, &seg, KVACCEL_COPY_MAX_SEGMENTS + 1, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, kvt_copy(self->fd, &seg, ~0u, 0, 0, NULL));
}

TEST_F(copy, segment_flags_and_pad)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->r4k, 0, self->r2m, 0, 4096);

	seg.flags = 1;
	EXPECT_SEG(-EINVAL, seg);
	seg.flags = 0;
	seg.pad = 1;
	EXPECT_SEG(-EINVAL, seg);
}

TEST_F(copy, zero_length)
{
	EXPECT_SEG(-EINVAL, kvt_seg(self->r4k, 0, self->r2m, 0, 0));
}

TEST_F(copy, range_past_end)
{
	EXPECT_SEG(-EINVAL, kvt_seg(self->r4k, RS - 10, self->r2m, 0, 11));
	EXPECT_SEG(-EINVAL, kvt_seg(self->r4k, 0, self->r2m, RS, 1));
	EXPECT_SEG(-EINVAL, kvt_seg(self->r4k, ~0ull, self->r2m, 0, 2));
	EXPECT_SEG(-EINVAL, kvt_seg(self->r4k, 0, self->space, 0, RS + 1));
}

TEST_F(copy, overlap_in_one_object)
{
	EXPECT_SEG(-EINVAL, kvt_seg(self->r4k, 0, self->r4k, 4095, 4096));
	EXPECT_SEG(0, kvt_seg(self->r4k, 0, self->r4k, 4096, 4096));
}

TEST_F(copy, unknown_handle)
{
	EXPECT_SEG(-ENOENT, kvt_seg(1000, 0, self->r2m, 0, 4096));
	EXPECT_SEG(-ENOENT, kvt_seg(self->r4k, 0, 1000, 0, 4096));
}

TEST_F(copy, handle_of_other_client)
{
	int fd2 = kvt_open();
	uint32_t theirs;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, kvt_region_create(fd2, RS, 4096, &theirs));
	if (theirs > self->sync && theirs != self->space)
		EXPECT_SEG(-ENOENT, kvt_seg(theirs, 0, self->r2m, 0, 4096));
	close(fd2);
}

TEST_F(copy, unbound_slot)
{
	ASSERT_EQ(0, kvt_bind1(self->fd, self->space, kvt_op(KVACCEL_BIND_OP_UNBIND, 1, 0)));
	EXPECT_SEG(-ENOENT, kvt_seg(self->space, 2 * KVT_MIB - 10, self->r4k, 0, 20));
	EXPECT_SEG(0, kvt_seg(self->space, 0, self->r4k, 0, 2 * KVT_MIB));
}

TEST_F(copy, bad_syncobjs)
{
	struct drm_kvaccel_copy_segment seg = kvt_seg(self->r4k, 0, self->r2m, 0, 4096);

	EXPECT_EQ(-ENOENT, kvt_copy(self->fd, &seg, 1, 0, 999, NULL));
	EXPECT_EQ(-ENOENT, kvt_copy(self->fd, &seg, 1, 999, 0, NULL));
	/* A syncobj without a fence yet cannot be waited for. */
	EXPECT_EQ(-EINVAL, kvt_copy(self->fd, &seg, 1, self->sync, 0, NULL));
}

TEST_F(copy, too_many_bytes)
{
	static struct drm_kvaccel_copy_segment segs[1025];
	int i;

	for (i = 0; i < 1025; i++)
		segs[i] = kvt_seg(self->r4k, 0, self->r2m, 0, RS);
	EXPECT_EQ(-EINVAL, kvt_copy(self->fd, segs, 1025, 0, 0, NULL));
}

TEST_F(copy, segments_efault)
{
	struct drm_kvaccel_copy_submit cs = { .count = 1, .segments = 4096 };

	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs));
	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, NULL));
}

TEST_F(copy, status_validation)
{
	struct drm_kvaccel_copy_status st = { .job_id = 1, .flags = 1 };
	int status;

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_COPY_STATUS, &st));
	EXPECT_EQ(-ENOENT, kvt_copy_status(self->fd, 12345, &status));
	EXPECT_EQ(-ENOENT, kvt_copy_status(self->fd, 0, &status));
}

/* A rejected submission leaves nothing behind. */
TEST_F(copy, rejected_leaves_nothing)
{
	struct drm_kvaccel_copy_segment segs[2] = {
		kvt_seg(self->r4k, 0, self->r2m, 0, 4096),
		kvt_seg(self->r4k, 0, 1000, 0, 4096),
	};
	uint64_t u = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);

	EXPECT_EQ(-ENOENT, kvt_copy(self->fd, segs, 2, 0, 0, NULL));
	ASSERT_EQ(0, kvt_close_handle(self->fd, self->r4k));
	munmap(self->m4k, RS);
	self->m4k = mmap(NULL, RS, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT_EQ(u - RS, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
}

TEST_HARNESS_MAIN
