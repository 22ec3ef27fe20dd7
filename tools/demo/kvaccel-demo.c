// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-demo - what `make demo` runs in the VM: find the device through
 * libdrm, create KV-cache regions, grow a request's KV window (a space) one
 * block at a time, hand the request's KV blocks to a second process (a
 * "decode engine") without copying a byte, and print the device's status.
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

static uint32_t space_create(int fd, uint32_t slots, uint32_t block_size)
{
	struct drm_kvaccel_space_create sc = { .nr_slots = slots, .block_size = block_size };

	if (drmIoctl(fd, DRM_IOCTL_KVACCEL_SPACE_CREATE, &sc))
		die("SPACE_CREATE", errno);
	return sc.handle;
}

static uint64_t slot_bind(int fd, uint32_t space, uint32_t slot, uint32_t region, uint64_t block)
{
	struct drm_kvaccel_bind_op op = {
		.op = KVACCEL_BIND_OP_BIND, .slot = slot, .handle = region, .block = block,
	};
	struct drm_kvaccel_space_bind sb = { .handle = space, .count = 1, .ops = (uintptr_t)&op };

	if (drmIoctl(fd, DRM_IOCTL_KVACCEL_SPACE_BIND, &sb))
		die("SPACE_BIND", errno);
	return sb.generation;
}

static char *space_map(int fd, uint32_t space, size_t *size)
{
	struct drm_kvaccel_space_info info = { .handle = space };
	void *p;

	if (drmIoctl(fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &info))
		die("SPACE_INFO", errno);
	p = mmap(NULL, info.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)info.mmap_offset);
	if (p == MAP_FAILED)
		die("mmap space", errno);
	*size = info.map_size;
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
	/* Control data is read as struct cmsghdr: align it as one. */
	union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } cb = { 0 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf) };
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
	union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } cb;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1 || (m.msg_flags & MSG_CTRUNC))
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

#define KV_BLOCK	(64 * 1024)
#define KV_SLOTS	16
#define KV_TOKEN	1024	/* bytes of KV per token in this toy model */

/*
 * The second process: import the request's KV region, bind the same blocks
 * in the same order into its own window, read the prompt's KV, append.
 */
static int decode_engine(int sock)
{
	uint32_t handle, space, order[KV_SLOTS], nblocks, i;
	size_t map_size;
	char path[64], ack = 'k';
	char *win;
	int fd, buf;

	buf = recv_fd(sock);
	fd = open_kvaccel(path, sizeof(path));
	if (buf < 0 || fd < 0)
		return 1;
	if (read(sock, &nblocks, sizeof(nblocks)) != sizeof(nblocks) ||
	    read(sock, order, sizeof(order)) != sizeof(order))
		return 2;
	if (drmPrimeFDToHandle(fd, buf, &handle))
		die("drmPrimeFDToHandle", errno);
	close(buf);
	space = space_create(fd, KV_SLOTS, KV_BLOCK);
	for (i = 0; i < nblocks; i++)
		slot_bind(fd, space, i, handle, order[i]);
	printf("[decode  pid %d] bound the request's %u KV blocks into its own window\n",
	       getpid(), nblocks);
	if (write(sock, &ack, 1) != 1)
		return 3;
	win = space_map(fd, space, &map_size);
	printf("[decode  pid %d] token 0: \"%s\"\n", getpid(), win);
	printf("[decode  pid %d] token 700 (in block %d): \"%s\"\n", getpid(),
	       700 * KV_TOKEN / KV_BLOCK, win + 700 * KV_TOKEN);
	snprintf(win + 800 * KV_TOKEN, KV_TOKEN, "decode %d appended token 800", getpid());
	munmap(win, map_size);
	return 0;
}

int main(void)
{
	uint32_t kv, small, weights, kvspace, order[KV_SLOTS] = { 0 }, nblocks = 0, tok, i;
	int fd, dmabuf, sv[2], st;
	uint64_t abi, gen = 0;
	size_t map_size;
	drmVersionPtr v;
	char path[64], ack, *win;
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

	kv = region_create(fd, KV_SLOTS * KV_BLOCK, KV_BLOCK, 0);
	small = region_create(fd, 1 * MIB, 4096, 0);
	weights = region_create(fd, 4 * MIB, 64 * 1024, KVACCEL_REGION_CREATE_NUMA_NODE);
	printf("[prefill pid %d] regions: KV pool %u (1 MiB, 64 KiB blocks), "
	       "scratch %u (1 MiB, 4 KiB blocks), weights %u (4 MiB on node 0)\n",
	       getpid(), kv, small, weights);
	status("with three regions", fd);

	/*
	 * A request's KV window grows one block at a time as tokens arrive:
	 * the blocks come from the pool region in any order, the window stays
	 * virtually contiguous.
	 */
	kvspace = space_create(fd, KV_SLOTS, KV_BLOCK);
	win = space_map(fd, kvspace, &map_size);
	for (tok = 0; tok < 800; tok++) {
		while ((tok + 1) * KV_TOKEN > nblocks * KV_BLOCK) {
			order[nblocks] = (nblocks * 5 + 3) % KV_SLOTS;
			gen = slot_bind(fd, kvspace, nblocks, kv, order[nblocks]);
			nblocks++;
		}
		snprintf(win + tok * KV_TOKEN, KV_TOKEN, "prefill %d: KV of token %u",
			 getpid(), tok);
	}
	printf("[prefill pid %d] prompt of 800 tokens: window grew to %u blocks "
	       "(generation %llu), blocks in pool order", getpid(), nblocks,
	       (unsigned long long)gen);
	for (i = 0; i < nblocks; i++)
		printf(" %u", order[i]);
	printf("\n");
	if (drmPrimeHandleToFD(fd, kv, DRM_CLOEXEC | DRM_RDWR, &dmabuf))
		die("drmPrimeHandleToFD", errno);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		die("socketpair", errno);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (!pid) {
		close(sv[0]);
		_exit(decode_engine(sv[1]));
	}
	close(sv[1]);
	printf("[prefill pid %d] handing the request to decode: region %u as dma-buf fd %d "
	       "plus the block order\n", getpid(), kv, dmabuf);
	fflush(stdout);
	if (send_fd(sv[0], dmabuf) || write(sv[0], &nblocks, sizeof(nblocks)) != sizeof(nblocks) ||
	    write(sv[0], order, sizeof(order)) != sizeof(order))
		die("send", errno);
	close(dmabuf);
	if (read(sv[0], &ack, 1) != 1)
		die("decode engine did not take the blocks", EIO);
	/* Decode holds the blocks now: prefill lets go of its handles. */
	drmCloseBufferHandle(fd, kvspace);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("decode engine failed", EIO);
	printf("[prefill pid %d] reads back: \"%s\" (same pages, nothing copied)\n",
	       getpid(), win + 800 * KV_TOKEN);
	munmap(win, map_size);
	drmCloseBufferHandle(fd, kv);
	drmCloseBufferHandle(fd, small);
	drmCloseBufferHandle(fd, weights);
	status("after closing", fd);
	fflush(stdout);
	close(fd);

	printf("-- kvaccel's debugfs status (in the DRM device's debugfs directory)\n");
	fflush(stdout);
	return system("for d in /sys/kernel/debug/accel/* /sys/kernel/debug/dri/*; do "
		      "[ -e $d/copy_fail_nth ] && cat $d/status; done; true") ? 1 : 0;
}
