// SPDX-License-Identifier: GPL-2.0-only
/*
 * The device's mmap offset range (DRM's, 1 TiB for all objects) is shared
 * by every client: one user's spaces may reserve at most space_window_gb
 * of it (-EDQUOT beyond, for that user only, whatever the number of its
 * processes), so other users can still create and map regions and spaces;
 * spaces created with KVACCEL_SPACE_CREATE_NO_OFFSET reserve nothing and
 * map through their dma-buf.
 */
#include <grp.h>
#include <sys/stat.h>

#include "kvtest.h"
#include "kselftest_harness.h"

#define WIN_BS		(2u << 20)
#define WIN_SLOTS	32768u		/* 64 GiB windows, the largest */
#define WIN_BYTES	((uint64_t)WIN_SLOTS * WIN_BS)

/* The path of the device node behind @fd. */
static int node_path(int fd, char *path, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, len - 1);
	if (n < 0)
		return -errno;
	path[n] = 0;
	return 0;
}

static void become(uid_t uid)
{
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
		_exit(90);
}

/*
 * As @uid: create 64 GiB spaces until one fails; write the count and the
 * error to @out, then hold them until @hold has something to read.
 */
static void fill_offsets(uid_t uid, int out, int hold)
{
	int fd, n = 0, ret = 0, res[2];
	char c;

	become(uid);
	fd = kvt_open();
	if (fd < 0)
		_exit(91);
	while (n < 64 && !(ret = kvt_space_create(fd, WIN_SLOTS, WIN_BS, NULL)))
		n++;
	res[0] = n;
	res[1] = ret;
	if (write(out, res, sizeof(res)) != sizeof(res))
		_exit(92);
	if (read(hold, &c, 1) < 0)
		_exit(93);
	_exit(0);
}

/* As @uid: a region and a space, both created, bound, mapped and used. */
static int use_device(uid_t uid)
{
	uint32_t r, sp;
	unsigned char *m, *w;
	size_t wsize;
	int fd;

	become(uid);
	fd = kvt_open();
	if (fd < 0)
		return 1;
	if (kvt_region_create(fd, 4 * KVT_MIB, WIN_BS, &r))
		return 2;
	m = kvt_region_map(fd, r, 4 * KVT_MIB);
	if (m == MAP_FAILED)
		return 3;
	if (kvt_space_create(fd, 2, WIN_BS, &sp) || kvt_bind1(fd, sp, kvt_op_bind(0, r, 1)))
		return 4;
	w = kvt_space_map(fd, sp, &wsize);
	if (w == MAP_FAILED)
		return 5;
	w[100] = 0x5a;
	return m[WIN_BS + 100] == 0x5a ? 0 : 6;
}

static pid_t spawn_fill(uid_t uid, int res[2], int hold[2])
{
	pid_t pid;

	if (pipe(res) || pipe(hold))
		return -1;
	pid = fork();
	if (!pid) {
		close(res[0]);
		close(hold[1]);
		fill_offsets(uid, res[1], hold[0]);
	}
	/* A child that dies early then ends the parent's read. */
	close(res[1]);
	close(hold[0]);
	return pid;
}

TEST(one_user_cannot_fill_the_offset_range)
{
	int fd = kvt_open(), res1[2], hold1[2], res2[2], hold2[2], got[2], st;
	long long cap = kvt_read_ll("/sys/module/kvaccel/parameters/space_window_gb");
	pid_t a1, a2, b;
	char path[256];
	struct stat sb;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, node_path(fd, path, sizeof(path)));
	ASSERT_EQ(0, stat(path, &sb));
	ASSERT_EQ(0, chmod(path, 0666));

	/* One unprivileged process fills what its user may have... */
	a1 = spawn_fill(65534, res1, hold1);
	ASSERT_LE(0, a1);
	ASSERT_EQ(sizeof(got), read(res1[0], got, sizeof(got)));
	TH_LOG("uid 65534: %d spaces of 64 GiB, then %d (space_window_gb %lld)",
	       got[0], got[1], cap);
	EXPECT_EQ(-EDQUOT, got[1]);
	EXPECT_EQ((cap << 30) / (WIN_BYTES + 4096), got[0]);
	/* ...and a second process of the same user gets nothing more... */
	a2 = spawn_fill(65534, res2, hold2);
	ASSERT_LE(0, a2);
	if (read(res2[0], got, sizeof(got)) != sizeof(got)) {
		ASSERT_EQ(a2, waitpid(a2, &st, 0));
		TH_LOG("second process exited with %d", WEXITSTATUS(st));
		ASSERT_TRUE(0);
	}
	EXPECT_EQ(0, got[0]);
	EXPECT_EQ(-EDQUOT, got[1]);
	/* ...while another user creates, binds and maps a region and a space. */
	b = fork();
	ASSERT_LE(0, b);
	if (!b)
		_exit(use_device(65533));
	ASSERT_EQ(b, waitpid(b, &st, 0));
	EXPECT_EQ(0, WEXITSTATUS(st));

	close(hold1[1]);
	close(hold2[1]);
	ASSERT_EQ(a1, waitpid(a1, &st, 0));
	ASSERT_EQ(a2, waitpid(a2, &st, 0));
	/* Gone with its spaces: the user's share is free again. */
	a1 = spawn_fill(65534, res1, hold1);
	ASSERT_LE(0, a1);
	ASSERT_EQ(sizeof(got), read(res1[0], got, sizeof(got)));
	EXPECT_EQ((cap << 30) / (WIN_BYTES + 4096), got[0]);
	close(hold1[1]);
	ASSERT_EQ(a1, waitpid(a1, &st, 0));
	chmod(path, sb.st_mode & 07777);
	close(fd);
}

/*
 * Spaces without an mmap offset: more window than the whole offset range,
 * each mapped through its dma-buf at offset 0, bound, unbound (SIGBUS).
 */
TEST(no_offset_spaces_map_through_dmabuf)
{
	int fd = kvt_open(), dmabuf, i;
	struct drm_kvaccel_space_info si = { 0 };
	struct drm_kvaccel_region_info ri;
	uint32_t sp[40], r;
	unsigned char *m, *w;

	ASSERT_LE(0, fd);
	for (i = 0; i < 40; i++)
		ASSERT_EQ(0, kvt_space_create_ex(fd, WIN_SLOTS, WIN_BS,
						 KVACCEL_SPACE_CREATE_NO_OFFSET, &sp[i]));
	si.handle = sp[39];
	ASSERT_EQ(0, kvt_ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &si));
	EXPECT_EQ(0, si.mmap_offset);
	ASSERT_EQ(0, kvt_region_info(fd, sp[39], &ri));
	EXPECT_EQ(0, ri.mmap_offset);

	ASSERT_EQ(0, kvt_region_create(fd, 4 * KVT_MIB, WIN_BS, &r));
	m = kvt_region_map(fd, r, 4 * KVT_MIB);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, kvt_bind1(fd, sp[39], kvt_op_bind(1, r, 0)));
	ASSERT_EQ(0, kvt_export(fd, sp[39], &dmabuf));
	w = mmap(NULL, 2 * WIN_BS, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	ASSERT_NE(MAP_FAILED, w);
	w[WIN_BS + 8] = 0x77;
	EXPECT_EQ(0x77, m[8]);
	kvt_bus_install();
	EXPECT_EQ(-1, kvt_read_or_bus((uint32_t *)w));
	ASSERT_EQ(0, kvt_bind1(fd, sp[39], kvt_op(KVACCEL_BIND_OP_UNBIND, 1, 0)));
	EXPECT_EQ(-1, kvt_read_or_bus((uint32_t *)(w + WIN_BS)));
	munmap(w, 2 * WIN_BS);
	munmap(m, 4 * KVT_MIB);
	close(dmabuf);
	close(fd);
}

TEST_HARNESS_MAIN
