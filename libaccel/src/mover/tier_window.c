// SPDX-License-Identifier: MIT
/*
 * libaccel - window tiers (ACCEL_TIER_WINDOW, accel_mover.h): a host tier
 * whose blocks are addressed through a kvaccel space, so that a block can
 * be rebound to a page of another engine's region without copying.
 *
 * Tier block b is slots b * k .. b * k + k - 1 of the space (k: region
 * blocks per tier block), bound at creation to the same region blocks of
 * the tier's own region. What backs each block is kept here: an index into
 * the table of held regions (entry 0 the own region) and its first region
 * block. A region is known by its key, the inode number of its dma-buf:
 * the kernel keeps one dma-buf per exported object while any GEM handle of
 * it lives (DRM's export cache, obj->dma_buf) and every process that
 * imports it reaches that same dma-buf, so the key is the same in every
 * engine and across re-exports. A region of this device imported into the
 * same file gives the GEM object back (kvaccel_gem_prime_import(), and
 * DRM's per-file PRIME table the same handle), which the device's handle
 * table shares; the own region is never imported (its key is matched
 * first).
 *
 * A held foreign region counts the tier blocks it backs; a rebind batch
 * that leaves it none lets it go (region destroyed: the handle closed).
 * The kernel keeps a region alive while any space slot is bound to it, so
 * pages of this tier's own region lent to another engine stay that
 * engine's until it rebinds them away, even after this tier is destroyed.
 *
 * Thread safety: win->lock protects the table and the backing arrays; the
 * mover never reads them (copies name the space, which the kernel resolves
 * at submission).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mover.h"

/* A region the tier can name in rebinds. */
struct held {
	uint64_t key;
	struct accel_region *region;	/* NULL: a free entry */
	uint32_t region_blocks;
	uint32_t users;			/* tier blocks it backs */
	bool lost;			/* a rebind in progress took a block from it */
};

struct accel_tier_window {
	pthread_mutex_t lock;
	uint32_t k;			/* region blocks (slots) per tier block */
	dev_t key_dev;			/* st_dev of dma-bufs (their pseudo file system) */
	uint64_t key;			/* the own region's (held[0].key, read without lock) */
	/* Under lock: */
	uint32_t *src;			/* per tier block: index in held */
	uint32_t *first;		/* per tier block: first region block */
	struct held *held;		/* [0]: the own region */
	uint32_t nr_held;		/* entries in use or free, up to the last used */
	uint32_t cap_held;
};

/* The key (inode) and st_dev of dma-buf @fd: 0, or -EINVAL for a file fstat() cannot read. */
static int fd_key(int fd, uint64_t *key, dev_t *dev)
{
	struct stat st;

	if (fstat(fd, &st))
		return -EINVAL;
	*key = (uint64_t)st.st_ino;
	*dev = st.st_dev;
	return 0;
}

/* The own region's key: its dma-buf's inode (the export stays cached by the kernel). */
static int region_key(struct accel_region *r, uint64_t *key, dev_t *dev)
{
	int fd, ret = accel_region_export(r, &fd);

	if (ret)
		return ret;
	ret = fd_key(fd, key, dev);
	close(fd);
	return ret;
}

/* The entry of @key, or -1. Under lock. */
static int held_find_locked(const struct accel_tier_window *w, uint64_t key)
{
	uint32_t i;

	for (i = 0; i < w->nr_held; i++)
		if (w->held[i].region && w->held[i].key == key)
			return (int)i;
	return -1;
}

/* A free entry (grown if need be), or -ENOMEM. Under lock. */
static int held_slot_locked(struct accel_tier_window *w)
{
	struct held *h;
	uint32_t i, cap;

	for (i = 1; i < w->nr_held; i++)
		if (!w->held[i].region)
			return (int)i;
	if (w->nr_held == w->cap_held) {
		cap = w->cap_held * 2;
		h = realloc(w->held, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		w->held = h;
		w->cap_held = cap;
	}
	w->held[w->nr_held] = (struct held){ 0 };
	return (int)w->nr_held++;
}

/* Let go of foreign entry @i (no block backs it any more). Under lock. */
static void held_drop_locked(struct accel_tier_window *w, uint32_t i)
{
	accel_region_destroy(w->held[i].region);
	w->held[i] = (struct held){ 0 };
	while (w->nr_held > 1 && !w->held[w->nr_held - 1].region)
		w->nr_held--;
}

/* Bind slots [0, n) to the own region's blocks [0, n), in batches the kernel takes. */
static int bind_identity(struct accel_tier *t, uint32_t n)
{
	uint32_t batch = n < KVACCEL_BIND_MAX_OPS ? n : KVACCEL_BIND_MAX_OPS, done, i;
	struct accel_bind_op *ops = calloc(batch, sizeof(*ops));
	int ret = 0;

	if (!ops)
		return -ENOMEM;
	for (done = 0; !ret && done < n; done += batch) {
		uint32_t c = n - done < batch ? n - done : batch;

		for (i = 0; i < c; i++)
			ops[i] = (struct accel_bind_op){
				.kind = ACCEL_BIND, .slot = done + i, .region = t->region,
				.block = done + i,
			};
		ret = accel_space_bind(t->space, ops, c, NULL);
	}
	free(ops);
	return ret;
}

int accel_tier_window_init(struct accel_tier *t)
{
	uint32_t k = (uint32_t)(t->block_bytes / t->region_block), b;
	uint64_t slots = (uint64_t)t->blocks * k;
	struct accel_tier_window *w;
	int ret;

	if (slots > UINT32_MAX)
		return -EOVERFLOW;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	w->k = k;
	w->src = calloc(t->blocks, sizeof(*w->src));
	w->first = calloc(t->blocks, sizeof(*w->first));
	w->held = calloc(4, sizeof(*w->held));
	if (!w->src || !w->first || !w->held) {
		ret = -ENOMEM;
		goto err_free;
	}
	w->cap_held = 4;
	w->nr_held = 1;
	w->held[0] = (struct held){
		.region = t->region, .region_blocks = (uint32_t)slots, .users = t->blocks,
	};
	for (b = 0; b < t->blocks; b++)
		w->first[b] = b * k;
	ret = region_key(t->region, &w->key, &w->key_dev);
	if (ret)
		goto err_free;
	w->held[0].key = w->key;
	t->space = accel_space_create(t->dev, (uint32_t)slots, t->region_block);
	if (!t->space) {
		ret = -errno;
		goto err_free;
	}
	ret = bind_identity(t, (uint32_t)slots);
	if (ret)
		goto err_space;
	t->base = accel_space_map(t->space, NULL);
	if (!t->base) {
		ret = -errno;
		goto err_space;
	}
	t->win = w;
	return 0;
err_space:
	accel_space_destroy(t->space);
	t->space = NULL;
err_free:
	free(w->src);
	free(w->first);
	free(w->held);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return ret;
}

void accel_tier_window_fini(struct accel_tier *t)
{
	struct accel_tier_window *w = t->win;
	uint32_t i;

	if (!w)
		return;
	/* The space (its mapping and bindings) first: then no slot names a held region. */
	accel_space_destroy(t->space);
	t->space = NULL;
	t->base = NULL;
	for (i = 1; i < w->nr_held; i++)
		if (w->held[i].region)
			accel_region_destroy(w->held[i].region);
	free(w->src);
	free(w->first);
	free(w->held);
	pthread_mutex_destroy(&w->lock);
	free(w);
	t->win = NULL;
}

ACCEL_EXPORT int accel_tier_page(const struct accel_tier *t, uint32_t block,
				 struct accel_tier_page *pg)
{
	struct accel_tier_window *w;

	if (!t || !pg)
		return -EINVAL;
	w = t->win;
	if (!w)
		return -EOPNOTSUPP;
	if (block >= t->blocks)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	*pg = (struct accel_tier_page){ .key = w->held[w->src[block]].key, .first = w->first[block] };
	pthread_mutex_unlock(&w->lock);
	return 0;
}

ACCEL_EXPORT uint64_t accel_tier_key(const struct accel_tier *t)
{
	return t && t->win ? t->win->key : 0;
}

ACCEL_EXPORT int accel_tier_hold(struct accel_tier *t, int fd, uint64_t *key)
{
	struct accel_tier_window *w;
	struct accel_region *r;
	uint64_t k;
	dev_t dev;
	int ret, i;

	if (!t || fd < 0 || !key)
		return -EINVAL;
	w = t->win;
	if (!w)
		return -EOPNOTSUPP;
	/* Not a dma-buf at all (another file system): nothing to import. */
	if (fd_key(fd, &k, &dev) || dev != w->key_dev)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	ret = held_find_locked(w, k);
	if (ret >= 0) {
		*key = k;
		ret = 0;
		goto out;
	}
	r = accel_region_import(t->dev, fd);
	if (!r) {
		ret = -errno;
		goto out;
	}
	/*
	 * Only a region of this device given read-write imports as the region
	 * itself; another driver's buffer, a read-only dma-buf or a space does
	 * not bind.
	 */
	if (accel_region_is_foreign(r) || accel_region_block_size(r) != t->region_block) {
		accel_region_destroy(r);
		ret = -EINVAL;
		goto out;
	}
	i = held_slot_locked(w);
	if (i < 0) {
		accel_region_destroy(r);
		ret = i;
		goto out;
	}
	w->held[i] = (struct held){
		.key = k, .region = r,
		.region_blocks = (uint32_t)(accel_region_size(r) / t->region_block),
	};
	*key = k;
	ret = 0;
out:
	pthread_mutex_unlock(&w->lock);
	return ret;
}

ACCEL_EXPORT int accel_tier_page_export(struct accel_tier *t, uint64_t key, int *fd)
{
	struct accel_tier_window *w;
	int ret;

	if (!t || !fd)
		return -EINVAL;
	w = t->win;
	if (!w)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&w->lock);
	ret = held_find_locked(w, key);
	ret = ret < 0 ? -ENOENT : accel_region_export(w->held[ret].region, fd);
	pthread_mutex_unlock(&w->lock);
	return ret;
}

/*
 * Check @ops against the table (under lock): 0 with idx[i] the held entry
 * of ops[i], or -errno. @seen: one bit per tier block, zeroed.
 */
static int rebind_check_locked(const struct accel_tier *t, const struct accel_tier_rebind *ops,
			       uint32_t n, uint32_t *idx, uint8_t *seen)
{
	const struct accel_tier_window *w = t->win;
	uint32_t i;
	int h;

	for (i = 0; i < n; i++) {
		const struct accel_tier_rebind *o = &ops[i];

		if (o->pad || o->to.pad || o->block >= t->blocks ||
		    seen[o->block / 8] & (1u << (o->block % 8)))
			return -EINVAL;
		seen[o->block / 8] |= (uint8_t)(1u << (o->block % 8));
		h = held_find_locked(w, o->to.key);
		if (h < 0)
			return -ENOENT;
		if (o->to.first > w->held[h].region_blocks ||
		    w->k > w->held[h].region_blocks - o->to.first)
			return -EINVAL;
		idx[i] = (uint32_t)h;
	}
	return 0;
}

ACCEL_EXPORT int accel_tier_rebind(struct accel_tier *t, const struct accel_tier_rebind *ops,
				   uint32_t n)
{
	struct accel_bind_op *bo = NULL;
	struct accel_tier_window *w;
	uint32_t *idx = NULL, i, j;
	uint8_t *seen = NULL;
	int ret;

	if (!t)
		return -EINVAL;
	w = t->win;
	if (!w)
		return -EOPNOTSUPP;
	if (!ops || !n || (uint64_t)n * w->k > KVACCEL_BIND_MAX_OPS)
		return -EINVAL;
	idx = calloc(n, sizeof(*idx));
	seen = calloc(t->blocks / 8 + 1, 1);
	bo = calloc((size_t)n * w->k, sizeof(*bo));
	if (!idx || !seen || !bo) {
		ret = -ENOMEM;
		goto out_free;
	}
	pthread_mutex_lock(&w->lock);
	ret = rebind_check_locked(t, ops, n, idx, seen);
	if (ret)
		goto out;
	for (i = 0; i < n; i++)
		for (j = 0; j < w->k; j++)
			bo[(size_t)i * w->k + j] = (struct accel_bind_op){
				.kind = ACCEL_BIND, .slot = ops[i].block * w->k + j,
				.region = w->held[idx[i]].region, .block = ops[i].to.first + j,
			};
	/* One kernel batch: the whole rebind or nothing. */
	ret = accel_space_bind(t->space, bo, n * w->k, NULL);
	if (ret)
		goto out;
	for (i = 0; i < n; i++) {
		struct held *old = &w->held[w->src[ops[i].block]];

		old->users--;
		old->lost = true;
		w->held[idx[i]].users++;
		w->src[ops[i].block] = idx[i];
		w->first[ops[i].block] = ops[i].to.first;
	}
	/* Foreign regions this batch left no block backed by: let go. */
	for (i = w->nr_held; i-- > 0;) {
		struct held *h = &w->held[i];

		if (h->region && h->lost && !h->users && i)
			held_drop_locked(w, i);
		else
			h->lost = false;
	}
out:
	pthread_mutex_unlock(&w->lock);
out_free:
	free(bo);
	free(seen);
	free(idx);
	return ret;
}
