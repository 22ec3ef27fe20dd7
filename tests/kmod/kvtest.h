/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the kvaccel selftests: finding the device, raw ioctl
 * wrappers that return 0 or -errno (the tests exercise the ABI itself, so
 * they use no library), and process plumbing (fd passing, sysfs knobs).
 * Built for 64-bit and 32-bit (-m32) processes alike.
 */
#ifndef KVTEST_H
#define KVTEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drm.h"
#include "kvaccel.h"

#define KVT_KIB	1024ull
#define KVT_MIB	(1024ull * 1024)

/* An ioctl number with an arbitrary argument size, for struct-size sweeps. */
#define KVT_IOWR_SIZED(nr, size) \
	_IOC(_IOC_READ | _IOC_WRITE, DRM_IOCTL_BASE, DRM_COMMAND_BASE + (nr), (size))

static inline int kvt_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, cmd, arg);
	} while (ret == -1 && (errno == EINTR || errno == EAGAIN));
	return ret ? -errno : 0;
}

/* Open the first DRM node whose driver is @driver; -errno if none. */
static inline int kvt_open_driver(const char *driver, int want_primary)
{
	static const char *const patterns[] = {
		"/dev/accel/accel%d", "/dev/dri/renderD%d", "/dev/dri/card%d",
	};
	unsigned int p;
	int i;

	for (p = 0; p < 3; p++) {
		if (want_primary != (p == 2))
			continue;
		for (i = 0; i < 256; i++) {
			struct drm_version v;
			char path[64], name[64];
			int fd;

			snprintf(path, sizeof(path), patterns[p], i);
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				continue;
			memset(&v, 0, sizeof(v));
			memset(name, 0, sizeof(name));
			v.name = name;
			v.name_len = sizeof(name) - 1;
			if (!ioctl(fd, DRM_IOCTL_VERSION, &v) && !strcmp(name, driver))
				return fd;
			close(fd);
		}
	}
	return -ENODEV;
}

static inline int kvt_open(void)
{
	return kvt_open_driver("kvaccel", 0);
}

static inline int kvt_param(int fd, uint32_t param, uint64_t *value)
{
	struct drm_kvaccel_get_param gp = { .param = param };
	int ret = kvt_ioctl(fd, DRM_IOCTL_KVACCEL_GET_PARAM, &gp);

	if (!ret && value)
		*value = gp.value;
	return ret;
}

/* A parameter that must be readable; aborts the test binary otherwise. */
static inline uint64_t kvt_param_or_die(int fd, uint32_t param)
{
	uint64_t v;
	int ret = kvt_param(fd, param, &v);

	if (ret) {
		fprintf(stderr, "GET_PARAM %u: %s\n", param, strerror(-ret));
		exit(1);
	}
	return v;
}

static inline int kvt_region_create_ex(int fd, uint64_t size, uint32_t block_size,
				       uint32_t flags, uint32_t node, uint32_t *handle)
{
	struct drm_kvaccel_region_create rc = {
		.size = size, .block_size = block_size,
		.flags = flags, .numa_node = node,
	};
	int ret = kvt_ioctl(fd, DRM_IOCTL_KVACCEL_REGION_CREATE, &rc);

	if (!ret && handle)
		*handle = rc.handle;
	return ret;
}

static inline int kvt_region_create(int fd, uint64_t size, uint32_t block_size,
				    uint32_t *handle)
{
	return kvt_region_create_ex(fd, size, block_size, 0, 0, handle);
}

static inline int kvt_region_info(int fd, uint32_t handle,
				  struct drm_kvaccel_region_info *info)
{
	memset(info, 0, sizeof(*info));
	info->handle = handle;
	return kvt_ioctl(fd, DRM_IOCTL_KVACCEL_REGION_INFO, info);
}

static inline int kvt_close_handle(int fd, uint32_t handle)
{
	struct drm_gem_close gc = { .handle = handle };

	return kvt_ioctl(fd, DRM_IOCTL_GEM_CLOSE, &gc);
}

/* mmap a region's whole size, shared; MAP_FAILED on error (errno set). */
static inline void *kvt_region_map(int fd, uint32_t handle, size_t size)
{
	struct drm_kvaccel_region_info info;
	int ret = kvt_region_info(fd, handle, &info);

	if (ret) {
		errno = -ret;
		return MAP_FAILED;
	}
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    (off_t)info.mmap_offset);
}

static inline int kvt_export(int fd, uint32_t handle, int *dmabuf)
{
	struct drm_prime_handle ph = {
		.handle = handle, .flags = DRM_CLOEXEC | DRM_RDWR, .fd = -1,
	};
	int ret = kvt_ioctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph);

	if (!ret)
		*dmabuf = ph.fd;
	return ret;
}

static inline int kvt_import(int fd, int dmabuf, uint32_t *handle)
{
	struct drm_prime_handle ph = { .fd = dmabuf };
	int ret = kvt_ioctl(fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &ph);

	if (!ret)
		*handle = ph.handle;
	return ret;
}

/* Pass one fd over a Unix socket (SCM_RIGHTS). */
static inline int kvt_send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	memset(u.buf, 0, sizeof(u.buf));
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

static inline int kvt_recv_fd(int sock)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cmsg;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -EIO;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS)
		return -EIO;
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

/* Read or write a small sysfs/procfs/cgroup file. */
static inline int kvt_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -errno;
}

static inline int kvt_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static inline long long kvt_read_ll(const char *path)
{
	char buf[64];

	if (kvt_read_file(path, buf, sizeof(buf)))
		return -1;
	return strtoll(buf, NULL, 0);
}

/* Set a module parameter; returns the old value through @old. */
static inline int kvt_set_modparam(const char *name, long long val, long long *old)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), "/sys/module/kvaccel/parameters/%s", name);
	if (old)
		*old = kvt_read_ll(path);
	snprintf(buf, sizeof(buf), "%lld", val);
	return kvt_write_file(path, buf);
}

/* Fill or check a buffer with a pattern that depends on the offset. */
static inline void kvt_fill(void *p, size_t len, uint32_t seed)
{
	uint32_t *w = p;
	size_t i;

	for (i = 0; i < len / 4; i++)
		w[i] = seed ^ (uint32_t)(i * 2654435761u);
}

static inline int kvt_check(const void *p, size_t len, uint32_t seed)
{
	const uint32_t *w = p;
	size_t i;

	for (i = 0; i < len / 4; i++)
		if (w[i] != (seed ^ (uint32_t)(i * 2654435761u)))
			return 0;
	return 1;
}

static inline int kvt_all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (c[i])
			return 0;
	return 1;
}

#endif /* KVTEST_H */
