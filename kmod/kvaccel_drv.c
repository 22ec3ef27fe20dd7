// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - the DRM device: module parameters, platform device and driver
 * (probe, remove: the device can be unbound and bound again through
 * sysfs), open and close.
 *
 * The device is a DRM accel node on kernels with DRM accel and a render
 * node before (see kvaccel_compat.h), on a virtual platform device with a
 * 64-bit DMA mask (a platform device defaults to 32 bits, which would bounce
 * imported dma-bufs through swiotlb).
 */
#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_managed.h>
#include <drm/drm_prime.h>

#include "kvaccel_compat.h"
#include "kvaccel_drv.h"
#include "../uapi/kvaccel.h"

static unsigned long limit_mb;
module_param(limit_mb, ulong, 0644);
MODULE_PARM_DESC(limit_mb,
		 "Device-wide limit on region memory in MiB (0 = half of RAM)");

static unsigned int copy_workers;
module_param(copy_workers, uint, 0444);
MODULE_PARM_DESC(copy_workers,
		 "Copy worker threads (0 = one per CPU, at most 8; at most 64)");

/* Both copy-engine bounds must stay positive: a zero would stop every job. */
static int kvaccel_param_set_positive(const char *val, const struct kernel_param *kp)
{
	unsigned int n;
	int ret = kstrtouint(val, 0, &n);

	if (ret)
		return ret;
	if (!n)
		return -EINVAL;
	*(unsigned int *)kp->arg = n;
	return 0;
}

static const struct kernel_param_ops kvaccel_param_positive_ops = {
	.set = kvaccel_param_set_positive,
	.get = param_get_uint,
};

static unsigned int copy_timeout_ms = 10000;
module_param_cb(copy_timeout_ms, &kvaccel_param_positive_ops, &copy_timeout_ms, 0644);
MODULE_PARM_DESC(copy_timeout_ms,
		 "A copy job whose dependencies have not signalled this long after submission fails with -ETIMEDOUT (ms, default 10000)");

static unsigned int copy_inflight_mb = 8192;
module_param_cb(copy_inflight_mb, &kvaccel_param_positive_ops, &copy_inflight_mb, 0644);
MODULE_PARM_DESC(copy_inflight_mb,
		 "Most bytes of unfinished copy jobs per process, in MiB; -EBUSY beyond (default 8192)");

/**
 * kvaccel_copy_timeout_ms - how long a copy job waits for its dependencies.
 *
 * Return: copy_timeout_ms, at least 1.
 */
unsigned int kvaccel_copy_timeout_ms(void)
{
	return READ_ONCE(copy_timeout_ms);
}

/**
 * kvaccel_copy_inflight_bytes - the cap on a process's bytes in flight.
 *
 * Return: copy_inflight_mb in bytes.
 */
u64 kvaccel_copy_inflight_bytes(void)
{
	return (u64)READ_ONCE(copy_inflight_mb) << 20;
}

static unsigned int space_window_gb = 256;
module_param_cb(space_window_gb, &kvaccel_param_positive_ops, &space_window_gb, 0644);
MODULE_PARM_DESC(space_window_gb,
		 "Most GiB of the device's 1 TiB mmap offset range one user's spaces may reserve; -EDQUOT beyond (default 256)");

/**
 * kvaccel_space_window_cap - the per-user cap on reserved space windows.
 *
 * Return: space_window_gb in bytes.
 */
u64 kvaccel_space_window_cap(void)
{
	return (u64)READ_ONCE(space_window_gb) << 30;
}

static unsigned long default_quota_mb;
module_param(default_quota_mb, ulong, 0644);
MODULE_PARM_DESC(default_quota_mb,
		 "Quota of each process in MiB unless set for it (0 = none)");

/**
 * kvaccel_device_limit - the device-wide limit in bytes.
 *
 * Return: limit_mb in bytes, or half of RAM if limit_mb is 0.
 */
u64 kvaccel_device_limit(void)
{
	unsigned long mb = READ_ONCE(limit_mb);

	if (!mb)
		return ((u64)totalram_pages() << PAGE_SHIFT) / 2;
	return (u64)mb << 20;
}

/**
 * kvaccel_set_device_limit - set the device-wide limit (limit_mb).
 * @bytes: the limit, a multiple of 1 MiB; 0 for half of RAM.
 */
void kvaccel_set_device_limit(u64 bytes)
{
	WRITE_ONCE(limit_mb, bytes >> 20);
}

/**
 * kvaccel_set_default_quota - set the default quota (default_quota_mb).
 * @bytes: the quota, a multiple of 1 MiB; 0 for none.
 */
void kvaccel_set_default_quota(u64 bytes)
{
	WRITE_ONCE(default_quota_mb, bytes >> 20);
}

/**
 * kvaccel_default_quota - the quota of a process that has none of its own.
 *
 * Return: default_quota_mb in bytes, 0 for none.
 */
u64 kvaccel_default_quota(void)
{
	return (u64)READ_ONCE(default_quota_mb) << 20;
}

static int kvaccel_open(struct drm_device *drm, struct drm_file *file)
{
	struct kvaccel_device *kdev = to_kvaccel_device(drm);
	struct kvaccel_client *client;

	client = kzalloc(sizeof(*client), GFP_KERNEL_ACCOUNT);
	if (!client)
		return -ENOMEM;

	client->kdev = kdev;
	client->proc = kvaccel_proc_get(kdev, task_tgid(current));
	if (!client->proc) {
		kfree(client);
		return -ENOMEM;
	}
	if (kvaccel_copy_client_init(client)) {
		kvaccel_proc_put(client->proc);
		kfree(client);
		return -ENOMEM;
	}
	file->driver_priv = client;
	kvaccel_client_add(client);
	return 0;
}

static void kvaccel_postclose(struct drm_device *drm, struct drm_file *file)
{
	struct kvaccel_client *client = file->driver_priv;

	kvaccel_client_remove(client);
	kvaccel_copy_client_fini(client);
	kvaccel_proc_put(client->proc);
	kfree(client);
}

static const struct drm_ioctl_desc kvaccel_ioctls[] = {
	DRM_IOCTL_DEF_DRV(KVACCEL_GET_PARAM, kvaccel_ioctl_get_param,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KVACCEL_REGION_CREATE, kvaccel_ioctl_region_create,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KVACCEL_REGION_INFO, kvaccel_ioctl_region_info,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KVACCEL_SPACE_CREATE, kvaccel_ioctl_space_create,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KVACCEL_SPACE_BIND, kvaccel_ioctl_space_bind,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KVACCEL_SPACE_INFO, kvaccel_ioctl_space_info,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KVACCEL_COPY_SUBMIT, kvaccel_ioctl_copy_submit,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KVACCEL_COPY_STATUS, kvaccel_ioctl_copy_status,
			  DRM_RENDER_ALLOW),
};

/* The DRM file operations, plus PMD-aligned placement of mappings. */
static const struct file_operations kvaccel_fops = {
	.owner = THIS_MODULE,
	KVACCEL_FOPS,
	KVACCEL_FDINFO_FOPS
	.get_unmapped_area = kvaccel_get_unmapped_area,
};

static const struct drm_driver kvaccel_driver = {
	.driver_features = DRIVER_GEM | DRIVER_SYNCOBJ | DRIVER_SYNCOBJ_TIMELINE |
			   KVACCEL_DRIVER_NODE_FEATURE,
	.open = kvaccel_open,
	.postclose = kvaccel_postclose,
	.gem_prime_import = kvaccel_gem_prime_import,
	KVACCEL_PRIME_DRIVER_OPS
	KVACCEL_FDINFO_DRIVER_OPS
	.ioctls = kvaccel_ioctls,
	.num_ioctls = ARRAY_SIZE(kvaccel_ioctls),
	.fops = &kvaccel_fops,
	.name = KVACCEL_DRIVER_NAME,
	.desc = KVACCEL_DRIVER_DESC,
	.date = "20261121",
	.major = KVACCEL_ABI_MAJOR,
	.minor = KVACCEL_ABI_MINOR,
};

/*
 * The device's last reference is gone (every file, dma-buf and copy job
 * released it, after the remove): nothing can use it any more.
 */
static void kvaccel_release(struct drm_device *drm, void *data)
{
	struct kvaccel_device *kdev = data;

	/* Every region is freed before the device: each pins a handle, file or dma-buf. */
	WARN_ON(atomic_long_read(&kdev->pages_held));
	mutex_destroy(&kdev->regions_lock);
	mutex_destroy(&kdev->clients_lock);
	mutex_destroy(&kdev->pressure_lock);
	mutex_destroy(&kdev->acct_lock);
}

static int kvaccel_probe(struct platform_device *pdev)
{
	struct kvaccel_device *kdev;
	int ret;

	ret = dma_coerce_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	kdev = devm_drm_dev_alloc(&pdev->dev, &kvaccel_driver,
				  struct kvaccel_device, drm);
	if (IS_ERR(kdev))
		return PTR_ERR(kdev);
	kvaccel_acct_init(kdev);
	kvaccel_clients_init(kdev);
	kvaccel_regions_init(kdev);
	atomic_long_set(&kdev->pages_held, 0);
	atomic_set(&kdev->nr_regions, 0);
	atomic64_set(&kdev->next_region_id, 0);
	atomic64_set(&kdev->pmd_maps, 0);
	atomic64_set(&kdev->block_maps, 0);
	atomic64_set(&kdev->copy_jobs, 0);
	atomic64_set(&kdev->copy_errors, 0);
	atomic_set(&kdev->copy_fail_nth, 0);
	kvaccel_copy_init(kdev);
	/* From here on the device's release undoes the setup. */
	ret = drmm_add_action_or_reset(&kdev->drm, kvaccel_release, kdev);
	if (ret)
		return ret;

	ret = drm_dev_register(&kdev->drm, 0);
	if (ret)
		return ret;
	platform_set_drvdata(pdev, kdev);
	kvaccel_debugfs_init(kdev);
	kvaccel_netlink_attach(kdev);
	drm_info(&kdev->drm, "kvaccel ABI %u.%u, limit %llu MiB, %u copy workers\n",
		 KVACCEL_ABI_MAJOR, KVACCEL_ABI_MINOR,
		 kvaccel_device_limit() >> 20, kdev->copy_workers);
	return 0;
}

/*
 * Unbind (sysfs, or the module's unload): the device goes away under its
 * clients. drm_dev_unplug() makes every ioctl fail with -ENODEV and tears
 * down the mappings of the device file; the fault handlers give SIGBUS
 * from then on (drm_dev_enter()). Copy jobs in flight finish (they hold
 * the device). What clients hold is freed as they close it; the device's
 * memory goes with its last reference (kvaccel_release()).
 */
static void kvaccel_remove(struct platform_device *pdev)
{
	struct kvaccel_device *kdev = platform_get_drvdata(pdev);

	kvaccel_netlink_attach(NULL);
	kvaccel_debugfs_fini(kdev);
	drm_dev_unplug(&kdev->drm);
}

#ifndef KVACCEL_HAVE_VOID_PLATFORM_REMOVE
static int kvaccel_remove_int(struct platform_device *pdev)
{
	kvaccel_remove(pdev);
	return 0;
}
#endif

static struct platform_driver kvaccel_platform_driver = {
	.probe = kvaccel_probe,
	KVACCEL_PLATFORM_REMOVE(kvaccel_remove),
	.driver = {
		.name = KVACCEL_DRIVER_NAME,
	},
};

static struct platform_device *kvaccel_pdev;

static int __init kvaccel_init(void)
{
	int ret;

	ret = kvaccel_copy_module_init(copy_workers);
	if (ret)
		return ret;
	ret = kvaccel_netlink_init();
	if (ret)
		goto err_copy_fini;
	ret = platform_driver_register(&kvaccel_platform_driver);
	if (ret)
		goto err_netlink_fini;
	kvaccel_pdev = platform_device_register_simple(KVACCEL_DRIVER_NAME, -1, NULL, 0);
	if (IS_ERR(kvaccel_pdev)) {
		ret = PTR_ERR(kvaccel_pdev);
		goto err_unregister_driver;
	}
	/* A probe that failed leaves the device unbound: fail the load. */
	if (!platform_get_drvdata(kvaccel_pdev)) {
		ret = -ENODEV;
		goto err_unregister_device;
	}
	return 0;

err_unregister_device:
	platform_device_unregister(kvaccel_pdev);
err_unregister_driver:
	platform_driver_unregister(&kvaccel_platform_driver);
err_netlink_fini:
	kvaccel_netlink_fini();
err_copy_fini:
	kvaccel_copy_module_fini();
	return ret;
}

static void __exit kvaccel_exit(void)
{
	/*
	 * Open files, mmaps, exported dma-bufs and fences all pin the module,
	 * so the device's last reference goes with the remove.
	 */
	platform_device_unregister(kvaccel_pdev);
	platform_driver_unregister(&kvaccel_platform_driver);
	kvaccel_netlink_fini();
	kvaccel_copy_module_fini();
}

module_init(kvaccel_init);
module_exit(kvaccel_exit);

MODULE_AUTHOR("kvaccel developers");
MODULE_DESCRIPTION(KVACCEL_DRIVER_DESC);
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(DMA_BUF);
