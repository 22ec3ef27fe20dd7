// SPDX-License-Identifier: MIT
/*
 * libaccel - the expert store's cuda backend (ACCEL_MOE_STORE_CUDA): each
 * device a GPU's cuda tier (cuda/cuda_tier.h) whose reserved range is cut
 * into cells of blocks_per_expert chunks, one per copy, mapped from the
 * tier's pool when the copy is made and given back when it goes; each
 * layer's window one more reserved range whose slots alias the chunks of
 * the copies they show (cuMemMap of the same physical chunks: a rebind
 * copies nothing, and the memory of every GPU of the store lies behind
 * one range). Copies between GPUs go on the destination's copy engine,
 * peer to peer where the source granted it access, else staged through
 * host memory (accel_cuda_tier_copy_peer()); between two devices on one
 * GPU, a plain device copy.
 *
 * A device's cells: every layer's copies on it (at most slots_per_device
 * each), a wave's new copies (at most slots_per_device more) and the
 * spares (at most K): layers * spd + spd + K. That is virtual range only;
 * chunks are created when cells are mapped and kept in the tier's pool
 * after (at most a wave's and the spares' worth beyond the live copies).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "../cuda/cuda_tier.h"

/* A layer's window: its range, and per window slot the device whose copy it maps (-1: none). */
struct cuda_win {
	cu_deviceptr base;
	int8_t *dev;
};

struct cuda_store {
	struct accel_cuda_tier *tier[ACCEL_MOE_STORE_MAX_DEVICES];
	int gpu[ACCEL_MOE_STORE_MAX_DEVICES];
	uint32_t cells;
	bool *used[ACCEL_MOE_STORE_MAX_DEVICES];
	/* One chunk of zeros, the source of clear(). */
	void *zero;
};

_Static_assert(ACCEL_MOE_STORE_MAX_DEVICES <= INT8_MAX, "cuda_win.dev");

static struct cuda_store *cs_of(const struct accel_moe_store *s)
{
	return s->be_priv;
}

static cu_deviceptr cell_addr(const struct accel_moe_store *s, const struct moe_copy *c)
{
	return accel_cuda_tier_base(cs_of(s)->tier[c->device]) + (cu_deviceptr)c->cell * s->stride;
}

static void cuda_fini(struct accel_moe_store *s)
{
	struct cuda_store *cs = cs_of(s);
	uint32_t d;

	if (!cs)
		return;
	for (d = 0; d < s->devices; d++) {
		accel_cuda_tier_destroy(cs->tier[d]);
		free(cs->used[d]);
	}
	free(cs->zero);
	free(cs);
	s->be_priv = NULL;
}

/* The GPUs' allocation granularity, from a tier with no memory on the first. */
static int probe_chunk(int gpu, uint64_t *chunk, char *why, size_t len)
{
	struct accel_cuda_tier_opts o = { .device = gpu, .stream_only = true };
	struct accel_cuda_tier *t;
	int ret = accel_cuda_tier_create(&o, &t, why, len);

	if (ret)
		return ret;
	*chunk = accel_cuda_tier_chunk_size(t);
	accel_cuda_tier_destroy(t);
	return *chunk ? 0 : -EIO;
}

/* Let every other GPU of the store reach each tier (else its copies are staged). */
static int grant_peers(struct accel_moe_store *s)
{
	struct cuda_store *cs = cs_of(s);
	uint32_t d, e;
	int ret;

	for (d = 0; d < s->devices; d++) {
		for (e = 0; e < s->devices; e++) {
			if (cs->gpu[e] == cs->gpu[d])
				continue;
			ret = accel_cuda_tier_grant_peer(cs->tier[d], cs->gpu[e]);
			if (ret && ret != -EOPNOTSUPP && ret != -ENOSPC)
				return ret;
		}
	}
	return 0;
}

static int cuda_init(struct accel_moe_store *s, const struct accel_moe_store_opts *o)
{
	const int *gpu = ACCEL_OPTS_GET(o, device_gpu, NULL);
	uint32_t bs = ACCEL_OPTS_GET(o, block_size, 0), d;
	struct cuda_store *cs;
	uint64_t chunk, cells, bpe;
	char why[160] = "";
	int ret;

	if (!gpu)
		return -EINVAL;
	for (d = 0; d < s->devices; d++)
		if (gpu[d] < 0)
			return -EINVAL;
	ret = probe_chunk(gpu[0], &chunk, why, sizeof(why));
	if (ret)
		goto log;
	if ((bs && bs != chunk) || chunk > UINT32_MAX)
		return -EINVAL;
	bpe = (s->expert_bytes + chunk - 1) / chunk;
	cells = (uint64_t)s->layers * s->spd + s->spd +
		(s->k < (uint64_t)s->layers * s->spd ? s->k : (uint64_t)s->layers * s->spd);
	if (bpe > UINT32_MAX || cells > UINT32_MAX / bpe)
		return -E2BIG;
	s->bs = (uint32_t)chunk;
	s->bpe = (uint32_t)bpe;
	s->stride = bpe * chunk;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	s->be_priv = cs;
	cs->cells = (uint32_t)cells;
	cs->zero = calloc(1, chunk);
	ret = cs->zero ? 0 : -ENOMEM;
	for (d = 0; !ret && d < s->devices; d++) {
		struct accel_cuda_tier_opts to = { .device = gpu[d], .reserve = cells * s->stride };

		cs->gpu[d] = gpu[d];
		cs->used[d] = calloc(cells, sizeof(*cs->used[d]));
		if (!cs->used[d]) {
			ret = -ENOMEM;
			break;
		}
		ret = accel_cuda_tier_create(&to, &cs->tier[d], why, sizeof(why));
		if (!ret && accel_cuda_tier_chunk_size(cs->tier[d]) != chunk) {
			snprintf(why, sizeof(why), "GPUs %d and %d: different allocation granularity",
				 gpu[0], gpu[d]);
			ret = -EINVAL;
		}
	}
	if (!ret)
		ret = grant_peers(s);
	if (ret)
		cuda_fini(s);
log:
	if (ret && why[0])
		accel_log(ACCEL_LOG_ERR, "moe store: %s", why);
	return ret;
}

static int cuda_window_init(struct accel_moe_store *s, struct moe_layer *l)
{
	struct cuda_win *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	l->win = w;
	w->dev = malloc(s->wslots);
	if (!w->dev)
		return -ENOMEM;
	memset(w->dev, -1, s->wslots);
	ret = accel_cuda_tier_reserve(cs_of(s)->tier[0], s->wslots * s->stride, &w->base);
	if (ret)
		return ret;
	l->base = (char *)(uintptr_t)w->base;
	return 0;
}

static int unmap_slot(struct accel_moe_store *s, struct cuda_win *w, uint32_t slot)
{
	int ret = accel_cuda_tier_unalias(cs_of(s)->tier[w->dev[slot]],
					  w->base + (cu_deviceptr)slot * s->stride, s->stride);

	if (!ret)
		w->dev[slot] = -1;
	return ret;
}

static int map_slot(struct accel_moe_store *s, struct cuda_win *w, uint32_t slot,
		    const struct moe_copy *c)
{
	struct cuda_store *cs = cs_of(s);
	int ret = accel_cuda_tier_alias(cs->tier[c->device], (uint64_t)c->cell * s->stride,
					s->stride, w->base + (cu_deviceptr)slot * s->stride);

	if (!ret)
		w->dev[slot] = (int8_t)c->device;
	return ret;
}

static void cuda_window_fini(struct accel_moe_store *s, struct moe_layer *l)
{
	struct cuda_win *w = l->win;
	uint32_t i;

	if (!w)
		return;
	for (i = 0; w->base && i < s->wslots; i++)
		if (w->dev[i] >= 0 && unmap_slot(s, w, i))
			accel_log(ACCEL_LOG_ERR, "moe store: window slot %u stays mapped", i);
	if (w->base && accel_cuda_tier_release(cs_of(s)->tier[0], w->base, s->wslots * s->stride))
		accel_log(ACCEL_LOG_ERR, "moe store: a window's range stays reserved");
	free(w->dev);
	free(w);
	l->win = NULL;
	l->base = NULL;
}

/*
 * One batch, all or nothing: a failure undoes the ops done before it (an
 * unbind is undone with the copy l->wslot still names: the callers set it
 * only after the batch).
 */
static int cuda_bind(struct accel_moe_store *s, struct moe_layer *l, const struct moe_bind *b,
		     uint32_t n)
{
	struct cuda_win *w = l->win;
	uint32_t i;
	int ret = 0;

	for (i = 0; i < n && !ret; i++) {
		if (b[i].c)
			ret = w->dev[b[i].w] >= 0 ? -EINVAL : map_slot(s, w, b[i].w, b[i].c);
		else if (w->dev[b[i].w] >= 0)
			ret = unmap_slot(s, w, b[i].w);
	}
	if (!ret)
		return 0;
	for (i--; i-- > 0; ) {
		int err = b[i].c ? unmap_slot(s, w, b[i].w) :
			  l->wslot[b[i].w] ? map_slot(s, w, b[i].w, l->wslot[b[i].w]) : 0;

		if (err)
			accel_log(ACCEL_LOG_ERR, "moe store: window slot %u not restored: %s",
				  b[i].w, strerror(-err));
	}
	return ret;
}

static int cuda_copy_alloc(struct accel_moe_store *s, struct moe_copy *c)
{
	struct cuda_store *cs = cs_of(s);
	bool *used = cs->used[c->device];
	uint32_t i;
	int ret;

	for (i = 0; i < cs->cells && used[i]; i++)
		;
	if (i == cs->cells)
		return -ENOSPC;	/* more copies than the bound above: cannot happen */
	ret = accel_cuda_tier_map(cs->tier[c->device], (uint64_t)i * s->stride, s->stride);
	if (ret)
		return ret;
	used[i] = true;
	c->cell = i;
	return 0;
}

static void cuda_copy_release(struct accel_moe_store *s, struct moe_copy *c)
{
	struct cuda_store *cs = cs_of(s);
	int ret;

	/* Waits for the tier's stream: the copy into it, if one is in flight. */
	ret = accel_cuda_tier_unmap(cs->tier[c->device], (uint64_t)c->cell * s->stride, s->stride);
	if (ret)
		accel_log(ACCEL_LOG_ERR, "moe store: a copy's chunks stay mapped: %s",
			  strerror(-ret));
	else
		cs->used[c->device][c->cell] = false;
	c->ticket = 0;
}

/* Queue @n pieces onto @c's tier and wait for them. */
static int copy_in(struct accel_moe_store *s, struct moe_copy *c,
		   const struct accel_cuda_copy *pieces, unsigned int n)
{
	struct accel_cuda_tier *t = cs_of(s)->tier[c->device];
	uint64_t tk;
	int ret = accel_cuda_tier_copy(t, pieces, n, &tk);

	return ret ? ret : accel_cuda_tier_wait(t, tk, -1);
}

static int cuda_clear(struct accel_moe_store *s, struct moe_copy *c)
{
	struct accel_cuda_copy *p = calloc(s->bpe, sizeof(*p));
	cu_deviceptr at = cell_addr(s, c);
	uint32_t b;
	int ret;

	if (!p)
		return -ENOMEM;
	for (b = 0; b < s->bpe; b++)
		p[b] = (struct accel_cuda_copy) { at + (cu_deviceptr)b * s->bs,
						  (cu_deviceptr)(uintptr_t)cs_of(s)->zero, s->bs };
	ret = copy_in(s, c, p, s->bpe);
	free(p);
	return ret;
}

static int cuda_write(struct accel_moe_store *s, struct moe_copy *c, const void *src, size_t len)
{
	struct accel_cuda_copy p = { cell_addr(s, c), (cu_deviceptr)(uintptr_t)src, len };

	return copy_in(s, c, &p, 1);
}

static int cuda_copy_start(struct accel_moe_store *s, struct moe_copy *dst,
			   const struct moe_copy *src)
{
	struct cuda_store *cs = cs_of(s);
	struct accel_cuda_copy p = { cell_addr(s, dst), cell_addr(s, src), s->stride };
	struct accel_cuda_tier *td = cs->tier[dst->device], *ts = cs->tier[src->device];

	if (cs->gpu[dst->device] == cs->gpu[src->device])
		return accel_cuda_tier_copy(td, &p, 1, &dst->ticket);
	return accel_cuda_tier_copy_peer(td, ts, &p, 1, &dst->ticket);
}

static int cuda_copy_poll(struct accel_moe_store *s, struct moe_copy *c)
{
	int ret = accel_cuda_tier_wait(cs_of(s)->tier[c->device], c->ticket, 0);

	if (ret == -ETIMEDOUT)
		return 0;
	if (ret)
		return ret;
	c->ticket = 0;
	return 1;
}

/* The ready copy of @e in layer @li of @f to fill a copy on GPU @gpu from: that GPU's first. */
static const struct moe_copy *source_in(const struct accel_moe_store *f, uint32_t li, uint32_t e,
					int gpu)
{
	const struct moe_copy *c, *any = NULL;

	for (c = f->layer[li].copies; c; c = c->next) {
		if (c->expert != e || !c->ready || c->busy)
			continue;
		if (cs_of(f)->gpu[c->device] == gpu)
			return c;
		if (!any)
			any = c;
	}
	return any;
}

static int cuda_fill_from(struct accel_moe_store *s, struct moe_copy *c, uint32_t li)
{
	struct accel_moe_store *f = s->from_store;
	struct cuda_store *cs = cs_of(s), *fs = cs_of(f);
	int gpu = cs->gpu[c->device], ret;
	struct accel_cuda_tier *td = cs->tier[c->device], *ts;
	const struct moe_copy *src;
	struct accel_cuda_copy p;
	uint64_t tk;

	/* Its executor frees or reuses no copy while this one is copied. */
	pthread_mutex_lock(&f->lock);
	src = source_in(f, li, c->expert, gpu);
	if (!src) {
		pthread_mutex_unlock(&f->lock);
		return -ENOENT;
	}
	ts = fs->tier[src->device];
	p = (struct accel_cuda_copy) { cell_addr(s, c), cell_addr(f, src), s->stride };
	if (fs->gpu[src->device] == gpu) {
		ret = accel_cuda_tier_copy(td, &p, 1, &tk);
	} else {
		/* Let the new GPU read the old one's memory straight, where it can. */
		ret = accel_cuda_tier_grant_peer(ts, gpu);
		if (ret && ret != -EOPNOTSUPP && ret != -ENOSPC) {
			pthread_mutex_unlock(&f->lock);
			return ret;
		}
		ret = accel_cuda_tier_copy_peer(td, ts, &p, 1, &tk);
	}
	if (!ret)
		ret = accel_cuda_tier_wait(td, tk, -1);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

const struct moe_backend moe_cuda_backend = {
	.init = cuda_init,
	.fini = cuda_fini,
	.window_init = cuda_window_init,
	.window_fini = cuda_window_fini,
	.bind = cuda_bind,
	.copy_alloc = cuda_copy_alloc,
	.copy_release = cuda_copy_release,
	.clear = cuda_clear,
	.copy_start = cuda_copy_start,
	.copy_poll = cuda_copy_poll,
	.write = cuda_write,
	.fill_from = cuda_fill_from,
};
