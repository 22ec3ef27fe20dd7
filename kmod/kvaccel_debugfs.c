// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - debugfs, in the DRM device's own directory
 * (<debugfs>/accel/kvaccel/ on kernels with accel nodes, the render
 * minor's <debugfs>/dri/N/ before): status shows the device's accounting
 * and the module's own count of pages held, so tests can prove that nothing
 * leaked (kmemleak does not see page allocations); copy_fail_nth injects
 * failures into the copy workers, which the calling task's fail-nth cannot
 * reach.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/uidgid.h>

#include <drm/drm_file.h>

#include "kvaccel_compat.h"
#include "kvaccel_drv.h"

static int kvaccel_status_show(struct seq_file *m, void *unused)
{
	struct kvaccel_device *kdev = m->private;
	struct kvaccel_proc *proc;
	struct kvaccel_user *user;

	mutex_lock(&kdev->acct_lock);
	seq_printf(m, "limit_bytes %llu\n", kvaccel_device_limit());
	seq_printf(m, "default_quota_bytes %llu\n", kvaccel_default_quota());
	seq_printf(m, "usage_bytes %llu\n", kdev->usage);
	seq_printf(m, "pages_held %ld\n", atomic_long_read(&kdev->pages_held));
	seq_printf(m, "regions %d\n", atomic_read(&kdev->nr_regions));
	seq_printf(m, "space_pmd_maps %lld\n", atomic64_read(&kdev->pmd_maps));
	seq_printf(m, "space_block_maps %lld\n", atomic64_read(&kdev->block_maps));
	seq_printf(m, "copy_workers %u\n", kdev->copy_workers);
	seq_printf(m, "copy_jobs %lld\n", atomic64_read(&kdev->copy_jobs));
	seq_printf(m, "copy_errors %lld\n", atomic64_read(&kdev->copy_errors));
	seq_puts(m, "# pid usage_bytes quota_bytes regions\n");
	list_for_each_entry(proc, &kdev->procs, node)
		seq_printf(m, "proc %d %llu %llu %u\n", pid_nr(proc->tgid),
			   proc->usage, proc->quota, proc->nr_regions);
	seq_puts(m, "# uid space_window_bytes\n");
	list_for_each_entry(user, &kdev->users, node)
		seq_printf(m, "user %u %llu\n", from_kuid_munged(&init_user_ns, user->uid),
			   user->window);
	mutex_unlock(&kdev->acct_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kvaccel_status);

/* Fault injection for the copy workers: fail the N-th failure point. */
static int kvaccel_copy_fail_nth_get(void *data, u64 *val)
{
	struct kvaccel_device *kdev = data;

	*val = atomic_read(&kdev->copy_fail_nth);
	return 0;
}

static int kvaccel_copy_fail_nth_set(void *data, u64 val)
{
	struct kvaccel_device *kdev = data;

	if (val > INT_MAX)
		return -EINVAL;
	atomic_set(&kdev->copy_fail_nth, val);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(kvaccel_copy_fail_nth_fops, kvaccel_copy_fail_nth_get,
			 kvaccel_copy_fail_nth_set, "%llu\n");

/* The DRM device's debugfs directory (kvaccel_compat.h). */
static struct dentry *kvaccel_debugfs_dir(struct kvaccel_device *kdev)
{
#ifdef KVACCEL_HAVE_DRM_DEV_DEBUGFS_ROOT
	return kdev->drm.debugfs_root;
#else
	return kdev->drm.render ? kdev->drm.render->debugfs_root : NULL;
#endif
}

/**
 * kvaccel_debugfs_init - add kvaccel's files to the DRM device's debugfs
 * directory; after drm_dev_register().
 * @kdev: the device.
 *
 * debugfs failures are not errors: the device works without it.
 */
void kvaccel_debugfs_init(struct kvaccel_device *kdev)
{
	struct dentry *dir = kvaccel_debugfs_dir(kdev);

	if (IS_ERR_OR_NULL(dir))
		return;
	kdev->debugfs[0] = debugfs_create_file("status", 0400, dir, kdev,
					       &kvaccel_status_fops);
	kdev->debugfs[1] = debugfs_create_file_unsafe("copy_fail_nth", 0600, dir, kdev,
						      &kvaccel_copy_fail_nth_fops);
}

/**
 * kvaccel_debugfs_fini - remove kvaccel's files (DRM removes its directory
 * when the device is unregistered); before drm_dev_unregister().
 * @kdev: the device.
 */
void kvaccel_debugfs_fini(struct kvaccel_device *kdev)
{
	debugfs_remove(kdev->debugfs[1]);
	debugfs_remove(kdev->debugfs[0]);
}
