// SPDX-License-Identifier: MIT
/*
 * libaccel - expert copies shared between instances on a node: a store's
 * copies handed out (accel_moe_store_export()) and a new store's initial
 * copies taken from them (accel_moe_store_opts.from), Documentation/moe.rst
 * "Scaling from peers".
 */
#include <stdlib.h>
#include <unistd.h>

#include "store_int.h"

/**
 * struct moe_share_ctx - the entries of opts->from while a store is made.
 * @e: the caller's entries (@n), valid during accel_moe_store_create().
 */
struct moe_share_ctx {
	const struct accel_moe_store_share *e;
	uint32_t n;
	struct moe_share_index ix;
};

int moe_share_begin(struct accel_moe_store *s, const struct accel_moe_store_opts *o,
		    struct moe_share_ctx **ctx)
{
	const struct accel_moe_store_share *e = ACCEL_OPTS_GET(o, from, NULL);
	uint32_t n = ACCEL_OPTS_GET(o, nr_from, 0), i;
	uint32_t *layer = NULL, *expert = NULL;
	int32_t *node = NULL;
	struct moe_share_ctx *c;
	int ret;

	*ctx = NULL;
	if (!e && !n)
		return 0;
	if (!e || !n)
		return -EINVAL;
	if (s->be != &moe_host_backend)
		return -EOPNOTSUPP;	/* kvaccel regions only (see accel_moe_store_export()) */
	c = calloc(1, sizeof(*c));
	layer = calloc(n, sizeof(*layer));
	expert = calloc(n, sizeof(*expert));
	node = calloc(n, sizeof(*node));
	ret = c && layer && expert && node ? 0 : -ENOMEM;
	for (i = 0; !ret && i < n; i++) {
		layer[i] = e[i].layer;
		expert[i] = e[i].expert;
		node[i] = e[i].node;
		if (e[i].fd < 0)
			ret = -EINVAL;
	}
	if (!ret)
		ret = moe_share_index_build(&c->ix, layer, expert, node, n, s->layers, s->experts);
	free(layer);
	free(expert);
	free(node);
	if (ret) {
		free(c);
		return ret;
	}
	c->e = e;
	c->n = n;
	*ctx = c;
	return 0;
}

/* Import entry @i: a region of this device holding one expert in the store's blocks. */
static struct accel_region *import_entry(struct accel_moe_store *s, struct moe_share_ctx *ctx,
					 int i)
{
	struct accel_region *r = accel_region_import(s->dev, ctx->e[i].fd);

	if (!r)
		return NULL;
	if (accel_region_is_foreign(r) || accel_region_size(r) != s->stride ||
	    accel_region_block_size(r) != s->bs) {
		accel_log(ACCEL_LOG_DEBUG, "moe store: shared copy %d (layer %u expert %u) is not "
			  "an expert region of this device", i, ctx->e[i].layer, ctx->e[i].expert);
		accel_region_destroy(r);
		errno = EINVAL;
		return NULL;
	}
	return r;
}

static bool on_node(const struct accel_moe_store *s, uint32_t device, struct accel_region *r)
{
	return s->node[device] == ACCEL_NODE_ANY || accel_region_node(r) == s->node[device];
}

/* A copy around region @r taken from another instance (counted live and shared). */
static struct moe_copy *adopt(struct accel_moe_store *s, struct moe_layer *l, uint32_t device,
			      uint32_t expert, struct accel_region *r)
{
	struct moe_copy *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	*c = (struct moe_copy) { .region = r, .device = device, .expert = expert,
				 .started = true, .ready = true, .shared = true,
				 .next = l->copies };
	l->copies = c;
	if (++s->st.live_copies[device] > s->st.peak_copies[device])
		s->st.peak_copies[device] = s->st.live_copies[device];
	s->st.shared_copies++;
	s->st.adopted++;
	return c;
}

/* Fill copy @c from region @src on the copy engine and wait for it. */
static int fetch(struct accel_moe_store *s, struct moe_copy *c, struct accel_region *src)
{
	struct accel_fence *f = moe_submit_copy(s, src, c->region);
	int ret;

	if (!f)
		return -errno;
	ret = accel_fence_wait(f, -1);
	accel_fence_destroy(f);
	if (ret)
		return ret;
	c->started = c->ready = true;
	s->st.fetched++;
	return 0;
}

struct moe_copy *moe_share_copy(struct accel_moe_store *s, struct moe_share_ctx *ctx,
				struct moe_layer *l, uint32_t li, uint32_t device, uint32_t expert)
{
	struct accel_region *r;
	struct moe_copy *c;
	int pick, src, ret;

	pick = moe_share_pick(&ctx->ix, li, expert, s->node[device], &src);
	if (src < 0) {
		accel_log(ACCEL_LOG_DEBUG, "moe store: no shared copy of layer %u expert %u", li,
			  expert);
		errno = ENOENT;
		return NULL;
	}
	r = import_entry(s, ctx, pick >= 0 ? pick : src);
	if (!r)
		return NULL;
	if (pick >= 0 && on_node(s, device, r)) {
		c = adopt(s, l, device, expert, r);
		if (!c) {
			accel_region_destroy(r);
			errno = ENOMEM;
		}
		return c;
	}
	/* Another node's (or its node said wrongly): a copy of our own on the device's node. */
	c = moe_copy_new(s, l, device, expert);
	ret = c ? fetch(s, c, r) : -errno;
	accel_region_destroy(r);
	if (ret) {
		if (c)
			moe_copy_free(s, l, c);
		errno = -ret;
		return NULL;
	}
	return c;
}

void moe_share_end(struct moe_share_ctx *ctx)
{
	if (!ctx)
		return;
	moe_share_index_fini(&ctx->ix);
	free(ctx);
}

ACCEL_EXPORT int accel_moe_store_export(struct accel_moe_store *s,
					struct accel_moe_store_share *out, uint32_t max)
{
	uint32_t li, n = 0, i;
	struct moe_copy *c;
	int ret = 0;

	if (!s || (!out && max))
		return -EINVAL;
	if (s->be != &moe_host_backend)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&s->lock);
	for (li = 0; li < s->layers && !ret; li++) {
		for (c = s->layer[li].copies; c && !ret; c = c->next) {
			int fd;

			if (!c->ready)
				continue;	/* still being made: its bytes are not in */
			if (n < max) {
				ret = accel_region_export(c->region, &fd);
				if (ret)
					break;
				out[n] = (struct accel_moe_store_share) {
					.layer = li, .expert = c->expert,
					.node = accel_region_node(c->region), .fd = fd };
			}
			if (++n == INT32_MAX) {
				ret = -EOVERFLOW;
				break;
			}
		}
	}
	if (ret) {
		for (i = 0; i < n && i < max; i++)
			close(out[i].fd);
		pthread_mutex_unlock(&s->lock);
		return ret;
	}
	/* Only now shared: a failed call leaves every copy as it was. */
	for (li = 0, i = 0; li < s->layers && i < max; li++) {
		for (c = s->layer[li].copies; c && i < max; c = c->next) {
			if (!c->ready)
				continue;
			if (!c->shared)
				s->st.shared_copies++;
			c->shared = true;
			i++;
		}
	}
	s->st.exported += i;
	moe_publish(s);
	pthread_mutex_unlock(&s->lock);
	return (int)n;
}
