// SPDX-License-Identifier: MIT
/*
 * libaccel - device tiers (CUDA device memory) and the CUDA part of the
 * mover's jobs (accel_mover.h; cuda/cuda_tier.h does the driver work),
 * shared with the KV cache's cuda backend (its device tier is one of
 * these, its copies go down accel_mover_cuda_queue()).
 *
 * Every device tier owns an accel_cuda_tier: an allocated tier's holds its
 * memory (reserved and mapped whole at creation; or, the KV cache's,
 * accel_tier_create_cuda_lazy(), every chunk created at creation and
 * each mapped when a block in it is first prepared), a registered tier's
 * is stream-only (no memory: the engine's is addressed through the
 * layout).
 * A host tier used in a CUDA job is registered for DMA once, portable (for
 * every GPU), through a stream-only tier of its own made on the first GPU
 * it meets, and unregistered when it is destroyed.
 *
 * A CUDA job's runs are grouped by the stream that runs them: a run that
 * touches one GPU goes on its device tier's stream (the destination's,
 * between two device tiers of one GPU; host-host runs of a CUDA job on
 * the job's first device tier's), a run between GPUs through
 * accel_cuda_tier_copy_peer() (on the destination's stream straight
 * through the peer path where the source granted it, else staged through
 * the destination's host bounce buffer, which waits in the submitting
 * thread, one such copy into a tier at a time: peer_lock). Each group is one
 * accel_cuda_tier_copy() (pieces coalesced there), after the job's
 * wait_event on every stream it uses. The record_event goes on the
 * stream of the job's first device tier, after waits for the last ticket
 * of every other stream the job used.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../cuda/cuda_tier.h"
#include "mover.h"

static int cuda_opts_check(const struct accel_tier_cuda_opts *o, bool registered)
{
	uint64_t bb, piece, stride, span, last;
	uint32_t layers, layout, n, i;
	int ret = accel_opts_valid(o, sizeof(*o));

	if (ret)
		return ret;
	if (!o)
		return -EINVAL;
	bb = ACCEL_OPTS_GET(o, block_bytes, 0);
	n = ACCEL_OPTS_GET(o, blocks, 0);
	layers = ACCEL_OPTS_GET(o, layers, 0);
	layers = layers ? layers : 1;
	layout = ACCEL_OPTS_GET(o, layout, 0);
	stride = ACCEL_OPTS_GET(o, block_stride, 0);
	/* Device memory has no space to rebind. */
	if (ACCEL_OPTS_GET(o, flags, 0) == ACCEL_TIER_WINDOW)
		return -EOPNOTSUPP;
	if (ACCEL_OPTS_GET(o, device, -1) < 0 || !bb || bb > ACCEL_TIER_BLOCK_MAX || !n ||
	    bb % layers || ACCEL_OPTS_GET(o, flags, 0))
		return -EINVAL;
	if (!registered) {
		if (layout || stride || ACCEL_OPTS_GET(o, base, 0) ||
		    ACCEL_OPTS_GET(o, layer_base, NULL) || ACCEL_OPTS_GET(o, nr_layer_base, 0))
			return -EINVAL;
		if (bb * n / n != bb)
			return -EOVERFLOW;
		return 0;
	}
	piece = layout == ACCEL_TIER_LAYOUT_LAYERS ? bb / layers : bb;
	if (layout == ACCEL_TIER_LAYOUT_BLOCKS) {
		if (!ACCEL_OPTS_GET(o, base, 0) || ACCEL_OPTS_GET(o, layer_base, NULL) ||
		    ACCEL_OPTS_GET(o, nr_layer_base, 0))
			return -EINVAL;
	} else if (layout == ACCEL_TIER_LAYOUT_LAYERS) {
		if (ACCEL_OPTS_GET(o, base, 0) || !ACCEL_OPTS_GET(o, layer_base, NULL) ||
		    ACCEL_OPTS_GET(o, nr_layer_base, 0) != layers)
			return -EINVAL;
		for (i = 0; i < layers; i++)
			if (!o->layer_base[i])
				return -EINVAL;
	} else {
		return -EINVAL;
	}
	stride = stride ? stride : piece;
	if (stride < piece)
		return -EINVAL;
	/* The last block's end: (n - 1) * stride + piece past each base, no wrap. */
	if ((uint64_t)(n - 1) > (UINT64_MAX - piece) / stride)
		return -EOVERFLOW;
	span = (uint64_t)(n - 1) * stride + piece;
	if (layout == ACCEL_TIER_LAYOUT_BLOCKS)
		return o->base > UINT64_MAX - span ? -EOVERFLOW : 0;
	for (i = 0; i < layers; i++) {
		last = o->layer_base[i];
		if (last > UINT64_MAX - span)
			return -EOVERFLOW;
	}
	return 0;
}

/* A stream-only (@reserve 0) or allocated tier on @device: 0 or -errno, logged. */
static int cuda_tier_open(int device, uint64_t reserve, struct accel_cuda_tier **ct)
{
	struct accel_cuda_tier_opts o = {
		.device = device, .reserve = reserve, .stream_only = !reserve,
	};
	char why[160] = "";
	int ret;

	ret = accel_cuda_tier_create(&o, ct, why, sizeof(why));
	if (ret)
		accel_log(ACCEL_LOG_INFO, "device tier on CUDA device %d: %s", device,
			  why[0] ? why : strerror(-ret));
	return ret;
}

ACCEL_EXPORT struct accel_tier *accel_tier_create_cuda(const struct accel_tier_cuda_opts *opts)
{
	struct accel_tier *t;
	uint64_t size;
	int ret;

	ret = cuda_opts_check(opts, false);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	t = accel_tier_alloc(ACCEL_TIER_CUDA, opts->block_bytes, opts->blocks,
			     ACCEL_OPTS_GET(opts, layers, 0));
	if (!t)
		return NULL;
	t->cuda_device = opts->device;
	size = opts->block_bytes * opts->blocks;
	ret = cuda_tier_open(opts->device, size, &t->ct);
	if (!ret)
		ret = accel_cuda_tier_map(t->ct, 0, accel_cuda_tier_size(t->ct));
	if (ret) {
		accel_cuda_tier_destroy(t->ct);
		accel_tier_free(t);
		errno = -ret;
		return NULL;
	}
	t->dbase = accel_cuda_tier_base(t->ct);
	return t;
}

int accel_tier_create_cuda_lazy(int device, uint64_t block_bytes, uint32_t blocks,
				struct accel_tier **out, char *why, size_t len)
{
	struct accel_cuda_tier_opts o = { .device = device, .reserve = block_bytes * blocks };
	struct accel_tier *t;
	uint64_t chunks;
	int ret;

	t = accel_tier_alloc(ACCEL_TIER_CUDA, block_bytes, blocks, 1);
	if (!t)
		return -ENOMEM;
	t->cuda_device = device;
	ret = accel_cuda_tier_create(&o, &t->ct, why, len);
	if (ret) {
		accel_tier_free(t);
		return ret;
	}
	t->chunk_bytes = accel_cuda_tier_chunk_size(t->ct);
	chunks = accel_cuda_tier_size(t->ct) / t->chunk_bytes;
	t->mapped = calloc(chunks, 1);
	ret = !t->mapped ? -ENOMEM : accel_cuda_tier_prealloc(t->ct, (unsigned int)chunks);
	if (ret) {
		snprintf(why, len, "creating %llu bytes of GPU memory: %s",
			 (unsigned long long)accel_cuda_tier_size(t->ct), strerror(-ret));
		accel_cuda_tier_destroy(t->ct);
		accel_tier_free(t);
		return ret;
	}
	t->dbase = accel_cuda_tier_base(t->ct);
	*out = t;
	return 0;
}

/* Map chunks [first, last] of lazily mapped tier @t (its lock held). */
static int map_chunks(struct accel_tier *t, uint64_t first, uint64_t last)
{
	uint64_t c;
	int ret;

	for (c = first; c <= last; c++) {
		if (t->mapped[c])
			continue;
		ret = accel_cuda_tier_map(t->ct, c * t->chunk_bytes, t->chunk_bytes);
		if (ret)
			return ret;
		t->mapped[c] = 1;
	}
	return 0;
}

int accel_tier_cuda_prepare(struct accel_tier *t, const uint32_t *blocks, uint32_t n)
{
	uint32_t i;
	int ret = 0;

	if (!t->mapped)
		return 0;
	pthread_mutex_lock(&t->lock);
	for (i = 0; !ret && i < n; i++) {
		uint64_t off = (uint64_t)blocks[i] * t->block_bytes;

		if (blocks[i] == UINT32_MAX)
			continue;
		ret = map_chunks(t, off / t->chunk_bytes,
				 (off + t->block_bytes - 1) / t->chunk_bytes);
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

ACCEL_EXPORT struct accel_tier *accel_tier_register_cuda(const struct accel_tier_cuda_opts *opts)
{
	struct accel_tier *t;
	uint32_t i;
	int ret;

	ret = cuda_opts_check(opts, true);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	t = accel_tier_alloc(ACCEL_TIER_CUDA_REGISTERED, opts->block_bytes, opts->blocks,
			     ACCEL_OPTS_GET(opts, layers, 0));
	if (!t)
		return NULL;
	t->cuda_device = opts->device;
	t->layout = opts->layout;
	if (t->layout == ACCEL_TIER_LAYOUT_LAYERS) {
		t->stride = opts->block_stride ? opts->block_stride : t->block_bytes / t->layers;
		t->layer_base = calloc(t->layers, sizeof(*t->layer_base));
		if (!t->layer_base) {
			accel_tier_free(t);
			errno = ENOMEM;
			return NULL;
		}
		for (i = 0; i < t->layers; i++)
			t->layer_base[i] = opts->layer_base[i];
	} else {
		t->stride = opts->block_stride ? opts->block_stride : t->block_bytes;
		t->dbase = opts->base;
	}
	ret = cuda_tier_open(opts->device, 0, &t->ct);
	if (ret) {
		accel_tier_free(t);
		errno = -ret;
		return NULL;
	}
	return t;
}

void accel_tier_cuda_release(struct accel_tier *t)
{
	if (!t->ct)
		return;
	if (!accel_tier_is_cuda(t))
		accel_cuda_tier_host_unregister(t->ct, t->base);
	/* Waits for its stream; an allocated tier's memory goes with it, never an engine's. */
	accel_cuda_tier_destroy(t->ct);
	t->ct = NULL;
}

int accel_tier_cuda_export(struct accel_tier *t, int *fd)
{
	uint64_t size;
	int ret = 0;

	if (t->kind != ACCEL_TIER_CUDA)
		return -EOPNOTSUPP;	/* the engine's memory: its own to export */
	size = accel_cuda_tier_size(t->ct);
	if (t->mapped) {
		/* The whole tier, mapped, as one dma-buf. */
		pthread_mutex_lock(&t->lock);
		ret = map_chunks(t, 0, size / t->chunk_bytes - 1);
		pthread_mutex_unlock(&t->lock);
	}
	return ret ? ret : accel_cuda_tier_export_dmabuf(t->ct, 0, size, fd);
}

int accel_tier_host_dma(struct accel_tier *t, int device)
{
	struct accel_cuda_tier *ct;
	int ret = 0;

	/* A window tier's mapping is a space's (VM_PFNMAP): no pinning, so no registration. */
	if (t->space)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&t->lock);
	if (!t->ct) {
		ret = cuda_tier_open(device, 0, &ct);
		if (!ret) {
			ret = accel_cuda_tier_host_register(ct, t->base, t->map_size);
			if (ret)
				accel_cuda_tier_destroy(ct);
			else
				t->ct = ct;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void accel_tier_grant_peer(struct accel_tier *t, int peer)
{
	if (t->kind != ACCEL_TIER_CUDA || peer < 0 || peer >= 32)
		return;
	pthread_mutex_lock(&t->lock);
	if (!(t->peers_tried & 1u << peer)) {
		t->peers_tried |= 1u << peer;
		/* -EOPNOTSUPP (no peer path): its copies to @peer are staged. */
		accel_cuda_tier_grant_peer(t->ct, peer);
	}
	pthread_mutex_unlock(&t->lock);
}

/* The copies of one stream (src NULL), or of one GPU-to-GPU pair. */
struct group {
	struct accel_cuda_tier *ct, *src;
	struct accel_tier *dst;		/* GPU to GPU: the destination tier */
	struct accel_piece *p;
	size_t n, cap;
};

static struct group *group_of(struct group *g, uint32_t *nr, struct accel_cuda_tier *ct,
			      struct accel_cuda_tier *src)
{
	uint32_t i;

	for (i = 0; i < *nr; i++)
		if (g[i].ct == ct && g[i].src == src)
			return &g[i];
	g[*nr] = (struct group){ .ct = ct, .src = src };
	return &g[(*nr)++];
}

/* Note @ct's latest @ticket among the job's waits. */
static void note_ticket(struct accel_cuda_wait *w, uint32_t *nr, struct accel_cuda_tier *ct,
			uint64_t ticket)
{
	uint32_t i;

	for (i = 0; i < *nr; i++) {
		if (w[i].ct == ct) {
			w[i].ticket = ticket;
			return;
		}
	}
	w[(*nr)++] = (struct accel_cuda_wait){ .ct = ct, .ticket = ticket };
}

int accel_mover_cuda_queue(const struct accel_tier *const tiers[], const struct accel_bm_run *runs,
			   uint32_t n, const struct accel_piece_sel *sel, void *wait_event,
			   void *record_event, struct accel_cuda_wait **waits, uint32_t *nr_waits,
			   int *status)
{
	struct accel_cuda_tier *lead = NULL, **streams = NULL;
	struct accel_cuda_wait *w = NULL;
	struct group *g = NULL;
	uint32_t i, k, nr_g = 0, nr_s = 0, nr_w = 0;
	int lead_dev = -1, ret = 0, st = 0;

	*status = 0;
	/* The job's first device tier (runs[0].src, runs[0].dst, runs[1].src...) leads. */
	for (i = 0; i < n && !lead; i++) {
		const struct accel_tier *s = tiers[runs[i].src_tier], *d = tiers[runs[i].dst_tier];
		const struct accel_tier *t = accel_tier_is_cuda(s) ? s :
					     accel_tier_is_cuda(d) ? d : NULL;

		if (t) {
			lead = t->ct;
			lead_dev = t->cuda_device;
		}
	}
	if (!lead)
		return -EINVAL;
	/* Room: a group per run at most, a stream per tier end at most. */
	g = calloc(n, sizeof(*g));
	streams = calloc(2 * (size_t)n + 1, sizeof(*streams));
	w = calloc(2 * (size_t)n + 1, sizeof(*w));
	if (!g || !streams || !w) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct accel_tier *s = (struct accel_tier *)tiers[runs[i].src_tier];
		struct accel_tier *d = (struct accel_tier *)tiers[runs[i].dst_tier];
		bool sc = accel_tier_is_cuda(s), dc = accel_tier_is_cuda(d);
		struct accel_cuda_tier *ct, *src = NULL;
		struct group *gr;
		uint64_t max;

		/* Host memory registered for DMA (portable: every GPU). */
		if (!sc)
			ret = accel_tier_host_dma(s, dc ? d->cuda_device : lead_dev);
		if (!ret && !dc)
			ret = accel_tier_host_dma(d, sc ? s->cuda_device : lead_dev);
		if (ret)
			goto out;
		if (sc && dc && s->cuda_device != d->cuda_device) {
			accel_tier_grant_peer(s, d->cuda_device);
			ct = d->ct;
			src = s->ct;
		} else {
			ct = dc ? d->ct : sc ? s->ct : lead;
		}
		gr = group_of(g, &nr_g, ct, src);
		gr->dst = d;
		max = accel_run_pieces_max(s, d, &runs[i], sel);
		if (gr->n + max > gr->cap) {
			size_t cap = gr->n + max + gr->cap;
			struct accel_piece *p;

			if (cap > UINT32_MAX || cap > SIZE_MAX / sizeof(*p)) {
				ret = -ENOMEM;
				goto out;
			}
			p = realloc(gr->p, cap * sizeof(*p));
			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			gr->p = p;
			gr->cap = cap;
		}
		gr->n = accel_run_pieces(s, d, &runs[i], sel, gr->p, gr->n, SIZE_MAX);
	}
	/* Every stream the job's copies run on (staged peer copies: both). */
	for (i = 0; i < nr_g; i++) {
		struct accel_cuda_tier *both[2] = { g[i].ct, g[i].src };

		for (k = 0; k < 2; k++) {
			uint32_t j;

			if (!both[k])
				continue;
			for (j = 0; j < nr_s && streams[j] != both[k]; j++)
				;
			if (j == nr_s)
				streams[nr_s++] = both[k];
		}
	}
	/* Nothing queued yet: a failure here fails the submission. */
	for (i = 0; wait_event && i < nr_s; i++) {
		ret = accel_cuda_tier_wait_event(streams[i], (cu_event)wait_event);
		if (ret)
			goto out;
	}
	for (i = 0; i < nr_g && !st; i++) {
		struct accel_cuda_copy *c = calloc(g[i].n, sizeof(*c));
		uint64_t tk = 0;
		size_t j;

		if (!c) {
			st = -ENOMEM;
			break;
		}
		for (j = 0; j < g[i].n; j++)
			c[j] = (struct accel_cuda_copy){
				.dst = g[i].p[j].dst, .src = g[i].p[j].src, .len = g[i].p[j].len,
			};
		if (g[i].src) {
			pthread_mutex_lock(&g[i].dst->peer_lock);
			st = accel_cuda_tier_copy_peer(g[i].ct, g[i].src, c, (unsigned int)g[i].n,
						       &tk);
			pthread_mutex_unlock(&g[i].dst->peer_lock);
		} else {
			st = accel_cuda_tier_copy(g[i].ct, c, (unsigned int)g[i].n, &tk);
		}
		free(c);
		if (!st)
			note_ticket(w, &nr_w, g[i].ct, tk);
	}
	if (!st && record_event) {
		for (i = 0; !st && i < nr_w; i++)
			st = accel_cuda_tier_wait_ticket(lead, w[i].ct, w[i].ticket);
		if (!st)
			st = accel_cuda_tier_record(lead, (cu_event)record_event);
	}
	/* Nothing queued at all (the first copy call failed, and left nothing): fail here. */
	if (st && !nr_w) {
		ret = st;
		st = 0;
	}
out:
	for (i = 0; g && i < nr_g; i++)
		free(g[i].p);
	free(g);
	free(streams);
	if (ret) {
		free(w);
		return ret;
	}
	*waits = w;
	*nr_waits = nr_w;
	*status = st;
	return 0;
}
