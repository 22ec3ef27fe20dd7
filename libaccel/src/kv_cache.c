// SPDX-License-Identifier: MIT
/*
 * libaccel - the tiered, paged KV cache (accel_kv_*): sequences' block
 * tables on a device tier and a host tier, prefix sharing and
 * copy-on-write (kv/kv_seq.c), and swapping sequences between the tiers in
 * coalesced transfers, moving only what changed since the last swap.
 *
 * Backends: "host" keeps both tiers in kvaccel regions and moves bytes
 * with the module's copy engine (machines without a GPU, and CI). "cuda"
 * keeps the device tier in GPU memory (cuda/cuda_tier.c: a reserved
 * virtual range whose chunks, all created with the cache, are mapped when
 * a block in them is first used) and the host tier in a kvaccel region
 * registered with the driver; swaps are batched copies on the tier's
 * stream, finished by tickets instead of kvaccel fences.
 *
 * Per sequence: the kv_seq's block table names device blocks (KV_NO_BLOCK
 * while the sequence is on the host); host[] names each block's host copy
 * (KV_NO_BLOCK if none) and dirty[] whether the device block has changed
 * since that copy was made. A swap out copies only blocks without a valid
 * host copy; a swap in reuses a device block still cached under the same
 * content hash instead of copying it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "cuda/cuda_loader.h"
#include "cuda/cuda_tier.h"
#include "kv/kv_seq.h"

enum { T_DEV, T_HOST, T_NR };

struct kv_tier {
	struct kv_pool pool;
	struct accel_region *region;
	unsigned char *base;
};

struct kv_entry {
	bool live;
	int place;		/* enum accel_kv_place */
	int target;		/* while moving: where to */
	struct kv_seq s;
	uint32_t *host;
	uint8_t *dirty;
	uint32_t aux_cap;
	struct accel_fence *fence;
	uint64_t ticket;	/* cuda backend: the move's copies */
	struct accel_space *win;
	cu_deviceptr gwin;	/* cuda backend: a device window, gwin_n chunks */
	uint32_t gwin_n;
};

struct accel_kv {
	struct accel_device *dev;
	struct accel_kv_config cfg;
	pthread_mutex_t lock;	/* protects everything below */
	struct kv_tier tier[T_NR];
	struct kv_entry *e;
	uint32_t nr_e;
	struct accel_kv_stats st;
	/* cuda backend: the device tier, and which of its chunks are mapped. */
	struct accel_cuda_tier *gpu;
	int gpu_ordinal;	/* the CUDA device ("cuda:N"; "cuda" is 0) */
	uint8_t *mapped;
	uint64_t chunk;
};

/*
 * "host" (or NULL): 0; "cuda" or "cuda:N" (N a CUDA ordinal, decimal): 1,
 * *gpu = N; anything else: -EINVAL.
 */
static int parse_backend(const char *s, int *gpu)
{
	unsigned long n;
	char *end;

	*gpu = 0;
	if (!s || !strcmp(s, "host"))
		return 0;
	if (!strcmp(s, "cuda"))
		return 1;
	if (strncmp(s, "cuda:", 5) || s[5] < '0' || s[5] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(s + 5, &end, 10);
	if (errno || *end || n > 1024)
		return -EINVAL;
	*gpu = (int)n;
	return 1;
}

static int tier_init(struct accel_kv *kv, int t, uint32_t blocks, int node)
{
	struct kv_tier *tier = &kv->tier[t];
	int ret = kv_pool_init(&tier->pool, blocks);

	if (ret)
		return ret;
	tier->region = accel_region_create(kv->dev, (uint64_t)blocks * kv->cfg.block_bytes,
					   kv->cfg.block_bytes, node);
	if (!tier->region)
		return -errno;
	tier->base = accel_region_map(tier->region);
	return tier->base ? 0 : -errno;
}

static void tier_fini(struct kv_tier *tier)
{
	accel_region_destroy(tier->region);
	kv_pool_fini(&tier->pool);
}

/* The cuda backend's device tier: every chunk created now, mapped on first use. */
static int gpu_init(struct accel_kv *kv)
{
	uint64_t bytes = (uint64_t)kv->cfg.device_blocks * kv->cfg.block_bytes;
	struct accel_cuda_tier_opts o = { .device = kv->gpu_ordinal, .reserve = bytes };
	char why[160];
	int ret;

	ret = kv_pool_init(&kv->tier[T_DEV].pool, kv->cfg.device_blocks);
	if (ret)
		return ret;
	ret = accel_cuda_tier_create(&o, &kv->gpu, why, sizeof(why));
	if (ret) {
		accel_log(ACCEL_LOG_ERR, "kv: cuda backend: %s", why);
		return ret;
	}
	kv->chunk = accel_cuda_tier_chunk_size(kv->gpu);
	kv->mapped = calloc(accel_cuda_tier_size(kv->gpu) / kv->chunk, 1);
	if (!kv->mapped)
		return -ENOMEM;
	ret = accel_cuda_tier_prealloc(kv->gpu,
				       (unsigned int)(accel_cuda_tier_size(kv->gpu) / kv->chunk));
	if (ret)
		accel_log(ACCEL_LOG_ERR, "kv: cuda backend: creating %llu bytes of GPU memory: %s",
			  (unsigned long long)accel_cuda_tier_size(kv->gpu), strerror(-ret));
	return ret;
}

/* Map the chunks that hold @e's device blocks (cuda backend; a no-op otherwise). */
static int gpu_map_blocks(struct accel_kv *kv, const struct kv_entry *e)
{
	uint32_t i;
	int ret;

	for (i = 0; kv->gpu && i < e->s.nr_blocks; i++) {
		uint64_t c;

		if (e->s.blocks[i] == KV_NO_BLOCK)
			continue;
		c = (uint64_t)e->s.blocks[i] * kv->cfg.block_bytes / kv->chunk;
		if (kv->mapped[c])
			continue;
		ret = accel_cuda_tier_map(kv->gpu, c * kv->chunk, kv->chunk);
		if (ret)
			return ret;
		kv->mapped[c] = 1;
	}
	return 0;
}

/* A block's address for the cuda tier's copies: a device pointer or a host address. */
static cu_deviceptr gpu_addr(const struct accel_kv *kv, int t, uint32_t block)
{
	uint64_t off = (uint64_t)block * kv->cfg.block_bytes;

	return t == T_DEV ? accel_cuda_tier_base(kv->gpu) + off :
	       (cu_deviceptr)(uintptr_t)(kv->tier[T_HOST].base + off);
}

ACCEL_EXPORT struct accel_kv *accel_kv_create(struct accel_device *dev,
					      const struct accel_kv_config *cfg)
{
	struct accel_kv *kv;
	int ret, cuda, gpu;
	uint32_t bb;

	if (!dev || !cfg || !cfg->block_tokens || !cfg->device_blocks || !cfg->host_blocks ||
	    (cfg->flags & ~ACCEL_KV_FLAGS)) {
		errno = EINVAL;
		return NULL;
	}
	bb = cfg->block_bytes;
	if (bb < 4096 || bb > (2u << 20) || (bb & (bb - 1))) {
		accel_log(ACCEL_LOG_ERR, "kv: block_bytes %u: a power of two from 4 KiB to 2 MiB", bb);
		errno = EINVAL;
		return NULL;
	}
	cuda = parse_backend(cfg->backend, &gpu);
	if (cuda < 0) {
		accel_log(ACCEL_LOG_ERR,
			  "kv: unknown backend \"%s\" (\"host\", \"cuda\" or \"cuda:N\")",
			  cfg->backend);
		errno = EINVAL;
		return NULL;
	}
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return NULL;
	kv->dev = dev;
	kv->cfg = *cfg;
	kv->cfg.backend = cuda ? "cuda" : "host";
	kv->gpu_ordinal = gpu;
	if (!kv->cfg.transfer_unit)
		kv->cfg.transfer_unit = 2u << 20;
	pthread_mutex_init(&kv->lock, NULL);
	ret = cuda ? gpu_init(kv) : tier_init(kv, T_DEV, cfg->device_blocks, ACCEL_NODE_ANY);
	if (!ret)
		ret = tier_init(kv, T_HOST, cfg->host_blocks, cfg->host_node);
	if (!ret && kv->gpu)
		ret = accel_cuda_tier_host_register(kv->gpu, kv->tier[T_HOST].base,
						    (size_t)cfg->host_blocks * cfg->block_bytes);
	if (ret) {
		accel_kv_destroy(kv);
		errno = -ret;
		return NULL;
	}
	return kv;
}

static struct kv_entry *entry(struct accel_kv *kv, uint32_t seq)
{
	return seq < kv->nr_e && kv->e[seq].live ? &kv->e[seq] : NULL;
}

/* The sequence, if it is at @place: 0, -ENOENT (no such sequence) or -EBUSY. */
static int entry_at(struct accel_kv *kv, uint32_t seq, int place, struct kv_entry **e)
{
	*e = entry(kv, seq);
	if (!*e)
		return -ENOENT;
	return (*e)->place == place ? 0 : -EBUSY;
}

/* Room for @blocks in an entry's host[] and dirty[]. */
static int aux_reserve(struct kv_entry *e, uint64_t blocks)
{
	uint32_t cap = e->aux_cap ? e->aux_cap : 8, i;
	uint32_t *h;
	uint8_t *d;

	if (blocks <= e->aux_cap)
		return 0;
	if (blocks >= KV_NO_BLOCK)
		return -EINVAL;
	while (cap < blocks)
		cap *= 2;
	h = realloc(e->host, cap * sizeof(*h));
	if (!h)
		return -ENOMEM;
	e->host = h;
	d = realloc(e->dirty, cap);
	if (!d)
		return -ENOMEM;
	e->dirty = d;
	for (i = e->aux_cap; i < cap; i++) {
		e->host[i] = KV_NO_BLOCK;
		e->dirty[i] = 1;
	}
	e->aux_cap = cap;
	return 0;
}

static void drop_window(struct accel_kv *kv, struct kv_entry *e)
{
	accel_space_destroy(e->win);
	e->win = NULL;
	if (e->gwin)
		accel_cuda_tier_window_free(kv->gpu, e->gwin, e->gwin_n);
	e->gwin = 0;
}

/* Release every block of an entry on both tiers and forget it. */
static void entry_fini(struct accel_kv *kv, struct kv_entry *e)
{
	uint32_t i;

	drop_window(kv, e);
	for (i = 0; i < e->s.nr_blocks; i++) {
		if (e->s.blocks[i] != KV_NO_BLOCK)
			kv_pool_put(&kv->tier[T_DEV].pool, e->s.blocks[i]);
		if (e->host[i] != KV_NO_BLOCK)
			kv_pool_put(&kv->tier[T_HOST].pool, e->host[i]);
	}
	e->s.nr_blocks = 0;
	kv_seq_fini(&kv->tier[T_DEV].pool, &e->s);
	free(e->host);
	free(e->dirty);
	memset(e, 0, sizeof(*e));
}

static int entry_new(struct accel_kv *kv, uint32_t *seq)
{
	struct kv_entry *e;
	uint32_t i;
	int ret;

	for (i = 0; i < kv->nr_e && kv->e[i].live; i++)
		;
	if (i == kv->nr_e) {
		e = realloc(kv->e, (kv->nr_e + 16) * sizeof(*e));
		if (!e)
			return -ENOMEM;
		memset(e + kv->nr_e, 0, 16 * sizeof(*e));
		kv->e = e;
		kv->nr_e += 16;
	}
	e = &kv->e[i];
	ret = kv_seq_init(&e->s, kv->cfg.block_tokens);
	if (ret)
		return ret;
	e->live = true;
	e->place = ACCEL_KV_DEVICE;
	*seq = i;
	return 0;
}

/* Copy device blocks for copy-on-write and wait: the caller writes next. */
static int run_copies(struct accel_kv *kv, int from, int to, struct kv_copy *c, uint32_t n,
		      struct accel_fence **fence);
static int gpu_copies(struct accel_kv *kv, int from, int to, struct kv_copy *c, uint32_t n,
		      uint64_t *ticket);

ACCEL_EXPORT int accel_kv_seq_create(struct accel_kv *kv, const int32_t *prompt, uint64_t n,
				     uint32_t *seq, uint64_t *cached_tokens)
{
	struct kv_copies copies = { 0 };
	struct kv_entry *e;
	uint64_t cached = 0;
	uint32_t id;
	int ret;

	if (!kv || !seq || (n && !prompt))
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_new(kv, &id);
	if (ret)
		goto out;
	e = &kv->e[id];
	ret = aux_reserve(e, (n + kv->cfg.block_tokens - 1) / kv->cfg.block_tokens);
	if (!ret)
		ret = kv_seq_start(&kv->tier[T_DEV].pool, &e->s, prompt, n, &cached, &copies);
	if (!ret)
		ret = gpu_map_blocks(kv, e);
	if (ret) {
		entry_fini(kv, e);
		goto out;
	}
	kv->st.prefix_hit_tokens += cached;
	if (cached_tokens)
		*cached_tokens = cached;
	*seq = id;
out:
	kv_copies_fini(&copies);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_append(struct accel_kv *kv, uint32_t seq, const int32_t *tokens,
				     uint64_t n)
{
	struct kv_copies copies = { 0 };
	struct accel_fence *f = NULL;
	struct kv_entry *e;
	uint32_t first, i;
	int ret;

	if (!kv || (n && !tokens))
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (ret)
		goto out;
	ret = aux_reserve(e, (e->s.nr_tokens + n + kv->cfg.block_tokens - 1) / kv->cfg.block_tokens);
	if (ret)
		goto out;
	/* The partial last block (if any) and every new one change. */
	first = (uint32_t)(e->s.nr_tokens / kv->cfg.block_tokens);
	ret = kv_seq_append(&kv->tier[T_DEV].pool, &e->s, tokens, n, &copies);
	if (ret)
		goto out;
	for (i = first; i < e->s.nr_blocks; i++)
		e->dirty[i] = 1;
	drop_window(kv, e);
	ret = gpu_map_blocks(kv, e);
	if (!ret && copies.n && kv->gpu) {
		uint64_t tk;

		kv->st.cow_copies += copies.n;
		ret = gpu_copies(kv, T_DEV, T_DEV, copies.v, copies.n, &tk);
		if (!ret && tk)
			ret = accel_cuda_tier_wait(kv->gpu, tk, -1);
	} else if (!ret && copies.n) {
		kv->st.cow_copies += copies.n;
		ret = run_copies(kv, T_DEV, T_DEV, copies.v, copies.n, &f);
		if (!ret && f)
			ret = accel_fence_wait(f, -1);
		accel_fence_destroy(f);
	}
out:
	kv_copies_fini(&copies);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_fork(struct accel_kv *kv, uint32_t seq, uint32_t *child)
{
	struct kv_entry *e, *c;
	uint32_t id;
	int ret;

	if (!kv || !child)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (!ret)
		ret = entry_new(kv, &id);
	if (ret)
		goto out;
	e = &kv->e[seq];	/* entry_new() may have moved the array */
	c = &kv->e[id];
	ret = aux_reserve(c, e->s.nr_blocks);
	if (!ret)
		ret = kv_seq_fork(&kv->tier[T_DEV].pool, &e->s, &c->s);
	if (ret) {
		entry_fini(kv, c);
		goto out;
	}
	*child = id;
out:
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

/* Wait for an entry's move and complete it. */
static int finish_move(struct accel_kv *kv, struct kv_entry *e, int64_t timeout_ns);

ACCEL_EXPORT int accel_kv_seq_free(struct accel_kv *kv, uint32_t seq)
{
	struct kv_entry *e;
	int ret = 0;

	if (!kv)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	if (!e)
		ret = -ENOENT;
	else if (e->place == ACCEL_KV_MOVING)
		finish_move(kv, e, -1);
	if (e)
		entry_fini(kv, e);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_blocks(struct accel_kv *kv, uint32_t seq, uint32_t *blocks,
				     uint32_t max)
{
	struct kv_entry *e;
	int ret;

	if (!kv || (max && !blocks))
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (!ret)
		ret = (int)e->s.nr_blocks;
	if (ret > 0)
		memcpy(blocks, e->s.blocks, (ret < (int)max ? (uint32_t)ret : max) * sizeof(*blocks));
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_tokens(struct accel_kv *kv, uint32_t seq, uint64_t *tokens)
{
	struct kv_entry *e;

	if (!kv || !tokens)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	if (e)
		*tokens = e->s.nr_tokens;
	pthread_mutex_unlock(&kv->lock);
	return e ? 0 : -ENOENT;
}

ACCEL_EXPORT int accel_kv_seq_place(struct accel_kv *kv, uint32_t seq)
{
	struct kv_entry *e;
	int ret;

	if (!kv)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	ret = e ? e->place : -ENOENT;
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

/*
 * The naive mover ACCEL_KV_PER_BLOCK_COPIES asks for: one job per block,
 * at most @window in flight, all waited for before returning.
 */
static int run_per_block(struct accel_kv *kv, int from, int to, const struct kv_copy *c,
			 uint32_t n)
{
	enum { WINDOW = 256 };
	struct accel_fence *f[WINDOW] = { NULL };
	uint64_t bb = kv->cfg.block_bytes;
	uint32_t i;
	int ret = 0, r;

	for (i = 0; i < n && !ret; i++) {
		struct accel_copy_seg seg = {
			.src = accel_region_obj(kv->tier[from].region), .src_offset = c[i].src * bb,
			.dst = accel_region_obj(kv->tier[to].region), .dst_offset = c[i].dst * bb,
			.length = bb,
		};

		if (f[i % WINDOW]) {
			ret = accel_fence_wait(f[i % WINDOW], -1);
			accel_fence_destroy(f[i % WINDOW]);
		}
		f[i % WINDOW] = ret ? NULL : accel_copy_ordered(kv->dev, &seg, 1, NULL);
		if (!ret && !f[i % WINDOW])
			ret = -errno;
	}
	for (i = 0; i < WINDOW; i++) {
		if (!f[i])
			continue;
		r = accel_fence_wait(f[i], -1);
		ret = ret ? ret : r;
		accel_fence_destroy(f[i]);
	}
	kv->st.transfers += n;
	kv->st.bytes_moved += n * bb;
	return ret;
}

/*
 * Submit block copies between tiers as coalesced segments: one job, or a
 * chain of jobs of at most KVACCEL_COPY_MAX_SEGMENTS segments each, each
 * after the previous (an error anywhere reaches the last fence).
 */
static int run_copies(struct accel_kv *kv, int from, int to, struct kv_copy *c, uint32_t n,
		      struct accel_fence **fence)
{
	uint32_t unit = kv->cfg.transfer_unit / kv->cfg.block_bytes, nr, i;
	uint64_t bb = kv->cfg.block_bytes;
	struct accel_copy_seg *segs;
	struct kv_run *runs;
	int ret = 0;

	*fence = NULL;
	if (!n)
		return 0;
	if (kv->cfg.flags & ACCEL_KV_PER_BLOCK_COPIES)
		return run_per_block(kv, from, to, c, n);
	runs = calloc(n, sizeof(*runs));
	segs = calloc(n, sizeof(*segs));
	if (!runs || !segs) {
		ret = -ENOMEM;
		goto out;
	}
	nr = kv_coalesce(c, n, unit ? unit : 1, runs);
	for (i = 0; i < nr; i++)
		segs[i] = (struct accel_copy_seg) {
			.src = accel_region_obj(kv->tier[from].region), .src_offset = runs[i].src * bb,
			.dst = accel_region_obj(kv->tier[to].region), .dst_offset = runs[i].dst * bb,
			.length = runs[i].count * bb,
		};
	for (i = 0; i < nr; i += KVACCEL_COPY_MAX_SEGMENTS) {
		uint32_t count = nr - i < KVACCEL_COPY_MAX_SEGMENTS ? nr - i :
				 KVACCEL_COPY_MAX_SEGMENTS;
		struct accel_fence *prev = *fence;

		*fence = accel_copy_ordered(kv->dev, segs + i, count, prev);
		if (!*fence) {
			ret = -errno;
			/* Nothing may still write into blocks the caller frees. */
			if (prev)
				accel_fence_wait(prev, -1);
		}
		/* The kernel took the previous job's fence: its handle may go. */
		accel_fence_destroy(prev);
		if (ret)
			goto out;
	}
	kv->st.transfers += nr;
	kv->st.bytes_moved += n * bb;
out:
	free(runs);
	free(segs);
	return ret;
}

/*
 * The cuda backend's mover: block copies as coalesced runs in one batch on
 * the tier's stream; *ticket says when they are done (0: nothing to wait
 * for). ACCEL_KV_PER_BLOCK_COPIES: one call per block, all waited for.
 */
static int gpu_copies(struct accel_kv *kv, int from, int to, struct kv_copy *c, uint32_t n,
		      uint64_t *ticket)
{
	uint32_t unit = kv->cfg.transfer_unit / kv->cfg.block_bytes, nr, i;
	uint64_t bb = kv->cfg.block_bytes;
	struct accel_cuda_copy *cp;
	struct kv_run *runs;
	int ret = 0;

	*ticket = 0;
	if (!n)
		return 0;
	if (kv->cfg.flags & ACCEL_KV_PER_BLOCK_COPIES) {
		uint64_t tk = 0;

		for (i = 0; i < n && !ret; i++) {
			struct accel_cuda_copy one = {
				gpu_addr(kv, to, c[i].dst), gpu_addr(kv, from, c[i].src), bb
			};

			ret = accel_cuda_tier_copy(kv->gpu, &one, 1, &tk);
		}
		if (tk) {
			int r = accel_cuda_tier_wait(kv->gpu, tk, -1);

			ret = ret ? ret : r;
		}
		kv->st.transfers += n;
		kv->st.bytes_moved += n * bb;
		return ret;
	}
	runs = calloc(n, sizeof(*runs));
	cp = calloc(n, sizeof(*cp));
	if (!runs || !cp) {
		ret = -ENOMEM;
		goto out;
	}
	nr = kv_coalesce(c, n, unit ? unit : 1, runs);
	for (i = 0; i < nr; i++)
		cp[i] = (struct accel_cuda_copy) {
			gpu_addr(kv, to, runs[i].dst), gpu_addr(kv, from, runs[i].src),
			runs[i].count * bb
		};
	ret = accel_cuda_tier_copy(kv->gpu, cp, nr, ticket);
	if (!ret) {
		kv->st.transfers += nr;
		kv->st.bytes_moved += n * bb;
	}
out:
	free(runs);
	free(cp);
	return ret;
}

/* Drop host copies of sequences on the device until @need host blocks are free. */
static void reclaim_host(struct accel_kv *kv, uint32_t need)
{
	struct kv_pool *hp = &kv->tier[T_HOST].pool;
	uint32_t i, b;

	for (i = 0; i < kv->nr_e && hp->nr_free + hp->nr_cached < need; i++) {
		struct kv_entry *e = &kv->e[i];

		if (!e->live || e->place != ACCEL_KV_DEVICE)
			continue;
		for (b = 0; b < e->s.nr_blocks; b++) {
			if (e->host[b] == KV_NO_BLOCK)
				continue;
			kv_pool_put(hp, e->host[b]);
			e->host[b] = KV_NO_BLOCK;
			e->dirty[b] = 1;
		}
	}
}

static int start_move(struct accel_kv *kv, struct kv_entry *e, int to, struct kv_copy *c,
		      uint32_t n, struct accel_fence **fence)
{
	int from = to == T_HOST ? T_DEV : T_HOST, ret;

	ret = kv->gpu ? gpu_copies(kv, from, to, c, n, &e->ticket) :
			run_copies(kv, from, to, c, n, &e->fence);
	if (ret)
		return ret;
	e->place = e->fence || e->ticket ? ACCEL_KV_MOVING :
		   to == T_HOST ? ACCEL_KV_HOST : ACCEL_KV_DEVICE;
	e->target = to == T_HOST ? ACCEL_KV_HOST : ACCEL_KV_DEVICE;
	if (fence)
		*fence = e->fence;
	return 0;
}

/* The copy to the host is done (or failed): release or keep the device blocks. */
static void complete_out(struct accel_kv *kv, struct kv_entry *e, int status)
{
	uint32_t i;

	for (i = 0; i < e->s.nr_blocks; i++) {
		if (status) {
			e->dirty[i] = 1;	/* the host copy is not trustworthy */
			continue;
		}
		kv_pool_put(&kv->tier[T_DEV].pool, e->s.blocks[i]);
		e->s.blocks[i] = KV_NO_BLOCK;
		e->dirty[i] = 0;
	}
	e->place = status ? ACCEL_KV_DEVICE : ACCEL_KV_HOST;
}

static void complete_in(struct accel_kv *kv, struct kv_entry *e, int status)
{
	uint32_t i;

	for (i = 0; i < e->s.nr_blocks; i++) {
		if (status) {
			kv_pool_put(&kv->tier[T_DEV].pool, e->s.blocks[i]);
			e->s.blocks[i] = KV_NO_BLOCK;
		} else {
			e->dirty[i] = 0;	/* the host copy stays valid */
		}
	}
	e->place = status ? ACCEL_KV_HOST : ACCEL_KV_DEVICE;
}

ACCEL_EXPORT int accel_kv_swap_out(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence)
{
	struct kv_pool *hp;
	struct kv_entry *e;
	struct kv_copy *c = NULL;
	uint32_t *fresh = NULL, need = 0, n = 0, k = 0, i;
	int ret;

	if (!kv)
		return -EINVAL;
	if (fence)
		*fence = NULL;
	pthread_mutex_lock(&kv->lock);
	hp = &kv->tier[T_HOST].pool;
	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (ret)
		goto out;
	for (i = 0; i < e->s.nr_blocks; i++)
		need += e->host[i] == KV_NO_BLOCK;
	c = calloc(e->s.nr_blocks + 1, sizeof(*c));
	fresh = calloc(need + 1, sizeof(*fresh));
	if (!c || !fresh) {
		ret = -ENOMEM;
		goto out;
	}
	if (hp->nr_free + hp->nr_cached < need)
		reclaim_host(kv, need);
	ret = kv_pool_alloc(hp, need, fresh);
	if (ret)
		goto out;
	drop_window(kv, e);
	for (i = 0; i < e->s.nr_blocks; i++) {
		if (e->host[i] == KV_NO_BLOCK)
			e->host[i] = fresh[k++];
		else if (!e->dirty[i]) {
			kv->st.blocks_reused++;
			continue;
		}
		c[n++] = (struct kv_copy) { e->s.blocks[i], e->host[i] };
	}
	ret = start_move(kv, e, T_HOST, c, n, fence);
	if (ret) {
		for (i = 0; i < e->s.nr_blocks; i++) {
			uint32_t j;

			for (j = 0; j < need; j++)
				if (e->host[i] == fresh[j]) {
					kv_pool_put(hp, fresh[j]);
					e->host[i] = KV_NO_BLOCK;
				}
		}
		goto out;
	}
	kv->st.swaps_out++;
	kv->st.blocks_out += n;
	if (!e->fence && !e->ticket)
		complete_out(kv, e, 0);
out:
	free(c);
	free(fresh);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_swap_in(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence)
{
	struct kv_pool *dp;
	struct kv_entry *e;
	struct kv_copy *c = NULL;
	uint32_t *fresh = NULL, need = 0, n = 0, k = 0, i;
	int ret;

	if (!kv)
		return -EINVAL;
	if (fence)
		*fence = NULL;
	pthread_mutex_lock(&kv->lock);
	dp = &kv->tier[T_DEV].pool;
	ret = entry_at(kv, seq, ACCEL_KV_HOST, &e);
	if (ret)
		goto out;
	c = calloc(e->s.nr_blocks + 1, sizeof(*c));
	fresh = calloc(e->s.nr_blocks + 1, sizeof(*fresh));
	if (!c || !fresh) {
		ret = -ENOMEM;
		goto out;
	}
	/* Full blocks still cached on the device under their hash come back for free. */
	for (i = 0; i < e->s.nr_blocks; i++) {
		uint32_t b = (uint64_t)(i + 1) * kv->cfg.block_tokens <= e->s.nr_tokens ?
			     kv_pool_lookup(dp, &e->s.keys[i]) : KV_NO_BLOCK;

		if (b != KV_NO_BLOCK) {
			kv_pool_get(dp, b);
			e->s.blocks[i] = b;
		} else {
			need++;
		}
	}
	ret = kv_pool_alloc(dp, need, fresh);
	if (ret) {
		for (i = 0; i < e->s.nr_blocks; i++)
			if (e->s.blocks[i] != KV_NO_BLOCK) {
				kv_pool_put(dp, e->s.blocks[i]);
				e->s.blocks[i] = KV_NO_BLOCK;
			}
		goto out;
	}
	for (i = 0; i < e->s.nr_blocks; i++) {
		if (e->s.blocks[i] != KV_NO_BLOCK) {
			kv->st.blocks_reused++;
			continue;
		}
		e->s.blocks[i] = fresh[k++];
		c[n++] = (struct kv_copy) { e->host[i], e->s.blocks[i] };
	}
	ret = gpu_map_blocks(kv, e);
	if (!ret)
		ret = start_move(kv, e, T_DEV, c, n, fence);
	if (ret) {
		complete_in(kv, e, ret);
		goto out;
	}
	kv->st.swaps_in++;
	kv->st.blocks_in += n;
	if (!e->fence && !e->ticket)
		complete_in(kv, e, 0);
out:
	free(c);
	free(fresh);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

static int finish_move(struct accel_kv *kv, struct kv_entry *e, int64_t timeout_ns)
{
	int status;

	if (e->ticket) {
		status = accel_cuda_tier_wait(kv->gpu, e->ticket, timeout_ns);
		if (status == -ETIMEDOUT)
			return -EAGAIN;
	} else {
		status = timeout_ns ? accel_fence_wait(e->fence, timeout_ns) :
				      accel_fence_status(e->fence);
		if (status == -ETIME || (!timeout_ns && status == 0))
			return -EAGAIN;
	}
	if (status == 1)
		status = 0;
	if (status)
		accel_log(ACCEL_LOG_ERR, "kv: swap of a sequence failed: %s", strerror(-status));
	if (e->target == ACCEL_KV_HOST)
		complete_out(kv, e, status);
	else
		complete_in(kv, e, status);
	accel_fence_destroy(e->fence);
	e->fence = NULL;
	e->ticket = 0;
	return status;
}

ACCEL_EXPORT int accel_kv_progress(struct accel_kv *kv, int64_t timeout_ns)
{
	uint32_t i;
	int left = 0;

	if (!kv || timeout_ns < -1)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	for (i = 0; i < kv->nr_e; i++) {
		struct kv_entry *e = &kv->e[i];

		if (e->live && e->place == ACCEL_KV_MOVING &&
		    finish_move(kv, e, timeout_ns) == -EAGAIN)
			left++;
	}
	pthread_mutex_unlock(&kv->lock);
	return left;
}

ACCEL_EXPORT void *accel_kv_block_addr(struct accel_kv *kv, enum accel_kv_place tier,
				       uint32_t block)
{
	int t = tier == ACCEL_KV_DEVICE ? T_DEV : tier == ACCEL_KV_HOST ? T_HOST : -1;

	if (!kv || t < 0 || block >= kv->tier[t].pool.nr_blocks) {
		errno = EINVAL;
		return NULL;
	}
	/* cuda backend: the device tier's blocks are device pointers (CUdeviceptr). */
	if (t == T_DEV && kv->gpu)
		return (void *)(uintptr_t)gpu_addr(kv, T_DEV, block);
	return kv->tier[t].base + (size_t)block * kv->cfg.block_bytes;
}

ACCEL_EXPORT int accel_kv_seq_window(struct accel_kv *kv, uint32_t seq, void **addr, size_t *len)
{
	struct accel_bind_op *ops = NULL;
	struct kv_entry *e;
	uint32_t i;
	int ret, t;

	if (!kv || !addr)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	ret = !e ? -ENOENT : e->place == ACCEL_KV_MOVING ? -EBUSY : !e->s.nr_blocks ? -ENODATA : 0;
	if (ret)
		goto out;
	t = e->place == ACCEL_KV_DEVICE ? T_DEV : T_HOST;
	drop_window(kv, e);
	if (t == T_DEV && kv->gpu) {
		/*
		 * A CUDA window maps whole chunks: blocks of one chunk each
		 * (block_bytes = 2 MiB) map again in sequence order.
		 */
		if (kv->cfg.block_bytes != kv->chunk) {
			ret = -EOPNOTSUPP;
			goto out;
		}
		ret = accel_cuda_tier_window(kv->gpu, e->s.blocks, e->s.nr_blocks, &e->gwin);
		if (!ret) {
			e->gwin_n = e->s.nr_blocks;
			*addr = (void *)(uintptr_t)e->gwin;
			if (len)
				*len = (size_t)e->s.nr_blocks * kv->chunk;
		}
		goto out;
	}
	e->win = accel_space_create(kv->dev, e->s.nr_blocks, kv->cfg.block_bytes);
	ops = calloc(e->s.nr_blocks, sizeof(*ops));
	if (!e->win || !ops) {
		ret = -ENOMEM;
		goto out_drop;
	}
	for (i = 0; i < e->s.nr_blocks; i++)
		ops[i] = (struct accel_bind_op) {
			.kind = ACCEL_BIND, .slot = i, .region = kv->tier[t].region,
			.block = t == T_DEV ? e->s.blocks[i] : e->host[i],
		};
	ret = accel_space_bind(e->win, ops, e->s.nr_blocks, NULL);
	if (!ret) {
		*addr = accel_space_map(e->win, len);
		ret = *addr ? 0 : -errno;
	}
out_drop:
	if (ret)
		drop_window(kv, e);
out:
	free(ops);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_tier_export(struct accel_kv *kv, enum accel_kv_place tier, int *fd)
{
	int t = tier == ACCEL_KV_DEVICE ? T_DEV : tier == ACCEL_KV_HOST ? T_HOST : -1;

	if (!kv || t < 0 || !fd)
		return -EINVAL;
	if (t == T_DEV && kv->gpu) {
		uint64_t size = accel_cuda_tier_size(kv->gpu), c;
		int ret = 0;

		/* The whole tier, mapped, as one dma-buf. */
		pthread_mutex_lock(&kv->lock);
		for (c = 0; !ret && c < size / kv->chunk; c++) {
			if (kv->mapped[c])
				continue;
			ret = accel_cuda_tier_map(kv->gpu, c * kv->chunk, kv->chunk);
			if (!ret)
				kv->mapped[c] = 1;
		}
		pthread_mutex_unlock(&kv->lock);
		return ret ? ret : accel_cuda_tier_export_dmabuf(kv->gpu, 0, size, fd);
	}
	return accel_region_export(kv->tier[t].region, fd);
}

ACCEL_EXPORT int accel_kv_seq_host_blocks(struct accel_kv *kv, uint32_t seq, uint32_t *blocks,
					  uint32_t max)
{
	struct kv_entry *e;
	int ret;

	if (!kv || (max && !blocks))
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, ACCEL_KV_HOST, &e);
	if (!ret)
		ret = (int)e->s.nr_blocks;
	if (ret > 0)
		memcpy(blocks, e->host, (ret < (int)max ? (uint32_t)ret : max) * sizeof(*blocks));
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_stats(struct accel_kv *kv, struct accel_kv_stats *stats)
{
	if (!kv || !stats)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	*stats = kv->st;
	stats->device_free = kv->tier[T_DEV].pool.nr_free + kv->tier[T_DEV].pool.nr_cached;
	stats->host_free = kv->tier[T_HOST].pool.nr_free + kv->tier[T_HOST].pool.nr_cached;
	pthread_mutex_unlock(&kv->lock);
	return 0;
}

ACCEL_EXPORT void accel_kv_destroy(struct accel_kv *kv)
{
	uint32_t i;

	if (!kv)
		return;
	for (i = 0; i < kv->nr_e; i++) {
		struct kv_entry *e = &kv->e[i];

		if (!e->live)
			continue;
		if (e->place == ACCEL_KV_MOVING)
			finish_move(kv, e, -1);
		entry_fini(kv, e);
	}
	free(kv->e);
	if (kv->gpu && kv->tier[T_HOST].base)
		accel_cuda_tier_host_unregister(kv->gpu, kv->tier[T_HOST].base);
	accel_cuda_tier_destroy(kv->gpu);
	free(kv->mapped);
	tier_fini(&kv->tier[T_DEV]);
	tier_fini(&kv->tier[T_HOST]);
	pthread_mutex_destroy(&kv->lock);
	free(kv);
}
