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
#define KVACCEL_DEFINE_FOPS(name)	DEFINE_DRM_ACCEL_FOPS(name)
#else
#include <drm/drm_gem.h>
#define KVACCEL_DRIVER_NODE_FEATURE	DRIVER_RENDER
#define KVACCEL_DEFINE_FOPS(name)	DEFINE_DRM_GEM_FOPS(name)
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

#endif /* _KVACCEL_COMPAT_H_ */
