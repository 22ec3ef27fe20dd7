/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvaccel - internal interfaces of the module.
 *
 * Object model (Documentation/design.rst):
 *   kvaccel_device  one DRM device; owns the accounting of all memory.
 *   kvaccel_proc    a process (thread group) that opened the device or owns
 *                   a region; quota and usage are per process, not per file.
 *   kvaccel_client  one open file (drm_file.driver_priv).
 *   kvaccel_region  pinned host memory in blocks (a GEM object).
 *   kvaccel_space   a window of slots bound to region blocks (a GEM object).
 *   kvaccel_import  a dma-buf of another driver (a GEM object).
 */
#ifndef _KVACCEL_DRV_H_
#define _KVACCEL_DRV_H_

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/xarray.h>
#include <drm/drm_device.h>
#include <drm/drm_gem.h>

#define KVACCEL_DRIVER_NAME	"kvaccel"
#define KVACCEL_DRIVER_DESC	"Pinned KV-cache memory for LLM serving"

struct dentry;
struct sg_table;

/**
 * struct kvaccel_device - the kvaccel DRM device.
 * @drm: the DRM device.
 * @acct_lock: protects @procs, @users, @usage and the accounting fields of
 *	every &struct kvaccel_proc and &struct kvaccel_user. Never held across
 *	an allocation of region pages.
 * @procs: every &struct kvaccel_proc alive, linked by kvaccel_proc.node.
 * @users: every &struct kvaccel_user with a charge, by kvaccel_user.node.
 * @usage: bytes charged by all regions alive.
 * @pages_held: pages the module holds for regions, counted as they are
 *	allocated and freed (kmemleak does not track page allocations).
 * @nr_regions: regions alive.
 * @next_region_id: the last region id handed out.
 * @copy_wq: the copy workers (the module's queue): every step of a job
 *	between the publication of its fence and its signal (WQ_MEM_RECLAIM).
 * @copy_workers: how many.
 * @jobs_lock: protects kvaccel_client.pending of every client and the
 *	kvaccel_job.pending entries on them. A spinlock: taken by the copy
 *	workers inside fence signalling sections.
 * @copy_jobs: copy jobs completed.
 * @copy_errors: copy jobs completed with an error.
 * @copy_fail_nth: fault injection for the copy workers (debugfs
 *	copy_fail_nth): when non-zero, counts down at each failure point of
 *	a job (its start, each part) and fails the one that reaches zero.
 * @pmd_maps: 2 MiB slots mapped with one PMD entry (huge_fault).
 * @block_maps: blocks mapped with page table entries by one fault.
 * @debugfs: kvaccel's files in the DRM device's debugfs directory.
 * @clients_lock: protects @clients, @nr_clients and @next_client_id.
 * @clients: every &struct kvaccel_client, in the order of their ids.
 * @nr_clients: entries in @clients.
 * @next_client_id: the id the next client gets.
 * @regions_lock: protects @regions, @imports and the ids of both.
 * @regions: every region published, in the order of their ids.
 * @imports: every import alive, in the order of their ids.
 * @pressure_lock: protects @high_wm, @low_wm and @pressure, and orders
 *	pressure events. Taken before @acct_lock.
 * @high_wm: usage above which the device is under pressure; 0: off.
 * @low_wm: usage below which pressure ends; 0 only when @high_wm is 0.
 * @pressure: under pressure (the last pressure event said so).
 */
struct kvaccel_device {
	struct drm_device drm;

	/* Protects procs, usage and the accounting fields of each proc. */
	struct mutex acct_lock;
	struct list_head procs;
	struct list_head users;
	u64 usage;

	atomic_long_t pages_held;
	atomic_t nr_regions;
	atomic64_t next_region_id;

	struct workqueue_struct *copy_wq;
	unsigned int copy_workers;
	/* Protects every client's pending list. */
	spinlock_t jobs_lock;
	atomic64_t copy_jobs;
	atomic64_t copy_errors;
	atomic_t copy_fail_nth;

	atomic64_t pmd_maps;
	atomic64_t block_maps;

	struct dentry *debugfs[2];

	/* Protects clients, nr_clients, next_client_id. */
	struct mutex clients_lock;
	struct list_head clients;
	u32 nr_clients;
	u64 next_client_id;

	/* Protects regions, imports and their ids. */
	struct mutex regions_lock;
	struct list_head regions;
	struct list_head imports;

	/* Protects high_wm, low_wm, pressure; serialises pressure events. */
	struct mutex pressure_lock;
	u64 high_wm;
	u64 low_wm;
	bool pressure;
};

static inline struct kvaccel_device *to_kvaccel_device(struct drm_device *drm)
{
	return container_of(drm, struct kvaccel_device, drm);
}

/**
 * struct kvaccel_proc - accounting of one process (thread group).
 * @kdev: the device.
 * @node: entry in kvaccel_device.procs.
 * @ref: held by each client the process opened and each region it owns;
 *	dropped to zero only under kvaccel_device.acct_lock.
 * @tgid: the thread group; a reference is held, so the pointer identifies
 *	the process even after its pid number is reused.
 * @usage: bytes charged to the process; under kvaccel_device.acct_lock.
 * @quota: bytes the process may hold, 0 for the module's default quota;
 *	under kvaccel_device.acct_lock.
 * @nr_regions: regions the process owns; under kvaccel_device.acct_lock.
 * @copy_inflight: copy jobs of the process not yet completed.
 * @copy_bytes: bytes of those jobs (capped by copy_inflight_mb).
 * @uid: the effective uid of the process when the entry was created: the
 *	user its regions under the default quota are charged to.
 * @comm: the process's command name when the entry was created.
 */
struct kvaccel_proc {
	struct kvaccel_device *kdev;
	struct list_head node;
	refcount_t ref;
	struct pid *tgid;
	u64 usage;
	u64 quota;
	u32 nr_regions;
	atomic_t copy_inflight;
	atomic64_t copy_bytes;
	kuid_t uid;
	char comm[TASK_COMM_LEN];
};

/**
 * struct kvaccel_copy_stats - copy engine statistics of one file, shared
 *	with its jobs (which may outlive it).
 * @ref: held by the file and by each of its jobs until released.
 * @busy_ns: time the workers spent copying the file's jobs.
 */
struct kvaccel_copy_stats {
	refcount_t ref;
	atomic64_t busy_ns;
};

/**
 * struct kvaccel_user - accounting of one user (effective uid) over all
 *	its processes (kvaccel_users.c).
 * @kdev: the device.
 * @node: entry in kvaccel_device.users.
 * @uid: the user.
 * @charges: charges held (spaces with a reserved window, regions charged
 *	under the default quota); the entry is freed with the last. Under
 *	kvaccel_device.acct_lock.
 * @window: bytes of the device's mmap offset range reserved by the user's
 *	spaces. Under kvaccel_device.acct_lock.
 * @usage: bytes of regions its processes created under the default quota.
 *	Under kvaccel_device.acct_lock.
 */
struct kvaccel_user {
	struct kvaccel_device *kdev;
	struct list_head node;
	kuid_t uid;
	unsigned int charges;
	u64 window;
	u64 usage;
};

/**
 * struct kvaccel_client - one open file of the device.
 * @kdev: the device.
 * @proc: the process that opened the file.
 * @jobs: the file's last copy jobs by id (their fences, referenced); the
 *	xarray's lock protects it and @last_job_id.
 * @last_job_id: the id of the file's last job.
 * @pending: the file's jobs that have not started (kvaccel_job.pending),
 *	all cancelled when it closes; under kvaccel_device.jobs_lock.
 * @copy_stats: the file's copy statistics (fdinfo).
 * @id: identifier, unique on the device (netlink client id).
 * @node: entry in kvaccel_device.clients.
 * @uid: the effective uid of the opener.
 * @region_handles: handles of regions the file holds.
 * @space_handles: handles of spaces the file holds.
 * @import_handles: handles of imports the file holds.
 */
struct kvaccel_client {
	struct kvaccel_device *kdev;
	struct kvaccel_proc *proc;
	struct xarray jobs;
	u64 last_job_id;
	struct list_head pending;
	struct kvaccel_copy_stats *copy_stats;
	u64 id;
	struct list_head node;
	kuid_t uid;
	atomic_t region_handles;
	atomic_t space_handles;
	atomic_t import_handles;
};

/**
 * struct kvaccel_region - pinned host memory of @nr_blocks blocks.
 * @base: the GEM object; its size is @nr_blocks << @block_shift.
 * @owner: the process charged for the region, until the last page is freed.
 * @charged: bytes charged to @owner and the device.
 * @quota_user: the user also charged (regions created under the default
 *	quota), or NULL.
 * @block_shift: log2 of the block size.
 * @nid: the node every block lies on, or NUMA_NO_NODE.
 * @id: identifier, unique on the device (uapi region_id); 0 until the
 *	region is published on kvaccel_device.regions.
 * @node: entry in kvaccel_device.regions once published.
 * @uid: the effective uid of the creator.
 * @bound: space slots bound to blocks of the region.
 * @nr_blocks: number of blocks.
 * @blocks: head page of each block (a compound page of the block's order);
 *	written only while the region is created, read-only afterwards.
 */
struct kvaccel_region {
	struct drm_gem_object base;
	struct kvaccel_proc *owner;
	u64 charged;
	struct kvaccel_user *quota_user;
	unsigned int block_shift;
	int nid;
	u64 id;
	struct list_head node;
	kuid_t uid;
	atomic_t bound;
	unsigned long nr_blocks;
	struct page **blocks;
};

/**
 * struct kvaccel_slot - one slot of a space.
 * @region: the region bound, holding a GEM reference; NULL if empty.
 * @block: the block index in @region.
 */
struct kvaccel_slot {
	struct kvaccel_region *region;
	unsigned long block;
};

/**
 * struct kvaccel_space - a window of slots, each empty or bound to a block.
 * @base: the GEM object: the window (@nr_slots << @block_shift bytes)
 *	followed by the control page.
 * @lock: protects @slots and @bound. Held for read by the fault handlers
 *	while they look a slot up and insert its mapping, for write by a bind
 *	batch while it changes slots and tears down their mappings; block
 *	references are dropped only after it is released. Taken under
 *	mmap_lock (faults); taken before @maps_lock and i_mmap_rwsem (binds).
 * @block_shift: log2 of the slot size.
 * @nr_slots: number of slots.
 * @bound: number of bound slots.
 * @slots: the slot table.
 * @scratch: one bit per slot, clear between uses; a bind batch uses it
 *	under @lock held for write to find duplicate targets and runs of
 *	slots to tear down without sorting.
 * @control: the page userspace maps read-only after the window
 *	(&struct drm_kvaccel_space_control); written under @lock.
 * @maps_lock: protects @maps. Taken under mmap_lock (mmap, vm_open,
 *	vm_close) and under @lock (binds).
 * @maps: &struct kvaccel_space_map of every address_space through which
 *	the space is mapped: the DRM device file's and that of each exported
 *	dma-buf that was mmapped. A bind tears mappings down in all of them.
 * @window_user: the user charged for the window's mmap offsets; NULL for
 *	a space without (%KVACCEL_SPACE_CREATE_NO_OFFSET).
 * @creator: the id of the client that created the space: the one that may
 *	rebind it (kvaccel_space_may_rebind()).
 * @share_rebind: every holder may rebind it
 *	(%KVACCEL_SPACE_CREATE_SHARE_REBIND).
 */
struct kvaccel_space {
	struct drm_gem_object base;
	struct rw_semaphore lock;
	unsigned int block_shift;
	u32 nr_slots;
	u32 bound;
	struct kvaccel_slot *slots;
	unsigned long *scratch;
	struct page *control;
	/* Protects maps. */
	struct mutex maps_lock;
	struct list_head maps;
	struct kvaccel_user *window_user;
	u64 creator;
	bool share_rebind;
};

/**
 * struct kvaccel_import - a dma-buf of another driver, held by reference
 *	(never attached: kvaccel_import.c).
 * @base: the GEM object; base.resv is the dma-buf's reservation object.
 * @dmabuf: the dma-buf (referenced).
 * @cpu_access: the exporter can vmap it (copies may touch it); an import
 *	without is held only (GPU memory).
 * @read_only: the dma-buf was given read-only: never a copy destination.
 * @id: identifier, unique on the device, from the region ids' counter.
 * @node: entry in kvaccel_device.imports.
 * @uid: the effective uid of the importer.
 * @tgid: the importing process (referenced).
 * @comm: its command name.
 */
struct kvaccel_import {
	struct drm_gem_object base;
	struct dma_buf *dmabuf;
	bool cpu_access;
	bool read_only;
	u64 id;
	struct list_head node;
	kuid_t uid;
	struct pid *tgid;
	char comm[TASK_COMM_LEN];
};

static inline struct kvaccel_import *to_kvaccel_import(struct drm_gem_object *obj)
{
	return container_of(obj, struct kvaccel_import, base);
}

/* kvaccel_drv.c: module parameters */
u64 kvaccel_device_limit(void);
u64 kvaccel_default_quota(void);
void kvaccel_set_device_limit(u64 bytes);
void kvaccel_set_default_quota(u64 bytes);
unsigned int kvaccel_copy_timeout_ms(void);
u64 kvaccel_space_window_cap(void);
u64 kvaccel_copy_inflight_bytes(void);

/* kvaccel_acct.c */
void kvaccel_acct_init(struct kvaccel_device *kdev);
struct kvaccel_proc *kvaccel_proc_get(struct kvaccel_device *kdev,
				      struct pid *tgid);
void kvaccel_proc_put(struct kvaccel_proc *proc);
struct kvaccel_proc *kvaccel_client_caller(struct kvaccel_client *client);
int kvaccel_acct_charge(struct kvaccel_proc *proc, u64 bytes, struct kvaccel_user **user);
void kvaccel_acct_uncharge(struct kvaccel_proc *proc, u64 bytes, struct kvaccel_user *user);
void kvaccel_acct_read(struct kvaccel_device *kdev, struct pid *tgid,
		       u64 *usage, u64 *quota);
u64 kvaccel_acct_device_usage(struct kvaccel_device *kdev);
int kvaccel_acct_set_quota(struct kvaccel_device *kdev, struct pid *tgid,
			   u64 quota);
void kvaccel_proc_snapshot(struct kvaccel_proc *proc, u64 *usage, u64 *quota, u32 *regions);
int kvaccel_pressure_set(struct kvaccel_device *kdev, const u64 *high, const u64 *low);
void kvaccel_pressure_update(struct kvaccel_device *kdev);

/* kvaccel_users.c */
struct kvaccel_user *kvaccel_user_get_locked(struct kvaccel_device *kdev, kuid_t uid,
					     struct kvaccel_user **new);
struct kvaccel_user *kvaccel_user_idle_locked(struct kvaccel_user *user);
struct kvaccel_user *kvaccel_user_charge_window(struct kvaccel_device *kdev, kuid_t uid,
						u64 bytes);
void kvaccel_user_uncharge_window(struct kvaccel_user *user, u64 bytes);

/* kvaccel_client.c */
void kvaccel_clients_init(struct kvaccel_device *kdev);
void kvaccel_client_add(struct kvaccel_client *client);
void kvaccel_client_remove(struct kvaccel_client *client);
int kvaccel_gem_handle_open(struct drm_gem_object *obj, struct drm_file *file);
void kvaccel_gem_handle_close(struct drm_gem_object *obj, struct drm_file *file);

/* kvaccel_region.c */
struct kvaccel_region *kvaccel_region_create(struct kvaccel_device *kdev,
					     struct kvaccel_proc *owner,
					     u64 size, unsigned int block_shift,
					     int nid, bool strict_node);
bool kvaccel_is_region(const struct drm_gem_object *obj);
void kvaccel_regions_init(struct kvaccel_device *kdev);

static inline struct kvaccel_region *to_kvaccel_region(struct drm_gem_object *obj)
{
	return container_of(obj, struct kvaccel_region, base);
}

static inline unsigned int kvaccel_region_order(const struct kvaccel_region *region)
{
	return region->block_shift - PAGE_SHIFT;
}

/* kvaccel_space.c */
struct kvaccel_space *kvaccel_space_create(struct kvaccel_device *kdev,
					   u32 nr_slots, unsigned int block_shift,
					   bool mmap_offset, u64 creator, bool share_rebind);
bool kvaccel_space_may_rebind(const struct kvaccel_space *space,
			      const struct kvaccel_client *client);
bool kvaccel_is_space(const struct drm_gem_object *obj);
struct kvaccel_space *kvaccel_space_lookup(struct drm_file *file, u32 handle);
bool kvaccel_space_pmd_capable(void);
void kvaccel_space_zap(struct kvaccel_space *space, u32 first, u32 count);
void kvaccel_space_set_generation(struct kvaccel_space *space, u64 generation);
u64 kvaccel_space_generation(struct kvaccel_space *space);

static inline struct kvaccel_space *to_kvaccel_space(struct drm_gem_object *obj)
{
	return container_of(obj, struct kvaccel_space, base);
}

static inline u64 kvaccel_space_window(const struct kvaccel_space *space)
{
	return (u64)space->nr_slots << space->block_shift;
}

/* kvaccel_bind.c */
int kvaccel_ioctl_space_bind(struct drm_device *drm, void *data,
			     struct drm_file *file);

/* kvaccel_copy.c */
int kvaccel_copy_module_init(unsigned int workers);
void kvaccel_copy_module_fini(void);
void kvaccel_copy_queues(struct workqueue_struct **wq, unsigned int *workers);
void kvaccel_copy_init(struct kvaccel_device *kdev);
int kvaccel_copy_client_init(struct kvaccel_client *client);
void kvaccel_copy_client_fini(struct kvaccel_client *client);
int kvaccel_ioctl_copy_submit(struct drm_device *drm, void *data,
			      struct drm_file *file);
int kvaccel_ioctl_copy_status(struct drm_device *drm, void *data,
			      struct drm_file *file);

/* kvaccel_mmap.c */
unsigned long kvaccel_get_unmapped_area(struct file *filp, unsigned long addr,
					unsigned long len, unsigned long pgoff,
					unsigned long flags);

/* kvaccel_import.c */
struct drm_gem_object *kvaccel_gem_prime_import(struct drm_device *drm,
						struct dma_buf *dmabuf);
bool kvaccel_is_import(const struct drm_gem_object *obj);

/* kvaccel_ioctl.c */
int kvaccel_ioctl_get_param(struct drm_device *drm, void *data,
			    struct drm_file *file);
int kvaccel_ioctl_region_create(struct drm_device *drm, void *data,
				struct drm_file *file);
int kvaccel_ioctl_region_info(struct drm_device *drm, void *data,
			      struct drm_file *file);
int kvaccel_ioctl_space_create(struct drm_device *drm, void *data,
			       struct drm_file *file);
int kvaccel_ioctl_space_info(struct drm_device *drm, void *data,
			     struct drm_file *file);

/* kvaccel_netlink.c */
int kvaccel_netlink_init(void);
void kvaccel_netlink_fini(void);
void kvaccel_netlink_attach(struct kvaccel_device *kdev);
void kvaccel_notify_client(struct kvaccel_client *client, bool open);
void kvaccel_notify_region(struct kvaccel_region *region, bool create);
void kvaccel_notify_pressure(struct kvaccel_device *kdev, bool pressure,
			     u64 usage, u64 high, u64 low);
void kvaccel_notify_copy_error(struct kvaccel_device *kdev, u64 client_id,
			       struct kvaccel_proc *proc, u64 job_id, int error);

/* kvaccel_fdinfo.c (hooked up through kvaccel_compat.h) */
struct drm_printer;
struct seq_file;
struct kvaccel_copy_stats *kvaccel_copy_stats_new(void);
void kvaccel_copy_stats_put(struct kvaccel_copy_stats *stats);
void kvaccel_show_fdinfo(struct drm_printer *p, struct drm_file *file);
void kvaccel_show_fdinfo_fops(struct seq_file *m, struct file *f);

/* kvaccel_debugfs.c */
void kvaccel_debugfs_init(struct kvaccel_device *kdev);
void kvaccel_debugfs_fini(struct kvaccel_device *kdev);

#endif /* _KVACCEL_DRV_H_ */
