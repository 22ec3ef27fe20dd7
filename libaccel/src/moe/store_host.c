// SPDX-License-Identifier: MIT
/*
 * libaccel - the expert store's host backend: each copy a kvaccel region
 * on its device's NUMA node, each layer's window a kvaccel space bound to
 * the copies' blocks, copies on the module's copy engine.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static int host_init(struct accel_moe_store *s, const struct accel_moe_store_opts *o)
{
	uint32_t bs = ACCEL_OPTS_GET(o, block_size, 0);

	if (!s->dev)
		return -EINVAL;
	if (bs) {
		if (bs < 4096 || bs > (2u << 20) || (bs & (bs - 1)))
			return -EINVAL;
		s->bs = bs;
		if ((s->expert_bytes + bs - 1) / bs > KVACCEL_SPACE_MAX_SLOTS)
			return -E2BIG;
		s->bpe = (uint32_t)((s->expert_bytes + bs - 1) / bs);
	} else {
		s->bs = moe_block_size(s->expert_bytes, &s->bpe);
	}
	if ((uint64_t)s->num_slots * s->bpe > KVACCEL_BIND_MAX_OPS ||
	    (uint64_t)s->wslots * s->bpe > KVACCEL_SPACE_MAX_SLOTS)
		return -E2BIG;
	s->stride = (uint64_t)s->bpe * s->bs;
	return 0;
}

static void host_fini(struct accel_moe_store *s)
{
	(void)s;
}

static int host_window_init(struct accel_moe_store *s, struct moe_layer *l)
{
	l->space = accel_space_create(s->dev, s->wslots * s->bpe, s->bs);
	if (!l->space)
		return -errno;
	l->base = accel_space_map(l->space, NULL);
	return l->base ? 0 : -errno;
}

static void host_window_fini(struct accel_moe_store *s, struct moe_layer *l)
{
	(void)s;
	accel_space_destroy(l->space);	/* unbinds every slot */
	l->space = NULL;
}

static int host_bind(struct accel_moe_store *s, struct moe_layer *l, const struct moe_bind *b,
		     uint32_t n)
{
	struct accel_bind_op *ops;
	uint32_t i, k, at = 0;
	int ret;

	if (!n)
		return 0;
	ops = calloc((size_t)n * s->bpe, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		for (k = 0; k < s->bpe; k++)
			ops[at++] = b[i].c ?
				(struct accel_bind_op) { .kind = ACCEL_BIND,
							 .slot = b[i].w * s->bpe + k,
							 .region = b[i].c->region, .block = k } :
				(struct accel_bind_op) { .kind = ACCEL_UNBIND,
							 .slot = b[i].w * s->bpe + k };
	ret = accel_space_bind(l->space, ops, at, NULL);
	free(ops);
	return ret;
}

static int host_copy_alloc(struct accel_moe_store *s, struct moe_copy *c)
{
	c->region = accel_region_create(s->dev, s->stride, s->bs, s->node[c->device]);
	return c->region ? 0 : -errno;
}

static void host_copy_release(struct accel_moe_store *s, struct moe_copy *c)
{
	(void)s;
	if (c->fence) {
		accel_fence_wait(c->fence, -1);
		accel_fence_destroy(c->fence);
		c->fence = NULL;
	}
	accel_region_destroy(c->region);
	c->region = NULL;
}

/*
 * Copy region @src's expert bytes into region @dst on the copy engine; the
 * fence of the last job. Blocks of at most 64 KiB go as one job each, each
 * after the one before: the module copies such a job at once in the
 * submitting task when it has nothing to wait for
 * (Documentation/copy-engine.rst), and libaccel drops a dependency that
 * has already succeeded, so the whole copy is done on return where the
 * module can, at the cost of the copy itself (a hand-off to its workers
 * costs more than that at these sizes); if one is queued, the ones after it
 * wait for it, so the last fence means all done. Bigger blocks go as one
 * job, which the module splits over its workers.
 */
struct accel_fence *moe_submit_copy(struct accel_moe_store *s, struct accel_region *src,
				    struct accel_region *dst)
{
	struct accel_copy_seg seg = { .src = accel_region_obj(src),
				      .dst = accel_region_obj(dst), .length = s->stride };
	struct accel_fence *f = NULL, *prev;
	uint32_t b;

	if (s->bs > (64u << 10))
		return accel_copy(s->dev, &seg, 1, NULL);
	seg.length = s->bs;
	for (b = 0; b < s->bpe; b++) {
		prev = f;
		seg.src_offset = seg.dst_offset = (uint64_t)b * s->bs;
		f = accel_copy(s->dev, &seg, 1, prev);
		if (!f) {
			int err = errno;

			/* Nothing may still write into a region the caller frees. */
			if (prev)
				accel_fence_wait(prev, -1);
			accel_fence_destroy(prev);
			errno = err;
			return NULL;
		}
		accel_fence_destroy(prev);
	}
	return f;
}

static int host_copy_start(struct accel_moe_store *s, struct moe_copy *dst,
			   const struct moe_copy *src)
{
	dst->fence = moe_submit_copy(s, src->region, dst->region);
	return dst->fence ? 0 : -errno;
}

static int host_copy_poll(struct accel_moe_store *s, struct moe_copy *c)
{
	int st = accel_fence_status(c->fence);

	(void)s;
	if (st == 1) {
		accel_fence_destroy(c->fence);
		c->fence = NULL;
	}
	return st;
}

static int host_write(struct accel_moe_store *s, struct moe_copy *c, const void *src, size_t len)
{
	void *map = accel_region_map(c->region);

	(void)s;
	if (!map)
		return -errno;
	memcpy(map, src, len);
	return 0;
}

const struct moe_backend moe_host_backend = {
	.init = host_init,
	.fini = host_fini,
	.window_init = host_window_init,
	.window_fini = host_window_fini,
	.bind = host_bind,
	.copy_alloc = host_copy_alloc,
	.copy_release = host_copy_release,
	.copy_start = host_copy_start,
	.copy_poll = host_copy_poll,
	.write = host_write,
	.host_window = true,
};
