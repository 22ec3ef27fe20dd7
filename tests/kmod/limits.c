// SPDX-License-Identifier: GPL-2.0-only
/*
 * Accounting: per-process quota, device limit, memory cgroup charging, and
 * a killed process freeing everything it held. Each failure must leave
 * usage exactly where it was.
 */
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>

#include "kvtest.h"
#include "kselftest_harness.h"

static uint64_t usage(int fd)
{
	return kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
}

static uint64_t pages(int fd)
{
	return kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
}

FIXTURE(quota) {
	int fd;
	long long old_quota;
};

FIXTURE_SETUP(quota)
{
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, kvt_set_modparam("default_quota_mb", 16, &self->old_quota));
}

FIXTURE_TEARDOWN(quota)
{
	kvt_set_modparam("default_quota_mb", self->old_quota, NULL);
	close(self->fd);
}

TEST_F(quota, reported)
{
	EXPECT_EQ(16 * KVT_MIB, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_QUOTA));
}

TEST_F(quota, exhaust_then_edquot)
{
	uint64_t u0 = usage(self->fd), p0 = pages(self->fd), mine;
	uint32_t h[4];
	int i;

	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, kvt_region_create(self->fd, 4 * KVT_MIB, 64 * KVT_KIB, &h[i]));
	mine = kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_USAGE);
	EXPECT_EQ(16 * KVT_MIB, mine);
	EXPECT_EQ(-EDQUOT, kvt_region_create(self->fd, 4096, 4096, NULL));
	EXPECT_EQ(mine, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_USAGE));
	EXPECT_EQ(u0 + 16 * KVT_MIB, usage(self->fd));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, kvt_close_handle(self->fd, h[i]));
	EXPECT_EQ(u0, usage(self->fd));
	EXPECT_EQ(p0, pages(self->fd));
	EXPECT_EQ(0, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_USAGE));
}

TEST_F(quota, single_region_over_quota)
{
	uint64_t u0 = usage(self->fd);

	EXPECT_EQ(-EDQUOT, kvt_region_create(self->fd, 18 * KVT_MIB, 2 * KVT_MIB, NULL));
	EXPECT_EQ(u0, usage(self->fd));
}

/* The quota is the process's, so a second open file does not get more. */
TEST_F(quota, reopen_does_not_bypass)
{
	uint32_t h;
	int fd2;

	ASSERT_EQ(0, kvt_region_create(self->fd, 12 * KVT_MIB, 2 * KVT_MIB, &h));
	fd2 = kvt_open();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EDQUOT, kvt_region_create(fd2, 8 * KVT_MIB, 2 * KVT_MIB, NULL));
	EXPECT_EQ(0, kvt_region_create(fd2, 4 * KVT_MIB, 2 * KVT_MIB, NULL));
	close(fd2);
	EXPECT_EQ(12 * KVT_MIB, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_USAGE));
}

/* An inherited file charges the process that uses it, not the opener. */
TEST_F(quota, charged_to_calling_process)
{
	uint32_t h;
	int status;
	pid_t pid;

	ASSERT_EQ(0, kvt_region_create(self->fd, 6 * KVT_MIB, 2 * KVT_MIB, &h));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		uint64_t mine;

		if (kvt_region_create(self->fd, 6 * KVT_MIB, 2 * KVT_MIB, NULL))
			_exit(1);
		if (kvt_param(self->fd, KVACCEL_PARAM_CLIENT_USAGE, &mine) ||
		    mine != 6 * KVT_MIB)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(6 * KVT_MIB, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_USAGE));
}

/* In a child of uid @uid (its own open of @path): create @mib MiB; the result. */
static int create_as(const char *path, uid_t uid, uint64_t mib)
{
	int status, fd, ret;
	pid_t pid = fork();

	if (pid < 0)
		return -1000;
	if (!pid) {
		if (uid && (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
			    setresuid(uid, uid, uid)))
			_exit(99);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			_exit(98);
		ret = kvt_region_create(fd, mib * KVT_MIB, 2 * KVT_MIB, NULL);
		_exit(ret == -EDQUOT ? 2 : ret ? 3 : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1001;
	return WEXITSTATUS(status) == 2 ? -EDQUOT : WEXITSTATUS(status) ? -1002 : 0;
}

/*
 * The default quota binds a user's processes together: a fork gets what
 * its user has left, not a quota of its own; another user is not touched.
 */
TEST_F(quota, fork_does_not_multiply_the_default_quota)
{
	char link[64], path[256];
	struct stat sb;
	uint32_t h;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", self->fd);
	n = readlink(link, path, sizeof(path) - 1);
	ASSERT_LT(0, n);
	path[n] = 0;
	ASSERT_EQ(0, stat(path, &sb));
	ASSERT_EQ(0, chmod(path, 0666));
	ASSERT_EQ(0, kvt_region_create(self->fd, 12 * KVT_MIB, 2 * KVT_MIB, &h));
	EXPECT_EQ(-EDQUOT, create_as(path, 0, 12));
	EXPECT_EQ(0, create_as(path, 0, 4));
	EXPECT_EQ(0, create_as(path, 65534, 12));
	/* Freed by the parent: the user's share is back. */
	ASSERT_EQ(0, kvt_close_handle(self->fd, h));
	EXPECT_EQ(0, create_as(path, 0, 16));
	chmod(path, sb.st_mode & 07777);
}

FIXTURE(limit) {
	int fd;
	long long old_limit;
	uint64_t u0, p0;
};

FIXTURE_SETUP(limit)
{
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	self->u0 = usage(self->fd);
	self->p0 = pages(self->fd);
	/* Room for 8 MiB more than what is in use now. */
	ASSERT_EQ(0, kvt_set_modparam("limit_mb", (long long)(self->u0 >> 20) + 8,
				      &self->old_limit));
}

FIXTURE_TEARDOWN(limit)
{
	kvt_set_modparam("limit_mb", self->old_limit, NULL);
	EXPECT_EQ(self->u0, usage(self->fd));
	EXPECT_EQ(self->p0, pages(self->fd));
	close(self->fd);
}

TEST_F(limit, reported)
{
	EXPECT_EQ(((self->u0 >> 20) + 8) << 20,
		  kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_LIMIT));
}

TEST_F(limit, exhaust_then_enomem)
{
	uint32_t h[2];

	ASSERT_EQ(0, kvt_region_create(self->fd, 4 * KVT_MIB, 2 * KVT_MIB, &h[0]));
	ASSERT_EQ(0, kvt_region_create(self->fd, 4 * KVT_MIB - (self->u0 & (KVT_MIB - 1)),
				       4096, &h[1]));
	EXPECT_EQ(-ENOMEM, kvt_region_create(self->fd, 4096, 4096, NULL));
	EXPECT_EQ(((self->u0 >> 20) + 8) << 20, usage(self->fd));
	ASSERT_EQ(0, kvt_close_handle(self->fd, h[0]));
	ASSERT_EQ(0, kvt_close_handle(self->fd, h[1]));
}

TEST_F(limit, single_region_over_limit)
{
	EXPECT_EQ(-ENOMEM, kvt_region_create(self->fd, 10 * KVT_MIB, 2 * KVT_MIB, NULL));
	EXPECT_EQ(self->u0, usage(self->fd));
}

/* Other processes share the device limit. */
TEST_F(limit, shared_between_processes)
{
	int status;
	uint32_t h;
	pid_t pid;

	ASSERT_EQ(0, kvt_region_create(self->fd, 6 * KVT_MIB, 2 * KVT_MIB, &h));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = kvt_open();

		_exit(kvt_region_create(fd, 4 * KVT_MIB, 2 * KVT_MIB, NULL) == -ENOMEM ?
		      0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(0, kvt_close_handle(self->fd, h));
}

/*
 * A process killed while it holds regions, mappings and an exported
 * dma-buf frees all of it: usage and the module's page count return.
 */
TEST(killed_process_frees_everything)
{
	int fd = kvt_open(), pipefd[2], status;
	uint64_t u0, p0, r0;
	pid_t pid;
	char c;

	ASSERT_LE(0, fd);
	u0 = usage(fd);
	p0 = pages(fd);
	r0 = kvt_param_or_die(fd, KVACCEL_PARAM_REGIONS);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int cfd = kvt_open(), dmabuf, i;
		uint32_t h;
		void *p;

		for (i = 0; i < 8; i++) {
			uint32_t bs = i & 1 ? 4096 : 2 * KVT_MIB;

			if (kvt_region_create(cfd, 4 * KVT_MIB, bs, &h))
				_exit(1);
			p = kvt_region_map(cfd, h, 4 * KVT_MIB);
			if (p == MAP_FAILED)
				_exit(2);
			memset(p, i, 4 * KVT_MIB);
			if (i == 3 && kvt_export(cfd, h, &dmabuf))
				_exit(3);
		}
		if (write(pipefd[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	EXPECT_EQ(u0 + 32 * KVT_MIB, usage(fd));
	EXPECT_EQ(r0 + 8, kvt_param_or_die(fd, KVACCEL_PARAM_REGIONS));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(u0, usage(fd));
	EXPECT_EQ(p0, pages(fd));
	EXPECT_EQ(r0, kvt_param_or_die(fd, KVACCEL_PARAM_REGIONS));
	close(fd);
}

/* A process killed while it allocates a large region loses nothing either. */
TEST(killed_during_creation)
{
	int fd = kvt_open(), status, i;
	uint64_t u0, p0;

	ASSERT_LE(0, fd);
	u0 = usage(fd);
	p0 = pages(fd);
	for (i = 0; i < 3; i++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid) {
			int cfd = kvt_open();

			for (;;) {
				uint32_t h;

				if (!kvt_region_create(cfd, 128 * KVT_MIB, 4096, &h))
					kvt_close_handle(cfd, h);
			}
		}
		usleep(20000 + i * 30000);
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
	}
	EXPECT_EQ(u0, usage(fd));
	EXPECT_EQ(p0, pages(fd));
	close(fd);
}

/* ---- memory cgroup ---- */

#define CG_ROOT "/sys/fs/cgroup"
#define CG_TEST CG_ROOT "/kvtest"

FIXTURE(memcg) {
	int ok;
};

FIXTURE_SETUP(memcg)
{
	char buf[256];

	if (kvt_read_file(CG_ROOT "/cgroup.controllers", buf, sizeof(buf)) ||
	    !strstr(buf, "memory"))
		SKIP(return, "no cgroup2 memory controller");
	kvt_write_file(CG_ROOT "/cgroup.subtree_control", "+memory");
	rmdir(CG_TEST);
	ASSERT_EQ(0, mkdir(CG_TEST, 0755));
	self->ok = 1;
}

FIXTURE_TEARDOWN(memcg)
{
	if (self->ok)
		rmdir(CG_TEST);
}

static long long cg_event(const char *name)
{
	char buf[1024], *p;

	if (kvt_read_file(CG_TEST "/memory.events", buf, sizeof(buf)))
		return -1;
	p = strstr(buf, name);
	return p ? strtoll(p + strlen(name) + 1, NULL, 10) : -1;
}

/*
 * With memory.max below the request, creation fails with -ENOMEM (not the
 * OOM killer) and the cgroup's charge returns to where it was.
 */
TEST_F(memcg, limit_gives_enomem)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		long long before, after, charged;
		char buf[32];
		uint32_t h;
		int fd, ret;

		snprintf(buf, sizeof(buf), "%d", getpid());
		if (kvt_write_file(CG_TEST "/cgroup.procs", buf))
			_exit(10);
		fd = kvt_open();
		if (fd < 0)
			_exit(11);
		before = kvt_read_ll(CG_TEST "/memory.current");
		snprintf(buf, sizeof(buf), "%lld", before + 8 * (long long)KVT_MIB);
		if (kvt_write_file(CG_TEST "/memory.max", buf))
			_exit(12);

		/* Within the cgroup's limit: charged while it lives. */
		if (kvt_region_create(fd, 4 * KVT_MIB, 2 * KVT_MIB, &h))
			_exit(13);
		charged = kvt_read_ll(CG_TEST "/memory.current") - before;
		if (charged < 4 * (long long)KVT_MIB)
			_exit(14);
		kvt_close_handle(fd, h);

		ret = kvt_region_create(fd, 64 * KVT_MIB, 2 * KVT_MIB, &h);
		if (ret != -ENOMEM)
			_exit(15);
		ret = kvt_region_create(fd, 64 * KVT_MIB, 4096, &h);
		if (ret != -ENOMEM)
			_exit(16);
		after = kvt_read_ll(CG_TEST "/memory.current");
		/* Per-CPU charge caches may hold a few pages back. */
		if (after > before + 1 * (long long)KVT_MIB) {
			fprintf(stderr, "memory.current %lld -> %lld\n", before, after);
			_exit(17);
		}
		if (cg_event("oom_kill") != 0)
			_exit(18);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
