// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - SPACE_BIND: a batch of bind, unbind, move and swap operations
 * on a space's slots, validated completely, then applied as one.
 *
 * Order of work:
 *  1. validate the argument and every operation, look up and reference the
 *     regions to bind (no lock held);
 *  2. take the space's lock for write, check that no slot is targeted twice
 *     and the operations that depend on the current bindings (unbind or
 *     move of an empty slot);
 *  3. make the generation odd, update the slot table, tear down the
 *     mappings of every slot whose binding was replaced, make the
 *     generation even, release the lock;
 *  4. drop the references of the replaced bindings.
 * Faults take the lock for read, so they see all of a batch or none of it,
 * and a block is never freed while a page table entry can still reach it.
 */
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/bitmap.h>
#include <linux/uaccess.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>

#include "kvaccel_drv.h"
#include "../uapi/kvaccel.h"

/**
 * struct kvaccel_bind - one SPACE_BIND call in progress.
 * @space: the space.
 * @ops: the operations, copied from userspace.
 * @regions: for each BIND operation, the region to bind (referenced).
 * @count: number of operations.
 * @old: the bindings replaced, to release after the teardown.
 * @nr_old: entries used in @old.
 * @zap: slots whose mappings must be torn down.
 * @nr_zap: entries used in @zap.
 * @last_handle: the region handle the previous BIND looked up.
 * @last_region: its region (referenced through @regions), or NULL.
 */
struct kvaccel_bind {
	struct kvaccel_space *space;
	struct drm_kvaccel_bind_op *ops;
	struct kvaccel_region **regions;
	u32 count;
	struct kvaccel_region **old;
	u32 nr_old;
	u32 *zap;
	u32 nr_zap;
	u32 last_handle;
	struct kvaccel_region *last_region;
};

/* Check one operation on its own; reference the region of a BIND. */
static int kvaccel_bind_check_op(struct kvaccel_bind *b, struct drm_file *file,
				 u32 i)
{
	const struct drm_kvaccel_bind_op *op = &b->ops[i];
	struct kvaccel_space *space = b->space;
	struct drm_gem_object *obj;
	struct kvaccel_region *region;

	if (op->flags & ~KVACCEL_BIND_OP_FLAGS || op->pad || op->slot >= space->nr_slots)
		return -EINVAL;

	switch (op->op) {
	case KVACCEL_BIND_OP_BIND:
		if (op->other)
			return -EINVAL;
		/* Batches bind many blocks of one region: look it up once. */
		if (b->last_region && op->handle == b->last_handle) {
			region = b->last_region;
			drm_gem_object_get(&region->base);
		} else {
			obj = drm_gem_object_lookup(file, op->handle);
			if (!obj)
				return -ENOENT;
			if (!kvaccel_is_region(obj)) {
				drm_gem_object_put(obj);
				return -EINVAL;
			}
			region = to_kvaccel_region(obj);
			b->last_handle = op->handle;
			b->last_region = region;
		}
		/* The reference travels into the slot, or is dropped on error. */
		b->regions[i] = region;
		if (region->block_shift != space->block_shift ||
		    op->block >= region->nr_blocks)
			return -EINVAL;
		return 0;
	case KVACCEL_BIND_OP_UNBIND:
		return op->other || op->handle || op->block ? -EINVAL : 0;
	case KVACCEL_BIND_OP_MOVE:
	case KVACCEL_BIND_OP_SWAP:
		if (op->handle || op->block || op->other >= space->nr_slots ||
		    op->other == op->slot)
			return -EINVAL;
		return 0;
	default:
		return -EINVAL;
	}
}

/* Mark a slot in the scratch bitmap; false if it was marked already. */
static bool kvaccel_bind_mark(struct kvaccel_space *space, u32 slot)
{
	return !__test_and_set_bit(slot, space->scratch);
}

/*
 * A slot may be the target of one operation per batch (a move or swap
 * targets both of its slots). Leaves the scratch bitmap clear.
 */
static int kvaccel_bind_check_targets_locked(struct kvaccel_bind *b)
{
	struct kvaccel_space *space = b->space;
	bool ok = true;
	u32 i;

	lockdep_assert_held_write(&space->lock);

	for (i = 0; i < b->count; i++) {
		const struct drm_kvaccel_bind_op *op = &b->ops[i];

		ok &= kvaccel_bind_mark(space, op->slot);
		if (op->op == KVACCEL_BIND_OP_MOVE || op->op == KVACCEL_BIND_OP_SWAP)
			ok &= kvaccel_bind_mark(space, op->other);
	}
	for (i = 0; i < b->count; i++) {
		__clear_bit(b->ops[i].slot, space->scratch);
		__clear_bit(b->ops[i].other, space->scratch);
	}
	return ok ? 0 : -EINVAL;
}

/* Checks that depend on the current bindings; under the lock. */
static int kvaccel_bind_check_state_locked(struct kvaccel_bind *b)
{
	struct kvaccel_slot *slots = b->space->slots;
	u32 i;

	lockdep_assert_held_write(&b->space->lock);

	for (i = 0; i < b->count; i++) {
		const struct drm_kvaccel_bind_op *op = &b->ops[i];

		if ((op->op == KVACCEL_BIND_OP_UNBIND ||
		     op->op == KVACCEL_BIND_OP_MOVE) && !slots[op->slot].region)
			return -ENOENT;
	}
	return 0;
}

/* Replace a slot's binding; remember what must be torn down and dropped. */
static void kvaccel_bind_set_locked(struct kvaccel_bind *b, u32 slot,
				    struct kvaccel_slot new)
{
	struct kvaccel_space *space = b->space;
	struct kvaccel_slot *s = &space->slots[slot];

	if (s->region) {
		b->zap[b->nr_zap++] = slot;
		space->bound--;
		atomic_dec(&s->region->bound);
	}
	if (new.region) {
		space->bound++;
		atomic_inc(&new.region->bound);
	}
	*s = new;
}

static void kvaccel_bind_apply_locked(struct kvaccel_bind *b)
{
	struct kvaccel_slot *slots = b->space->slots;
	struct kvaccel_slot empty = { };
	u32 i;

	for (i = 0; i < b->count; i++) {
		const struct drm_kvaccel_bind_op *op = &b->ops[i];
		struct kvaccel_slot a = slots[op->slot], c;

		switch (op->op) {
		case KVACCEL_BIND_OP_BIND:
			if (a.region)
				b->old[b->nr_old++] = a.region;
			c.region = b->regions[i];
			c.block = op->block;
			b->regions[i] = NULL;	/* owned by the slot now */
			kvaccel_bind_set_locked(b, op->slot, c);
			break;
		case KVACCEL_BIND_OP_UNBIND:
			b->old[b->nr_old++] = a.region;
			kvaccel_bind_set_locked(b, op->slot, empty);
			break;
		case KVACCEL_BIND_OP_MOVE:
			c = slots[op->other];
			if (c.region)
				b->old[b->nr_old++] = c.region;
			kvaccel_bind_set_locked(b, op->slot, empty);
			kvaccel_bind_set_locked(b, op->other, a);
			break;
		case KVACCEL_BIND_OP_SWAP:
			c = slots[op->other];
			kvaccel_bind_set_locked(b, op->slot, c);
			kvaccel_bind_set_locked(b, op->other, a);
			break;
		}
	}
}

/*
 * Tear down the replaced slots' mappings, in runs of adjacent slots found
 * through the scratch bitmap (cleared again on the way).
 */
static void kvaccel_bind_zap_locked(struct kvaccel_bind *b)
{
	struct kvaccel_space *space = b->space;
	unsigned long first = ULONG_MAX, last = 0, start, end;
	u32 i;

	lockdep_assert_held_write(&space->lock);

	for (i = 0; i < b->nr_zap; i++) {
		__set_bit(b->zap[i], space->scratch);
		first = min_t(unsigned long, first, b->zap[i]);
		last = max_t(unsigned long, last, b->zap[i]);
	}
	for (start = first; b->nr_zap && start <= last; start = end) {
		start = find_next_bit(space->scratch, last + 1, start);
		if (start > last)
			break;
		end = find_next_zero_bit(space->scratch, last + 1, start);
		bitmap_clear(space->scratch, start, end - start);
		kvaccel_space_zap(space, start, end - start);
	}
}

static void kvaccel_bind_release(struct kvaccel_bind *b)
{
	u32 i;

	if (b->regions)
		for (i = 0; i < b->count; i++)
			if (b->regions[i])
				drm_gem_object_put(&b->regions[i]->base);
	if (b->old)
		for (i = 0; i < b->nr_old; i++)
			drm_gem_object_put(&b->old[i]->base);
	kvfree(b->zap);
	kvfree(b->old);
	kvfree(b->regions);
	kvfree(b->ops);
}

int kvaccel_ioctl_space_bind(struct drm_device *drm, void *data,
			     struct drm_file *file)
{
	struct drm_kvaccel_space_bind *args = data;
	struct kvaccel_bind b = { .count = args->count };
	size_t bytes;
	u64 gen;
	u32 i;
	int ret;

	if (args->flags & ~KVACCEL_SPACE_BIND_FLAGS || args->pad)
		return -EINVAL;
	if (!args->count || args->count > KVACCEL_BIND_MAX_OPS)
		return -EINVAL;
	if (check_mul_overflow((size_t)args->count, sizeof(*b.ops), &bytes))
		return -EINVAL;

	b.space = kvaccel_space_lookup(file, args->handle);
	if (IS_ERR(b.space))
		return PTR_ERR(b.space);
	if (!kvaccel_space_may_rebind(b.space, file->driver_priv)) {
		drm_gem_object_put(&b.space->base);
		return -EPERM;
	}

	ret = -ENOMEM;
	b.ops = kvmalloc(bytes, GFP_KERNEL_ACCOUNT);
	b.regions = kvcalloc(b.count, sizeof(*b.regions), GFP_KERNEL_ACCOUNT);
	/* Each op replaces at most one binding and changes at most two slots. */
	b.old = kvcalloc(b.count, sizeof(*b.old), GFP_KERNEL_ACCOUNT);
	b.zap = kvcalloc(b.count, 2 * sizeof(*b.zap), GFP_KERNEL_ACCOUNT);
	if (!b.ops || !b.regions || !b.old || !b.zap)
		goto out_release;

	if (copy_from_user(b.ops, u64_to_user_ptr(args->ops), bytes)) {
		ret = -EFAULT;
		goto out_release;
	}
	for (i = 0; i < b.count; i++) {
		ret = kvaccel_bind_check_op(&b, file, i);
		if (ret)
			goto out_release;
	}
	down_write(&b.space->lock);
	ret = kvaccel_bind_check_targets_locked(&b);
	if (!ret)
		ret = kvaccel_bind_check_state_locked(&b);
	if (ret)
		goto out_unlock;
	gen = kvaccel_space_generation(b.space);
	kvaccel_space_set_generation(b.space, gen + 1);
	kvaccel_bind_apply_locked(&b);
	kvaccel_bind_zap_locked(&b);
	kvaccel_space_set_generation(b.space, gen + 2);
	args->generation = gen + 2;
out_unlock:
	up_write(&b.space->lock);
out_release:
	/* After the teardown: the replaced blocks may be freed now. */
	kvaccel_bind_release(&b);
	drm_gem_object_put(&b.space->base);
	return ret;
}
