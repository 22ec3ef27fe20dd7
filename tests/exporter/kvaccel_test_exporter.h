/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvaccel_test_exporter's ioctls (tests/exporter/kvaccel_test_exporter.c),
 * shared by the module and the tests.
 */
#ifndef _KVACCEL_TEST_EXPORTER_H_
#define _KVACCEL_TEST_EXPORTER_H_

#include <linux/ioctl.h>
#include <linux/types.h>

/* The buffer can be vmapped (else, like VRAM, it has no CPU mapping). */
#define KVTX_CREATE_VMAP	0x1u
#define KVTX_CREATE_FLAGS	KVTX_CREATE_VMAP

struct kvtx_create {
	__u64 size;	/* In: bytes, a multiple of the page size, at most 64 MiB */
	__u32 flags;	/* In: KVTX_CREATE_* */
	__s32 fd;	/* Out: the dma-buf */
	__u32 pad;	/* In: 0 */
	__u32 pad2;	/* In: ignored */
};

#define KVTX_IOCTL_CREATE	_IOWR('K', 0x40, struct kvtx_create)
#define KVTX_IOCTL_ATTACH_COUNT	_IOR('K', 0x41, __u64)

#endif /* _KVACCEL_TEST_EXPORTER_H_ */
