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
#include <linux/capability.h>
#include <linux/dma-buf.h>
#include <linux/sync_file.h>
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
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

/*
 * The device's usage and pages held once they have settled: a copy job lets
 * go of its objects just after its fence signals, so what an earlier test
 * freed may still be on its way out. Settled means the same over 300 ms
 * (at most 60 s of waiting).
 */
static inline void kvt_settled(int fd, uint64_t *usage, uint64_t *pages)
{
	uint64_t u = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	uint64_t p = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
	int same = 0, tries;

	for (tries = 0; tries < 600 && same < 3; tries++) {
		uint64_t u2, p2;

		usleep(100000);
		u2 = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
		p2 = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
		same = u2 == u && p2 == p ? same + 1 : 0;
		u = u2;
		p = p2;
	}
	*usage = u;
	*pages = p;
}

/* Wait (at most 60 s) for the device's usage to come back to @usage. */
static inline uint64_t kvt_usage_back_to(int fd, uint64_t usage)
{
	uint64_t u = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	int tries;

	for (tries = 0; tries < 1200 && u != usage; tries++) {
		usleep(50000);
		u = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	}
	return u;
}

/* Wait (at most 60 s) for the device's pages held to come back to @pages. */
static inline uint64_t kvt_pages_back_to(int fd, uint64_t pages)
{
	uint64_t u = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
	int tries;

	for (tries = 0; tries < 1200 && u != pages; tries++) {
		usleep(50000);
		u = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
	}
	return u;
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

static inline int kvt_space_create_ex(int fd, uint32_t nr_slots, uint32_t block_size,
				      uint32_t flags, uint32_t *handle)
{
	struct drm_kvaccel_space_create sc = {
		.nr_slots = nr_slots, .block_size = block_size, .flags = flags,
	};
	int ret = kvt_ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_CREATE, &sc);

	if (!ret && handle)
		*handle = sc.handle;
	return ret;
}

static inline int kvt_space_create(int fd, uint32_t nr_slots, uint32_t block_size,
				   uint32_t *handle)
{
	struct drm_kvaccel_space_create sc = {
		.nr_slots = nr_slots, .block_size = block_size,
	};
	int ret = kvt_ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_CREATE, &sc);

	if (!ret && handle)
		*handle = sc.handle;
	return ret;
}

static inline int kvt_space_bind(int fd, uint32_t space, const struct drm_kvaccel_bind_op *ops,
				 uint32_t count, uint64_t *generation)
{
	struct drm_kvaccel_space_bind sb = {
		.handle = space, .count = count, .ops = (uintptr_t)ops,
	};
	int ret = kvt_ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_BIND, &sb);

	if (!ret && generation)
		*generation = sb.generation;
	return ret;
}

static inline struct drm_kvaccel_bind_op kvt_op_bind(uint32_t slot, uint32_t region,
						     uint64_t block)
{
	struct drm_kvaccel_bind_op op = {
		.op = KVACCEL_BIND_OP_BIND, .slot = slot, .handle = region, .block = block,
	};
	return op;
}

static inline struct drm_kvaccel_bind_op kvt_op(uint32_t type, uint32_t slot, uint32_t other)
{
	struct drm_kvaccel_bind_op op = { .op = type, .slot = slot, .other = other };
	return op;
}

/* One operation as its own batch. */
static inline int kvt_bind1(int fd, uint32_t space, struct drm_kvaccel_bind_op op)
{
	return kvt_space_bind(fd, space, &op, 1, NULL);
}

static inline int kvt_space_info(int fd, uint32_t space, struct drm_kvaccel_space_info *info)
{
	memset(info, 0, sizeof(*info));
	info->handle = space;
	return kvt_ioctl(fd, DRM_IOCTL_KVACCEL_SPACE_INFO, info);
}

/* Map a space: its window and, after it, the control page. */
static inline void *kvt_space_map(int fd, uint32_t space, size_t *map_size)
{
	struct drm_kvaccel_space_info info;
	int ret = kvt_space_info(fd, space, &info);

	if (ret) {
		errno = -ret;
		return MAP_FAILED;
	}
	if (map_size)
		*map_size = info.map_size;
	return mmap(NULL, info.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    (off_t)info.mmap_offset);
}

/* A block whose every 32-bit word is @tag; cheap to check by sampling. */
static inline void kvt_tag_fill(void *p, size_t len, uint32_t tag)
{
	uint32_t *w = p;
	size_t i;

	for (i = 0; i < len / 4; i++)
		w[i] = tag;
}

/* The tag of a block (0 if its words disagree), one word per 256 bytes. */
static inline uint32_t kvt_tag_of(const volatile void *p, size_t len)
{
	const volatile uint32_t *w = p;
	uint32_t tag = w[0];
	size_t i;

	for (i = 0; i < len / 4; i += 64)
		if (w[i] != tag)
			return 0;
	return w[len / 4 - 1] == tag ? tag : 0;
}

/*
 * Accesses that may hit an empty slot: SIGBUS is caught and reported as -1.
 * One guarded access at a time per process (the jump buffer is global).
 */
static sigjmp_buf kvt_bus_jmp;
static volatile int kvt_bus_armed;

static inline void kvt_bus_handler(int sig)
{
	(void)sig;
	if (kvt_bus_armed)
		siglongjmp(kvt_bus_jmp, 1);
	_exit(99);
}

static inline void kvt_bus_install(void)
{
	static int installed;

	if (!installed) {
		struct sigaction sa = { .sa_handler = kvt_bus_handler };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, NULL);
		installed = 1;
	}
}

/* Run @expr with SIGBUS caught; evaluates to -1 if it was raised. */
#define KVT_BUS_GUARD(expr) ({						\
	long long __v;							\
	kvt_bus_install();						\
	if (sigsetjmp(kvt_bus_jmp, 1)) {				\
		__v = -1;						\
	} else {							\
		kvt_bus_armed = 1;					\
		__v = (expr);						\
	}								\
	kvt_bus_armed = 0;						\
	__v;								\
})

/* Read a 32-bit word, or -1 on SIGBUS (an empty slot). */
static inline long long kvt_read_or_bus(const volatile uint32_t *p)
{
	return KVT_BUS_GUARD(*p);
}

/* Write a 32-bit word; 0, or -1 on SIGBUS. */
static inline int kvt_write_or_bus(volatile uint32_t *p, uint32_t v)
{
	return KVT_BUS_GUARD((*p = v, 0));
}

/* The tag of a block (0 if torn), or -1 on SIGBUS. */
static inline long long kvt_tag_or_bus(const volatile void *p, size_t len)
{
	return KVT_BUS_GUARD(kvt_tag_of(p, len));
}

/* Minor faults of this process so far. */
static inline long kvt_minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* ---- copy engine and syncobjs ---- */

static inline struct drm_kvaccel_copy_segment kvt_seg(uint32_t src, uint64_t soff,
						      uint32_t dst, uint64_t doff,
						      uint64_t len)
{
	struct drm_kvaccel_copy_segment s = {
		.src_handle = src, .dst_handle = dst, .src_offset = soff,
		.dst_offset = doff, .length = len,
	};
	return s;
}

static inline int kvt_copy(int fd, const struct drm_kvaccel_copy_segment *segs, uint32_t n,
			   uint32_t in_syncobj, uint32_t out_syncobj, uint64_t *job)
{
	struct drm_kvaccel_copy_submit cs = {
		.count = n, .segments = (uintptr_t)segs,
		.in_syncobj = in_syncobj, .out_syncobj = out_syncobj,
	};
	int ret = kvt_ioctl(fd, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs);

	if (!ret && job)
		*job = cs.job_id;
	return ret;
}

/* 0 pending, 1 done, -errno failed; or the ioctl's error. */
static inline int kvt_copy_status(int fd, uint64_t job, int *status)
{
	struct drm_kvaccel_copy_status st = { .job_id = job };
	int ret = kvt_ioctl(fd, DRM_IOCTL_KVACCEL_COPY_STATUS, &st);

	if (!ret)
		*status = st.status;
	return ret;
}

static inline int kvt_syncobj_create(int fd, uint32_t *handle)
{
	struct drm_syncobj_create c = { 0 };
	int ret = kvt_ioctl(fd, DRM_IOCTL_SYNCOBJ_CREATE, &c);

	if (!ret)
		*handle = c.handle;
	return ret;
}

static inline int64_t kvt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait for a syncobj's fence, @ms from now at most (absolute timeout). */
static inline int kvt_syncobj_wait(int fd, uint32_t handle, int ms)
{
	struct drm_syncobj_wait w = {
		.handles = (uintptr_t)&handle, .count_handles = 1,
		.timeout_nsec = kvt_now_ns() + (int64_t)ms * 1000000,
		.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
	};

	return kvt_ioctl(fd, DRM_IOCTL_SYNCOBJ_WAIT, &w);
}

static inline int kvt_syncobj_export_sync_file(int fd, uint32_t handle, int *sync_file)
{
	struct drm_syncobj_handle h = {
		.handle = handle, .flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
		.fd = -1,
	};
	int ret = kvt_ioctl(fd, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h);

	if (!ret)
		*sync_file = h.fd;
	return ret;
}

static inline int kvt_syncobj_import_sync_file(int fd, uint32_t handle, int sync_file)
{
	struct drm_syncobj_handle h = {
		.handle = handle, .flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
		.fd = sync_file,
	};

	return kvt_ioctl(fd, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &h);
}

/* vgem's fence ioctls (include/uapi/drm/vgem_drm.h), for fences we control. */
struct kvt_vgem_fence_attach {
	uint32_t handle, flags, out_fence, pad;
};
struct kvt_vgem_fence_signal {
	uint32_t fence, flags;
};
#define KVT_VGEM_FENCE_WRITE	0x1
#define KVT_IOCTL_VGEM_FENCE_ATTACH \
	DRM_IOWR(DRM_COMMAND_BASE + 0x1, struct kvt_vgem_fence_attach)
#define KVT_IOCTL_VGEM_FENCE_SIGNAL \
	DRM_IOW(DRM_COMMAND_BASE + 0x2, struct kvt_vgem_fence_signal)

/* A vgem buffer of @size bytes (primary node), its handle and dma-buf. */
static inline int kvt_vgem_buffer(int vgem, uint32_t size, uint32_t *handle, int *dmabuf)
{
	struct drm_mode_create_dumb dumb = { .width = size / 4, .height = 1, .bpp = 32 };
	struct drm_prime_handle ph = { .flags = DRM_CLOEXEC | DRM_RDWR };
	int ret = kvt_ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &dumb);

	if (ret)
		return ret;
	*handle = dumb.handle;
	ph.handle = dumb.handle;
	ret = kvt_ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph);
	if (!ret)
		*dmabuf = ph.fd;
	return ret;
}

/* A sync_file's status: 1 signalled, 0 pending, a negative errno failed. */
static inline int kvt_sync_file_status(int sync_file)
{
	struct sync_file_info info = { 0 };

	if (ioctl(sync_file, SYNC_IOC_FILE_INFO, &info))
		return -1000 - errno;
	return info.status;
}

/* Wait up to @ms for a sync_file (or any pollable fence fd) to signal: 1, or 0 on timeout. */
static inline int kvt_fence_fd_wait(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms);
}

/*
 * A fence the test controls: vgem's, attached to a vgem buffer (which may
 * be imported), also exported as a sync_file for syncobjs. vgem signals it
 * by itself after 10 s.
 */
struct kvt_gate {
	int vgem, dmabuf, sync_file;
	uint32_t handle, fence;
};

static inline int kvt_gate_arm(struct kvt_gate *g, uint32_t size)
{
	struct kvt_vgem_fence_attach fa = { .flags = KVT_VGEM_FENCE_WRITE };
	struct dma_buf_export_sync_file es = { .flags = DMA_BUF_SYNC_RW, .fd = -1 };
	int ret;

	g->dmabuf = g->sync_file = -1;
	g->vgem = kvt_open_driver("vgem", 1);
	if (g->vgem < 0)
		return g->vgem;
	ret = kvt_vgem_buffer(g->vgem, size, &g->handle, &g->dmabuf);
	if (ret)
		return ret;
	fa.handle = g->handle;
	ret = kvt_ioctl(g->vgem, KVT_IOCTL_VGEM_FENCE_ATTACH, &fa);
	if (ret)
		return ret;
	g->fence = fa.out_fence;
	if (ioctl(g->dmabuf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &es))
		return -errno;
	g->sync_file = es.fd;
	return 0;
}

static inline int kvt_gate_open(struct kvt_gate *g)
{
	struct kvt_vgem_fence_signal fs = { .fence = g->fence };

	return kvt_ioctl(g->vgem, KVT_IOCTL_VGEM_FENCE_SIGNAL, &fs);
}

static inline void kvt_gate_fini(struct kvt_gate *g)
{
	close(g->sync_file);
	close(g->dmabuf);
	close(g->vgem);
}

#define KVT_GATE_ARM(g, size) do {						\
	int __r = kvt_gate_arm(g, size);					\
	if (__r == -ENODEV)						\
		SKIP(return, "no vgem");				\
	ASSERT_EQ(0, __r);						\
} while (0)

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

/*
 * The path of kvaccel's debugfs file @name, in the DRM device's own
 * directory (<debugfs>/accel/kvaccel/ or, on 6.1, the render minor's
 * <debugfs>/dri/N/): the directory that holds copy_fail_nth. A static
 * buffer; "" if none is found.
 */
static inline const char *kvt_debugfs(const char *name)
{
	static const char *const bases[] = { "/sys/kernel/debug/accel", "/sys/kernel/debug/dri" };
	static char path[512];
	unsigned int i;

	for (i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		DIR *d = opendir(bases[i]);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/copy_fail_nth", bases[i], e->d_name);
			if (!access(path, F_OK)) {
				snprintf(path, sizeof(path), "%s/%s/%s", bases[i], e->d_name, name);
				closedir(d);
				return path;
			}
		}
		if (d)
			closedir(d);
	}
	path[0] = 0;
	return path;
}

/* A counter from kvaccel's debugfs status; -1 if absent. */
static inline long long kvt_debugfs_counter(const char *name)
{
	char buf[4096], *p;
	size_t n = strlen(name);

	if (kvt_read_file(kvt_debugfs("status"), buf, sizeof(buf)))
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
	return -1;
}

/* Drop capability @cap from every set of the calling process. */
static inline int kvt_drop_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	uint32_t bit = 1u << (cap % 32);

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	data[cap / 32].effective &= ~bit;
	data[cap / 32].permitted &= ~bit;
	data[cap / 32].inheritable &= ~bit;
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

#endif /* KVTEST_H */
