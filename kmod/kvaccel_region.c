// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - regions: pinned, zero-filled host memory in physically
 * contiguous blocks.
 *
 * Each block is one compound allocation of the block's order, taken with
 * GFP_KERNEL_ACCOUNT so it is charged to the caller's memory cgroup, with
 * __GFP_RETRY_MAYFAIL so a cgroup limit fails the allocation instead of
 * waking the OOM killer, and without __GFP_MOVABLE so the pages are never
 * migrated; they are not on any LRU, so they are never swapped. A block is
 * never stitched together from smaller pieces: if the allocator has no free
 * block of that order, creation fails with -ENOMEM.
 *
 * A mapping of a region maps its pages as normal (refcounted) pages, so
 * get_user_pages() works on it (DMA registration of host memory relies on
 * that); mappings are shared only.
 */
#include <linux/cred.h>
#include <linux/dma-buf.h>
#include <linux/gfp.h>
#include <linux/iosys-map.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <drm/drm_drv.h>
#include <drm/drm_prime.h>

#include "kvaccel_compat.h"
#include "kvaccel_drv.h"

static const struct drm_gem_object_funcs kvaccel_region_funcs;

/**
 * kvaccel_is_region - whether a GEM object is a region of this module.
 * @obj: the object.
 *
 * Return: true for a region.
 */
bool kvaccel_is_region(const struct drm_gem_object *obj)
{
	return obj->funcs == &kvaccel_region_funcs;
}

/* The page at page offset @pgoff of the region; @pgoff must be in range. */
static struct page *kvaccel_region_page(const struct kvaccel_region *region,
					unsigned long pgoff)
{
	unsigned int order = kvaccel_region_order(region);

	return region->blocks[pgoff >> order] + (pgoff & ((1UL << order) - 1));
}

static void kvaccel_region_free_blocks(struct kvaccel_region *region)
{
	struct kvaccel_device *kdev = to_kvaccel_device(region->base.dev);
	unsigned int order = kvaccel_region_order(region);
	unsigned long i, freed = 0;

	for (i = 0; i < region->nr_blocks; i++) {
		if (!region->blocks[i])
			continue;
		__free_pages(region->blocks[i], order);
		freed += 1UL << order;
		if (!(i & 255))
			cond_resched();
	}
	atomic_long_sub(freed, &kdev->pages_held);
	kvfree(region->blocks);
}

/**
 * kvaccel_regions_init - set up the device's region list.
 * @kdev: the device.
 */
void kvaccel_regions_init(struct kvaccel_device *kdev)
{
	mutex_init(&kdev->regions_lock);
	INIT_LIST_HEAD(&kdev->imports);
	INIT_LIST_HEAD(&kdev->regions);
}

/* A region is complete: give it its id, list it, tell the events group. */
static void kvaccel_region_publish(struct kvaccel_region *region)
{
	struct kvaccel_device *kdev = to_kvaccel_device(region->base.dev);

	mutex_lock(&kdev->regions_lock);
	region->id = atomic64_inc_return(&kdev->next_region_id);
	list_add_tail(&region->node, &kdev->regions);
	mutex_unlock(&kdev->regions_lock);

	kvaccel_notify_region(region, true);
}

static void kvaccel_region_unpublish(struct kvaccel_region *region)
{
	struct kvaccel_device *kdev = to_kvaccel_device(region->base.dev);

	mutex_lock(&kdev->regions_lock);
	list_del(&region->node);
	mutex_unlock(&kdev->regions_lock);
}

static void kvaccel_region_free(struct drm_gem_object *obj)
{
	struct kvaccel_region *region = to_kvaccel_region(obj);
	struct kvaccel_device *kdev = to_kvaccel_device(obj->dev);
	bool published = region->id;

	/* No space slot is bound to it: each holds a reference. */
	WARN_ON(atomic_read(&region->bound));
	if (published)
		kvaccel_region_unpublish(region);
	if (region->blocks)
		kvaccel_region_free_blocks(region);
	if (region->charged) {
		kvaccel_acct_uncharge(region->owner, region->charged, region->quota_user);
		atomic_dec(&kdev->nr_regions);
	}
	if (published)
		kvaccel_notify_region(region, false);
	kvaccel_proc_put(region->owner);
	drm_gem_free_mmap_offset(obj);
	drm_gem_object_release(obj);
	kfree(region);
}

static int kvaccel_region_alloc_blocks(struct kvaccel_region *region, int nid,
				       bool strict_node)
{
	struct kvaccel_device *kdev = to_kvaccel_device(region->base.dev);
	unsigned int order = kvaccel_region_order(region);
	gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN |
		    __GFP_ZERO;
	unsigned long i;
	int first_nid = NUMA_NO_NODE;

	if (order)
		gfp |= __GFP_COMP;
	if (strict_node)
		gfp |= __GFP_THISNODE;

	region->nid = NUMA_NO_NODE;
	for (i = 0; i < region->nr_blocks; i++) {
		struct page *page;

		if (fatal_signal_pending(current))
			return -EINTR;

		if (strict_node)
			page = alloc_pages_node(nid, gfp, order);
		else
			page = alloc_pages(gfp, order);
		if (!page)
			return -ENOMEM;
		region->blocks[i] = page;
		atomic_long_add(1UL << order, &kdev->pages_held);

		if (!i)
			first_nid = page_to_nid(page);
		else if (page_to_nid(page) != first_nid)
			first_nid = NUMA_NO_NODE;
		cond_resched();
	}
	region->nid = first_nid;
	return 0;
}

/**
 * kvaccel_region_create - create a region and charge it.
 * @kdev: the device.
 * @owner: the process to charge; the region takes a reference on it.
 * @size: bytes, a non-zero multiple of the block size (checked by caller).
 * @block_shift: log2 of the block size (checked by caller).
 * @nid: NUMA node, used if @strict_node.
 * @strict_node: allocate every block on @nid only.
 *
 * Return: the region with one reference, or an ERR_PTR: -EDQUOT, -ENOMEM,
 * -EINTR. On error nothing stays charged.
 */
struct kvaccel_region *kvaccel_region_create(struct kvaccel_device *kdev,
					     struct kvaccel_proc *owner,
					     u64 size, unsigned int block_shift,
					     int nid, bool strict_node)
{
	struct kvaccel_region *region;
	int ret;

	region = kzalloc(sizeof(*region), GFP_KERNEL_ACCOUNT);
	if (!region)
		return ERR_PTR(-ENOMEM);

	region->base.funcs = &kvaccel_region_funcs;
	drm_gem_private_object_init(&kdev->drm, &region->base, size);
	refcount_inc(&owner->ref);
	region->owner = owner;
	region->block_shift = block_shift;
	region->nr_blocks = size >> block_shift;
	region->uid = current_euid();
	atomic_set(&region->bound, 0);

	/* From here on, dropping the object undoes whatever was done. */
	ret = kvaccel_acct_charge(owner, size, &region->quota_user);
	if (ret)
		goto err_put;
	region->charged = size;
	atomic_inc(&kdev->nr_regions);

	region->blocks = kvcalloc(region->nr_blocks, sizeof(*region->blocks),
				  GFP_KERNEL_ACCOUNT);
	if (!region->blocks) {
		ret = -ENOMEM;
		goto err_put;
	}

	ret = kvaccel_region_alloc_blocks(region, nid, strict_node);
	if (ret)
		goto err_put;

	ret = drm_gem_create_mmap_offset(&region->base);
	if (ret)
		goto err_put;

	kvaccel_region_publish(region);
	return region;

err_put:
	drm_gem_object_put(&region->base);
	return ERR_PTR(ret);
}

/*
 * Insert the pages of the VMA's range eagerly: a region is pinned memory,
 * so there is nothing to gain from faulting it in page by page. The fault
 * handler below serves what was zapped since (madvise(MADV_DONTNEED)).
 */
static int kvaccel_region_populate(struct kvaccel_region *region,
				   struct vm_area_struct *vma,
				   unsigned long first_pgoff)
{
	unsigned long npages = vma_pages(vma), done = 0;
	unsigned long batch = min_t(unsigned long, npages, 512);
	struct page **pages;
	int ret = 0;

	pages = kvmalloc_array(batch, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;

	while (done < npages) {
		unsigned long n = min(batch, npages - done), left, i;

		for (i = 0; i < n; i++)
			pages[i] = kvaccel_region_page(region, first_pgoff + done + i);
		left = n;
		ret = vm_insert_pages(vma, vma->vm_start + (done << PAGE_SHIFT),
				      pages, &left);
		if (ret)
			break;
		done += n;
		cond_resched();
	}

	kvfree(pages);
	return ret;
}

static vm_fault_t kvaccel_region_fault_present(struct vm_fault *vmf)
{
	struct drm_gem_object *obj = vmf->vma->vm_private_data;
	struct kvaccel_region *region = to_kvaccel_region(obj);
	unsigned long pgoff = vmf->pgoff - drm_vma_node_start(&obj->vma_node);
	struct page *page;

	if (pgoff >= obj->size >> PAGE_SHIFT)
		return VM_FAULT_SIGBUS;

	page = kvaccel_region_page(region, pgoff);
	get_page(page);
	vmf->page = page;
	return 0;
}

/* Once the device is unplugged nothing maps any more: SIGBUS. */
static vm_fault_t kvaccel_region_fault(struct vm_fault *vmf)
{
	struct drm_gem_object *obj = vmf->vma->vm_private_data;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	int idx;

	if (drm_dev_enter(obj->dev, &idx)) {
		ret = kvaccel_region_fault_present(vmf);
		drm_dev_exit(idx);
	}
	return ret;
}

static const struct vm_operations_struct kvaccel_region_vm_ops = {
	.fault = kvaccel_region_fault,
	.open = drm_gem_vm_open,
	.close = drm_gem_vm_close,
};

/*
 * Called for mmap() of the device file (drm_gem_mmap_obj()) and of an
 * exported dma-buf (drm_gem_prime_mmap()); in both, vm_pgoff still holds
 * the object's fake offset and the caller has checked that the range lies
 * inside the object.
 */
static int kvaccel_region_mmap(struct drm_gem_object *obj,
			       struct vm_area_struct *vma)
{
	struct kvaccel_region *region = to_kvaccel_region(obj);
	unsigned long first = vma->vm_pgoff - drm_vma_node_start(&obj->vma_node);

	/*
	 * A private (copy-on-write) mapping would copy pinned memory. A
	 * shared mapping of a read-only file (a read-only dma-buf) has lost
	 * VM_SHARED but keeps VM_MAYSHARE, and can never become writable.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE) || is_cow_mapping(vma->vm_flags))
		return -EINVAL;
	if (first > obj->size >> PAGE_SHIFT ||
	    vma_pages(vma) > (obj->size >> PAGE_SHIFT) - first)
		return -EINVAL;

	kvaccel_vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &kvaccel_region_vm_ops;

	return kvaccel_region_populate(region, vma, first);
}

/*
 * dma-buf attachments: one scatterlist entry per block (each block is
 * physically contiguous), mapped for the importer by the PRIME helpers.
 */
static struct sg_table *kvaccel_region_get_sg_table(struct drm_gem_object *obj)
{
	struct kvaccel_region *region = to_kvaccel_region(obj);
	struct scatterlist *sg;
	struct sg_table *sgt;
	unsigned long i;
	int ret;

	if (region->nr_blocks > UINT_MAX)
		return ERR_PTR(-E2BIG);

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	ret = sg_alloc_table(sgt, region->nr_blocks, GFP_KERNEL);
	if (ret) {
		kfree(sgt);
		return ERR_PTR(ret);
	}
	for_each_sgtable_sg(sgt, sg, i)
		sg_set_page(sg, region->blocks[i], 1U << region->block_shift, 0);
	return sgt;
}

/* A kernel mapping of the whole region, for dma-buf importers. */
static int kvaccel_region_vmap(struct drm_gem_object *obj, struct iosys_map *map)
{
	struct kvaccel_region *region = to_kvaccel_region(obj);
	unsigned long i, npages = obj->size >> PAGE_SHIFT;
	struct page **pages;
	void *vaddr;

	if (npages > UINT_MAX)
		return -E2BIG;
	pages = kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < npages; i++)
		pages[i] = kvaccel_region_page(region, i);
	vaddr = vmap(pages, npages, VM_MAP, PAGE_KERNEL);
	kvfree(pages);
	if (!vaddr)
		return -ENOMEM;
	iosys_map_set_vaddr(map, vaddr);
	return 0;
}

static void kvaccel_region_vunmap(struct drm_gem_object *obj,
				  struct iosys_map *map)
{
	vunmap(map->vaddr);
}

static const struct drm_gem_object_funcs kvaccel_region_funcs = {
	.free = kvaccel_region_free,
	.open = kvaccel_gem_handle_open,
	.close = kvaccel_gem_handle_close,
	.get_sg_table = kvaccel_region_get_sg_table,
	.vmap = kvaccel_region_vmap,
	.vunmap = kvaccel_region_vunmap,
	.mmap = kvaccel_region_mmap,
	.vm_ops = &kvaccel_region_vm_ops,
};
