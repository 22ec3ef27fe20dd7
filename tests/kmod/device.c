// SPDX-License-Identifier: GPL-2.0-only
/*
 * The device: discovery, open/close, GET_PARAM and its validation.
 */
#include <limits.h>

#include "kvtest.h"
#include "kselftest_harness.h"

FIXTURE(device) {
	int fd;
};

FIXTURE_SETUP(device)
{
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd) TH_LOG("no kvaccel device: %s", strerror(-self->fd));
}

FIXTURE_TEARDOWN(device)
{
	close(self->fd);
}

TEST(open_close_many)
{
	int fds[64], i;

	for (i = 0; i < 64; i++) {
		fds[i] = kvt_open();
		ASSERT_LE(0, fds[i]);
	}
	for (i = 0; i < 64; i++)
		ASSERT_EQ(0, close(fds[i]));
}

TEST(driver_version)
{
	struct drm_version v = { 0 };
	char name[32] = { 0 };
	int fd = kvt_open();

	ASSERT_LE(0, fd);
	v.name = name;
	v.name_len = sizeof(name) - 1;
	ASSERT_EQ(0, ioctl(fd, DRM_IOCTL_VERSION, &v));
	EXPECT_STREQ("kvaccel", name);
	EXPECT_EQ(KVACCEL_ABI_MAJOR, v.version_major);
	EXPECT_EQ(KVACCEL_ABI_MINOR, v.version_minor);
	close(fd);
}

TEST(node_kind)
{
	/* An accel node where the kernel has DRM accel, a render node otherwise. */
	int have_accel = access("/sys/class/accel", F_OK) == 0;
	char path[64];
	int i, found = 0;

	for (i = 0; i < 64 && !found; i++) {
		struct drm_version v = { 0 };
		char name[32] = { 0 };
		int fd;

		snprintf(path, sizeof(path), have_accel ? "/dev/accel/accel%d" :
			 "/dev/dri/renderD%d", have_accel ? i : 128 + i);
		fd = open(path, O_RDWR);
		if (fd < 0)
			continue;
		v.name = name;
		v.name_len = sizeof(name) - 1;
		found = !ioctl(fd, DRM_IOCTL_VERSION, &v) && !strcmp(name, "kvaccel");
		close(fd);
	}
	ASSERT_TRUE(found) TH_LOG("kvaccel is not on a %s node",
				  have_accel ? "accel" : "render");
}

/*
 * tools/udev/60-kvaccel.rules matches kvaccel's nodes by their parent, the
 * platform device "kvaccel": check that every node of the device has it,
 * the primary node included where DRM creates one (no DRM accel).
 */
TEST(udev_match_key)
{
	static const char *const classes[] = { "/sys/class/drm", "/sys/class/accel" };
	int have_accel = access("/sys/class/accel", F_OK) == 0;
	int nodes = 0, primary = 0;
	unsigned int c;

	for (c = 0; c < 2; c++) {
		DIR *d = opendir(classes[c]);
		struct dirent *e;

		if (!d)
			continue;
		while ((e = readdir(d))) {
			char link[512], real[PATH_MAX];
			const char *base;

			if (e->d_name[0] == '.' || strchr(e->d_name, '-'))
				continue;
			snprintf(link, sizeof(link), "%s/%s/device", classes[c], e->d_name);
			if (!realpath(link, real))
				continue;
			base = strrchr(real, '/');
			if (!base || strcmp(base + 1, "kvaccel"))
				continue;
			EXPECT_NE(NULL, strstr(real, "/devices/platform/")) TH_LOG("%s", real);
			nodes++;
			primary += !strncmp(e->d_name, "card", 4);
		}
		closedir(d);
	}
	EXPECT_LE(1, nodes);
	/* A primary node exists exactly when there is no accel node. */
	EXPECT_EQ(!have_accel, primary);
}

TEST_F(device, abi_version)
{
	uint64_t v = kvt_param_or_die(self->fd, KVACCEL_PARAM_ABI_VERSION);

	EXPECT_EQ(KVACCEL_ABI_MAJOR, v >> 16);
	EXPECT_LE(KVACCEL_ABI_MINOR, v & 0xffff);
}

TEST_F(device, capabilities)
{
	uint64_t caps = kvt_param_or_die(self->fd, KVACCEL_PARAM_CAPABILITIES);

	EXPECT_TRUE(caps & KVACCEL_CAP_REGION);
	EXPECT_TRUE(caps & KVACCEL_CAP_PRIME_EXPORT);
	EXPECT_TRUE(caps & KVACCEL_CAP_PRIME_IMPORT);
}

TEST_F(device, block_sizes)
{
	uint64_t sizes = kvt_param_or_die(self->fd, KVACCEL_PARAM_BLOCK_SIZES);
	int shift;

	for (shift = 0; shift < 64; shift++)
		EXPECT_EQ(shift >= KVACCEL_BLOCK_SHIFT_MIN &&
			  shift <= KVACCEL_BLOCK_SHIFT_MAX, !!(sizes & (1ull << shift)));
}

TEST_F(device, limit_usage_quota)
{
	uint64_t limit = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_LIMIT);
	uint64_t usage = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);
	uint64_t mine = kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_USAGE);
	uint64_t pages = kvt_param_or_die(self->fd, KVACCEL_PARAM_PAGES_HELD);
	uint64_t quota;

	EXPECT_LT(0, limit);
	EXPECT_LE(usage, limit);
	EXPECT_EQ(0, mine);
	EXPECT_EQ(usage / (uint64_t)sysconf(_SC_PAGESIZE), pages);
	EXPECT_EQ(0, kvt_param(self->fd, KVACCEL_PARAM_CLIENT_QUOTA, &quota));
	EXPECT_EQ(0, kvt_param(self->fd, KVACCEL_PARAM_REGIONS, NULL));
}

TEST_F(device, usage_follows_region)
{
	uint64_t before = kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE);
	uint64_t regions = kvt_param_or_die(self->fd, KVACCEL_PARAM_REGIONS);
	uint32_t h;

	ASSERT_EQ(0, kvt_region_create(self->fd, 4 * KVT_MIB, 2 * KVT_MIB, &h));
	EXPECT_EQ(before + 4 * KVT_MIB,
		  kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(4 * KVT_MIB, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_USAGE));
	EXPECT_EQ(regions + 1, kvt_param_or_die(self->fd, KVACCEL_PARAM_REGIONS));
	ASSERT_EQ(0, kvt_close_handle(self->fd, h));
	EXPECT_EQ(before, kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(0, kvt_param_or_die(self->fd, KVACCEL_PARAM_CLIENT_USAGE));
	EXPECT_EQ(regions, kvt_param_or_die(self->fd, KVACCEL_PARAM_REGIONS));
}

TEST_F(device, get_param_unknown_param)
{
	EXPECT_EQ(-EINVAL, kvt_param(self->fd, 0xffff, NULL));
	EXPECT_EQ(-EINVAL, kvt_param(self->fd, KVACCEL_PARAM_REGIONS + 1, NULL));
}

TEST_F(device, get_param_unknown_flags)
{
	struct drm_kvaccel_get_param gp = {
		.param = KVACCEL_PARAM_ABI_VERSION, .flags = 1,
	};

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_GET_PARAM, &gp));
	gp.flags = 1u << 31;
	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_GET_PARAM, &gp));
}

TEST_F(device, get_param_efault)
{
	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_GET_PARAM, NULL));
	EXPECT_EQ(-EFAULT, kvt_ioctl(self->fd, DRM_IOCTL_KVACCEL_GET_PARAM,
				     (void *)(uintptr_t)8));
}

TEST_F(device, unknown_ioctl)
{
	char buf[64] = { 0 };

	EXPECT_EQ(-EINVAL, kvt_ioctl(self->fd, KVT_IOWR_SIZED(0x3f, 16), buf));
}

/*
 * DRM zero-extends a short argument and ignores extra bytes: a short
 * GET_PARAM reads param 0 or the given one and returns what fits; extra
 * bytes come back unchanged.
 */
TEST_F(device, get_param_size_sweep)
{
	unsigned char buf[sizeof(struct drm_kvaccel_get_param) + 16];
	struct drm_kvaccel_get_param *gp = (void *)buf;
	unsigned int size;

	for (size = 0; size <= sizeof(buf); size += 4) {
		memset(buf, 0xa5, sizeof(buf));
		gp->param = KVACCEL_PARAM_ABI_VERSION;
		gp->flags = 0;
		if (size < 8) {
			/* flags (or param) is zero-extended: still valid */
			EXPECT_EQ(0, kvt_ioctl(self->fd,
					KVT_IOWR_SIZED(DRM_KVACCEL_GET_PARAM, size), buf));
			continue;
		}
		EXPECT_EQ(0, kvt_ioctl(self->fd,
				KVT_IOWR_SIZED(DRM_KVACCEL_GET_PARAM, size), buf));
		if (size >= 16)
			EXPECT_EQ(KVACCEL_ABI_VERSION, gp->value);
		if (size > 16) {
			unsigned int i;

			for (i = 16; i < sizeof(buf); i++)
				EXPECT_EQ(0xa5, buf[i]);
		}
	}
}

/* The value of key @key in /proc/self/fdinfo/@fd (its first word in @val); -1 if absent. */
static long long fdinfo(int fd, const char *key, char *val, size_t len)
{
	char path[64], buf[4096], *p;
	size_t n = strlen(key);

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (kvt_read_file(path, buf, sizeof(buf)))
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, n) || p[n] != ':')
			continue;
		p += n + 1;
		p += strspn(p, " \t");
		if (val)
			snprintf(val, len, "%.*s", (int)strcspn(p, " \n"), p);
		return strtoll(p, NULL, 10);
	}
	return -1;
}

/*
 * DRM fdinfo: the standard keys, memory per file against GET_PARAM, shared
 * once exported, active while a job uses it, and the copy engine's busy
 * time growing with a copy.
 */
TEST(fdinfo_standard_keys)
{
	int fd = kvt_open(), fd2 = kvt_open(), dmabuf;
	struct drm_kvaccel_copy_segment seg;
	uint32_t a, b, sync, gate_sync;
	long long busy0, usage_kib;
	struct kvt_gate g;
	char val[64];

	ASSERT_LE(0, fd);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, fdinfo(fd, "drm-driver", val, sizeof(val)));
	EXPECT_STREQ("kvaccel", val);
	ASSERT_LE(0, fdinfo(fd, "drm-client-id", NULL, 0));
	EXPECT_NE(fdinfo(fd, "drm-client-id", NULL, 0), fdinfo(fd2, "drm-client-id", NULL, 0));
	EXPECT_LE(1, fdinfo(fd, "drm-engine-capacity-copy", NULL, 0));
	EXPECT_EQ(0, fdinfo(fd, "drm-total-memory", NULL, 0));

	ASSERT_EQ(0, kvt_region_create(fd, 4 * KVT_MIB, 2 * KVT_MIB, &a));
	ASSERT_EQ(0, kvt_region_create(fd, 4 * KVT_MIB, 4096, &b));
	usage_kib = kvt_param_or_die(fd, KVACCEL_PARAM_CLIENT_USAGE) / 1024;
	EXPECT_EQ(8192, usage_kib);
	EXPECT_EQ(usage_kib, fdinfo(fd, "drm-total-memory", val, sizeof(val)));
	EXPECT_EQ(usage_kib, fdinfo(fd, "drm-resident-memory", NULL, 0));
	EXPECT_EQ(0, fdinfo(fd, "drm-shared-memory", NULL, 0));
	EXPECT_EQ(0, fdinfo(fd, "drm-active-memory", NULL, 0));
	EXPECT_EQ(0, fdinfo(fd2, "drm-total-memory", NULL, 0));
	ASSERT_EQ(0, kvt_export(fd, a, &dmabuf));
	EXPECT_EQ(4096, fdinfo(fd, "drm-shared-memory", NULL, 0));

	busy0 = fdinfo(fd, "drm-engine-copy", val, sizeof(val));
	ASSERT_LE(0, busy0);
	ASSERT_EQ(0, kvt_syncobj_create(fd, &sync));
	seg = kvt_seg(a, 0, b, 0, 4 * KVT_MIB);
	ASSERT_EQ(0, kvt_copy(fd, &seg, 1, 0, sync, NULL));
	ASSERT_EQ(0, kvt_syncobj_wait(fd, sync, 20000));
	EXPECT_LT(busy0, fdinfo(fd, "drm-engine-copy", val, sizeof(val)));
	EXPECT_EQ(0, fdinfo(fd2, "drm-engine-copy", NULL, 0));

	/* A job waiting to copy a into b makes both active. */
	KVT_GATE_ARM(&g, 4096);
	ASSERT_EQ(0, kvt_syncobj_create(fd, &gate_sync));
	ASSERT_EQ(0, kvt_syncobj_import_sync_file(fd, gate_sync, g.sync_file));
	ASSERT_EQ(0, kvt_copy(fd, &seg, 1, gate_sync, sync, NULL));
	EXPECT_EQ(usage_kib, fdinfo(fd, "drm-active-memory", NULL, 0));
	ASSERT_EQ(0, kvt_gate_open(&g));
	ASSERT_EQ(0, kvt_syncobj_wait(fd, sync, 20000));
	EXPECT_EQ(0, fdinfo(fd, "drm-active-memory", NULL, 0));
	kvt_gate_fini(&g);
	close(dmabuf);
	close(fd2);
	close(fd);
}

/* kvaccel's debugfs files live in the DRM device's own directory. */
TEST(debugfs_under_drm)
{
	const char *status = kvt_debugfs("status");

	if (access("/sys/kernel/debug/dri", F_OK) && access("/sys/kernel/debug/accel", F_OK))
		SKIP(return, "debugfs is not mounted");
	ASSERT_NE(0, status[0]);
	EXPECT_EQ(0, access(status, R_OK));
	EXPECT_NE(0, access("/sys/kernel/debug/kvaccel", F_OK));
	EXPECT_LE(0, kvt_debugfs_counter("usage_bytes"));
}

TEST_HARNESS_MAIN
