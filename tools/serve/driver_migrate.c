// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - live migration through the driver (migrate.h): a decoding
 * request leaves the scheduler with its sequence (accel_sched_detach()),
 * arrives in another's with one (ACCEL_SCHED_REQ_ADOPT), or comes back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "migrate.h"

/* The tier-0 blocks of @seq into a malloc'd array. */
static int seq_blocks(struct serve_driver *d, uint32_t seq, uint32_t **ids, uint32_t *n)
{
	uint32_t off[2], *v;
	int ret;

	ret = accel_bm_block_tables(d->o.bm, &seq, 1, off, NULL, 0, NULL);
	if (ret < 0 && ret != -ENOBUFS)
		return ret;
	v = malloc((off[1] ? off[1] : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ret = accel_bm_block_tables(d->o.bm, &seq, 1, off, v, off[1], NULL);
	if (ret < 0) {
		free(v);
		return ret;
	}
	*ids = v;
	*n = off[1];
	return 0;
}

/*
 * @s's image into @image (@len bytes: serve_migr_image_size() of @ri's
 * counts): the header, the tokens from @from on straight from the
 * scheduler (those before are @image's already: an earlier image of the
 * same request), the digests. Nothing else is copied or allocated: at tens
 * of thousands of tokens each copy and each fresh buffer's page faults are
 * milliseconds of the engine thread's under emulation.
 */
static int fill_image(struct serve_driver *d, const struct dslot *s, uint32_t h,
		      const struct accel_sched_req_info *si, const struct serve_req_info *ri,
		      void *image, size_t len, uint32_t from)
{
	struct serve_migr_hdr *hd = image;
	size_t tok_end = sizeof(*hd) + (size_t)ri->n_tokens * 4;
	int32_t *tok = (int32_t *)(hd + 1);

	memset(hd, 0, sizeof(*hd));	/* no byte of ours in its padding goes to the peer */
	*hd = (struct serve_migr_hdr) {
		.magic = SERVE_MIGR_MAGIC, .version = SERVE_MIGR_VERSION, .size = len,
		.model = serve_migr_model_id(serve_engine_model(d->o.engine)),
		.block_bytes = d->o.block_bytes,
		.block_tokens = serve_engine_block_tokens(d->o.engine),
		.n_prompt = ri->n_prompt, .n_gen = ri->n_generated,
		.max_tokens = s->p.max_tokens, .seed = s->p.seed,
		.temperature = s->p.temperature, .priority = s->p.priority,
		.client = s->p.client, .offline = s->p.offline,
		.ttft_slo_us = s->p.ttft_slo_us, .tpot_slo_us = s->p.tpot_slo_us, .source = h,
		.t_last_ns = si->last_token_ns,
	};
	/* The padding to the digests (an odd token count) is zero. */
	memset((char *)image + tok_end, 0, (size_t)((const char *)serve_migr_digests(hd) -
						    ((char *)image + tok_end)));
	memcpy((void *)serve_migr_digests(hd), ri->digests, (size_t)ri->n_generated * 8);
	return accel_sched_tokens(d->sched, s->sreq, from, ri->n_tokens - from, tok + from);
}

/*
 * How many of @ri's tokens @image (@len bytes) holds already: an image of
 * request @h made before (its prompt, as many tokens or fewer); 0 if it is
 * not one.
 */
static uint32_t image_tokens_of(const void *image, size_t len, uint32_t h,
				const struct serve_req_info *ri)
{
	const struct serve_migr_hdr *hd = image;
	uint64_t n;

	if (!image || len < sizeof(*hd) || hd->magic != SERVE_MIGR_MAGIC || hd->source != h ||
	    hd->n_prompt != ri->n_prompt)
		return 0;
	n = (uint64_t)hd->n_prompt + hd->n_gen;
	if (n > ri->n_tokens || len != serve_migr_image_size((uint32_t)n, hd->n_gen))
		return 0;
	return (uint32_t)n;
}

/* What @h is now: its sched info and engine info. Only decodes. */
static int snapshot(struct serve_driver *d, struct dslot *s, struct accel_sched_req_info *si,
		    struct serve_req_info *ri)
{
	int ret;

	if (s->migr)
		return -EBUSY;
	if (!s->eid)
		return -EINVAL;
	ret = accel_sched_req_info(d->sched, s->sreq, si);
	if (ret)
		return ret;
	if (si->state != ACCEL_SCHED_DECODING)
		return -EINVAL;
	ret = serve_engine_info(d->o.engine, s->eid, ri);
	if (ret)
		return ret;
	if (ri->n_tokens != si->nr_tokens || !ri->n_generated)
		return -EIO;	/* the engine and the scheduler disagree: a bug of ours */
	return 0;
}

int serve_driver_migrate_peek_into(struct serve_driver *d, uint32_t h, void *buf, size_t cap,
				   size_t *len)
{
	ACCEL_OPTS(accel_sched_req_info, si);
	struct serve_req_info ri;
	struct dslot *s = d ? slot_of(d, h) : NULL;
	int ret;

	if (!d || !len || (cap && !buf))
		return -EINVAL;
	if (!s)
		return -ENOENT;
	ret = snapshot(d, s, &si, &ri);
	if (ret)
		return ret;
	*len = serve_migr_image_size(ri.n_tokens, ri.n_generated);
	if (!buf)
		return 0;
	if (cap < *len)
		return -ENOSPC;
	return fill_image(d, s, h, &si, &ri, buf, *len, 0);
}

int serve_driver_migrate_peek(struct serve_driver *d, uint32_t h, void **image, size_t *len)
{
	int ret;

	if (!image || !len)
		return -EINVAL;
	ret = serve_driver_migrate_peek_into(d, h, NULL, 0, len);
	if (ret)
		return ret;
	*image = malloc(*len);
	if (!*image)
		return -ENOMEM;
	ret = serve_driver_migrate_peek_into(d, h, *image, *len, len);
	if (ret) {
		free(*image);
		*image = NULL;
	}
	return ret;
}

int serve_driver_migrate_blocks(struct serve_driver *d, uint32_t h, uint32_t **blocks,
				uint32_t *nr)
{
	ACCEL_OPTS(accel_sched_req_info, si);
	struct dslot *s = d ? slot_of(d, h) : NULL;
	int ret;

	if (!d || !blocks || !nr)
		return -EINVAL;
	if (!s)
		return -ENOENT;
	if (s->migr)
		return -EBUSY;
	if (!s->eid)
		return -EINVAL;
	ret = accel_sched_req_info(d->sched, s->sreq, &si);
	if (ret)
		return ret;
	if (si.state != ACCEL_SCHED_DECODING)
		return -EINVAL;
	return seq_blocks(d, si.seq, blocks, nr);
}

int serve_driver_migrate_out_from(struct serve_driver *d, uint32_t h, uint32_t flags,
				  void *image, size_t len, size_t cap, struct serve_migr_out *mo)
{
	ACCEL_OPTS(accel_sched_req_info, si);
	uint64_t t_stop = now_ns();	/* it decodes no more from here */
	struct serve_req_info ri;
	struct dslot *s;
	uint32_t seq, from;
	int ret;

	if (!d || !mo || (flags & ~SERVE_MIGR_GIVE_PAGES) || (image && cap < len)) {
		free(image);
		return -EINVAL;
	}
	memset(mo, 0, sizeof(*mo));
	s = slot_of(d, h);
	ret = s ? snapshot(d, s, &si, &ri) : -ENOENT;
	if (ret) {
		free(image);
		return ret;
	}
	mo->len = serve_migr_image_size(ri.n_tokens, ri.n_generated);
	from = image_tokens_of(image, len, h, &ri);
	if (image && mo->len > cap) {
		void *bigger = realloc(image, mo->len);	/* it decoded more than room was kept for */

		if (!bigger)
			free(image);
		image = bigger;
	}
	mo->image = image ? image : malloc(mo->len);
	ret = mo->image ? 0 : -ENOMEM;
	if (!ret)
		ret = seq_blocks(d, si.seq, &mo->blocks, &mo->nr_blocks);
	if (!ret)
		ret = fill_image(d, s, h, &si, &ri, mo->image, mo->len, image ? from : 0);
	if (ret)
		goto fail;
	if (flags & SERVE_MIGR_GIVE_PAGES) {
		mo->own = malloc(mo->nr_blocks ? mo->nr_blocks : 1);
		if (!mo->own) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	ret = accel_sched_detach(d->sched, s->sreq, now_ns(), &seq);
	if (ret)
		goto fail;
	if (mo->own) {
		/* Out of the prefix cache before any other request can share them. */
		ret = accel_bm_seq_export(d->o.bm, seq, mo->own, mo->nr_blocks);
		if (ret < 0) {
			mo->seq = seq;
			mo->h = h;
			s->migr = SLOT_MIGR_OUT;
			s->sinfo = si;
			serve_driver_migrate_undo(d, mo);
			return ret;
		}
	}
	mo->h = h;
	mo->seq = seq;
	mo->t_stop_ns = t_stop;
	((struct serve_migr_hdr *)mo->image)->t_stop_ns = t_stop;
	s->sinfo = si;
	s->migr = SLOT_MIGR_OUT;
	return 0;
fail:
	free(mo->image);
	free(mo->blocks);
	free(mo->own);
	memset(mo, 0, sizeof(*mo));
	return ret == -EBUSY ? -EAGAIN : ret;
}

int serve_driver_migrate_out(struct serve_driver *d, uint32_t h, uint32_t flags,
			     struct serve_migr_out *mo)
{
	return serve_driver_migrate_out_from(d, h, flags, NULL, 0, 0, mo);
}

static void out_free(struct serve_migr_out *mo)
{
	free(mo->image);
	free(mo->blocks);
	free(mo->own);
	memset(mo, 0, sizeof(*mo));
}

int serve_driver_migrate_done(struct serve_driver *d, struct serve_migr_out *mo)
{
	struct dslot *s = d && mo ? slot_of(d, mo->h) : NULL;

	if (!s || s->migr != SLOT_MIGR_OUT)
		return -EINVAL;
	accel_bm_seq_free(d->o.bm, mo->seq);
	return serve_driver_migrate_keep(d, mo);
}

int serve_driver_migrate_lost(struct serve_driver *d, uint32_t h)
{
	struct dslot *s = d ? slot_of(d, h) : NULL;

	if (!s || s->migr != SLOT_MIGR_GONE)
		return -EINVAL;
	s->failed = true;
	s->sinfo.state = ACCEL_SCHED_ABORTED;
	return 0;
}

int serve_driver_migrate_keep(struct serve_driver *d, struct serve_migr_out *mo)
{
	struct dslot *s = d && mo ? slot_of(d, mo->h) : NULL;

	if (!s || s->migr != SLOT_MIGR_OUT)
		return -EINVAL;
	/* (done: the sequence already freed; keep: it stays, out of the pool) */
	serve_engine_finish(d->o.engine, s->eid);
	s->migr = SLOT_MIGR_GONE;
	s->sinfo.state = ACCEL_SCHED_FINISHED;
	s->sinfo.finish_ns = now_ns();
	out_free(mo);
	return 0;
}

/* Add @hd's request to the scheduler: on @seq (adopted), or afresh (recomputed: @seq 0 and none). */
static int sched_take(struct serve_driver *d, struct dslot *s, uint32_t h,
		      const struct serve_migr_hdr *hd, bool adopt, uint32_t seq, uint32_t *sreq)
{
	const int32_t *tok = serve_migr_tokens(hd);
	ACCEL_OPTS(accel_sched_req_opts, ro, .tag = tag_of(s, h), .prompt = tok,
		   .prompt_len = hd->n_prompt, .max_output = hd->max_tokens,
		   .priority = hd->priority, .client = hd->client, .arrival_ns = now_ns(),
		   .ttft_slo_ns = hd->ttft_slo_us * 1000, .tpot_slo_ns = hd->tpot_slo_us * 1000,
		   .flags = hd->offline ? ACCEL_SCHED_REQ_OFFLINE : 0);

	if (adopt) {
		ro.flags |= ACCEL_SCHED_REQ_ADOPT;
		ro.output = tok + hd->n_prompt;
		ro.output_len = hd->n_gen;
		ro.seq = seq;
	} else {
		/* Everything known is the prompt now: the engine's indices go on as before. */
		ro.prompt_len = (uint64_t)hd->n_prompt + hd->n_gen;
		ro.max_output = hd->max_tokens - hd->n_gen;
	}
	return accel_sched_add(d->sched, &ro, sreq);
}

int serve_driver_migrate_undo(struct serve_driver *d, struct serve_migr_out *mo)
{
	struct dslot *s = d && mo ? slot_of(d, mo->h) : NULL;
	int ret;

	if (!s || s->migr != SLOT_MIGR_OUT)
		return -EINVAL;
	ret = sched_take(d, s, mo->h, mo->image, true, mo->seq, &s->sreq);
	if (ret) {
		/* No room to run it as it was (its place was taken): it prefills again. */
		accel_bm_seq_free(d->o.bm, mo->seq);
		ret = sched_take(d, s, mo->h, mo->image, false, 0, &s->sreq);
		if (ret) {
			s->failed = true;	/* reported to its client as failed, not lost */
			s->migr = SLOT_MIGR_GONE;
			s->sinfo.state = ACCEL_SCHED_ABORTED;
			serve_engine_finish(d->o.engine, s->eid);
			out_free(mo);
			return ret;
		}
	}
	s->migr = 0;
	out_free(mo);
	return 0;
}

int serve_driver_migrate_prepare(struct serve_driver *d, const void *image, size_t len,
				 struct serve_migr_in *mi)
{
	const struct serve_migr_hdr *hd = image;
	struct serve_params p;
	int ret;

	if (!d || !mi)
		return -EINVAL;
	memset(mi, 0, sizeof(*mi));
	ret = serve_migr_image_check(image, len, serve_migr_model_id(serve_engine_model(d->o.engine)),
				     serve_engine_block_tokens(d->o.engine), d->o.block_bytes);
	if (ret)
		return ret;
	p = (struct serve_params) { .max_tokens = hd->max_tokens, .temperature = hd->temperature,
				    .seed = hd->seed, .priority = hd->priority,
				    .client = hd->client, .ttft_slo_us = hd->ttft_slo_us,
				    .tpot_slo_us = hd->tpot_slo_us, .offline = hd->offline };
	ret = serve_engine_check(d->o.engine, serve_migr_tokens(hd), hd->n_prompt, &p);
	if (ret)
		return ret;
	ret = accel_bm_seq_create(d->o.bm, NULL, &mi->seq);
	if (ret)
		return ret;
	ret = accel_bm_append(d->o.bm, mi->seq, serve_migr_tokens(hd),
			      (uint64_t)hd->n_prompt + hd->n_gen - 1, NULL, NULL);
	if (!ret)
		ret = seq_blocks(d, mi->seq, &mi->blocks, &mi->nr_blocks);
	/* Its engine request now, so that the commit only adds what came since. */
	if (!ret)
		ret = serve_engine_adopt(d->o.engine, serve_migr_tokens(hd), hd->n_prompt,
					 serve_migr_tokens(hd) + hd->n_prompt,
					 serve_migr_digests(hd), hd->n_gen, &p, &mi->eid);
	if (ret) {
		accel_bm_seq_free(d->o.bm, mi->seq);
		free(mi->blocks);
		memset(mi, 0, sizeof(*mi));
		return ret;
	}
	mi->hdr = hd;
	return 0;
}

/* Extend @mi's blocks from @n_old tokens to @hd's (the image checked by the caller). */
static int extend_to(struct serve_driver *d, struct serve_migr_in *mi,
		     const struct serve_migr_hdr *hd, uint32_t n_old)
{
	uint32_t n_new = hd->n_prompt + hd->n_gen, *blocks, nr;
	int ret;

	if (n_new > n_old) {
		ret = accel_bm_append(d->o.bm, mi->seq, serve_migr_tokens(hd) + n_old - 1,
				      n_new - n_old, NULL, NULL);
		if (ret)
			return ret;
		ret = seq_blocks(d, mi->seq, &blocks, &nr);
		if (!ret && mi->eid) {
			ret = serve_engine_adopt_more(d->o.engine, mi->eid,
						      serve_migr_tokens(hd) + hd->n_prompt,
						      serve_migr_digests(hd), hd->n_gen);
			if (ret)
				free(blocks);
		}
		if (ret) {
			accel_bm_truncate(d->o.bm, mi->seq, n_new - n_old);
			return ret;
		}
		free(mi->blocks);
		mi->blocks = blocks;
		mi->nr_blocks = nr;
	}
	mi->hdr = hd;
	return 0;
}

int serve_driver_migrate_grown(struct serve_driver *d, struct serve_migr_in *mi, size_t len,
			       uint32_t n_old, uint64_t model, uint64_t seed, uint32_t max_tokens)
{
	const struct serve_migr_hdr *hd = mi ? mi->hdr : NULL;
	int ret;

	if (!d || !hd)
		return -EINVAL;
	ret = serve_migr_image_check(hd, len, model, serve_engine_block_tokens(d->o.engine),
				     d->o.block_bytes);
	if (ret)
		return ret;
	if (hd->n_prompt + hd->n_gen < n_old || hd->n_prompt >= n_old || hd->seed != seed ||
	    hd->max_tokens != max_tokens)
		return -EINVAL;	/* not the request prepared for */
	return extend_to(d, mi, hd, n_old);
}

int serve_driver_migrate_extend(struct serve_driver *d, struct serve_migr_in *mi,
				const void *image, size_t len)
{
	const struct serve_migr_hdr *old = mi ? mi->hdr : NULL, *hd = image;
	uint32_t n_old, n_new;
	int ret;

	if (!d || !old)
		return -EINVAL;
	ret = serve_migr_image_check(image, len, old->model, old->block_tokens, old->block_bytes);
	if (ret)
		return ret;
	n_old = old->n_prompt + old->n_gen;
	n_new = hd->n_prompt + hd->n_gen;
	if (hd->n_prompt != old->n_prompt || n_new < n_old || hd->seed != old->seed ||
	    hd->max_tokens != old->max_tokens ||
	    memcmp(serve_migr_tokens(hd), serve_migr_tokens(old), (size_t)n_old * 4))
		return -EINVAL;	/* not the request prepared for */
	return extend_to(d, mi, hd, n_old);
}

void serve_driver_migrate_cancel(struct serve_driver *d, struct serve_migr_in *mi)
{
	if (!d || !mi || !mi->hdr)
		return;
	accel_bm_seq_free(d->o.bm, mi->seq);
	if (mi->eid)
		serve_engine_release(d->o.engine, mi->eid);
	free(mi->blocks);
	memset(mi, 0, sizeof(*mi));
}

/*
 * A slot for @hd (under d->lock) and its engine request: @eid when made
 * already (the caller's until this succeeds), else adopted or added now.
 */
static int slot_for(struct serve_driver *d, const struct serve_migr_hdr *hd, bool adopt,
		    uint32_t seq, uint32_t eid, uint32_t *h)
{
	struct serve_params p = {
		.max_tokens = hd->max_tokens, .temperature = hd->temperature, .seed = hd->seed,
		.priority = hd->priority, .client = hd->client, .ttft_slo_us = hd->ttft_slo_us,
		.tpot_slo_us = hd->tpot_slo_us, .offline = hd->offline,
	};
	const int32_t *tok = serve_migr_tokens(hd);
	bool made = eid != 0;
	struct dslot *s = NULL;
	uint32_t i;
	int ret;

	if (!made) {
		ret = serve_engine_adopt(d->o.engine, tok, hd->n_prompt, tok + hd->n_prompt,
					 serve_migr_digests(hd), hd->n_gen, &p, &eid);
		if (ret)
			return ret;
	}
	pthread_mutex_lock(&d->lock);
	s = slot_new_locked(d, &i);
	if (!s) {
		pthread_mutex_unlock(&d->lock);
		if (!made)
			serve_engine_release(d->o.engine, eid);
		return -ENOSPC;
	}
	*s = (struct dslot) { .used = true, .n_prompt = hd->n_prompt, .p = p, .eid = eid,
			      .gen = s->gen };
	ret = sched_take(d, s, i + 1, hd, adopt, seq, &s->sreq);
	if (ret) {
		*s = (struct dslot) { .gen = s->gen };
		while (d->max_h && !d->slot[d->max_h - 1].used)
			d->max_h--;
	}
	pthread_mutex_unlock(&d->lock);
	if (ret) {
		if (!made)
			serve_engine_release(d->o.engine, eid);
		return ret;
	}
	*h = i + 1;
	return 0;
}

int serve_driver_migrate_commit(struct serve_driver *d, struct serve_migr_in *mi, uint32_t *h)
{
	int ret;

	if (!d || !mi || !mi->hdr || !h)
		return -EINVAL;
	ret = slot_for(d, mi->hdr, true, mi->seq, mi->eid, h);
	if (ret == -EBUSY)
		return ret;	/* no running slot now: the caller may try again */
	if (ret) {
		serve_driver_migrate_cancel(d, mi);
		return ret;
	}
	free(mi->blocks);
	memset(mi, 0, sizeof(*mi));
	return 0;
}

int serve_driver_migrate_recompute(struct serve_driver *d, const void *image, size_t len,
				   uint32_t *h)
{
	int ret;

	if (!d || !h)
		return -EINVAL;
	ret = serve_migr_image_check(image, len, serve_migr_model_id(serve_engine_model(d->o.engine)),
				     serve_engine_block_tokens(d->o.engine), d->o.block_bytes);
	if (ret)
		return ret;
	return slot_for(d, image, false, 0, 0, h);
}
