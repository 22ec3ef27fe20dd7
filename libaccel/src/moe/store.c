// SPDX-License-Identifier: MIT
/*
 * libaccel - the expert store: copies of experts in regions, a window per
 * layer, versioned tables, the steps that read them (accel_moe.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_int.h"

struct moe_copy *moe_copy_find(struct moe_layer *l, uint32_t device, uint32_t expert)
{
	struct moe_copy *c;

	for (c = l->copies; c; c = c->next)
		if (c->device == device && c->expert == expert)
			return c;
	return NULL;
}

static void unlink_copy(struct moe_layer *l, struct moe_copy *c)
{
	struct moe_copy **pp;

	for (pp = &l->copies; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
}

struct moe_copy *moe_copy_new(struct accel_moe_store *s, struct moe_layer *l, uint32_t device,
			      uint32_t expert)
{
	struct moe_copy *c = s->spare[device];
	uint32_t *live = &s->st.live_copies[device];
	int ret;

	if (c) {
		/* A spare: its region is live already, its bytes all overwritten by the copy. */
		s->spare[device] = c->next;
		s->nr_spare[device]--;
		*c = (struct moe_copy) { .region = c->region, .cell = c->cell, .device = device,
					 .expert = expert, .next = l->copies };
		l->copies = c;
		return c;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->device = device;
	c->expert = expert;
	ret = s->be->copy_alloc(s, c);
	if (ret) {
		free(c);
		errno = -ret;
		return NULL;
	}
	c->next = l->copies;
	l->copies = c;
	if (++*live > s->st.peak_copies[device])
		s->st.peak_copies[device] = *live;
	return c;
}

void moe_copy_free(struct accel_moe_store *s, struct moe_layer *l, struct moe_copy *c)
{
	unlink_copy(l, c);
	if (c->busy)
		s->inflight[c->device]--;
	s->be->copy_release(s, c);
	s->st.live_copies[c->device]--;
	if (c->shared)
		s->st.shared_copies--;
	free(c);
}

void moe_copies_free(struct accel_moe_store *s, struct moe_layer *l, bool unbound_only)
{
	struct moe_copy *c, *next;
	int pass;

	/* Those with a copy in flight first: such a copy may be reading one of the others. */
	for (pass = 0; pass < 2; pass++) {
		for (c = l->copies; c; c = next) {
			next = c->next;
			if ((unbound_only && c->refs) || (!pass && !c->busy))
				continue;
			moe_copy_free(s, l, c);
		}
	}
}

void moe_copy_retire(struct accel_moe_store *s, struct moe_layer *l, struct moe_copy *c)
{
	/* A shared region is never overwritten: another instance reads it. */
	if (!s->job_on || c->busy || c->shared || s->nr_spare[c->device] >= s->k) {
		moe_copy_free(s, l, c);
		return;
	}
	unlink_copy(l, c);
	c->next = s->spare[c->device];
	s->spare[c->device] = c;
	s->nr_spare[c->device]++;
}

void moe_spares_free(struct accel_moe_store *s)
{
	uint32_t d;

	for (d = 0; d < s->devices; d++)
		while (s->spare[d]) {
			struct moe_copy *c = s->spare[d];

			s->spare[d] = c->next;
			s->be->copy_release(s, c);
			s->st.live_copies[d]--;
			free(c);
		}
	memset(s->nr_spare, 0, sizeof(s->nr_spare));
}

void moe_table_fill(const struct accel_moe_store *s, struct moe_table *t, const int32_t *p,
		    const uint32_t *win, uint64_t since)
{
	uint32_t e, i;

	t->since = since;
	memcpy(t->phy2log, p, s->num_slots * sizeof(*p));
	memcpy(t->win, win, s->num_slots * sizeof(*win));
	memset(t->rep_first, 0, (s->experts + 1) * sizeof(*t->rep_first));
	for (i = 0; i < s->num_slots; i++)
		t->rep_first[p[i] + 1]++;
	for (e = 0; e < s->experts; e++)
		t->rep_first[e + 1] += t->rep_first[e];
	/* Ascending slots per expert: fill in slot order behind a moving cursor. */
	for (e = 0; e < s->experts; e++) {
		uint32_t at = t->rep_first[e];

		for (i = 0; i < s->num_slots; i++)
			if ((uint32_t)p[i] == e)
				t->rep[at++] = i;
	}
}

static int table_alloc(const struct accel_moe_store *s, struct moe_table *t)
{
	t->phy2log = calloc(s->num_slots, sizeof(*t->phy2log));
	t->win = calloc(s->num_slots, sizeof(*t->win));
	t->rep_first = calloc(s->experts + 1, sizeof(*t->rep_first));
	t->rep = calloc(s->num_slots, sizeof(*t->rep));
	return t->phy2log && t->win && t->rep_first && t->rep ? 0 : -ENOMEM;
}

static void table_free(struct moe_table *t)
{
	free(t->phy2log);
	free(t->win);
	free(t->rep_first);
	free(t->rep);
}

/*
 * Set up layer @li in placement @p: copies (new and zero-filled, or from
 * @share), window, its first table.
 */
static int layer_init(struct accel_moe_store *s, uint32_t li, const int32_t *p,
		      struct moe_share_ctx *share)
{
	struct moe_layer *l = &s->layer[li];
	struct moe_bind *ops;
	uint32_t *win, i;
	int ret;

	l->wslot = calloc(s->wslots, sizeof(*l->wslot));
	if (!l->wslot || table_alloc(s, &l->tab[0]) || table_alloc(s, &l->tab[1]))
		return -ENOMEM;
	ret = s->be->window_init(s, l);
	if (ret)
		return ret;
	ops = calloc(s->num_slots, sizeof(*ops));
	win = calloc(s->num_slots, sizeof(*win));
	ret = ops && win ? 0 : -ENOMEM;
	for (i = 0; !ret && i < s->num_slots; i++) {
		uint32_t d = i / s->spd;
		struct moe_copy *c = moe_copy_find(l, d, (uint32_t)p[i]);

		if (!c && share) {
			c = moe_share_copy(s, share, l, li, d, (uint32_t)p[i]);
			if (!c) {
				ret = -errno;
				break;
			}
		} else if (!c) {
			c = moe_copy_new(s, l, d, (uint32_t)p[i]);
			if (!c) {
				ret = -errno;
				break;
			}
			c->started = c->ready = true;
			if (s->from_store)
				ret = s->be->fill_from(s, c, li);
			else if (s->be->clear)
				ret = s->be->clear(s, c);
			if (!ret && s->from_store)
				s->st.fetched++;
		}
		ops[i] = (struct moe_bind) { .w = i, .c = c };
		win[i] = i;
	}
	if (!ret)
		ret = s->be->bind(s, l, ops, s->num_slots);
	if (!ret) {
		for (i = 0; i < s->num_slots; i++) {
			l->wslot[i] = moe_copy_find(l, i / s->spd, (uint32_t)p[i]);
			l->wslot[i]->refs++;
		}
		moe_table_fill(s, &l->tab[0], p, win, 0);
	}
	free(ops);
	free(win);
	return ret;
}

static void layer_fini(struct accel_moe_store *s, struct moe_layer *l)
{
	s->be->window_fini(s, l);	/* also after a window_init() that failed part way */
	moe_copies_free(s, l, false);
	table_free(&l->tab[0]);
	table_free(&l->tab[1]);
	free(l->wslot);
}

/* The placement @p of @count entries fits @s. */
static int placement_ok(const struct accel_moe_store *s, const int32_t *p, size_t count)
{
	uint32_t li;
	int ret;

	if (!p || count != (size_t)s->layers * s->num_slots)
		return -EINVAL;
	for (li = 0; li < s->layers; li++) {
		ret = moe_placement_check(p + (size_t)li * s->num_slots, s->num_slots, s->experts);
		if (ret)
			return ret;
	}
	return 0;
}

static int shape(struct accel_moe_store *s, const struct accel_moe_store_opts *o)
{
	uint32_t i;
	int ret = accel_opts_valid(o, sizeof(*o));

	if (!o || ret)
		return o ? ret : -EINVAL;
	s->layers = ACCEL_OPTS_GET(o, layers, 0);
	s->experts = ACCEL_OPTS_GET(o, experts, 0);
	s->devices = ACCEL_OPTS_GET(o, devices, 0);
	s->spd = ACCEL_OPTS_GET(o, slots_per_device, 0);
	s->expert_bytes = ACCEL_OPTS_GET(o, expert_bytes, 0);
	s->k = ACCEL_OPTS_GET(o, max_inflight, 0);
	if (!s->k)
		s->k = 1;
	s->flags = ACCEL_OPTS_GET(o, flags, 0);
	if (s->flags & ~ACCEL_MOE_STORE_THREAD)
		return -EINVAL;
	if (!s->layers || !s->experts || !s->devices || s->devices > ACCEL_MOE_STORE_MAX_DEVICES ||
	    !s->spd || !s->expert_bytes || s->spd > UINT32_MAX / s->devices / 2)
		return -EINVAL;
	s->num_slots = s->devices * s->spd;
	if (s->num_slots < s->experts)
		return -EINVAL;
	s->wslots = 2 * s->num_slots;
	for (i = 0; i < s->devices; i++) {
		const int *dn = ACCEL_OPTS_GET(o, device_node, NULL);

		s->node[i] = dn ? dn[i] : ACCEL_NODE_ANY;
		if (s->node[i] < ACCEL_NODE_ANY)
			return -EINVAL;
	}
	switch (ACCEL_OPTS_GET(o, backend, ACCEL_MOE_STORE_HOST)) {
	case ACCEL_MOE_STORE_HOST:
		s->be = &moe_host_backend;
		break;
	case ACCEL_MOE_STORE_CUDA:
		s->be = &moe_cuda_backend;
		break;
	default:
		return -EINVAL;
	}
	ret = s->be->init(s, o);
	if (ret)
		s->be = NULL;	/* nothing of it to undo */
	return ret;
}

/* opts->from_store, if any, fits @s: set as s->from_store. */
static int from_store_ok(struct accel_moe_store *s, struct accel_moe_store *f)
{
	if (!f)
		return 0;
	if (f == s || !s->be->fill_from || f->be != s->be ||
	    f->layers != s->layers || f->experts != s->experts ||
	    f->expert_bytes != s->expert_bytes || f->stride != s->stride)
		return -EINVAL;
	s->from_store = f;
	return 0;
}

void moe_publish(struct accel_moe_store *s)
{
	uint32_t li;

	s->st.layers = s->layers;
	s->st.experts = s->experts;
	s->st.devices = s->devices;
	s->st.num_slots = s->num_slots;
	s->st.block_size = s->bs;
	s->st.blocks_per_expert = s->bpe;
	s->st.slot_stride = s->stride;
	s->st.rebalancing = s->job_on;
	s->st.retired_pending = 0;
	for (li = 0; s->layer && li < s->layers; li++)
		if (s->layer[li].prev_live)
			s->st.retired_pending = 1;
	pthread_mutex_lock(&s->pub_lock);
	s->pub = s->st;
	pthread_mutex_unlock(&s->pub_lock);
}

/* The executor's thread: progress while there is work, sleep when there is none. */
static void *executor(void *arg)
{
	struct accel_moe_store *s = arg;
	struct timespec nap = { 0, 100000 };

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		int ret = moe_exec_progress(s);

		if (ret > 0) {
			/* Copies on the copy engine, or steps holding a table: look again soon. */
			pthread_mutex_unlock(&s->lock);
			nanosleep(&nap, NULL);
			pthread_mutex_lock(&s->lock);
		} else if (!s->stop) {
			pthread_cond_wait(&s->kick, &s->lock);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

ACCEL_EXPORT struct accel_moe_store *accel_moe_store_create(struct accel_device *dev,
							    const struct accel_moe_store_opts *opts,
							    const int32_t *phy2log, size_t count)
{
	struct moe_share_ctx *share = NULL;
	struct accel_moe_store *s;
	uint32_t li;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->dev = dev;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->ep_lock, NULL);
	pthread_mutex_init(&s->pub_lock, NULL);
	pthread_cond_init(&s->kick, NULL);
	pthread_rwlock_init(&s->tab_lock, NULL);
	ret = shape(s, opts);
	if (!ret)
		ret = placement_ok(s, phy2log, count);
	if (!ret)
		ret = moe_share_begin(s, opts, &share);
	if (!ret)
		ret = from_store_ok(s, ACCEL_OPTS_GET(opts, from_store, NULL));
	if (!ret) {
		s->layer = calloc(s->layers, sizeof(*s->layer));
		s->job_target = calloc(count, sizeof(*s->job_target));
		s->job_wave = calloc(s->num_slots, sizeof(*s->job_wave));
		ret = s->layer && s->job_target && s->job_wave ? 0 : -ENOMEM;
	}
	for (li = 0; !ret && li < s->layers; li++)
		ret = layer_init(s, li, phy2log + (size_t)li * s->num_slots, share);
	moe_share_end(share);
	s->from_store = NULL;
	if (!ret)
		moe_publish(s);
	if (!ret && (s->flags & ACCEL_MOE_STORE_THREAD)) {
		ret = -pthread_create(&s->thread, NULL, executor, s);
		s->has_thread = !ret;
	}
	if (ret) {
		accel_log(ACCEL_LOG_DEBUG, "moe store: %s", strerror(-ret));
		accel_moe_store_destroy(s);
		errno = -ret;
		return NULL;
	}
	return s;
}

ACCEL_EXPORT void accel_moe_store_destroy(struct accel_moe_store *s)
{
	uint32_t li;

	if (!s)
		return;
	if (s->has_thread) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_signal(&s->kick);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	for (li = 0; s->layer && li < s->layers; li++)
		layer_fini(s, &s->layer[li]);
	if (s->be) {
		moe_spares_free(s);
		s->be->fini(s);
	}
	free(s->layer);
	free(s->job_target);
	free(s->job_wave);
	moe_epochs_fini(&s->ep);
	pthread_rwlock_destroy(&s->tab_lock);
	pthread_cond_destroy(&s->kick);
	pthread_mutex_destroy(&s->pub_lock);
	pthread_mutex_destroy(&s->ep_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

ACCEL_EXPORT int accel_moe_store_write(struct accel_moe_store *s, uint32_t layer,
				       uint32_t expert, const void *src, size_t len)
{
	struct moe_copy *c;
	int ret = 0;

	if (!s || !src || layer >= s->layers || expert >= s->experts || len != s->expert_bytes)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->job_on)
		ret = -EBUSY;
	for (c = s->layer[layer].copies; !ret && c; c = c->next)
		if (c->expert == expert && c->shared)
			ret = -EPERM;	/* another instance reads these bytes */
	for (c = s->layer[layer].copies; !ret && c; c = c->next)
		if (c->expert == expert)
			ret = s->be->write(s, c, src, len);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

ACCEL_EXPORT int accel_moe_store_step_begin(struct accel_moe_store *s, uint64_t *version)
{
	int ret;

	if (!s || !version)
		return -EINVAL;
	if (!s->has_thread) {
		pthread_mutex_lock(&s->lock);
		moe_exec_progress(s);	/* its errors end the rebalance, not the step */
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_lock(&s->ep_lock);
	ret = moe_epochs_begin(&s->ep, s->version);
	if (!ret)
		*version = s->version;
	pthread_mutex_unlock(&s->ep_lock);
	return ret;
}

ACCEL_EXPORT int accel_moe_store_step_end(struct accel_moe_store *s, uint64_t version)
{
	int ret;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->ep_lock);
	ret = moe_epochs_end(&s->ep, version);
	pthread_mutex_unlock(&s->ep_lock);
	return ret;
}

/* The table of layer @l a step of @version reads (tab_lock held), or NULL. */
static const struct moe_table *table_of(const struct accel_moe_store *s,
					const struct moe_layer *l, uint64_t version)
{
	const struct moe_table *cur = &l->tab[l->cur], *prev = &l->tab[!l->cur];

	if (version >= s->version + 1)
		return NULL;
	if (version >= cur->since)
		return cur;
	if (l->prev_live && version >= prev->since)
		return prev;
	return NULL;
}

ACCEL_EXPORT const void *accel_moe_store_expert(struct accel_moe_store *s, uint64_t version,
						uint32_t layer, uint32_t expert, uint32_t hint)
{
	const struct moe_table *t;
	const struct moe_layer *l;
	const void *p = NULL;
	uint32_t n, phys;

	if (!s || layer >= s->layers || expert >= s->experts) {
		errno = EINVAL;
		return NULL;
	}
	l = &s->layer[layer];
	pthread_rwlock_rdlock(&s->tab_lock);
	t = table_of(s, l, version);
	if (t) {
		n = t->rep_first[expert + 1] - t->rep_first[expert];
		phys = t->rep[t->rep_first[expert] + hint % n];
		p = l->base + (size_t)t->win[phys] * s->stride;
	}
	pthread_rwlock_unlock(&s->tab_lock);
	if (!p)
		errno = EINVAL;
	return p;
}

ACCEL_EXPORT int accel_moe_store_replicas(struct accel_moe_store *s, uint64_t version,
					  uint32_t layer, uint32_t expert, uint32_t *slots,
					  uint32_t max)
{
	const struct moe_table *t;
	uint32_t n = 0, i;

	if (!s || layer >= s->layers || expert >= s->experts || (max && !slots))
		return -EINVAL;
	pthread_rwlock_rdlock(&s->tab_lock);
	t = table_of(s, &s->layer[layer], version);
	if (t) {
		n = t->rep_first[expert + 1] - t->rep_first[expert];
		for (i = 0; i < n && i < max; i++)
			slots[i] = t->rep[t->rep_first[expert] + i];
	}
	pthread_rwlock_unlock(&s->tab_lock);
	return t ? (int)n : -EINVAL;
}

ACCEL_EXPORT int accel_moe_store_placement(struct accel_moe_store *s, int32_t *p, size_t count)
{
	uint32_t li;

	if (!s || !p || count != (size_t)s->layers * s->num_slots)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	for (li = 0; li < s->layers; li++) {
		const struct moe_layer *l = &s->layer[li];

		memcpy(p + (size_t)li * s->num_slots, l->tab[l->cur].phy2log,
		       s->num_slots * sizeof(*p));
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

ACCEL_EXPORT int accel_moe_store_apply(struct accel_moe_store *s, const int32_t *p, size_t count)
{
	int ret;

	if (!s)
		return -EINVAL;
	ret = placement_ok(s, p, count);
	if (ret)
		return ret == -ENOMEM ? ret : -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->job_on) {
		ret = -EBUSY;
	} else {
		memcpy(s->job_target, p, count * sizeof(*p));
		s->job_on = true;
		s->job_wave_on = false;
		s->job_layer = 0;
		s->st.last_error = 0;
		moe_publish(s);
		pthread_cond_signal(&s->kick);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

ACCEL_EXPORT int accel_moe_store_progress(struct accel_moe_store *s)
{
	int ret;

	if (!s)
		return -EINVAL;
	if (s->has_thread) {
		/* The thread does the work: say whether it has any left. */
		pthread_mutex_lock(&s->pub_lock);
		ret = s->pub.rebalancing || s->pub.retired_pending ? 1 : s->pub.last_error;
		pthread_mutex_unlock(&s->pub_lock);
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	ret = moe_exec_progress(s);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

ACCEL_EXPORT int accel_moe_store_settle(struct accel_moe_store *s, int64_t timeout_ns)
{
	int64_t end = now_ns() + timeout_ns;
	struct timespec nap = { 0, 100000 };
	int ret;

	for (;;) {
		ret = accel_moe_store_progress(s);
		if (ret <= 0)
			return ret;
		if (timeout_ns >= 0 && now_ns() >= end)
			return -ETIME;
		nanosleep(&nap, NULL);
	}
}

ACCEL_EXPORT int accel_moe_store_stats(struct accel_moe_store *s,
				       struct accel_moe_store_stats *st)
{
	struct accel_moe_store_stats all;
	size_t sz;
	int ret;

	if (!s || !st)
		return -EINVAL;
	ret = accel_opts_valid(st, sizeof(*st));
	if (ret)
		return ret;
	pthread_mutex_lock(&s->pub_lock);
	all = s->pub;
	pthread_mutex_unlock(&s->pub_lock);
	pthread_mutex_lock(&s->ep_lock);
	all.version = s->version;
	all.steps_in_flight = moe_epochs_count(&s->ep);
	pthread_mutex_unlock(&s->ep_lock);
	sz = st->sz < sizeof(all) ? st->sz : sizeof(all);
	all.sz = st->sz;
	memcpy(st, &all, sz);
	return 0;
}
