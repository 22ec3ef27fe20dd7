// SPDX-License-Identifier: GPL-2.0-only
/*
 * libaccel's device API against the real module: discovery and the ABI
 * handshake, regions (map, export, import in another process, the same
 * dma-buf imported twice), spaces (batched binds, the window, queries,
 * sharing), copies and fences (done at submit, waits, chains, poll-able
 * fds, errors, huge timeouts), fd passing, the log callback, every
 * function's rejection of NULLs and bad arguments, discovery that opens no
 * other driver's node, and imports racing destroys of the same dma-buf.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "accel.h"
#include "kvdmsg.h"
#include "kvtest.h"
#include "kselftest_harness.h"

#define MIB	(1024ull * 1024)

static char last_log[256];

static void log_cb(void *arg, enum accel_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

FIXTURE(api) {
	struct accel_device *dev;
};

FIXTURE_SETUP(api)
{
	self->dev = accel_device_open(NULL);
	ASSERT_NE(NULL, self->dev) TH_LOG("accel_device_open: %s", strerror(errno));
}

FIXTURE_TEARDOWN(api)
{
	accel_device_close(self->dev);
}

TEST_F(api, device_list_open_info)
{
	char paths[4][ACCEL_PATH_MAX];
	ACCEL_OPTS(accel_device_info, info);
	struct accel_device *d2;
	int n = accel_device_list(paths, 4);

	ASSERT_EQ(1, n);
	EXPECT_EQ(0, accel_device_list(NULL, 0) - 1);
	d2 = accel_device_open(paths[0]);
	ASSERT_NE(NULL, d2);
	ASSERT_EQ(0, accel_device_info(d2, &info));
	EXPECT_STREQ(paths[0], info.path);
	EXPECT_EQ(ACCEL_ABI_MAJOR, info.abi_major);
	EXPECT_LE(ACCEL_ABI_MINOR_MIN, info.abi_minor);
	EXPECT_NE(0, info.caps & KVACCEL_CAP_COPY);
	EXPECT_NE(0, info.block_sizes & (1ull << 21));
	EXPECT_LT(0, info.limit);
	EXPECT_LE(0, accel_device_fd(d2));
	accel_device_close(d2);
}

/* Watch for opens of every @prefix* node in @devdir whose sysfs driver is not kvaccel. */
static int watch_foreign_nodes(int in, const char *class, const char *prefix, const char *devdir)
{
	char path[512], link[512], dev[512];
	struct dirent *de;
	int watched = 0;
	ssize_t n;
	DIR *d = opendir(class);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		const char *base;

		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		/* vgem's device has no driver link: another driver's all the same. */
		snprintf(path, sizeof(path), "%s/%s/device/driver", class, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		base = strrchr(link, '/');
		if (!strcmp(base ? base + 1 : link, "kvaccel"))
			continue;
		snprintf(dev, sizeof(dev), "%s/%s", devdir, de->d_name);
		if (inotify_add_watch(in, dev, IN_OPEN) >= 0)
			watched++;
	}
	closedir(d);
	return watched;
}

/*
 * Discovery reads sysfs and opens no other driver's node (opening one can
 * wake a runtime-suspended GPU); it lists nodes in a stable, sorted order.
 */
TEST_F(api, device_discovery_opens_no_other_node)
{
	char a[8][ACCEL_PATH_MAX], b[8][ACCEL_PATH_MAX], buf[4096];
	struct accel_device *d;
	int in, watched, n, i;

	/* The minimal debug kernel has no inotify: the order is still checked. */
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ASSERT_TRUE(in >= 0 || errno == ENOSYS);
	watched = in < 0 ? 0 :
		  watch_foreign_nodes(in, "/sys/class/drm", "renderD", "/dev/dri") +
		  watch_foreign_nodes(in, "/sys/class/accel", "accel", "/dev/accel");
	n = accel_device_list(a, 8);
	ASSERT_LE(0, n);
	if (!n) {
		if (in >= 0)
			close(in);
		SKIP(return, "no kvaccel device");
	}
	ASSERT_EQ(n, accel_device_list(b, 8));
	for (i = 0; i < n && i < 8; i++)
		EXPECT_STREQ(a[i], b[i]);
	/* Accel nodes, then render nodes, each in the order of their numbers. */
	for (i = 1; i < n && i < 8; i++) {
		size_t p = strcspn(a[i], "0123456789");

		if (!strncmp(a[i - 1], a[i], p) && strlen(a[i - 1]) >= p)
			EXPECT_LT(atol(a[i - 1] + p), atol(a[i] + p));
	}
	d = accel_device_open(NULL);
	ASSERT_NE(NULL, d);
	accel_device_close(d);
	if (!watched) {
		if (in >= 0)
			close(in);
		SKIP(return, in < 0 ? "no inotify in this kernel: nothing to watch opens with" :
		     "no node of another driver to watch (load vgem)");
	}
	EXPECT_EQ(-1, read(in, buf, sizeof(buf))) TH_LOG("a foreign node was opened");
	EXPECT_EQ(EAGAIN, errno);
	close(in);
}

/*
 * struct accel_device_info carries its size: an older, smaller struct gets
 * the fields it has and nothing past them; a newer, bigger one is fine
 * while its unknown tail is zero; a struct without its size is refused.
 */
TEST_F(api, device_info_sizes)
{
	struct {
		struct accel_device_info info;
		uint64_t newer[2];
	} big;
	struct accel_device_info old;
	ACCEL_OPTS(accel_device_info, info);

	ASSERT_EQ(0, accel_device_info(self->dev, &info));
	EXPECT_EQ(sizeof(info), info.sz);
	EXPECT_EQ(ACCEL_ABI_MAJOR, info.abi_major);
	EXPECT_LT(0, info.limit);

	memset(&old, 0, sizeof(old));
	EXPECT_EQ(-EINVAL, accel_device_info(self->dev, &old));
	old.sz = sizeof(size_t) - 1;
	EXPECT_EQ(-EINVAL, accel_device_info(self->dev, &old));

	memset(&old, 0xa5, sizeof(old));
	old.sz = offsetof(struct accel_device_info, caps);
	ASSERT_EQ(0, accel_device_info(self->dev, &old));
	EXPECT_EQ(offsetof(struct accel_device_info, caps), old.sz);
	EXPECT_EQ(info.abi_minor, old.abi_minor);
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ull, old.caps);
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ull, old.process_quota);

	memset(&big, 0, sizeof(big));
	big.info.sz = sizeof(big);
	ASSERT_EQ(0, accel_device_info(self->dev, &big.info));
	EXPECT_EQ(info.caps, big.info.caps);
	EXPECT_EQ(0, big.newer[0]);
	big.newer[1] = 1;
	EXPECT_EQ(-E2BIG, accel_device_info(self->dev, &big.info));
}

TEST_F(api, device_open_errors_are_logged)
{
	accel_set_log(log_cb, NULL, ACCEL_LOG_DEBUG);
	errno = 0;
	EXPECT_EQ(NULL, accel_device_open("/dev/null"));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_NE(NULL, strstr(last_log, "not a kvaccel device"));
	errno = 0;
	EXPECT_EQ(NULL, accel_device_open("/nonexistent/accel9"));
	EXPECT_EQ(ENOENT, errno);
	accel_set_log(NULL, NULL, ACCEL_LOG_ERR);
}

TEST_F(api, region_map_and_account)
{
	ACCEL_OPTS(accel_device_info, before);
	ACCEL_OPTS(accel_device_info, after);
	struct accel_region *r;
	unsigned char *p;

	ASSERT_EQ(0, accel_device_info(self->dev, &before));
	r = accel_region_create(self->dev, 4 * MIB, 64 * 1024, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(4 * MIB, accel_region_size(r));
	EXPECT_EQ(64 * 1024, accel_region_block_size(r));
	EXPECT_NE(0, accel_region_id(r));
	EXPECT_EQ(0, accel_region_is_foreign(r));
	ASSERT_EQ(0, accel_device_info(self->dev, &after));
	EXPECT_EQ(before.process_usage + 4 * MIB, after.process_usage);
	p = accel_region_map(r);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(p, accel_region_map(r));
	kvt_fill(p, 4 * MIB, 7);
	EXPECT_TRUE(kvt_check(p, 4 * MIB, 7));
	accel_region_destroy(r);
	ASSERT_EQ(0, accel_device_info(self->dev, &after));
	EXPECT_EQ(before.process_usage, after.process_usage);
}

TEST_F(api, region_bad_arguments)
{
	errno = 0;
	EXPECT_EQ(NULL, accel_region_create(self->dev, 0, 4096, ACCEL_NODE_ANY));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_region_create(self->dev, 3 * 4096, 3000, ACCEL_NODE_ANY));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_region_create(self->dev, 1ull << 50, 2 * MIB, ACCEL_NODE_ANY));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_region_create(self->dev, 4096, 4096, -5));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_region_create(NULL, 4096, 4096, ACCEL_NODE_ANY));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_region_import(self->dev, -1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_region_import(self->dev, 0));	/* stdin: not a dma-buf */
	EXPECT_NE(0, errno);
}

/* A child imports the region over a socket, sees the parent's bytes and writes back. */
TEST_F(api, region_shared_with_another_process)
{
	struct accel_region *r = accel_region_create(self->dev, 2 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	int sv[2], fd, status;
	unsigned char *p;
	pid_t pid;
	char tag = 'r';

	ASSERT_NE(NULL, r);
	p = accel_region_map(r);
	ASSERT_NE(NULL, p);
	kvt_fill(p, 2 * MIB, 11);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	ASSERT_EQ(0, accel_region_export(r, &fd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct accel_device *d = accel_device_open(NULL);
		struct accel_region *q;
		int got[2], n = 2;
		size_t len = 1;
		char t;
		unsigned char *m;

		if (!d || accel_recv_fds(sv[1], got, &n, &t, &len) || n != 1 || t != 'r')
			_exit(1);
		q = accel_region_import(d, got[0]);
		if (!q || accel_region_size(q) != 2 * MIB || accel_region_id(q) == 0)
			_exit(2);
		m = accel_region_map(q);
		if (!m || !kvt_check(m, 2 * MIB, 11))
			_exit(3);
		kvt_fill(m, 4096, 12);
		accel_region_destroy(q);
		accel_device_close(d);
		_exit(0);
	}
	ASSERT_EQ(0, accel_send_fds(sv[0], &fd, 1, &tag, 1));
	close(fd);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(kvt_check(p, 4096, 12));
	accel_region_destroy(r);
	close(sv[0]);
	close(sv[1]);
}

/* Importing a dma-buf twice gives two objects on one handle: each stays valid alone. */
TEST_F(api, same_dmabuf_imported_twice)
{
	struct accel_region *r = accel_region_create(self->dev, MIB, 4096, ACCEL_NODE_ANY);
	struct accel_region *a, *b;
	unsigned char *p;
	int fd;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, accel_region_export(r, &fd));
	a = accel_region_import(self->dev, fd);
	b = accel_region_import(self->dev, fd);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	EXPECT_EQ(accel_region_id(r), accel_region_id(a));
	accel_region_destroy(r);
	accel_region_destroy(a);
	p = accel_region_map(b);
	ASSERT_NE(NULL, p);
	p[0] = 42;
	EXPECT_EQ(42, p[0]);
	accel_region_destroy(b);
	close(fd);
}

TEST_F(api, space_bind_map_query)
{
	struct accel_region *r = accel_region_create(self->dev, 8 * 4096, 4096, ACCEL_NODE_ANY);
	struct accel_space *s = accel_space_create(self->dev, 4, 4096);
	struct accel_bind_op ops[3] = {
		{ .kind = ACCEL_BIND, .slot = 0, .region = r, .block = 5 },
		{ .kind = ACCEL_BIND, .slot = 1, .region = r, .block = 2 },
		{ .kind = ACCEL_SWAP, .slot = 0, .other = 1 },
	};
	struct accel_slot_binding q[4];
	uint64_t gen, gen2;
	unsigned char *rm, *w;
	size_t size;

	ASSERT_NE(NULL, r);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(4, accel_space_slots(s));
	EXPECT_EQ(4096, accel_space_block_size(s));
	rm = accel_region_map(r);
	ASSERT_NE(NULL, rm);
	kvt_fill(rm + 2 * 4096, 4096, 2);
	kvt_fill(rm + 5 * 4096, 4096, 5);
	/* A batch targets each slot once: the swap is a second batch. */
	EXPECT_EQ(-EINVAL, accel_space_bind(s, ops, 3, NULL));
	ASSERT_EQ(0, accel_space_bind(s, ops, 2, &gen));
	ASSERT_EQ(0, accel_space_bind(s, &ops[2], 1, &gen2));
	EXPECT_EQ(gen + 2, gen2);
	gen = gen2;
	EXPECT_EQ(0, gen % 2);
	w = accel_space_map(s, &size);
	ASSERT_NE(NULL, w);
	EXPECT_EQ(4 * 4096, size);
	EXPECT_TRUE(kvt_check(w, 4096, 2));
	EXPECT_TRUE(kvt_check(w + 4096, 4096, 5));
	EXPECT_EQ((int64_t)gen, accel_space_generation(s));
	ASSERT_EQ(0, accel_space_query(s, 0, 4, q, &gen2));
	EXPECT_EQ(gen, gen2);
	EXPECT_EQ(accel_region_id(r), q[0].region_id);
	EXPECT_EQ(2, q[0].block);
	EXPECT_EQ(5, q[1].block);
	EXPECT_EQ(0, q[2].region_id);

	/* A rejected batch changes nothing. */
	ops[0].slot = 9;
	EXPECT_EQ(-EINVAL, accel_space_bind(s, ops, 1, NULL));
	ops[0].slot = 0;
	ops[0].region = NULL;
	EXPECT_EQ(-EINVAL, accel_space_bind(s, ops, 1, NULL));
	EXPECT_EQ((int64_t)gen, accel_space_generation(s));
	accel_space_destroy(s);
	accel_region_destroy(r);
}

TEST_F(api, space_shared_with_another_process)
{
	struct accel_region *r = accel_region_create(self->dev, 2 * 4096, 4096, ACCEL_NODE_ANY);
	struct accel_space *s = accel_space_create(self->dev, 2, 4096);
	struct accel_bind_op op = { .kind = ACCEL_BIND, .slot = 1, .region = r, .block = 0 };
	int fd, status;
	pid_t pid;

	ASSERT_NE(NULL, r);
	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, accel_space_bind(s, &op, 1, NULL));
	kvt_fill(accel_region_map(r), 4096, 33);
	ASSERT_EQ(0, accel_space_export(s, &fd));
	EXPECT_EQ(NULL, accel_region_import(self->dev, fd));	/* a space, not a region */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct accel_device *d = accel_device_open(NULL);
		struct accel_space *t = d ? accel_space_import(d, fd) : NULL;
		unsigned char *w = t ? accel_space_map(t, NULL) : NULL;

		_exit(!w || accel_space_slots(t) != 2 || !kvt_check(w + 4096, 4096, 33));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(fd);
	accel_space_destroy(s);
	accel_region_destroy(r);
}

TEST_F(api, copies_and_fences)
{
	struct accel_region *a = accel_region_create(self->dev, 8 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	struct accel_region *b = accel_region_create(self->dev, 8 * MIB, 4096, ACCEL_NODE_ANY);
	struct accel_copy_seg seg;
	struct accel_fence *f1, *f2;
	unsigned char *pa, *pb;
	struct pollfd pfd;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	pa = accel_region_map(a);
	pb = accel_region_map(b);
	ASSERT_NE(NULL, pa);
	ASSERT_NE(NULL, pb);
	kvt_fill(pa, 8 * MIB, 21);

	/* Small: done when accel_copy() returns. */
	seg = (struct accel_copy_seg) { accel_region_obj(a), 0, accel_region_obj(b), 0, 4096 };
	f1 = accel_copy(self->dev, &seg, 1, NULL);
	ASSERT_NE(NULL, f1);
	EXPECT_EQ(1, accel_fence_status(f1));
	EXPECT_EQ(0, accel_fence_wait(f1, 0));
	EXPECT_EQ(0, memcmp(pa, pb, 4096));
	accel_fence_destroy(f1);

	/* Large, then a chained copy back into a after it. */
	seg = (struct accel_copy_seg) { accel_region_obj(a), 0, accel_region_obj(b), 0, 8 * MIB };
	f1 = accel_copy(self->dev, &seg, 1, NULL);
	ASSERT_NE(NULL, f1);
	seg = (struct accel_copy_seg) { accel_region_obj(b), 0, accel_region_obj(a), 4 * MIB, 4 * MIB };
	f2 = accel_copy(self->dev, &seg, 1, f1);
	ASSERT_NE(NULL, f2);
	pfd.fd = accel_fence_fd(f2);
	pfd.events = POLLIN;
	ASSERT_LE(0, pfd.fd);
	EXPECT_EQ(1, poll(&pfd, 1, 60000));
	close(pfd.fd);
	EXPECT_EQ(0, accel_fence_wait(f2, -1));
	EXPECT_EQ(0, accel_fence_wait(f1, 1000000000));
	EXPECT_EQ(0, memcmp(pa, pa + 4 * MIB, 4 * MIB));
	accel_fence_destroy(f2);
	accel_fence_destroy(f1);

	/* Bad segments. */
	errno = 0;
	seg = (struct accel_copy_seg) { NULL, 0, accel_region_obj(b), 0, 4096 };
	EXPECT_EQ(NULL, accel_copy(self->dev, &seg, 1, NULL));
	EXPECT_EQ(EINVAL, errno);
	seg = (struct accel_copy_seg) { accel_region_obj(a), 8 * MIB, accel_region_obj(b), 0, 1 };
	EXPECT_EQ(NULL, accel_copy(self->dev, &seg, 1, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_copy(self->dev, &seg, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	accel_region_destroy(a);
	accel_region_destroy(b);
}

/* A failed copy (the workers' fault injection) is reported by the wait and its chain. */
TEST_F(api, copy_errors_reach_the_fence)
{
	char knob[512];
	struct accel_region *a = accel_region_create(self->dev, 4 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	struct accel_copy_seg seg;
	struct accel_fence *f1, *f2;

	snprintf(knob, sizeof(knob), "%s", kvt_debugfs("copy_fail_nth"));
	if (access(knob, W_OK))
		SKIP(return, "no %s", knob);
	ASSERT_NE(NULL, a);
	seg = (struct accel_copy_seg) { accel_region_obj(a), 0, accel_region_obj(a), 2 * MIB, 2 * MIB };
	ASSERT_EQ(0, kvt_write_file(knob, "1"));
	f1 = accel_copy(self->dev, &seg, 1, NULL);
	ASSERT_NE(NULL, f1);
	EXPECT_EQ(-EIO, accel_fence_wait(f1, -1));
	kvt_write_file(knob, "0");
	f2 = accel_copy(self->dev, &seg, 1, f1);
	ASSERT_NE(NULL, f2);
	EXPECT_EQ(-EIO, accel_fence_wait(f2, -1));
	EXPECT_EQ(-EIO, accel_fence_status(f2));
	accel_fence_destroy(f2);
	accel_fence_destroy(f1);
	accel_region_destroy(a);
}

/* A huge relative timeout is forever, not a deadline that overflowed into the past. */
TEST_F(api, fence_wait_huge_timeouts)
{
	const int64_t timeouts[] = { INT64_MAX, INT64_MAX - 1, INT64_MAX - 1000000000 };
	struct accel_region *a = accel_region_create(self->dev, 64 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	struct accel_region *b = accel_region_create(self->dev, 64 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	struct accel_copy_seg seg;
	struct accel_fence *f;
	unsigned int i;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	seg = (struct accel_copy_seg) { accel_region_obj(a), 0, accel_region_obj(b), 0, 64 * MIB };
	for (i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		f = accel_copy(self->dev, &seg, 1, NULL);
		ASSERT_NE(NULL, f);
		EXPECT_EQ(0, accel_fence_wait(f, timeouts[i])) TH_LOG("timeout %lld",
								      (long long)timeouts[i]);
		accel_fence_destroy(f);
	}
	accel_region_destroy(a);
	accel_region_destroy(b);
}

struct import_race {
	struct accel_device *dev;
	int fd;
	atomic_int failures;
	atomic_int done;
};

/*
 * Import the dma-buf, use the import's handle (export it again), destroy
 * it; again, for a second. A handle closed behind an import fails
 * REGION_INFO inside the import or the export.
 */
static void *import_destroy_loop(void *arg)
{
	struct import_race *r = arg;
	struct timespec t0, t;
	int i, fd;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 100000; i++) {
		struct accel_region *imp = accel_region_import(r->dev, r->fd);

		if (!imp) {
			atomic_fetch_add(&r->failures, 1);
			continue;
		}
		if (accel_region_export(imp, &fd))
			atomic_fetch_add(&r->failures, 1);
		else
			close(fd);
		accel_region_destroy(imp);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= 2)
			break;
	}
	atomic_fetch_add(&r->done, i);
	return NULL;
}

/*
 * Threads importing and destroying one dma-buf: each import gets the
 * file's one handle for it, and a destroy's close must never hit a handle
 * another thread's import has just been given back.
 */
TEST_F(api, import_races_destroy_of_the_same_dmabuf)
{
	struct accel_region *r = accel_region_create(self->dev, 2 * 4096, 4096, ACCEL_NODE_ANY);
	struct import_race race = { .dev = self->dev };
	pthread_t t[2];
	unsigned int i;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, accel_region_export(r, &race.fd));
	/* The dma-buf keeps the memory; no library object holds the handle now. */
	accel_region_destroy(r);
	/* Two threads: with more, one nearly always holds the handle. */
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, import_destroy_loop, &race));
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(0, atomic_load(&race.failures)) TH_LOG("%d of %d imports failed",
							 atomic_load(&race.failures),
							 atomic_load(&race.done));
	/* And the file holds no handle any more: a fresh import works. */
	r = accel_region_import(self->dev, race.fd);
	ASSERT_NE(NULL, r);
	accel_region_destroy(r);
	close(race.fd);
}

TEST(fd_passing_limits)
{
	int sv[2], fds[ACCEL_MAX_FDS + 1], got[1], n, i;
	size_t len;
	char c = 'x', buf[4];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	for (i = 0; i <= ACCEL_MAX_FDS; i++)
		fds[i] = sv[0];
	EXPECT_EQ(-EINVAL, accel_send_fds(sv[0], fds, ACCEL_MAX_FDS + 1, &c, 1));
	EXPECT_EQ(-EINVAL, accel_send_fds(sv[0], fds, 1, NULL, 1));
	EXPECT_EQ(-EINVAL, accel_send_fds(-1, fds, 1, &c, 1));
	/* Two fds into room for one: refused, both closed. */
	ASSERT_EQ(0, accel_send_fds(sv[0], fds, 2, &c, 1));
	n = 1;
	len = sizeof(buf);
	EXPECT_EQ(-EMSGSIZE, accel_recv_fds(sv[1], got, &n, buf, &len));
	/* Data only. */
	ASSERT_EQ(0, accel_send_fds(sv[0], NULL, 0, &c, 1));
	n = 1;
	len = sizeof(buf);
	ASSERT_EQ(0, accel_recv_fds(sv[1], got, &n, buf, &len));
	EXPECT_EQ(0, n);
	EXPECT_EQ(1, len);
	close(sv[0]);
	n = 1;
	len = sizeof(buf);
	EXPECT_EQ(-ECONNRESET, accel_recv_fds(sv[1], got, &n, buf, &len));
	close(sv[1]);
}

static int open_fds(void)
{
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Issue 13: a 0-byte packet with fds, or a truncated one, leaks none of them. */
TEST(fd_passing_closes_fds_on_errors)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 2)];
	} cbuf;
	char data[64] = { 0 }, buf[4];
	struct iovec iov = { .iov_base = data };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
			      .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *c;
	int sv[2], got[2], n, before, i;
	size_t len;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	memset(&cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * 2);
	memcpy(CMSG_DATA(c), sv, sizeof(int));
	memcpy(CMSG_DATA(c) + sizeof(int), sv, sizeof(int));
	before = open_fds();
	for (i = 0; i < 500; i++) {
		iov.iov_len = 0;
		ASSERT_EQ(0, sendmsg(sv[0], &msg, 0));
		n = 2;
		len = sizeof(buf);
		ASSERT_EQ(-EPROTO, accel_recv_fds(sv[1], got, &n, buf, &len));
	}
	EXPECT_EQ(before, open_fds());
	/* More data than room: refused, fds closed. */
	iov.iov_len = sizeof(data);
	ASSERT_EQ((ssize_t)sizeof(data), sendmsg(sv[0], &msg, 0));
	n = 2;
	len = sizeof(buf);
	EXPECT_EQ(-EMSGSIZE, accel_recv_fds(sv[1], got, &n, buf, &len));
	EXPECT_EQ(before, open_fds());
	close(sv[0]);
	close(sv[1]);
}

/* ---- the engine side against a scripted daemon (issue 13) --------------- */

struct fake_daemon {
	char path[108];
	int listen_fd;
	int result;		/* 0 when the script ran as planned */
};

static int fake_recv(int fd, union kvdmsg_buf *buf, unsigned int type)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int fds[KVD_HANDOFF_MAX_FDS];
	unsigned int nfds;
	const char *why;
	long n;

	if (poll(&p, 1, 5000) != 1)
		return -ETIMEDOUT;
	n = kvdmsg_recv(fd, buf, fds, &nfds, 0);
	if (n <= 0)
		return n ? (int)n : -ECONNRESET;
	kvdmsg_close_fds(fds, nfds);
	if (kvdmsg_check(buf, (size_t)n, nfds, &why) || buf->hdr.type != type)
		return -EPROTO;
	return 0;
}

static int fake_quota_reply(int fd, uint64_t seq, uint64_t bytes)
{
	struct kvd_quota r = { .bytes = bytes };

	kvdmsg_hdr(&r.hdr, KVD_MSG_QUOTA_GRANTED, sizeof(r), seq);
	return kvdmsg_send(fd, &r, NULL, 0);
}

static int fake_release(int fd, uint64_t round)
{
	struct kvd_release m = { .round = round, .bytes = 1 << 20, .deadline_ms = 5000 };

	kvdmsg_hdr(&m.hdr, KVD_MSG_RELEASE, sizeof(m), 0);
	return kvdmsg_send(fd, &m, NULL, 0);
}

/*
 * The script: REGISTER; QUOTA (outer), answered only after a RELEASE whose
 * callback asks for QUOTA (inner), and then in the wrong order: the outer's
 * reply first, read by the inner request. Then a second RELEASE (the
 * callback tries to reconnect), its RELEASED, and the engine's close.
 */
static void *fake_daemon_run(void *arg)
{
	struct fake_daemon *f = arg;
	struct kvd_registered reg = { .engine_id = 1, .revision = KVD_PROTO_REVISION,
				      .features = KVD_FEATURES };
	union kvdmsg_buf buf;
	uint64_t outer, inner;
	int fd, ret;

	f->result = -1;
	fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return NULL;
	ret = fake_recv(fd, &buf, KVD_MSG_REGISTER);
	if (ret)
		goto out;
	kvdmsg_hdr(&reg.hdr, KVD_MSG_REGISTERED, sizeof(reg), buf.hdr.seq);
	if (kvdmsg_send(fd, &reg, NULL, 0) || fake_recv(fd, &buf, KVD_MSG_QUOTA))
		goto out;
	outer = buf.hdr.seq;
	if (fake_release(fd, 1) || fake_recv(fd, &buf, KVD_MSG_QUOTA))
		goto out;
	inner = buf.hdr.seq;
	if (fake_quota_reply(fd, outer, 1 << 20) || fake_quota_reply(fd, inner, 2 << 20))
		goto out;
	if (fake_recv(fd, &buf, KVD_MSG_RELEASED))
		goto out;
	if (fake_release(fd, 2) || fake_recv(fd, &buf, KVD_MSG_RELEASED))
		goto out;
	f->result = 0;
out:
	close(fd);
	return NULL;
}

struct nested_state {
	struct accel_engine *e;
	int calls, inner_ret, reconnect_ret;
	uint64_t inner_granted;
};

static int nested_release(void *arg, uint64_t bytes, uint64_t *released)
{
	struct nested_state *s = arg;

	(void)bytes;
	*released = 0;
	if (!s->calls++)
		s->inner_ret = accel_engine_quota(s->e, 2 << 20, &s->inner_granted);
	else
		s->reconnect_ret = accel_engine_reconnect(s->e);
	return 0;
}

TEST(engine_nested_calls_keep_replies)
{
	struct fake_daemon f = { .listen_fd = -1 };
	struct nested_state st = { .inner_ret = 1, .reconnect_ret = 1 };
	struct accel_engine_ops ops = { .release = nested_release };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t granted = 0;
	int64_t t0;
	pthread_t th;

	snprintf(f.path, sizeof(f.path), "/tmp/accel-api-fake-kvd-%d.sock", (int)getpid());
	unlink(f.path);
	memcpy(sa.sun_path, f.path, sizeof(f.path));
	f.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, f.listen_fd);
	ASSERT_EQ(0, bind(f.listen_fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, listen(f.listen_fd, 4));
	ASSERT_EQ(0, pthread_create(&th, NULL, fake_daemon_run, &f));
	st.e = accel_engine_connect(f.path, "nested", 1, &ops, &st);
	ASSERT_NE(NULL, st.e);
	t0 = kvt_now_ns();
	/* The outer request: its reply is read by the inner one, and kept for it. */
	EXPECT_EQ(0, accel_engine_quota(st.e, 1 << 20, &granted));
	EXPECT_GT(3000000000ll, kvt_now_ns() - t0);
	EXPECT_EQ(1 << 20, granted);
	EXPECT_EQ(0, st.inner_ret);
	EXPECT_EQ(2 << 20, st.inner_granted);
	/* Reconnecting from a callback would strand its caller: refused. */
	EXPECT_LE(1, accel_engine_dispatch(st.e, 5000000000ll));
	EXPECT_EQ(2, st.calls);
	EXPECT_EQ(-EDEADLK, st.reconnect_ret);
	pthread_join(th, NULL);
	EXPECT_EQ(0, f.result);
	accel_engine_close(st.e);
	close(f.listen_fd);
	unlink(f.path);
}

/*
 * A daemon of revision 0: it refuses the longer REGISTER as the old checks
 * did (ERROR -EBADMSG, closing), takes the 56-byte one, answers with the
 * 32-byte REGISTERED, and checks that a HANDOFF comes without the extension.
 */
static void *old_daemon_run(void *arg)
{
	struct fake_daemon *f = arg;
	struct kvd_registered reg = { .engine_id = 7 };
	struct kvd_handoff_id q = { .id = 1 };
	struct kvd_error err = { .error = -EBADMSG, .closing = 1 };
	int fds[KVD_HANDOFF_MAX_FDS], fd;
	union kvdmsg_buf buf;
	unsigned int nfds;
	long n;

	f->result = -1;
	fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	n = fd < 0 ? -1 : kvdmsg_recv(fd, &buf, fds, &nfds, 0);
	if (n != (long)sizeof(struct kvd_register))
		goto out;
	kvdmsg_hdr(&err.hdr, KVD_MSG_ERROR, sizeof(err), buf.hdr.seq);
	snprintf(err.message, sizeof(err.message), "message too long for its type");
	kvdmsg_send(fd, &err, NULL, 0);
	close(fd);
	fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	n = fd < 0 ? -1 : kvdmsg_recv(fd, &buf, fds, &nfds, 0);
	if (n != 56)
		goto out;
	kvdmsg_hdr(&reg.hdr, KVD_MSG_REGISTERED, 32, buf.hdr.seq);
	if (kvdmsg_send(fd, &reg, NULL, 0))
		goto out;
	n = kvdmsg_recv(fd, &buf, fds, &nfds, 0);
	kvdmsg_close_fds(fds, nfds);
	if (n != (long)(sizeof(struct kvd_handoff) + sizeof(struct kvd_obj)) ||
	    buf.hdr.type != KVD_MSG_HANDOFF)
		goto out;
	kvdmsg_hdr(&q.hdr, KVD_MSG_HANDOFF_QUEUED, sizeof(q), buf.hdr.seq);
	q.tag = ((struct kvd_handoff *)(void *)&buf)->tag;
	if (kvdmsg_send(fd, &q, NULL, 0))
		goto out;
	/* A well-formed message with fds the engine has no use for (HANDOFF is E to D). */
	{
		struct kvd_handoff *h = (void *)&buf;
		size_t size = sizeof(*h) + sizeof(struct kvd_obj);

		memset(&buf, 0, sizeof(buf));
		kvdmsg_hdr(&h->hdr, KVD_MSG_HANDOFF, size, 0);
		memcpy(h->peer, "old-peer", 8);
		h->count = 1;
		h->objs[0].kind = KVD_OBJ_REGION;
		if (kvdmsg_send(fd, h, &fd, 1))
			goto out;
	}
	f->result = 0;
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Against a daemon of revision 0, libaccel registers with revision 0's REGISTER. */
TEST(engine_registers_with_an_old_daemon)
{
	struct fake_daemon f = { .listen_fd = -1 };
	enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct accel_engine *e;
	pthread_t th;
	int mfd, before;

	snprintf(f.path, sizeof(f.path), "/tmp/accel-api-old-kvd-%d.sock", (int)getpid());
	unlink(f.path);
	memcpy(sa.sun_path, f.path, sizeof(f.path));
	f.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, f.listen_fd);
	ASSERT_EQ(0, bind(f.listen_fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, listen(f.listen_fd, 4));
	ASSERT_EQ(0, pthread_create(&th, NULL, old_daemon_run, &f));
	e = accel_engine_connect(f.path, "old-peer", 1, NULL, NULL);
	ASSERT_NE(NULL, e);
	/* Any fd with a size stands in for a dma-buf here: the fake checks nothing. */
	mfd = memfd_create("handoff", MFD_CLOEXEC);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, 4096));
	EXPECT_EQ(0, accel_engine_handoff(e, "other", 3, &mfd, &kind, 1));
	pthread_join(th, NULL);
	EXPECT_EQ(0, f.result);
	/*
	 * Its fd is closed, not kept: only offers' fds are the engine's. The
	 * fake daemon has closed the connection after it, so the engine's
	 * socket is gone too: one fd fewer.
	 */
	before = open_fds();
	EXPECT_LE(1, accel_engine_dispatch(e, 2000000000ll));
	EXPECT_EQ(-ECONNRESET, accel_engine_fd(e));
	EXPECT_EQ(before - 1, open_fds());
	close(mfd);
	accel_engine_close(e);
	close(f.listen_fd);
	unlink(f.path);
}

/* Every function refuses NULL objects with EINVAL and never crashes. */
TEST(null_arguments)
{
	struct accel_device_info info;
	struct accel_bind_op op = { 0 };
	struct accel_slot_binding q;
	int fd, n = 0;
	size_t len = 1;
	char c;

	EXPECT_EQ(-EINVAL, accel_device_list(NULL, 1));
	EXPECT_EQ(-EINVAL, accel_device_info(NULL, &info));
	EXPECT_EQ(-EINVAL, accel_device_fd(NULL));
	accel_device_close(NULL);
	accel_region_destroy(NULL);
	accel_space_destroy(NULL);
	accel_fence_destroy(NULL);
	EXPECT_EQ(0, accel_region_size(NULL));
	EXPECT_EQ(0, accel_region_block_size(NULL));
	EXPECT_EQ(0, accel_region_id(NULL));
	EXPECT_EQ(-1, accel_region_node(NULL));
	EXPECT_EQ(-EINVAL, accel_region_is_foreign(NULL));
	EXPECT_EQ(NULL, accel_region_map(NULL));
	EXPECT_EQ(-EINVAL, accel_region_export(NULL, &fd));
	EXPECT_EQ(NULL, accel_region_import(NULL, 0));
	EXPECT_EQ(NULL, accel_region_obj(NULL));
	EXPECT_EQ(NULL, accel_space_create(NULL, 1, 4096));
	EXPECT_EQ(0, accel_space_slots(NULL));
	EXPECT_EQ(0, accel_space_block_size(NULL));
	EXPECT_EQ(-EINVAL, accel_space_bind(NULL, &op, 1, NULL));
	EXPECT_EQ(-EINVAL, accel_space_query(NULL, 0, 1, &q, NULL));
	EXPECT_EQ(NULL, accel_space_map(NULL, NULL));
	EXPECT_EQ(-EINVAL, accel_space_generation(NULL));
	EXPECT_EQ(-EINVAL, accel_space_export(NULL, &fd));
	EXPECT_EQ(NULL, accel_space_import(NULL, 0));
	EXPECT_EQ(NULL, accel_space_obj(NULL));
	EXPECT_EQ(NULL, accel_copy(NULL, NULL, 1, NULL));
	EXPECT_EQ(-EINVAL, accel_fence_status(NULL));
	EXPECT_EQ(-EINVAL, accel_fence_wait(NULL, 0));
	EXPECT_EQ(-EINVAL, accel_fence_fd(NULL));
	EXPECT_EQ(-EINVAL, accel_recv_fds(0, NULL, NULL, &c, &len));
	EXPECT_EQ(-EINVAL, accel_recv_fds(0, NULL, &n, NULL, &len));
}

TEST_F(api, space_and_bind_bad_arguments)
{
	struct accel_space *s = accel_space_create(self->dev, 2, 4096);
	struct accel_bind_op op = { .kind = ACCEL_UNBIND, .slot = 0 };
	struct accel_slot_binding q;

	ASSERT_NE(NULL, s);
	errno = 0;
	EXPECT_EQ(NULL, accel_space_create(self->dev, 0, 4096));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_space_create(self->dev, 2, 4095));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-EINVAL, accel_space_bind(s, &op, 0, NULL));
	EXPECT_EQ(-EINVAL, accel_space_bind(s, NULL, 1, NULL));
	EXPECT_EQ(-ENOENT, accel_space_bind(s, &op, 1, NULL));	/* slot is empty */
	EXPECT_EQ(-EINVAL, accel_space_query(s, 0, 0, &q, NULL));
	EXPECT_EQ(-EINVAL, accel_space_query(s, 1, 2, &q, NULL));
	accel_space_destroy(s);
}

TEST_HARNESS_MAIN
