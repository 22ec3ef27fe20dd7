// SPDX-License-Identifier: MIT
/*
 * libaccel - live migration in the scheduler: a decoding request leaves
 * with its KV (accel_sched_detach(): its block-manager sequence goes to the
 * caller) and arrives with it elsewhere (ACCEL_SCHED_REQ_ADOPT: a sequence
 * whose blocks hold the KV of every token but the last, so its next run is
 * the decode of that token). What moves the bytes (nothing on a node: the
 * pages change hands; a copy across nodes) is the engine's business.
 */
#include <string.h>

#include "../internal.h"
#include "../bm/bm.h"
#include "sched.h"

int sched_adopt_check(struct accel_sched *s, const struct accel_sched_req_opts *o)
{
	if (!ACCEL_OPTS_HAS(o, pad) || o->pad || !o->output || !o->output_len ||
	    o->output_len > (1ull << 40))
		return -EINVAL;
	if (o->max_output && o->output_len >= o->max_output)
		return -EINVAL;	/* nothing left to generate */
	(void)s;
	return 0;
}

int sched_adopt_seq(struct accel_sched *s, const struct accel_sched_req_opts *o)
{
	struct accel_bm_seq_info si = { .sz = sizeof(si) };
	int ret;

	ret = accel_bm_seq_info(s->bm, o->seq, &si);
	if (ret)
		return ret == -ENOENT ? -EINVAL : ret;
	if (si.tier != 0 || si.nr_tokens != o->prompt_len + o->output_len - 1)
		return -EINVAL;
	if (si.plan_id)
		return -EBUSY;	/* its blocks are still being copied */
	if (nr_active(s) >= s->cfg.max_seqs)
		return -EBUSY;	/* no room to run it: the source keeps it */
	return 0;
}

void sched_adopt_place(struct accel_sched *s, struct sreq *r, const struct accel_sched_req_opts *o)
{
	uint64_t now = s->now ? s->now : 1;

	r->seq = o->seq;
	r->output = o->output_len;
	r->computed = r->bm_tok = r->max_computed = r->nr_tok - 1;
	if (accel_bm_commit(s->bm, r->seq, (uint32_t)full_blocks(s, r->computed)) >= 0)
		r->committed = (uint32_t)full_blocks(s, r->computed);
	/* Its first token came elsewhere: TTFT is the source's; TPOT goes on from here. */
	r->first_sched_ns = r->first_token_ns = r->last_token_ns = now;
	sched_running_add(s, r);
	sched_set_state(s, r, ACCEL_SCHED_DECODING);
	s->st.migrated_in++;
}

ACCEL_EXPORT int accel_sched_detach(struct accel_sched *s, uint32_t req, uint64_t now_ns,
				    uint32_t *seq)
{
	struct sreq *r;
	int ret = 0;

	if (!s || !seq)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = sched_req_get(s, req);
	if (!r) {
		ret = -ENOENT;
		goto out;
	}
	if (r->inflight || r->abort_pending) {
		ret = -EBUSY;
		goto out;
	}
	if (r->state != ACCEL_SCHED_DECODING) {
		ret = -EINVAL;
		goto out;
	}
	if (now_ns > s->now)
		s->now = now_ns;
	sched_running_del(s, r);
	*seq = r->seq;
	r->seq = SREQ_NONE;
	s->client_active[r->client]--;
	s->st.migrated_out++;
	sched_forget(s, r);
	sched_wake(s);	/* its room may admit a waiting request */
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
