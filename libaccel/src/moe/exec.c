// SPDX-License-Identifier: MIT
/*
 * libaccel - the expert store's executor: a rebalance carried out one
 * wave at a time, each a bounded share of work per call. A wave is an
 * intermediate placement of one layer (exec_wave.c) whose new copies (at
 * most K per device) are made on the copy engine while steps go on; then
 * one bind batch puts every changed slot's copy into free window slots and
 * the layer's new table takes effect for the steps that begin after; the
 * old table, and the window slots and copies only it named, are freed
 * once every step that began before has ended.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Whether a device already holds an expert, for exec_wave.c. */
struct has_arg {
	struct moe_layer *l;
};

static bool has_copy(void *arg, uint32_t device, uint32_t expert)
{
	struct has_arg *h = arg;

	return moe_copy_find(h->l, device, expert) != NULL;
}

/* Retire layer @l's previous table if no step can read it any more; 0 or -errno. */
static int reclaim(struct accel_moe_store *s, struct moe_layer *l)
{
	const struct moe_table *cur = &l->tab[l->cur], *prev = &l->tab[!l->cur];
	struct moe_bind *ops;
	uint64_t oldest;
	uint32_t i, n = 0;
	bool *keep, held;
	int ret = 0;

	if (!l->prev_live)
		return 0;
	pthread_mutex_lock(&s->ep_lock);
	held = moe_epochs_oldest(&s->ep, &oldest) && oldest < cur->since;
	pthread_mutex_unlock(&s->ep_lock);
	if (held)
		return 0;
	keep = calloc(s->wslots, sizeof(*keep));
	ops = calloc(s->num_slots, sizeof(*ops));
	if (!keep || !ops) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s->num_slots; i++)
		keep[cur->win[i]] = true;
	for (i = 0; i < s->num_slots; i++) {
		if (keep[prev->win[i]])
			continue;
		ops[n++] = (struct moe_bind) { .w = prev->win[i] };
	}
	/* Steps of the old table are over: lookups of their versions fail from here. */
	pthread_rwlock_wrlock(&s->tab_lock);
	l->prev_live = false;
	pthread_rwlock_unlock(&s->tab_lock);
	if (n) {
		ret = s->be->bind(s, l, ops, n);
		if (ret) {
			/* Bound but unnamed: tried again on the next call. */
			pthread_rwlock_wrlock(&s->tab_lock);
			l->prev_live = true;
			pthread_rwlock_unlock(&s->tab_lock);
			goto out;
		}
	}
	for (i = 0; i < s->num_slots; i++) {
		struct moe_copy *c;

		if (keep[prev->win[i]])
			continue;
		c = l->wslot[prev->win[i]];
		l->wslot[prev->win[i]] = NULL;
		if (!--c->refs)
			moe_copy_retire(s, l, c);
	}
	s->st.reclaims++;
out:
	free(keep);
	free(ops);
	return ret;
}

void moe_exec_abandon(struct accel_moe_store *s, int err)
{
	struct moe_layer *l = &s->layer[s->job_layer];

	/* The wave's copies no window slot holds yet. */
	moe_copies_free(s, l, true);
	s->job_on = false;
	s->job_wave_on = false;
	moe_spares_free(s);
	s->st.last_error = err;
	accel_log(ACCEL_LOG_ERR, "moe store: rebalance abandoned at layer %u: %s", s->job_layer,
		  strerror(-err));
}

/* Find the next wave from job_layer on; 0 (s->job_wave_on set, or the job done) or -errno. */
static int next_wave(struct accel_moe_store *s)
{
	while (s->job_layer < s->layers) {
		struct moe_layer *l = &s->layer[s->job_layer];
		struct has_arg h = { l };
		uint32_t i;
		bool over;
		int n;

		n = moe_next_wave(l->tab[l->cur].phy2log,
				  s->job_target + (size_t)s->job_layer * s->num_slots,
				  s->num_slots, s->experts, s->spd, s->k, has_copy, &h, s->job_wave,
				  &over);
		if (n < 0)
			return n;
		if (!n) {
			s->job_layer++;
			continue;
		}
		s->st.over_k += over;
		/* The copies it needs, made empty now and filled by the copy engine. */
		for (i = 0; i < s->num_slots; i++) {
			uint32_t d = i / s->spd, e = (uint32_t)s->job_wave[i];
			struct moe_copy *c;

			if (e == (uint32_t)l->tab[l->cur].phy2log[i] || moe_copy_find(l, d, e))
				continue;
			c = moe_copy_new(s, l, d, e);
			if (!c)
				return -errno;
		}
		s->job_wave_on = true;
		return 0;
	}
	s->job_on = false;
	s->st.rebalances++;
	moe_spares_free(s);
	return 0;
}

/* The ready copy to copy expert @e from for device @d: its node's first, else any. */
static struct moe_copy *source_of(struct accel_moe_store *s, struct moe_layer *l, uint32_t d,
				  uint32_t e)
{
	struct moe_copy *c, *any = NULL;

	for (c = l->copies; c; c = c->next) {
		if (c->expert != e || !c->ready)
			continue;
		if (s->node[c->device] == s->node[d])
			return c;
		if (!any)
			any = c;
	}
	return any;
}

/* Poll and start the wave's copies; 1 all ready, 0 some pending, -errno. */
static int copies(struct accel_moe_store *s, struct moe_layer *l)
{
	struct moe_copy *c;
	bool all = true;
	int st;

	for (c = l->copies; c; c = c->next) {
		if (c->ready)
			continue;
		if (c->busy) {
			st = s->be->copy_poll(s, c);
			if (st < 0)
				return st;
			if (st == 1) {
				c->busy = false;
				s->inflight[c->device]--;
				c->ready = true;
				s->st.copies++;
				s->st.copy_bytes += s->stride;
				continue;
			}
		}
		all = false;
	}
	for (c = l->copies; c; c = c->next) {
		struct moe_copy *src;

		if (c->started || s->inflight[c->device] >= s->k)
			continue;
		src = source_of(s, l, c->device, c->expert);
		if (!src)
			return -EIO;	/* a valid placement always has one */
		st = s->be->copy_start(s, c, src);
		if (st)
			return st;
		c->busy = c->started = true;
		if (++s->inflight[c->device] > s->st.max_inflight_seen)
			s->st.max_inflight_seen = s->inflight[c->device];
	}
	return all;
}

/*
 * Touch every page of the new window slots (thread mode): the faults that
 * map them are taken here, not by the engine's first reads.
 */
static void prefault(const struct accel_moe_store *s, const struct moe_layer *l,
		     const uint32_t *win, const uint32_t *slot_w, uint32_t changed)
{
	const char *p;
	uint32_t i;
	uint64_t o;

	for (i = 0; i < changed; i++) {
		p = l->base + (size_t)win[slot_w[i]] * s->stride;
		for (o = 0; o < s->stride; o += 4096)
			(void)__atomic_load_n(p + o, __ATOMIC_RELAXED);	/* a read the compiler keeps */
	}
}

/* The wave's switch: one bind batch into free window slots, then the new table. */
static int layer_switch(struct accel_moe_store *s, struct moe_layer *l)
{
	struct moe_table *cur = &l->tab[l->cur], *nt = &l->tab[!l->cur];
	struct moe_bind *ops;
	uint32_t *win, *slot_w, i, n = 0, w = 0, changed = 0, fresh = 0;
	struct moe_copy *c;
	int ret;

	ops = calloc(s->num_slots, sizeof(*ops));
	win = calloc(s->num_slots, sizeof(*win));
	slot_w = calloc(s->num_slots, sizeof(*slot_w));
	ret = ops && win && slot_w ? 0 : -ENOMEM;
	for (i = 0; !ret && i < s->num_slots; i++) {
		win[i] = cur->win[i];
		if (s->job_wave[i] == cur->phy2log[i])
			continue;
		while (w < s->wslots && l->wslot[w])
			w++;
		if (w == s->wslots) {
			ret = -ENOSPC;	/* the previous table is retired first: cannot happen */
			break;
		}
		c = moe_copy_find(l, i / s->spd, (uint32_t)s->job_wave[i]);
		ops[n++] = (struct moe_bind) { .w = w, .c = c };
		win[i] = w;
		slot_w[changed++] = i;
		w++;
	}
	if (!ret)
		ret = s->be->bind(s, l, ops, n);
	if (!ret) {
		for (i = 0; i < changed; i++) {
			uint32_t ps = slot_w[i];

			c = moe_copy_find(l, ps / s->spd, (uint32_t)s->job_wave[ps]);
			if (!c->refs)
				fresh++;
			l->wslot[win[ps]] = c;
			c->refs++;
		}
		if ((s->flags & ACCEL_MOE_STORE_THREAD) && s->be->host_window)
			prefault(s, l, win, slot_w, changed);
		/* The switch: steps that begin from here read the new table. */
		pthread_mutex_lock(&s->ep_lock);
		moe_table_fill(s, nt, s->job_wave, win, s->version + 1);
		pthread_rwlock_wrlock(&s->tab_lock);
		l->cur = !l->cur;
		l->prev_live = true;
		s->version++;
		pthread_rwlock_unlock(&s->tab_lock);
		pthread_mutex_unlock(&s->ep_lock);
		s->st.waves++;
		s->st.rebinds += changed - fresh;
		s->job_wave_on = false;
	}
	free(ops);
	free(win);
	free(slot_w);
	return ret;
}

/* Retire what no step can read; whether a retired table is still held. */
static bool reclaim_all(struct accel_moe_store *s)
{
	bool pending = false;
	uint32_t li;

	for (li = 0; li < s->layers; li++) {
		int ret = reclaim(s, &s->layer[li]);

		if (ret)
			s->st.last_error = ret;	/* tried again on the next call */
		pending |= s->layer[li].prev_live;
	}
	return pending;
}

/*
 * One call's work, bounded: retire tables, start a wave (its copies made
 * and submitted) once none is held, poll the copies, switch the layer when
 * they are all there (at most one bind batch of a switch per call), and
 * where no step holds the old table (a step boundary of a serial engine)
 * retire it and start the next wave at once.
 */
int moe_exec_progress(struct accel_moe_store *s)
{
	bool pending = reclaim_all(s), switched = false;
	struct moe_layer *l;
	int ret;

	for (;;) {
		if (!s->job_on)
			break;
		/* A new wave once every retired table is gone: extra memory stays at a wave's. */
		if (!s->job_wave_on) {
			if (pending)
				break;
			ret = next_wave(s);
			if (ret)
				goto fail;
			if (!s->job_on)
				break;
		}
		l = &s->layer[s->job_layer];
		ret = copies(s, l);
		if (ret < 0)
			goto fail;
		if (ret == 0 || switched) {
			moe_publish(s);
			return 1;
		}
		ret = layer_switch(s, l);
		if (ret)
			goto fail;
		switched = true;
		pending = reclaim_all(s);
		/* The step mode spreads the work: the next wave starts on the next call. */
		if (!(s->flags & ACCEL_MOE_STORE_THREAD))
			break;
	}
	moe_publish(s);
	return pending || s->job_on ? 1 : 0;
fail:
	moe_exec_abandon(s, ret);
	moe_publish(s);
	return ret;
}
