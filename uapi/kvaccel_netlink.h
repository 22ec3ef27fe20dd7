/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * kvaccel - the generic netlink family "kvaccel": the control plane.
 *
 * Documentation/netlink/kvaccel.yaml is the specification of the family and
 * Documentation/netlink.rst its description; this header defines the
 * numbers. Rules: commands and attributes are only ever appended; an
 * attribute keeps its type forever; the kernel validates requests strictly
 * (unknown attributes and attributes that are only ever sent by the kernel
 * are rejected with -EINVAL and an extended ack naming them).
 *
 * Byte counts and identifiers are u64 attributes, aligned with
 * %KVACCEL_A_PAD. Process ids in replies and in requests are numbers in the
 * pid namespace of the caller; in multicast events, which have no single
 * reader, they are numbers in the initial pid namespace.
 */
#ifndef _UAPI_KVACCEL_NETLINK_H_
#define _UAPI_KVACCEL_NETLINK_H_

/** KVACCEL_GENL_NAME - the family's name, resolved with CTRL_CMD_GETFAMILY. */
#define KVACCEL_GENL_NAME		"kvaccel"
/** KVACCEL_GENL_VERSION - the family's version (genlmsghdr.version). */
#define KVACCEL_GENL_VERSION		1
/** KVACCEL_GENL_MCGRP_EVENTS - the multicast group of events (admins only). */
#define KVACCEL_GENL_MCGRP_EVENTS	"events"

/**
 * enum kvaccel_cmd - commands of the family.
 * @KVACCEL_CMD_UNSPEC: unused.
 * @KVACCEL_CMD_DEVICE_GET: do: the device (limit, usage, watermarks,
 *	counters). Any user.
 * @KVACCEL_CMD_CLIENT_GET: dump: one message per open file of the device.
 *	Admins (CAP_NET_ADMIN) see every client, others only those opened
 *	with their effective uid.
 * @KVACCEL_CMD_REGION_GET: dump: one message per region alive. Admins see
 *	every region, others only those created with their effective uid.
 * @KVACCEL_CMD_DEVICE_SET: do, CAP_NET_ADMIN: set any of %KVACCEL_A_LIMIT,
 *	%KVACCEL_A_DEFAULT_QUOTA, %KVACCEL_A_HIGH_WM and %KVACCEL_A_LOW_WM;
 *	all are validated before any is applied.
 * @KVACCEL_CMD_QUOTA_SET: do, CAP_NET_ADMIN: set the quota of the process
 *	%KVACCEL_A_PID to %KVACCEL_A_QUOTA bytes (0: the default quota).
 * @KVACCEL_CMD_CLIENT_OPEN_NTF: event: a file of the device was opened.
 * @KVACCEL_CMD_CLIENT_CLOSE_NTF: event: a file was closed (its last
 *	reference dropped).
 * @KVACCEL_CMD_REGION_CREATE_NTF: event: a region was created.
 * @KVACCEL_CMD_REGION_DESTROY_NTF: event: a region's memory was freed.
 * @KVACCEL_CMD_PRESSURE_NTF: event: usage rose above the high watermark
 *	(%KVACCEL_A_PRESSURE 1) or, after that, fell below the low watermark
 *	or the watermarks were turned off (%KVACCEL_A_PRESSURE 0).
 * @KVACCEL_CMD_COPY_ERROR_NTF: event: a copy job completed with an error.
 * @KVACCEL_CMD_IMPORT_GET: dump: one message per import (a dma-buf of
 *	another driver held by a client). Admins see every import, others
 *	only those made with their effective uid.
 * @__KVACCEL_CMD_MAX: internal.
 */
enum kvaccel_cmd {
	KVACCEL_CMD_UNSPEC,
	KVACCEL_CMD_DEVICE_GET,
	KVACCEL_CMD_CLIENT_GET,
	KVACCEL_CMD_REGION_GET,
	KVACCEL_CMD_DEVICE_SET,
	KVACCEL_CMD_QUOTA_SET,
	KVACCEL_CMD_CLIENT_OPEN_NTF,
	KVACCEL_CMD_CLIENT_CLOSE_NTF,
	KVACCEL_CMD_REGION_CREATE_NTF,
	KVACCEL_CMD_REGION_DESTROY_NTF,
	KVACCEL_CMD_PRESSURE_NTF,
	KVACCEL_CMD_COPY_ERROR_NTF,
	KVACCEL_CMD_IMPORT_GET,

	__KVACCEL_CMD_MAX
};

#define KVACCEL_CMD_MAX (__KVACCEL_CMD_MAX - 1)

/**
 * enum kvaccel_attr - attributes of the family (one flat set).
 * @KVACCEL_A_UNSPEC: unused.
 * @KVACCEL_A_PAD: padding for u64 attributes.
 * @KVACCEL_A_ABI_VERSION: u32, %KVACCEL_ABI_VERSION of the module.
 * @KVACCEL_A_LIMIT: u64, the device limit in bytes. In DEVICE_SET a
 *	multiple of 1 MiB; 0 restores the default (half of RAM).
 * @KVACCEL_A_USAGE: u64, bytes charged: to the device (DEVICE_GET,
 *	PRESSURE_NTF) or to a client's process (CLIENT_GET, CLIENT_*_NTF).
 * @KVACCEL_A_DEFAULT_QUOTA: u64, the quota of processes without their
 *	own, in bytes, 0 for none. In DEVICE_SET a multiple of 1 MiB.
 * @KVACCEL_A_HIGH_WM: u64, the high watermark in bytes, 0 when off.
 * @KVACCEL_A_LOW_WM: u64, the low watermark in bytes, 0 when off. Both
 *	watermarks are off or both on with low <= high.
 * @KVACCEL_A_PRESSURE: u8, 1 while under pressure (usage rose above the
 *	high watermark and has not fallen below the low one since), else 0.
 * @KVACCEL_A_PAGES_HELD: u64, pages the module holds for regions.
 * @KVACCEL_A_REGIONS: u32, regions alive (DEVICE_GET) or owned by a
 *	client's process (CLIENT_GET).
 * @KVACCEL_A_CLIENTS: u32, open files of the device.
 * @KVACCEL_A_COPY_WORKERS: u32, copy worker threads.
 * @KVACCEL_A_COPY_JOBS: u64, copy jobs completed.
 * @KVACCEL_A_COPY_ERRORS: u64, copy jobs completed with an error.
 * @KVACCEL_A_CLIENT_ID: u64, a client (open file), unique on the device.
 * @KVACCEL_A_PID: u32, a process (thread group) id.
 * @KVACCEL_A_UID: u32, the effective uid that opened a client or created
 *	a region, in the initial user namespace.
 * @KVACCEL_A_COMM: string, the command name of a process.
 * @KVACCEL_A_QUOTA: u64, a process's quota in bytes (effective in
 *	replies: its own or the default; 0 for none). In QUOTA_SET the
 *	process's own quota, 0 to follow the default.
 * @KVACCEL_A_REGION_HANDLES: u32, handles of regions a client holds.
 * @KVACCEL_A_SPACE_HANDLES: u32, handles of spaces a client holds.
 * @KVACCEL_A_IMPORT_HANDLES: u32, handles of imported dma-bufs a client
 *	holds.
 * @KVACCEL_A_COPY_INFLIGHT: u32, copy jobs of a client's process in flight.
 * @KVACCEL_A_REGION_ID: u64, a region (uapi region_id).
 * @KVACCEL_A_SIZE: u64, a region's size in bytes.
 * @KVACCEL_A_BLOCK_SIZE: u64, a region's block size in bytes.
 * @KVACCEL_A_NODE: s32, the NUMA node of all blocks of a region, or -1.
 * @KVACCEL_A_BOUND_SLOTS: u32, space slots bound to blocks of a region.
 * @KVACCEL_A_EXPORTED: u8, 1 if the region is exported as a dma-buf.
 * @KVACCEL_A_JOB_ID: u64, a copy job's id in its client (COPY_SUBMIT).
 * @KVACCEL_A_ERROR: s32, a negative errno.
 * @KVACCEL_A_IMPORT_ID: u64, an import (REGION_INFO region_id of it).
 * @KVACCEL_A_HELD: u8, 1 if the import cannot be mapped by the CPU (GPU
 *	memory): held only, copies touching it fail.
 * @KVACCEL_A_READ_ONLY: u8, 1 if the import was made from a read-only
 *	dma-buf: never a copy destination.
 * @__KVACCEL_A_MAX: internal.
 */
enum kvaccel_attr {
	KVACCEL_A_UNSPEC,
	KVACCEL_A_PAD,
	KVACCEL_A_ABI_VERSION,
	KVACCEL_A_LIMIT,
	KVACCEL_A_USAGE,
	KVACCEL_A_DEFAULT_QUOTA,
	KVACCEL_A_HIGH_WM,
	KVACCEL_A_LOW_WM,
	KVACCEL_A_PRESSURE,
	KVACCEL_A_PAGES_HELD,
	KVACCEL_A_REGIONS,
	KVACCEL_A_CLIENTS,
	KVACCEL_A_COPY_WORKERS,
	KVACCEL_A_COPY_JOBS,
	KVACCEL_A_COPY_ERRORS,
	KVACCEL_A_CLIENT_ID,
	KVACCEL_A_PID,
	KVACCEL_A_UID,
	KVACCEL_A_COMM,
	KVACCEL_A_QUOTA,
	KVACCEL_A_REGION_HANDLES,
	KVACCEL_A_SPACE_HANDLES,
	KVACCEL_A_IMPORT_HANDLES,
	KVACCEL_A_COPY_INFLIGHT,
	KVACCEL_A_REGION_ID,
	KVACCEL_A_SIZE,
	KVACCEL_A_BLOCK_SIZE,
	KVACCEL_A_NODE,
	KVACCEL_A_BOUND_SLOTS,
	KVACCEL_A_EXPORTED,
	KVACCEL_A_JOB_ID,
	KVACCEL_A_ERROR,
	KVACCEL_A_IMPORT_ID,
	KVACCEL_A_HELD,
	KVACCEL_A_READ_ONLY,

	__KVACCEL_A_MAX
};

#define KVACCEL_A_MAX (__KVACCEL_A_MAX - 1)

#endif /* _UAPI_KVACCEL_NETLINK_H_ */
