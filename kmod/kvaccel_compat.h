/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvaccel - differences between the kernels the module builds for (6.1 and
 * later). Everything version-dependent lives here, so the rest of the code
 * reads as if written for one kernel.
 */
#ifndef _KVACCEL_COMPAT_H_
#define _KVACCEL_COMPAT_H_

#include <linux/mm.h>
#include <drm/drm_drv.h>

/*
 * DRM accel nodes (/dev/accel/accelN) exist from 6.2 when CONFIG_DRM_ACCEL
 * is set; before that the device is a render node (/dev/dri/renderDN),
 * which also brings a primary node (see tools/udev/60-kvaccel.rules).
 */
#if IS_ENABLED(CONFIG_DRM_ACCEL)
#include <drm/drm_accel.h>
#define KVACCEL_DRIVER_NODE_FEATURE	DRIVER_COMPUTE_ACCEL
#define KVACCEL_FOPS			DRM_ACCEL_FOPS
#else
#include <drm/drm_gem.h>
#define KVACCEL_DRIVER_NODE_FEATURE	DRIVER_RENDER
#define KVACCEL_FOPS			DRM_GEM_FOPS
#endif

/*
 * Until 6.6 a GEM driver named the PRIME helpers itself (and
 * drm_driver.gem_prime_mmap existed); since, they are the default. Kbuild
 * defines KVACCEL_NEED_PRIME_OPS when the header still has the hook.
 */
#ifdef KVACCEL_NEED_PRIME_OPS
#include <drm/drm_prime.h>
#define KVACCEL_PRIME_DRIVER_OPS				\
	.prime_handle_to_fd = drm_gem_prime_handle_to_fd,	\
	.prime_fd_to_handle = drm_gem_prime_fd_to_handle,	\
	.gem_prime_mmap = drm_gem_prime_mmap,
#else
#define KVACCEL_PRIME_DRIVER_OPS
#endif

/*
 * fdinfo: since 6.5 the DRM core writes the common keys
 * (drm_show_fdinfo()) and calls the driver's hook; before, the driver
 * writes them all from its file operations. Kbuild defines
 * KVACCEL_HAVE_DRM_SHOW_FDINFO (kvaccel_fdinfo.c; the functions are in
 * kvaccel_drv.h).
 */
#ifdef KVACCEL_HAVE_DRM_SHOW_FDINFO
#define KVACCEL_FDINFO_FOPS		.show_fdinfo = drm_show_fdinfo,
#define KVACCEL_FDINFO_DRIVER_OPS	.show_fdinfo = kvaccel_show_fdinfo,
#else
#define KVACCEL_FDINFO_FOPS		.show_fdinfo = kvaccel_show_fdinfo_fops,
#define KVACCEL_FDINFO_DRIVER_OPS
#endif

/*
 * debugfs: since 6.8 the DRM device has its own directory
 * (drm_device.debugfs_root, made at init); before, each minor has one
 * (drm_minor.debugfs_root, made at registration). Kbuild defines
 * KVACCEL_HAVE_DRM_DEV_DEBUGFS_ROOT (kvaccel_debugfs.c).
 */

/*
 * platform_driver.remove returns void since 6.11 (int before: the driver
 * then defines fn_int() around its void fn()). Kbuild defines
 * KVACCEL_HAVE_VOID_PLATFORM_REMOVE.
 */
#ifdef KVACCEL_HAVE_VOID_PLATFORM_REMOVE
#define KVACCEL_PLATFORM_REMOVE(fn)	.remove = fn
#else
#define KVACCEL_PLATFORM_REMOVE(fn)	.remove = fn##_int
#endif

/*
 * vm_flags became read-only outside its accessors in 6.3; Kbuild defines
 * KVACCEL_HAVE_VM_FLAGS_SET when the accessors exist.
 */
#ifdef KVACCEL_HAVE_VM_FLAGS_SET
static inline void kvaccel_vm_flags_set(struct vm_area_struct *vma,
					vm_flags_t flags)
{
	vm_flags_set(vma, flags);
}
#else
static inline void kvaccel_vm_flags_set(struct vm_area_struct *vma,
					unsigned long flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * mm_get_unmapped_area() appeared in 6.10; before, the mm's own hook did
 * the search. Kbuild defines KVACCEL_HAVE_MM_GET_UNMAPPED_AREA.
 */
#ifdef KVACCEL_HAVE_MM_GET_UNMAPPED_AREA
#include <linux/sched/mm.h>
static inline unsigned long
kvaccel_mm_get_unmapped_area(struct file *filp, unsigned long addr,
			     unsigned long len, unsigned long pgoff,
			     unsigned long flags)
{
	return mm_get_unmapped_area(current->mm, filp, addr, len, pgoff, flags);
}
#else
#include <linux/sched.h>
static inline unsigned long
kvaccel_mm_get_unmapped_area(struct file *filp, unsigned long addr,
			     unsigned long len, unsigned long pgoff,
			     unsigned long flags)
{
	return current->mm->get_unmapped_area(filp, addr, len, pgoff, flags);
}
#endif

/*
 * vm_operations_struct.huge_fault takes the fault's order since 6.6; 6.1's
 * fault path never calls it for PFN mappings anyway, so kvaccel uses it
 * only where Kbuild finds the order form (KVACCEL_HAVE_HUGE_FAULT_ORDER).
 */

#endif /* _KVACCEL_COMPAT_H_ */
