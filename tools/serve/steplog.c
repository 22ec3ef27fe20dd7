// SPDX-License-Identifier: MIT
/* kvaccel-serve - the step log's lines (steplog.h; Documentation/serve.rst, "The step log"). */
#include <errno.h>
#include <string.h>

#include "forward.h"
#include "steplog.h"

static const char *const preempt_names[] = { "cost", "recompute", "swap" };

FILE *serve_steplog_open(const char *path, const struct serve_model *m,
			 const struct serve_stack_opts *so, char *err, size_t errlen)
{
	const struct serve_driver_opts *o = so->sched;
	const struct serve_config *c = &m->cfg;
	uint32_t bt = so->block_tokens ? so->block_tokens : 16;
	uint32_t budget = o->max_tokens ? o->max_tokens : 256;
	FILE *f = fopen(path, "w");

	if (!f) {
		snprintf(err, errlen, "--step-log %s: %s", path, strerror(errno));
		return NULL;
	}
	/* Line by line: a process killed mid-run leaves every line it logged. */
	setvbuf(f, NULL, _IOLBF, 0);
	fprintf(f, "# kvaccel-serve step log v1 layers=%u kv_heads=%u head_dim=%u dtype_bytes=4 "
		"block_tokens=%u block_bytes=%llu blocks=%u swap_blocks=%u budget=%u chunk=%u "
		"max_seqs=%u threads=%u policy=%s preempt=%s yields=%d\n", c->layers, c->kv_heads,
		c->d_model / c->heads, bt,
		(unsigned long long)serve_kv_block_bytes(c, bt), so->blocks ? so->blocks : 64,
		so->swap_blocks ? so->swap_blocks : 64, budget,
		o->chunk_tokens ? o->chunk_tokens : budget,
		o->max_seqs ? o->max_seqs : budget < 256 ? budget : 256,
		so->threads ? so->threads : 1, accel_sched_policy_name(o->policy),
		o->preempt < 3 ? preempt_names[o->preempt] : "?", o->yields);
	fprintf(f, "kind,t_ns,runs,prefill_tokens,decode_runs,context_tokens,quad,yielded,computed,"
		"compute_ns,step_ns,after_idle\n");
	return f;
}

void serve_steplog_add_run(struct serve_steplog_step *s, const struct accel_sched_run *r)
{
	s->runs++;
	if (r->flags & ACCEL_SCHED_RUN_PREFILL) {
		s->prefill_tokens += r->tokens;
		s->quad += (uint64_t)r->tokens * (2 * r->start + r->tokens);
	} else {
		s->decode_runs += r->tokens;
		s->context_tokens += r->start + r->tokens;
	}
}

void serve_steplog_write_step(FILE *f, const struct serve_steplog_step *s)
{
	fprintf(f, "step,%llu,%u,%llu,%llu,%llu,%llu,%u,%llu,%llu,%llu,%d\n",
		(unsigned long long)s->t_ns, s->runs, (unsigned long long)s->prefill_tokens,
		(unsigned long long)s->decode_runs, (unsigned long long)s->context_tokens,
		(unsigned long long)s->quad, s->yielded, (unsigned long long)s->computed,
		(unsigned long long)s->compute_ns, (unsigned long long)s->step_ns, s->after_idle);
}

void serve_steplog_write_swap(FILE *f, uint64_t t0, int in, uint64_t blocks, uint64_t bytes,
			      uint64_t start_ns, uint64_t end_ns, int status)
{
	fprintf(f, "swap,%llu,%s,%llu,%llu,%llu,%d\n", (unsigned long long)(start_ns - t0),
		in ? "in" : "out", (unsigned long long)blocks, (unsigned long long)bytes,
		(unsigned long long)(end_ns - start_ns), status);
}
