// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - placement of mappings of the device file.
 *
 * A space's 2 MiB slots can be mapped with one PMD entry each only if the
 * mapping starts on a 2 MiB boundary (slot 0 is at offset 0 of the object,
 * and a mapping always starts there). So a mapping of 2 MiB or more is
 * placed on a PMD boundary: the search asks for 2 MiB more than needed and
 * rounds the start up.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>

#include "kvaccel_compat.h"
#include "kvaccel_drv.h"

/**
 * kvaccel_get_unmapped_area - &file_operations.get_unmapped_area.
 * @filp: the device file.
 * @addr: the hint.
 * @len: the length.
 * @pgoff: the (fake) offset in pages.
 * @flags: the mmap flags.
 *
 * Return: the start address, PMD-aligned for lengths of 2 MiB or more
 * unless MAP_FIXED; or an error.
 */
unsigned long kvaccel_get_unmapped_area(struct file *filp, unsigned long addr,
					unsigned long len, unsigned long pgoff,
					unsigned long flags)
{
	unsigned long ret;

	if (flags & MAP_FIXED || len < PMD_SIZE || len > TASK_SIZE - PMD_SIZE)
		return kvaccel_mm_get_unmapped_area(filp, addr, len, pgoff, flags);

	ret = kvaccel_mm_get_unmapped_area(filp, addr, len + PMD_SIZE, pgoff, flags);
	if (IS_ERR_VALUE(ret))
		return ret;
	/* The hint was free and aligned: keep it. */
	if (ret == addr && IS_ALIGNED(addr, PMD_SIZE))
		return ret;
	return ALIGN(ret, PMD_SIZE);
}
