// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - SPACE_BIND: a batch of bind, unbind, move and swap operations
 * on a space's slots, validated completely, then applied as one.
 *
 * Order of work:
 *  1. validate the argument and every operation, look up and reference the
 *     regions to bind, check that no slot is targeted twice (no lock held);
 *  2. take the space's lock for write, check the operations that depend on
 *     the current bindings (unbind or move of an empty slot);
 *  3. make the generation odd, update the slot table, tear down the
 *     mappings of every slot whose binding was replaced, make the
 *     generation even, release the lock;
 *  4. drop the references of the replaced bindings.
 * Faults take the lock for read, so they see all of a batch or none of it,
 * and a block is never freed while a page table entry can still reach it.
 */
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/sort.h>
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
 * @zap: slots whose mappings must be torn down, sorted before use.
 * @nr_zap: entries used in @zap.
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
};

static int kvaccel_bind_cmp_u32(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

/* Check one operation on its own; reference the region of a BIND. */
static int kvaccel_bind_check_op(struct kvaccel_bind *b, struct drm_file *file,
				 u32 i)
{
	const struct drm_kvaccel_bind_op *op = &b->ops[i];
	struct kvaccel_space *space = b->space;
	struct drm_gem_object *obj;
	struct kvaccel_region *region;

	if (op->flags || op->pad || op->slot >= space->nr_slots)
		return -EINVAL;

	switch (op->op) {
	case KVACCEL_BIND_OP_BIND:
		if (op->other)
			return -EINVAL;
		obj = drm_gem_object_lookup(file, op->handle);
		if (!obj)
			return -ENOENT;
		/* The reference travels into the slot, or is dropped on error. */
		b->regions[i] = kvaccel_is_region(obj) ? to_kvaccel_region(obj) : NULL;
		if (!b->regions[i]) {
			drm_gem_object_put(obj);
			return -EINVAL;
		}
		region = b->regions[i];
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

/* A slot may be the target of one operation per batch. */
static int kvaccel_bind_check_targets(struct kvaccel_bind *b)
{
	u32 *targets, n = 0, i;
	int ret = 0;

	targets = kvmalloc_array(b->count, 2 * sizeof(*targets), GFP_KERNEL);
	if (!targets)
		return -ENOMEM;
	for (i = 0; i < b->count; i++) {
		targets[n++] = b->ops[i].slot;
		if (b->ops[i].op == KVACCEL_BIND_OP_MOVE ||
		    b->ops[i].op == KVACCEL_BIND_OP_SWAP)
			targets[n++] = b->ops[i].other;
	}
	sort(targets, n, sizeof(*targets), kvaccel_bind_cmp_u32, NULL);
	for (i = 1; i < n; i++)
		if (targets[i] == targets[i - 1])
			ret = -EINVAL;
	kvfree(targets);
	return ret;
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
	}
	if (new.region)
		space->bound++;
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

/* Tear down the replaced slots' mappings, in runs of adjacent slots. */
static void kvaccel_bind_zap_locked(struct kvaccel_bind *b)
{
	u32 i, first;

	sort(b->zap, b->nr_zap, sizeof(*b->zap), kvaccel_bind_cmp_u32, NULL);
	for (i = 0; i < b->nr_zap; i = first) {
		first = i + 1;
		while (first < b->nr_zap && b->zap[first] == b->zap[first - 1] + 1)
			first++;
		kvaccel_space_zap(b->space, b->zap[i], first - i);
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
	struct drm_gem_object *obj;
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

	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj)
		return -ENOENT;
	if (!kvaccel_is_space(obj)) {
		ret = -EINVAL;
		goto out_put_space;
	}
	b.space = to_kvaccel_space(obj);

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
	ret = kvaccel_bind_check_targets(&b);
	if (ret)
		goto out_release;

	down_write(&b.space->lock);
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
out_put_space:
	drm_gem_object_put(obj);
	return ret;
}
