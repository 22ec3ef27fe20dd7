// SPDX-License-Identifier: GPL-2.0-only
/*
 * libaccel's window tiers (ACCEL_TIER_WINDOW) against the module: a host
 * tier addressed through a space bound to its region, whose blocks are
 * rebound to other regions' pages without copying.
 *
 * The facts the design rests on: a region's key (its dma-buf's inode) is
 * the same across re-exports and in another process; PRIME self-import
 * gives the region itself (the same handle in one file, a region, not an
 * import, in another file). Two engines (fork, dma-bufs over a socketpair)
 * exchange blocks: B binds its blocks 7..9 to A's pages 3..5 and reads A's
 * bytes; A takes B's displaced pages for its 3..5; each side's writes stay
 * its own; a mover job copies a rebound block's bytes; A exits and B still
 * reads A's bytes (the kernel keeps the region alive, counted on the
 * device) until B rebinds back, and the device usage returns to what it
 * was. Every error of the calls; the mover's copies of a window tier give
 * the same bytes as a plain host tier's.
 */
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "accel_test.h"
#include "kvtest.h"
#include "kselftest_harness.h"

/* 12 KiB blocks: three 4 KiB region blocks (slots) each. */
#define BB	(3 * 4096)
#define K	3
#define NB	12

static struct accel_tier *tier(struct accel_device *dev, uint64_t bb, uint32_t n, uint32_t flags)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = bb, .blocks = n, .flags = flags);

	return accel_tier_create_host(dev, &o);
}

static void *addr(const struct accel_tier *t, uint32_t b)
{
	return accel_tier_block_addr(t, b);
}

static uint64_t ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : (uint64_t)st.st_ino;
}

static int done_one(struct accel_mover *m, uint64_t id)
{
	struct accel_mover_done d;
	int n = accel_mover_poll(m, &d, 1, 30ll * 1000000000);

	if (n != 1)
		return n < 0 ? n : -ETIME;
	if (d.job_id != id)
		return -ESRCH;
	return d.status;
}

static struct accel_tier_rebind rb(uint32_t block, uint64_t key, uint32_t first)
{
	return (struct accel_tier_rebind){ .block = block, .to = { .key = key, .first = first } };
}

/* Back block b of window tier @t by the page of block n - 1 - b: a layout no region offset gives. */
static int reverse_pages(struct accel_tier *t)
{
	ACCEL_OPTS(accel_tier_info, info);
	struct accel_tier_rebind *ops;
	uint32_t b, k;
	int ret;

	ret = accel_tier_info(t, &info);
	if (ret)
		return ret;
	k = (uint32_t)(info.block_bytes / info.region_block_bytes);
	ops = calloc(info.blocks, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	for (b = 0; b < info.blocks; b++)
		ops[b] = rb(b, accel_tier_key(t), (info.blocks - 1 - b) * k);
	ret = accel_tier_rebind(t, ops, info.blocks);
	free(ops);
	return ret;
}

FIXTURE(window) {
	struct accel_device *dev;
	struct accel_mover *m;
	uint64_t usage0;
};

FIXTURE_SETUP(window)
{
	self->dev = accel_device_open(NULL);
	ASSERT_NE(NULL, self->dev);
	self->usage0 = accel_test_device_usage(self->dev);
	self->m = accel_mover_create(NULL);
	ASSERT_NE(NULL, self->m);
}

FIXTURE_TEARDOWN(window)
{
	accel_mover_destroy(self->m);
	EXPECT_EQ(self->usage0, accel_test_device_usage_settled(self->dev, self->usage0));
	accel_device_close(self->dev);
}

/*
 * A window tier's shape, its identity bindings (the region's bytes at the
 * same offsets), its key (stable across re-exports), PRIME self-import.
 */
TEST_F(window, shape_key_and_self_import)
{
	struct accel_tier *t = tier(self->dev, BB, NB, ACCEL_TIER_WINDOW);
	struct drm_kvaccel_region_info ri, ri2;
	ACCEL_OPTS(accel_tier_info, info);
	struct accel_tier_page pg;
	struct accel_device *other;
	struct accel_tier_rebind op = rb(0, 1, 0);
	uint32_t h1, h2, h3, b;
	struct accel_region *r;
	uint64_t key;
	int fd, fd2;

	ASSERT_NE(NULL, t) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, accel_tier_info(t, &info));
	EXPECT_EQ(ACCEL_TIER_HOST, info.kind);
	EXPECT_EQ(ACCEL_TIER_WINDOW, info.flags);
	EXPECT_EQ(4096, info.region_block_bytes);
	EXPECT_EQ(BB, info.block_bytes);
	for (b = 0; b < NB; b++) {
		ASSERT_EQ(0, accel_tier_page(t, b, &pg));
		EXPECT_EQ(accel_tier_key(t), pg.key);
		EXPECT_EQ(b * K, pg.first);
		EXPECT_EQ(0, pg.pad);
		kvt_fill(addr(t, b), BB, 500 + b);
	}
	/* The key is the region dma-buf's inode, the same on every export. */
	ASSERT_EQ(0, accel_tier_export(t, &fd));
	EXPECT_NE(0, accel_tier_key(t));
	EXPECT_EQ(accel_tier_key(t), ino(fd));
	close(fd);
	ASSERT_EQ(0, accel_tier_page_export(t, accel_tier_key(t), &fd));
	EXPECT_EQ(accel_tier_key(t), ino(fd));
	EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* Its region, imported, has the window's bytes at the same offsets. */
	r = accel_region_import(self->dev, fd);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(0, accel_region_is_foreign(r));
	for (b = 0; b < NB; b++)
		EXPECT_TRUE(kvt_check((char *)accel_region_map(r) + (size_t)b * BB, BB, 500 + b));
	accel_region_destroy(r);
	/*
	 * PRIME self-import: the same handle every time in one file (the one
	 * the tier owns: not closed here), the region itself (not an import).
	 */
	ASSERT_EQ(0, kvt_import(accel_device_fd(self->dev), fd, &h1));
	ASSERT_EQ(0, kvt_import(accel_device_fd(self->dev), fd, &h2));
	EXPECT_EQ(h1, h2);
	ASSERT_EQ(0, kvt_region_info(accel_device_fd(self->dev), h1, &ri));
	EXPECT_EQ(KVACCEL_OBJECT_REGION, ri.type);
	EXPECT_EQ((uint64_t)NB * BB, ri.size);
	/* Another file: its own handle, the same region (id), the same dma-buf on re-export. */
	other = accel_device_open(NULL);
	ASSERT_NE(NULL, other);
	ASSERT_EQ(0, kvt_import(accel_device_fd(other), fd, &h3));
	ASSERT_EQ(0, kvt_region_info(accel_device_fd(other), h3, &ri2));
	EXPECT_EQ(KVACCEL_OBJECT_REGION, ri2.type);
	EXPECT_EQ(ri.region_id, ri2.region_id);
	ASSERT_EQ(0, kvt_export(accel_device_fd(other), h3, &fd2));
	EXPECT_EQ(accel_tier_key(t), ino(fd2));
	close(fd2);
	kvt_close_handle(accel_device_fd(other), h3);
	accel_device_close(other);
	close(fd);
	/* Still the same key after every fd of the dma-buf was closed. */
	ASSERT_EQ(0, accel_tier_export(t, &fd));
	EXPECT_EQ(accel_tier_key(t), ino(fd));
	close(fd);
	accel_tier_destroy(t);
	/* Any other tier is no window. */
	t = tier(self->dev, BB, 2, 0);
	ASSERT_NE(NULL, t);
	ASSERT_EQ(0, accel_tier_info(t, &info));
	EXPECT_EQ(0, info.flags);
	EXPECT_EQ(0, accel_tier_key(t));
	EXPECT_EQ(-EOPNOTSUPP, accel_tier_page(t, 0, &pg));
	EXPECT_EQ(-EOPNOTSUPP, accel_tier_page_export(t, 1, &fd));
	EXPECT_EQ(-EOPNOTSUPP, accel_tier_hold(t, 0, &key));
	EXPECT_EQ(-EOPNOTSUPP, accel_tier_rebind(t, &op, 1));
	accel_tier_destroy(t);
	EXPECT_EQ(0, accel_tier_key(NULL));
}

/* Rebinding within the own region: two blocks exchange pages, no byte copied. */
TEST_F(window, rebind_within_own_region)
{
	struct accel_tier *t = tier(self->dev, BB, NB, ACCEL_TIER_WINDOW);
	struct accel_tier_rebind ops[2];
	struct accel_tier_page pg;
	uint64_t key;

	ASSERT_NE(NULL, t);
	key = accel_tier_key(t);
	kvt_fill(addr(t, 1), BB, 11);
	kvt_fill(addr(t, 2), BB, 22);
	ops[0] = rb(1, key, 2 * K);
	ops[1] = rb(2, key, 1 * K);
	ASSERT_EQ(0, accel_tier_rebind(t, ops, 2));
	EXPECT_TRUE(kvt_check(addr(t, 1), BB, 22));
	EXPECT_TRUE(kvt_check(addr(t, 2), BB, 11));
	ASSERT_EQ(0, accel_tier_page(t, 1, &pg));
	EXPECT_EQ(key, pg.key);
	EXPECT_EQ(2 * K, pg.first);
	/* A page that is not a tier block's start: any run of K region blocks. */
	ops[0] = rb(5, key, 1);
	ASSERT_EQ(0, accel_tier_rebind(t, ops, 1));
	ASSERT_EQ(0, accel_tier_page(t, 5, &pg));
	EXPECT_EQ(1, pg.first);
	EXPECT_EQ(0, memcmp((char *)addr(t, 5), (char *)addr(t, 0) + 4096, 2 * 4096));
	EXPECT_EQ(0, memcmp((char *)addr(t, 5) + 2 * 4096, (char *)addr(t, 2), 4096));
	accel_tier_destroy(t);
}

/* Every error, each alone, with nothing changed. */
TEST_F(window, errors)
{
	struct accel_tier *t = tier(self->dev, BB, NB, ACCEL_TIER_WINDOW), *o8;
	ACCEL_OPTS(accel_tier_opts, mo, .block_bytes = BB, .blocks = 2, .flags = ACCEL_TIER_WINDOW);
	ACCEL_OPTS(accel_tier_cuda_opts, co, .device = 0, .block_bytes = 2 << 20, .blocks = 1,
		   .flags = ACCEL_TIER_WINDOW);
	struct accel_tier_rebind ops[2];
	struct accel_tier_page pg;
	uint64_t key, k2;
	int p[2], fd, vgem;

	ASSERT_NE(NULL, t);
	key = accel_tier_key(t);
	/* Not a window: memfd and device tiers. */
	errno = 0;
	EXPECT_EQ(NULL, accel_tier_create_memfd(&mo));
	EXPECT_EQ(EOPNOTSUPP, errno);
	errno = 0;
	EXPECT_EQ(NULL, accel_tier_create_cuda(&co));
	EXPECT_EQ(EOPNOTSUPP, errno);
	/* An unknown flag still EINVAL. */
	errno = 0;
	EXPECT_EQ(NULL, tier(self->dev, BB, 2, 1u << 7));
	EXPECT_EQ(EINVAL, errno);

	/* accel_tier_page */
	EXPECT_EQ(-EINVAL, accel_tier_page(t, NB, &pg));
	EXPECT_EQ(-EINVAL, accel_tier_page(t, 0, NULL));
	EXPECT_EQ(-EINVAL, accel_tier_page(NULL, 0, &pg));

	/* accel_tier_rebind: unheld key, block twice, past the end, page past the region. */
	ops[0] = rb(0, key + 12345, 0);
	EXPECT_EQ(-ENOENT, accel_tier_rebind(t, ops, 1));
	ops[0] = rb(1, key, 6 * K);
	ops[1] = rb(1, key, 7 * K);
	EXPECT_EQ(-EINVAL, accel_tier_rebind(t, ops, 2));
	ops[1] = rb(NB, key, 7 * K);
	EXPECT_EQ(-EINVAL, accel_tier_rebind(t, ops, 2));
	ops[1] = rb(2, key, NB * K - K + 1);
	EXPECT_EQ(-EINVAL, accel_tier_rebind(t, ops, 2));
	ops[1] = rb(2, key, UINT32_MAX);
	EXPECT_EQ(-EINVAL, accel_tier_rebind(t, ops, 2));
	ops[1] = rb(2, key, 0);
	ops[1].pad = 1;
	EXPECT_EQ(-EINVAL, accel_tier_rebind(t, ops, 2));
	ops[1] = rb(2, key, 0);
	ops[1].to.pad = 1;
	EXPECT_EQ(-EINVAL, accel_tier_rebind(t, ops, 2));
	ops[1] = rb(2, key + 1, 0);
	EXPECT_EQ(-ENOENT, accel_tier_rebind(t, ops, 2));
	EXPECT_EQ(-EINVAL, accel_tier_rebind(t, ops, 0));
	EXPECT_EQ(-EINVAL, accel_tier_rebind(t, NULL, 1));
	EXPECT_EQ(-EINVAL, accel_tier_rebind(NULL, ops, 1));
	/* All or nothing: the good first op of each refused batch did not apply. */
	ASSERT_EQ(0, accel_tier_page(t, 1, &pg));
	EXPECT_EQ(key, pg.key);
	EXPECT_EQ(1 * K, pg.first);
	/* The last page of the region is fine. */
	ops[0] = rb(1, key, NB * K - K);
	ASSERT_EQ(0, accel_tier_rebind(t, ops, 1));

	/* accel_tier_hold: not a dma-buf, not a kvaccel region, another block size. */
	ASSERT_EQ(0, pipe(p));
	EXPECT_EQ(-EINVAL, accel_tier_hold(t, p[0], &k2));
	close(p[0]);
	close(p[1]);
	fd = memfd_create("not-a-dmabuf", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, accel_tier_hold(t, fd, &k2));
	close(fd);
	EXPECT_EQ(-EINVAL, accel_tier_hold(t, -1, &k2));
	EXPECT_EQ(-EINVAL, accel_tier_hold(t, 0, NULL));
	EXPECT_EQ(-EINVAL, accel_tier_hold(NULL, 0, &k2));
	o8 = tier(self->dev, 8192, 4, ACCEL_TIER_WINDOW);
	ASSERT_NE(NULL, o8);
	ASSERT_EQ(0, accel_tier_export(o8, &fd));
	EXPECT_EQ(-EINVAL, accel_tier_hold(t, fd, &k2));
	close(fd);
	accel_tier_destroy(o8);
	vgem = kvt_open_driver("vgem", 1);
	if (vgem >= 0) {
		uint32_t h;

		ASSERT_EQ(0, kvt_vgem_buffer(vgem, 64 << 10, &h, &fd));
		EXPECT_EQ(-EINVAL, accel_tier_hold(t, fd, &k2));
		close(fd);
		close(vgem);
	} else {
		TH_LOG("no vgem: another driver's dma-buf not tried");
	}
	/* The own region: its key, nothing imported. */
	ASSERT_EQ(0, accel_tier_export(t, &fd));
	ASSERT_EQ(0, accel_tier_hold(t, fd, &k2));
	EXPECT_EQ(key, k2);
	close(fd);

	/* accel_tier_page_export */
	EXPECT_EQ(-ENOENT, accel_tier_page_export(t, key + 1, &fd));
	EXPECT_EQ(-EINVAL, accel_tier_page_export(t, key, NULL));
	EXPECT_EQ(-EINVAL, accel_tier_page_export(NULL, key, &fd));
	accel_tier_destroy(t);
}

/* The two engines' messages. */
struct msg {
	uint64_t key;
	uint32_t step;
	uint32_t pad;
};

static int send_msg(int sock, int fd, uint64_t key, uint32_t step)
{
	struct msg m = { .key = key, .step = step };

	return accel_send_fds(sock, &fd, fd >= 0 ? 1 : 0, &m, sizeof(m));
}

/* A message of step @step, with an fd into *fd where @fd is not NULL. */
static int recv_msg(int sock, int *fd, uint64_t *key, uint32_t step)
{
	struct msg m;
	size_t len = sizeof(m);
	int fds[1] = { -1 }, nfds = fd ? 1 : 0, ret;

	ret = accel_recv_fds(sock, fds, &nfds, &m, &len);
	if (ret)
		return ret;
	if (len != sizeof(m) || m.step != step || (fd && nfds != 1)) {
		if (nfds)
			close(fds[0]);
		return -EPROTO;
	}
	if (fd)
		*fd = fds[0];
	if (key)
		*key = m.key;
	return 0;
}

/*
 * Engine A (the child): its blocks 3..5 hold a pattern; its region goes to
 * B; it takes B's displaced pages (B's former 7..9) for its 3..5, checks
 * B's bytes there, writes its own, checks that B's later write to A's old
 * page is not seen, and exits without cleaning up. Returns 0, or the step
 * that failed.
 */
static int engine_a(int sock)
{
	struct accel_device *dev = accel_device_open(NULL);
	struct accel_tier_rebind ops[3];
	struct accel_tier *ta;
	struct accel_tier_page pg;
	uint64_t kb, held;
	uint32_t i;
	int fd;

	if (!dev)
		return 1;
	ta = tier(dev, BB, NB, ACCEL_TIER_WINDOW);
	if (!ta)
		return 2;
	for (i = 0; i < NB; i++)
		kvt_fill(addr(ta, i), BB, 0xA000 + i);
	if (accel_tier_export(ta, &fd) || send_msg(sock, fd, accel_tier_key(ta), 1))
		return 3;
	close(fd);
	/* B's region and its key. */
	if (recv_msg(sock, &fd, &kb, 2))
		return 4;
	if (accel_tier_hold(ta, fd, &held) || held != kb || ino(fd) != kb)
		return 5;
	close(fd);
	for (i = 0; i < 3; i++)
		ops[i] = rb(3 + i, kb, (7 + i) * K);
	if (accel_tier_rebind(ta, ops, 3))
		return 6;
	for (i = 0; i < 3; i++) {
		if (!kvt_check(addr(ta, 3 + i), BB, 0xB000 + 7 + i))
			return 7;
		if (accel_tier_page(ta, 3 + i, &pg) || pg.key != kb || pg.first != (7 + i) * K)
			return 8;
	}
	/* A writes into what it now has: B's former pages. */
	for (i = 0; i < 3; i++)
		kvt_fill(addr(ta, 3 + i), BB, 0xA100 + i);
	if (send_msg(sock, -1, 0, 3))
		return 9;
	/* B wrote its block 7 (A's former page 3): not here. */
	if (recv_msg(sock, NULL, NULL, 4))
		return 10;
	if (!kvt_check(addr(ta, 3), BB, 0xA100))
		return 11;
	if (send_msg(sock, -1, 0, 5))
		return 12;
	/* Exit with B's pages bound and A's lent out: the kernel cleans up. */
	return 0;
}

/*
 * Two engines exchange blocks without copying; B outlives A and still
 * reads A's bytes; everything is given back.
 */
TEST_F_TIMEOUT(window, two_engines_exchange, 120)
{
	struct accel_tier *tb, *plain, *mf;
	struct accel_tier_rebind ops[3];
	struct accel_tier_page pg;
	struct timeval tv = { .tv_sec = 30 };
	ACCEL_OPTS(accel_tier_opts, fo, .block_bytes = BB, .blocks = 4);
	const struct accel_tier *tiers[3];
	struct accel_bm_run runs[2] = { { 0, 8, 1, 0, 1 }, { 0, 9, 2, 1, 1 } };
	uint64_t ka, held, kb, id, size = (uint64_t)NB * BB;
	int sv[2], fd, fd2, st;
	uint32_t i;
	pid_t pid;

	/* B's tier before the fork would be inherited: after it. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	ASSERT_EQ(0, setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	accel_mover_destroy(self->m);	/* no threads across the fork */
	self->m = NULL;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sv[0]);
		_exit(engine_a(sv[1]));
	}
	close(sv[1]);
	self->m = accel_mover_create(NULL);
	ASSERT_NE(NULL, self->m);
	tb = tier(self->dev, BB, NB, ACCEL_TIER_WINDOW);
	ASSERT_NE(NULL, tb);
	kb = accel_tier_key(tb);
	for (i = 0; i < NB; i++)
		kvt_fill(addr(tb, i), BB, 0xB000 + i);

	/* A's region: held once, by its key, however often it is given. */
	ASSERT_EQ(0, recv_msg(sv[0], &fd, &ka, 1));
	ASSERT_EQ(0, accel_tier_hold(tb, fd, &held));
	EXPECT_EQ(ka, held);
	EXPECT_EQ(ka, ino(fd));
	EXPECT_NE(kb, ka);
	fd2 = dup(fd);
	ASSERT_EQ(0, accel_tier_hold(tb, fd2, &held));
	EXPECT_EQ(ka, held);
	close(fd2);
	close(fd);
	/* Re-exported here, A's region is the same dma-buf (the same key). */
	ASSERT_EQ(0, accel_tier_page_export(tb, ka, &fd2));
	EXPECT_EQ(ka, ino(fd2));
	close(fd2);

	/* B's 7..9 become A's pages 3..5: A's bytes, no copy. */
	for (i = 0; i < 3; i++)
		ops[i] = rb(7 + i, ka, (3 + i) * K);
	ASSERT_EQ(0, accel_tier_rebind(tb, ops, 3));
	for (i = 0; i < 3; i++) {
		EXPECT_TRUE(kvt_check(addr(tb, 7 + i), BB, 0xA000 + 3 + i)) TH_LOG("block %u", 7 + i);
		ASSERT_EQ(0, accel_tier_page(tb, 7 + i, &pg));
		EXPECT_EQ(ka, pg.key);
		EXPECT_EQ((3 + i) * K, pg.first);
	}
	EXPECT_TRUE(kvt_check(addr(tb, 6), BB, 0xB000 + 6));

	/* The exchange: A takes B's displaced pages (B's region, B's 7..9). */
	ASSERT_EQ(0, accel_tier_page_export(tb, kb, &fd));
	ASSERT_EQ(0, send_msg(sv[0], fd, kb, 2));
	close(fd);
	ASSERT_EQ(0, recv_msg(sv[0], NULL, NULL, 3));
	/* A wrote its new 3..5 (B's old pages): not seen in B's 7..9. */
	for (i = 0; i < 3; i++)
		EXPECT_TRUE(kvt_check(addr(tb, 7 + i), BB, 0xA000 + 3 + i)) TH_LOG("block %u", 7 + i);
	/* B writes its 7 (A's old page 3): A must not see it. */
	kvt_fill(addr(tb, 7), BB, 0xB100);
	ASSERT_EQ(0, send_msg(sv[0], -1, 0, 4));
	ASSERT_EQ(0, recv_msg(sv[0], NULL, NULL, 5));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st)) TH_LOG("engine A failed at step %d", WEXITSTATUS(st));
	close(sv[0]);

	/* A is gone: its region lives on through B's bindings (and B's hold). */
	EXPECT_EQ(self->usage0 + 2 * size, accel_test_device_usage_settled(self->dev, self->usage0 + 2 * size));
	EXPECT_TRUE(kvt_check(addr(tb, 7), BB, 0xB100));
	EXPECT_TRUE(kvt_check(addr(tb, 8), BB, 0xA000 + 4));
	EXPECT_TRUE(kvt_check(addr(tb, 9), BB, 0xA000 + 5));

	/* The mover copies what backs a rebound block: copy engine and memcpy. */
	plain = tier(self->dev, BB, 4, 0);
	ASSERT_NE(NULL, plain);
	mf = accel_tier_create_memfd(&fo);
	ASSERT_NE(NULL, mf);
	tiers[0] = tb;
	tiers[1] = plain;
	tiers[2] = mf;
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 3, &runs[0], 1, NULL, &id));
	ASSERT_EQ(0, done_one(self->m, id));
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 3, &runs[1], 1, NULL, &id));
	ASSERT_EQ(0, done_one(self->m, id));
	EXPECT_TRUE(kvt_check(addr(plain, 0), BB, 0xA000 + 4));
	EXPECT_TRUE(kvt_check(addr(mf, 1), BB, 0xA000 + 5));
	/* And into one: the bytes land on A's page. */
	kvt_fill(addr(plain, 2), BB, 0xC000);
	runs[0] = (struct accel_bm_run){ 1, 2, 0, 8, 1 };
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 3, &runs[0], 1, NULL, &id));
	ASSERT_EQ(0, done_one(self->m, id));
	EXPECT_TRUE(kvt_check(addr(tb, 8), BB, 0xC000));
	accel_tier_destroy(plain);
	accel_tier_destroy(mf);

	/* Rebound back to B's own pages (which carry A's writes): A's region is let go. */
	for (i = 0; i < 3; i++)
		ops[i] = rb(7 + i, kb, (7 + i) * K);
	ASSERT_EQ(0, accel_tier_rebind(tb, ops, 3));
	for (i = 0; i < 3; i++)
		EXPECT_TRUE(kvt_check(addr(tb, 7 + i), BB, 0xA100 + i)) TH_LOG("block %u", 7 + i);
	EXPECT_EQ(-ENOENT, accel_tier_page_export(tb, ka, &fd));
	EXPECT_EQ(self->usage0 + size, accel_test_device_usage_settled(self->dev, self->usage0 + size));
	accel_tier_destroy(tb);
	EXPECT_EQ(self->usage0, accel_test_device_usage_settled(self->dev, self->usage0));
}

/*
 * A region held and bound in another tier outlives its owner's
 * accel_tier_destroy(), and a hold never bound stays until destroy.
 */
TEST_F(window, lent_pages_outlive_their_tier)
{
	struct accel_tier *a = tier(self->dev, BB, NB, ACCEL_TIER_WINDOW);
	struct accel_tier *b = tier(self->dev, BB, NB, ACCEL_TIER_WINDOW);
	struct accel_tier *c = tier(self->dev, BB, 2, ACCEL_TIER_WINDOW);
	uint64_t size = (uint64_t)NB * BB, ka, kc;
	struct accel_tier_rebind op;
	int fd;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, c);
	kvt_fill(addr(a, 4), BB, 44);
	ASSERT_EQ(0, accel_tier_export(a, &fd));
	ASSERT_EQ(0, accel_tier_hold(b, fd, &ka));
	close(fd);
	op = rb(0, ka, 4 * K);
	ASSERT_EQ(0, accel_tier_rebind(b, &op, 1));
	/* c's region held by b, never bound: kept until b goes. */
	ASSERT_EQ(0, accel_tier_export(c, &fd));
	ASSERT_EQ(0, accel_tier_hold(b, fd, &kc));
	close(fd);
	accel_tier_destroy(c);
	accel_tier_destroy(a);
	EXPECT_TRUE(kvt_check(addr(b, 0), BB, 44));
	ASSERT_EQ(0, accel_tier_page_export(b, kc, &fd));
	close(fd);
	EXPECT_EQ(self->usage0 + 2 * size + 2 * BB,
		  accel_test_device_usage_settled(self->dev, self->usage0 + 2 * size + 2 * BB));
	/* b's block 0 back to its own page: a's region goes. */
	op = rb(0, accel_tier_key(b), 0);
	ASSERT_EQ(0, accel_tier_rebind(b, &op, 1));
	EXPECT_EQ(self->usage0 + size + 2 * BB,
		  accel_test_device_usage_settled(self->dev, self->usage0 + size + 2 * BB));
	accel_tier_destroy(b);
}

/*
 * Unchanged behaviour: the same runs between window tiers, a window and a
 * plain tier, and plain tiers give the same bytes: scattered and adjacent
 * runs on the copy engine (chained jobs for the 4 KiB blocks: more
 * segments than one copy job takes), then layer pieces that do not start
 * on a region block (12 KiB blocks in 4 layers), for blocks of several
 * region blocks and of one. The window tiers' blocks are first backed in
 * reverse order (every block rebound), so copies that named the region
 * instead of the space would move other blocks' bytes.
 */
TEST_F_TIMEOUT(window, mover_copies_like_a_plain_tier, 300)
{
	static const struct { uint64_t bb; uint32_t n; } c[] = {
		{ 4096, 16500 }, { 3 * 4096, 600 }, { 8 << 20, 6 }, { 64 << 10, 16 },
	};
	unsigned int i, v;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		const uint64_t bb = c[i].bb;
		const uint32_t n = c[i].n;
		/* src[0] plain, src[1] window; dst[v]: window if v & 1, from src[v >> 1]. */
		struct accel_tier *src[2], *dst[4];
		struct accel_bm_run *runs, lr;
		ACCEL_OPTS(accel_tier_opts, lo, .block_bytes = bb, .blocks = n, .layers = 4);
		ACCEL_OPTS(accel_mover_submit_opts, so, .flags = ACCEL_MOVER_LAYERS,
			   .layer_first = 1, .layer_count = 2);
		uint32_t nr = 0, b;
		uint64_t id;

		runs = calloc(n, sizeof(*runs));
		ASSERT_NE(NULL, runs);
		for (v = 0; v < 2; v++) {
			lo.flags = v ? ACCEL_TIER_WINDOW : 0;
			src[v] = accel_tier_create_host(self->dev, &lo);
			ASSERT_NE(NULL, src[v]) TH_LOG("%s", strerror(errno));
			if (v)
				ASSERT_EQ(0, reverse_pages(src[v]));
			for (b = 0; b < n; b++)
				kvt_fill(addr(src[v], b), bb, 7000 + b);
		}
		for (v = 0; v < 4; v++) {
			lo.flags = v & 1 ? ACCEL_TIER_WINDOW : 0;
			dst[v] = accel_tier_create_host(self->dev, &lo);
			ASSERT_NE(NULL, dst[v]) TH_LOG("%s", strerror(errno));
			if (v & 1)
				ASSERT_EQ(0, reverse_pages(dst[v]));
			for (b = 0; b < n; b++)
				kvt_fill(addr(dst[v], b), bb, 9000 + b);
		}
		/* Every other block of the first half to the second half, reversed; a long run. */
		for (b = 0; b + 1 < n / 2; b += 2)
			runs[nr++] = (struct accel_bm_run){ 0, b, 1, n - 1 - b, 1 };
		runs[nr++] = (struct accel_bm_run){ 0, 1, 1, 0, n / 4 ? n / 4 : 1 };
		/* Layers 1-2 of the last block into block 1 (written by the long run). */
		lr = (struct accel_bm_run){ 1, n - 1, 1, 1, 1 };
		for (v = 0; v < 4; v++) {
			const struct accel_tier *t[2] = { src[v >> 1], dst[v] };

			ASSERT_EQ(0, accel_mover_submit(self->m, t, 2, runs, nr, NULL, &id));
			ASSERT_EQ(0, done_one(self->m, id)) TH_LOG("bb %llu variant %u",
							      (unsigned long long)bb, v);
			t[0] = t[1];
			ASSERT_EQ(0, accel_mover_submit(self->m, t, 2, &lr, 1, &so, &id));
			ASSERT_EQ(0, done_one(self->m, id));
		}
		for (v = 1; v < 4; v++)
			for (b = 0; b < n; b++)
				ASSERT_EQ(0, memcmp(addr(dst[0], b), addr(dst[v], b), bb))
					TH_LOG("bb %llu variant %u block %u", (unsigned long long)bb, v, b);
		/* And the bytes are the copies'. */
		EXPECT_TRUE(kvt_check(addr(dst[3], n - 1), bb, 7000));
		EXPECT_TRUE(kvt_check(addr(dst[3], 0), bb, 7001));
		if (n > 2) {
			EXPECT_TRUE(kvt_check(addr(dst[3], n - 2), bb, 9000 + n - 2));
			EXPECT_EQ(0, memcmp((char *)addr(dst[3], 1) + bb / 4,
					    (char *)addr(src[1], 0) + bb / 4, bb / 2));
		}
		for (v = 0; v < 2; v++)
			accel_tier_destroy(src[v]);
		for (v = 0; v < 4; v++)
			accel_tier_destroy(dst[v]);
		free(runs);
	}
}

TEST_HARNESS_MAIN
