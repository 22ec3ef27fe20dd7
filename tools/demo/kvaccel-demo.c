// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-demo - what `make demo` runs in the VM: find the device through
 * libdrm, create KV-cache regions, hand one to a second process (a "decode
 * engine") as a dma-buf without copying it, and print the device's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xf86drm.h>

#include "kvaccel.h"

#define MIB (1024ull * 1024)

static int die(const char *what, int err)
{
	fprintf(stderr, "kvaccel-demo: %s: %s\n", what, strerror(err));
	exit(1);
}

/* libdrm 2.4.114 does not enumerate accel nodes: scan both kinds. */
static int open_kvaccel(char *path, size_t len)
{
	static const char *const fmt[] = { "/dev/accel/accel%d", "/dev/dri/renderD%d" };
	int k, i;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < 256; i++) {
			drmVersionPtr v;
			int fd;

			snprintf(path, len, fmt[k], k ? 128 + i : i);
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				continue;
			v = drmGetVersion(fd);
			if (v && !strcmp(v->name, "kvaccel")) {
				drmFreeVersion(v);
				return fd;
			}
			drmFreeVersion(v);
			close(fd);
		}
	}
	return -1;
}

static uint64_t param(int fd, uint32_t p)
{
	struct drm_kvaccel_get_param gp = { .param = p };

	if (drmIoctl(fd, DRM_IOCTL_KVACCEL_GET_PARAM, &gp))
		die("GET_PARAM", errno);
	return gp.value;
}

static uint32_t region_create(int fd, uint64_t size, uint32_t block_size,
			      uint32_t flags)
{
	struct drm_kvaccel_region_create rc = {
		.size = size, .block_size = block_size, .flags = flags,
	};

	if (drmIoctl(fd, DRM_IOCTL_KVACCEL_REGION_CREATE, &rc))
		die("REGION_CREATE", errno);
	return rc.handle;
}

static void *region_map(int fd, uint32_t handle, struct drm_kvaccel_region_info *info)
{
	void *p;

	memset(info, 0, sizeof(*info));
	info->handle = handle;
	if (drmIoctl(fd, DRM_IOCTL_KVACCEL_REGION_INFO, info))
		die("REGION_INFO", errno);
	p = mmap(NULL, info->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)info->mmap_offset);
	if (p == MAP_FAILED)
		die("mmap", errno);
	return p;
}

static void status(const char *when, int fd)
{
	printf("-- device status %s\n", when);
	printf("   limit %llu MiB, usage %llu MiB, regions %llu, pages held %llu\n",
	       (unsigned long long)(param(fd, KVACCEL_PARAM_DEVICE_LIMIT) / MIB),
	       (unsigned long long)(param(fd, KVACCEL_PARAM_DEVICE_USAGE) / MIB),
	       (unsigned long long)param(fd, KVACCEL_PARAM_REGIONS),
	       (unsigned long long)param(fd, KVACCEL_PARAM_PAGES_HELD));
}

static int send_fd(int sock, int fd)
{
	char b = 0;
	struct iovec iov = { &b, 1 };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char b;
	struct iovec iov = { &b, 1 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The second process: import the region and read what the first wrote. */
static int decode_engine(int sock)
{
	struct drm_kvaccel_region_info info;
	char path[64];
	uint32_t handle;
	char *kv;
	int fd, buf;

	buf = recv_fd(sock);
	fd = open_kvaccel(path, sizeof(path));
	if (buf < 0 || fd < 0)
		return 1;
	if (drmPrimeFDToHandle(fd, buf, &handle))
		die("drmPrimeFDToHandle", errno);
	close(buf);
	kv = region_map(fd, handle, &info);
	printf("[decode  pid %d] imported handle %u: %llu MiB, %u KiB blocks\n",
	       getpid(), handle, (unsigned long long)(info.size / MIB),
	       info.block_size / 1024);
	printf("[decode  pid %d] reads: \"%s\"\n", getpid(), kv);
	snprintf(kv + 4096, 256, "decode engine %d took over the KV blocks", getpid());
	return 0;
}

int main(void)
{
	struct drm_kvaccel_region_info info;
	uint32_t kv, small, weights;
	int fd, dmabuf, sv[2], st;
	drmVersionPtr v;
	char path[64];
	uint64_t abi;
	char *p;
	pid_t pid;

	fd = open_kvaccel(path, sizeof(path));
	if (fd < 0)
		die("no kvaccel device", ENODEV);
	v = drmGetVersion(fd);
	abi = param(fd, KVACCEL_PARAM_ABI_VERSION);
	printf("kvaccel on %s: driver %s %d.%d, ABI %llu.%llu, capabilities 0x%llx\n",
	       path, v->name, v->version_major, v->version_minor,
	       (unsigned long long)(abi >> 16), (unsigned long long)(abi & 0xffff),
	       (unsigned long long)param(fd, KVACCEL_PARAM_CAPABILITIES));
	drmFreeVersion(v);
	status("at start", fd);

	kv = region_create(fd, 8 * MIB, 2 * MIB, 0);
	small = region_create(fd, 1 * MIB, 4096, 0);
	weights = region_create(fd, 4 * MIB, 64 * 1024, KVACCEL_REGION_CREATE_NUMA_NODE);
	printf("[prefill pid %d] regions: KV %u (8 MiB, 2 MiB blocks), "
	       "scratch %u (1 MiB, 4 KiB blocks), weights %u (4 MiB on node 0)\n",
	       getpid(), kv, small, weights);
	status("with three regions", fd);

	p = region_map(fd, kv, &info);
	snprintf(p, 256, "prefill engine %d wrote this KV block", getpid());
	if (drmPrimeHandleToFD(fd, kv, DRM_CLOEXEC | DRM_RDWR, &dmabuf))
		die("drmPrimeHandleToFD", errno);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		die("socketpair", errno);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (!pid) {
		close(sv[0]);
		_exit(decode_engine(sv[1]));
	}
	close(sv[1]);
	printf("[prefill pid %d] exported region %u as dma-buf fd %d, sending it\n",
	       getpid(), kv, dmabuf);
	if (send_fd(sv[0], dmabuf))
		die("sendmsg", errno);
	close(dmabuf);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("decode engine failed", EIO);
	printf("[prefill pid %d] reads back: \"%s\" (same pages, nothing copied)\n",
	       getpid(), p + 4096);

	munmap(p, info.size);
	drmCloseBufferHandle(fd, kv);
	drmCloseBufferHandle(fd, small);
	drmCloseBufferHandle(fd, weights);
	status("after closing", fd);
	fflush(stdout);
	close(fd);

	printf("-- /sys/kernel/debug/kvaccel/status\n");
	fflush(stdout);
	return system("cat /sys/kernel/debug/kvaccel/status") ? 1 : 0;
}
