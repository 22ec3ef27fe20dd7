// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - spaces: virtual windows of slots, each empty or bound to one
 * block of a region, mapped without copying.
 *
 * A space maps as a PFN mapping (the slots' pages are the regions' and are
 * not refcounted by the page tables): the fault handlers look the slot up
 * and insert its block under the space's lock held for read; a bind batch
 * (kvaccel_bind.c) changes slots and tears their page table entries down
 * in every mapping under the lock held for write, and drops the old
 * blocks' region references only after that. So no fault can map a block
 * that is being freed.
 *
 * A 2 MiB block is mapped with one PMD entry where the kernel offers
 * huge_fault for PFN mappings (6.12) and the mapping is 2 MiB-aligned
 * (kvaccel_get_unmapped_area() aligns mappings of the device file); a
 * smaller block, or any block before that, is mapped whole by its first
 * fault with page table entries.
 */
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/pfn_t.h>
#include <linux/slab.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>

#include "kvaccel_compat.h"
#include "kvaccel_drv.h"
#include "../uapi/kvaccel.h"

/**
 * struct kvaccel_space_map - an address_space through which a space is mapped.
 * @node: entry in kvaccel_space.maps.
 * @mapping: the file's mapping; alive while any of its VMAs is.
 * @nr_vmas: VMAs of the space in @mapping.
 */
struct kvaccel_space_map {
	struct list_head node;
	struct address_space *mapping;
	unsigned long nr_vmas;
};

static const struct drm_gem_object_funcs kvaccel_space_funcs;

/**
 * kvaccel_is_space - whether a GEM object is a space of this module.
 * @obj: the object.
 *
 * Return: true for a space.
 */
bool kvaccel_is_space(const struct drm_gem_object *obj)
{
	return obj->funcs == &kvaccel_space_funcs;
}

/**
 * kvaccel_space_may_rebind - whether a client may bind, unbind, move or
 * swap the space's slots: its creator, or anyone if it was created with
 * %KVACCEL_SPACE_CREATE_SHARE_REBIND. Everyone else may map it only.
 * @space: the space.
 * @client: the client.
 *
 * Return: true if it may.
 */
bool kvaccel_space_may_rebind(const struct kvaccel_space *space,
			      const struct kvaccel_client *client)
{
	return space->share_rebind || space->creator == client->id;
}

/**
 * kvaccel_space_lookup - look up a space by handle.
 * @file: the client.
 * @handle: the handle.
 *
 * Return: the space with a reference held (drop it with
 * drm_gem_object_put()), ERR_PTR(-ENOENT) for a handle the client does not
 * hold, ERR_PTR(-EINVAL) for one that is not a space.
 */
struct kvaccel_space *kvaccel_space_lookup(struct drm_file *file, u32 handle)
{
	struct drm_gem_object *obj = drm_gem_object_lookup(file, handle);

	if (!obj)
		return ERR_PTR(-ENOENT);
	if (!kvaccel_is_space(obj)) {
		drm_gem_object_put(obj);
		return ERR_PTR(-EINVAL);
	}
	return to_kvaccel_space(obj);
}

static struct drm_kvaccel_space_control *
kvaccel_space_control(struct kvaccel_space *space)
{
	return page_address(space->control);
}

/**
 * kvaccel_space_generation - the space's current generation.
 * @space: the space.
 *
 * Return: the generation; even unless a batch is being applied.
 */
u64 kvaccel_space_generation(struct kvaccel_space *space)
{
	return READ_ONCE(kvaccel_space_control(space)->generation);
}

/**
 * kvaccel_space_set_generation - publish a generation and the bound count.
 * @space: the space, its lock held for write.
 * @generation: odd before a batch is applied, even after.
 *
 * The barriers order the slot updates and teardown against the readers'
 * view of the generation (userspace reads it seqlock-style).
 */
void kvaccel_space_set_generation(struct kvaccel_space *space, u64 generation)
{
	struct drm_kvaccel_space_control *ctl = kvaccel_space_control(space);

	lockdep_assert_held_write(&space->lock);
	/* Slot updates before an even generation; pairs with readers' rmb. */
	smp_wmb();
	WRITE_ONCE(ctl->bound_slots, space->bound);
	WRITE_ONCE(ctl->generation, generation);
	/* An odd generation before the slot updates that follow it. */
	smp_wmb();
}

/**
 * kvaccel_space_zap - tear down the mappings of a run of slots.
 * @space: the space, its lock held for write.
 * @first: the first slot.
 * @count: the number of slots.
 *
 * Covers every mapping of the space: of the device file and of its
 * dma-bufs, in every process. When it returns, no CPU can reach the old
 * bindings (the TLBs have been flushed).
 */
void kvaccel_space_zap(struct kvaccel_space *space, u32 first, u32 count)
{
	loff_t start = drm_vma_node_offset_addr(&space->base.vma_node) +
		       ((loff_t)first << space->block_shift);
	loff_t len = (loff_t)count << space->block_shift;
	struct kvaccel_space_map *map;

	lockdep_assert_held_write(&space->lock);

	mutex_lock(&space->maps_lock);
	list_for_each_entry(map, &space->maps, node)
		unmap_mapping_range(map->mapping, start, len, 1);
	mutex_unlock(&space->maps_lock);
}

static void kvaccel_space_free(struct drm_gem_object *obj)
{
	struct kvaccel_space *space = to_kvaccel_space(obj);
	u32 i;

	/* No mapping is left (each holds a reference), so no PTE either. */
	WARN_ON(!list_empty(&space->maps));
	if (space->slots) {
		for (i = 0; i < space->nr_slots; i++)
			if (space->slots[i].region) {
				atomic_dec(&space->slots[i].region->bound);
				drm_gem_object_put(&space->slots[i].region->base);
			}
		kvfree(space->slots);
	}
	kvfree(space->scratch);
	if (space->control)
		__free_page(space->control);
	mutex_destroy(&space->maps_lock);
	drm_gem_free_mmap_offset(obj);
	if (space->window_user)
		kvaccel_user_uncharge_window(space->window_user, obj->size);
	drm_gem_object_release(obj);
	kfree(space);
}

/**
 * kvaccel_space_create - create an empty space.
 * @kdev: the device.
 * @nr_slots: number of slots (checked by the caller).
 * @block_shift: log2 of the slot size (checked by the caller).
 * @mmap_offset: reserve the window in the device's mmap offset range (so
 *	it maps through the device file), charged to the caller's user;
 *	else it maps through its dma-buf only.
 * @creator: the id of the creating client, which may rebind the space.
 * @share_rebind: every holder of the space may rebind it, not only
 *	@creator.
 *
 * Return: the space with one reference, or ERR_PTR(-ENOMEM), -EDQUOT (the
 * user's space_window_gb is reached), -ENOSPC (the offset range is full).
 */
struct kvaccel_space *kvaccel_space_create(struct kvaccel_device *kdev,
					   u32 nr_slots, unsigned int block_shift,
					   bool mmap_offset, u64 creator, bool share_rebind)
{
	struct kvaccel_space *space;
	int ret;

	space = kzalloc(sizeof(*space), GFP_KERNEL_ACCOUNT);
	if (!space)
		return ERR_PTR(-ENOMEM);

	space->base.funcs = &kvaccel_space_funcs;
	drm_gem_private_object_init(&kdev->drm, &space->base,
				    ((size_t)nr_slots << block_shift) + PAGE_SIZE);
	init_rwsem(&space->lock);
	mutex_init(&space->maps_lock);
	INIT_LIST_HEAD(&space->maps);
	space->block_shift = block_shift;
	space->nr_slots = nr_slots;
	space->creator = creator;
	space->share_rebind = share_rebind;

	/* From here on, dropping the object undoes whatever was done. */
	ret = -ENOMEM;
	space->slots = kvcalloc(nr_slots, sizeof(*space->slots),
				GFP_KERNEL_ACCOUNT);
	if (!space->slots)
		goto err_put;
	space->scratch = kvcalloc(BITS_TO_LONGS(nr_slots), sizeof(long),
				  GFP_KERNEL_ACCOUNT);
	if (!space->scratch)
		goto err_put;
	space->control = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!space->control)
		goto err_put;
	if (!mmap_offset)
		return space;
	space->window_user = kvaccel_user_charge_window(kdev, current_euid(), space->base.size);
	if (IS_ERR(space->window_user)) {
		ret = PTR_ERR(space->window_user);
		space->window_user = NULL;
		goto err_put;
	}
	ret = drm_gem_create_mmap_offset(&space->base);
	if (ret)
		goto err_put;
	return space;

err_put:
	drm_gem_object_put(&space->base);
	return ERR_PTR(ret);
}

/* The page offset of @vmf's address inside the space object. */
static unsigned long kvaccel_space_pgoff(struct vm_fault *vmf,
					 struct kvaccel_space *space)
{
	return vmf->pgoff - drm_vma_node_start(&space->base.vma_node);
}

static vm_fault_t kvaccel_space_fault_control(struct vm_fault *vmf,
					      struct kvaccel_space *space)
{
	struct vm_area_struct *vma = vmf->vma;

	/* Read-only whatever the VMA allows; pfn_mkwrite refuses writes. */
	return vmf_insert_pfn_prot(vma, vmf->address,
				   page_to_pfn(space->control),
				   vm_get_page_prot(vma->vm_flags & ~VM_WRITE));
}

/*
 * Map the whole block of the faulting slot (the part inside the VMA) with
 * page table entries: one fault per block instead of one per page.
 */
static vm_fault_t kvaccel_space_fault_present(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct kvaccel_space *space = to_kvaccel_space(vma->vm_private_data);
	struct kvaccel_device *kdev = to_kvaccel_device(space->base.dev);
	unsigned int order = space->block_shift - PAGE_SHIFT;
	unsigned long pgoff = kvaccel_space_pgoff(vmf, space);
	unsigned long window = (unsigned long)space->nr_slots << order;
	unsigned long first, addr, pfn, i;
	struct kvaccel_slot *slot;
	vm_fault_t ret = VM_FAULT_NOPAGE;
	pgprot_t prot;

	if (pgoff == window)
		return kvaccel_space_fault_control(vmf, space);
	if (pgoff > window)
		return VM_FAULT_SIGBUS;

	down_read(&space->lock);
	slot = &space->slots[pgoff >> order];
	if (!slot->region) {
		ret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}
	pfn = page_to_pfn(slot->region->blocks[slot->block]);
	first = pgoff & ~((1UL << order) - 1);
	addr = vmf->address - ((pgoff - first) << PAGE_SHIFT);
	/*
	 * Writable at once where the mapping is: vma->vm_page_prot is
	 * write-protected (pfn_mkwrite wants write notifications, for the
	 * control page), which would cost a second fault per page written.
	 */
	prot = vm_get_page_prot(vma->vm_flags);
	for (i = 0; i < (1UL << order); i++, addr += PAGE_SIZE) {
		if (addr < vma->vm_start || addr >= vma->vm_end)
			continue;
		ret = vmf_insert_pfn_prot(vma, addr, pfn + i, prot);
		if (ret & VM_FAULT_ERROR)
			break;
	}
	atomic64_inc(&kdev->block_maps);
out_unlock:
	up_read(&space->lock);
	return ret;
}

#if defined(KVACCEL_HAVE_HUGE_FAULT_ORDER) && IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE)
/*
 * A 2 MiB slot whose 2 MiB of address space lie inside the VMA and on a
 * PMD boundary is mapped with one PMD entry; anything else falls back to
 * kvaccel_space_fault().
 */
static vm_fault_t kvaccel_space_huge_fault_present(struct vm_fault *vmf,
						   unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct kvaccel_space *space = to_kvaccel_space(vma->vm_private_data);
	struct kvaccel_device *kdev = to_kvaccel_device(space->base.dev);
	unsigned long haddr = vmf->address & PMD_MASK;
	unsigned long pgoff;
	struct kvaccel_slot *slot;
	vm_fault_t ret;

	if (order != PMD_ORDER || space->block_shift != PMD_SHIFT)
		return VM_FAULT_FALLBACK;
	if (haddr < vma->vm_start || haddr + PMD_SIZE > vma->vm_end)
		return VM_FAULT_FALLBACK;
	pgoff = vma->vm_pgoff + ((haddr - vma->vm_start) >> PAGE_SHIFT) -
		drm_vma_node_start(&space->base.vma_node);
	/* The PMD must cover exactly one slot. */
	if (pgoff & ((1UL << PMD_ORDER) - 1) ||
	    (pgoff >> PMD_ORDER) >= space->nr_slots)
		return VM_FAULT_FALLBACK;

	down_read(&space->lock);
	slot = &space->slots[pgoff >> PMD_ORDER];
	if (!slot->region) {
		ret = VM_FAULT_SIGBUS;
	} else {
		pfn_t pfn = pfn_to_pfn_t(page_to_pfn(slot->region->blocks[slot->block]));

		/* Writable at once where the mapping is: one fault for writes too. */
		ret = vmf_insert_pfn_pmd(vmf, pfn, !!(vma->vm_flags & VM_WRITE));
		if (ret == VM_FAULT_NOPAGE)
			atomic64_inc(&kdev->pmd_maps);
	}
	up_read(&space->lock);
	return ret;
}

static vm_fault_t kvaccel_space_huge_fault(struct vm_fault *vmf, unsigned int order)
{
	struct drm_gem_object *obj = vmf->vma->vm_private_data;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	int idx;

	if (drm_dev_enter(obj->dev, &idx)) {
		ret = kvaccel_space_huge_fault_present(vmf, order);
		drm_dev_exit(idx);
	}
	return ret;
}

#define KVACCEL_SPACE_HUGE_FAULT	.huge_fault = kvaccel_space_huge_fault,
#else
#define KVACCEL_SPACE_HUGE_FAULT
#endif

/**
 * kvaccel_space_pmd_capable - whether 2 MiB slots can map with one PMD.
 *
 * Return: true on kernels that call huge_fault for PFN mappings.
 */
bool kvaccel_space_pmd_capable(void)
{
#if defined(KVACCEL_HAVE_HUGE_FAULT_ORDER) && IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE)
	return true;
#else
	return false;
#endif
}

/* Slots are mapped writable when the VMA is; the control page never is. */
static vm_fault_t kvaccel_space_pfn_mkwrite(struct vm_fault *vmf)
{
	struct kvaccel_space *space = to_kvaccel_space(vmf->vma->vm_private_data);
	unsigned long window = kvaccel_space_window(space) >> PAGE_SHIFT;

	return kvaccel_space_pgoff(vmf, space) >= window ? VM_FAULT_SIGBUS : 0;
}

static struct kvaccel_space_map *
kvaccel_space_find_map_locked(struct kvaccel_space *space,
			      struct address_space *mapping)
{
	struct kvaccel_space_map *map;

	lockdep_assert_held(&space->maps_lock);

	list_for_each_entry(map, &space->maps, node)
		if (map->mapping == mapping)
			return map;
	return NULL;
}

/* A new VMA of the space (mmap): track its mapping; may allocate. */
static int kvaccel_space_track(struct kvaccel_space *space,
			       struct address_space *mapping)
{
	struct kvaccel_space_map *map, *new;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return -ENOMEM;

	mutex_lock(&space->maps_lock);
	map = kvaccel_space_find_map_locked(space, mapping);
	if (!map) {
		map = new;
		new = NULL;
		map->mapping = mapping;
		list_add_tail(&map->node, &space->maps);
	}
	map->nr_vmas++;
	mutex_unlock(&space->maps_lock);

	kfree(new);
	return 0;
}

/*
 * A copy of a tracked VMA (fork, split, mremap) shares its mapping, which
 * is tracked already: nothing to allocate, and vm_open cannot fail.
 */
static void kvaccel_space_vm_open(struct vm_area_struct *vma)
{
	struct kvaccel_space *space = to_kvaccel_space(vma->vm_private_data);
	struct kvaccel_space_map *map;

	mutex_lock(&space->maps_lock);
	map = kvaccel_space_find_map_locked(space, vma->vm_file->f_mapping);
	if (!WARN_ON(!map))
		map->nr_vmas++;
	mutex_unlock(&space->maps_lock);

	drm_gem_vm_open(vma);
}

static void kvaccel_space_untrack(struct kvaccel_space *space,
				  struct address_space *mapping)
{
	struct kvaccel_space_map *map;

	mutex_lock(&space->maps_lock);
	map = kvaccel_space_find_map_locked(space, mapping);
	if (!WARN_ON(!map) && !--map->nr_vmas) {
		list_del(&map->node);
		kfree(map);
	}
	mutex_unlock(&space->maps_lock);
}

static void kvaccel_space_vm_close(struct vm_area_struct *vma)
{
	struct kvaccel_space *space = to_kvaccel_space(vma->vm_private_data);

	kvaccel_space_untrack(space, vma->vm_file->f_mapping);
	drm_gem_vm_close(vma);
}

/*
 * Once the device is unplugged nothing maps any more: SIGBUS (the unplug
 * waits for faults in progress, then tears the mappings down).
 */
static vm_fault_t kvaccel_space_fault(struct vm_fault *vmf)
{
	struct drm_gem_object *obj = vmf->vma->vm_private_data;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	int idx;

	if (drm_dev_enter(obj->dev, &idx)) {
		ret = kvaccel_space_fault_present(vmf);
		drm_dev_exit(idx);
	}
	return ret;
}

static const struct vm_operations_struct kvaccel_space_vm_ops = {
	.fault = kvaccel_space_fault,
	KVACCEL_SPACE_HUGE_FAULT
	.pfn_mkwrite = kvaccel_space_pfn_mkwrite,
	.open = kvaccel_space_vm_open,
	.close = kvaccel_space_vm_close,
};

/*
 * mmap of the device file (drm_gem_mmap_obj()) or of an exported dma-buf
 * (drm_gem_prime_mmap()); vm_pgoff holds the object's fake offset and the
 * caller has checked the range. Nothing is mapped until it is touched.
 */
static int kvaccel_space_mmap(struct drm_gem_object *obj,
			      struct vm_area_struct *vma)
{
	struct kvaccel_space *space = to_kvaccel_space(obj);
	unsigned long first = vma->vm_pgoff - drm_vma_node_start(&obj->vma_node);
	int ret;

	/*
	 * A copy-on-write PFN mapping is a kernel BUG: shared only. A shared
	 * mapping of a read-only dma-buf has VM_MAYSHARE without VM_SHARED.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE) || is_cow_mapping(vma->vm_flags))
		return -EINVAL;
	if (first > obj->size >> PAGE_SHIFT ||
	    vma_pages(vma) > (obj->size >> PAGE_SHIFT) - first)
		return -EINVAL;

	ret = kvaccel_space_track(space, vma->vm_file->f_mapping);
	if (ret)
		return ret;
	kvaccel_vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &kvaccel_space_vm_ops;
	return 0;
}

/* A space is a view of other objects' memory: devices attach the regions. */
static struct sg_table *kvaccel_space_get_sg_table(struct drm_gem_object *obj)
{
	return ERR_PTR(-EOPNOTSUPP);
}

static const struct drm_gem_object_funcs kvaccel_space_funcs = {
	.free = kvaccel_space_free,
	.open = kvaccel_gem_handle_open,
	.close = kvaccel_gem_handle_close,
	.get_sg_table = kvaccel_space_get_sg_table,
	.mmap = kvaccel_space_mmap,
	.vm_ops = &kvaccel_space_vm_ops,
};
