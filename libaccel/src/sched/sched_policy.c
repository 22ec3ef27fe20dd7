// SPDX-License-Identifier: MIT
/*
 * libaccel - the scheduler's policies (Documentation/scheduler.rst).
 *
 * Each one is three orders: the queue order of waiting and swapped
 * requests, the class order of victims (ties go to the configured victim
 * order: the last admitted, or the least computed first), and whether a
 * waiting request may preempt a running one (and make prefills yield).
 */
#include "sched.h"

/* ---- fcfs: vLLM V1 (arrival order; the last admitted is preempted) ---- */

static bool fcfs_before(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	(void)s;
	return a->arrive_seq < b->arrive_seq;
}

static int no_class(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	(void)s;
	(void)a;
	(void)b;
	return 0;
}

/* ---- priority: lower value first; SGLang's preemption threshold ---- */

static bool prio_before(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	if (a->prio != b->prio)
		return a->prio < b->prio;
	return fcfs_before(s, a, b);
}

static int prio_victim(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	(void)s;
	return a->prio > b->prio ? -1 : a->prio < b->prio ? 1 : 0;
}

static bool prio_outranks(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	return (int64_t)b->prio - a->prio > (int64_t)s->cfg.priority_threshold;
}

/*
 * ---- slo: FlowPrefill's sign(slack)/deadline, highest first ----
 * slack = deadline - now - predicted TTFT (the linear prefill model over
 * the tokens left). Feasible requests (slack >= 0) by earliest deadline,
 * then requests without an SLO (key 0) in arrival order, then late ones by
 * latest deadline. hclass caches the class; a waiting request's slack only
 * shrinks, so the queue moves a feasible one to late when it reaches the
 * top (sched_queue.c).
 */
static bool slo_before(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	if (a->hclass != b->hclass)
		return a->hclass < b->hclass;
	if (a->hclass == 0 && a->deadline != b->deadline)
		return a->deadline < b->deadline;
	if (a->hclass == 2 && a->deadline != b->deadline)
		return a->deadline > b->deadline;
	return fcfs_before(s, a, b);
}

/* Best effort (no SLO, or offline) first, then the latest deadline. */
static int slo_victim(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	bool ea = !a->deadline || (a->flags & ACCEL_SCHED_REQ_OFFLINE);
	bool eb = !b->deadline || (b->flags & ACCEL_SCHED_REQ_OFFLINE);

	(void)s;
	if (ea != eb)
		return ea ? -1 : 1;
	if (a->deadline != b->deadline)
		return a->deadline > b->deadline ? -1 : 1;
	return 0;
}

static bool slo_outranks(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	(void)s;
	/* Only a request that can still meet its deadline (hclass 0). */
	return a->deadline && !a->hclass && !(a->flags & ACCEL_SCHED_REQ_OFFLINE) &&
	       (!b->deadline || (b->flags & ACCEL_SCHED_REQ_OFFLINE));
}

/* ---- fair: VTC, the client with the smallest virtual counter (sched_queue.c) ---- */

static int fair_victim(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	uint64_t ca = s->vtc[a->client], cb = s->vtc[b->client];

	return ca > cb ? -1 : ca < cb ? 1 : 0;
}

/* ---- hybrid: HyGen, online first, offline preempted first ---- */

static bool hybrid_before(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	bool oa = a->flags & ACCEL_SCHED_REQ_OFFLINE, ob = b->flags & ACCEL_SCHED_REQ_OFFLINE;

	if (oa != ob)
		return !oa;
	return fcfs_before(s, a, b);
}

static int hybrid_victim(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	bool oa = a->flags & ACCEL_SCHED_REQ_OFFLINE, ob = b->flags & ACCEL_SCHED_REQ_OFFLINE;

	(void)s;
	return oa == ob ? 0 : oa ? -1 : 1;
}

static bool hybrid_outranks(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	(void)s;
	return !(a->flags & ACCEL_SCHED_REQ_OFFLINE) && (b->flags & ACCEL_SCHED_REQ_OFFLINE);
}

/* ---- the victim scans, each with its class order inlined ---- */

static uint32_t fcfs_pick(struct accel_sched *s, bool in_step)
{
	return sched_victim_scan(s, in_step, no_class);
}

static uint32_t prio_pick(struct accel_sched *s, bool in_step)
{
	return sched_victim_scan(s, in_step, prio_victim);
}

static uint32_t slo_pick(struct accel_sched *s, bool in_step)
{
	return sched_victim_scan(s, in_step, slo_victim);
}

static uint32_t fair_pick(struct accel_sched *s, bool in_step)
{
	return sched_victim_scan(s, in_step, fair_victim);
}

static uint32_t hybrid_pick(struct accel_sched *s, bool in_step)
{
	return sched_victim_scan(s, in_step, hybrid_victim);
}

const struct sched_ops sched_ops[ACCEL_SCHED_NR_POLICIES] = {
	[ACCEL_SCHED_FCFS] = { "fcfs", fcfs_before, no_class, NULL, fcfs_pick },
	[ACCEL_SCHED_PRIORITY] = { "priority", prio_before, prio_victim, prio_outranks,
				   prio_pick },
	[ACCEL_SCHED_SLO] = { "slo", slo_before, slo_victim, slo_outranks, slo_pick },
	[ACCEL_SCHED_FAIR] = { "fair", fcfs_before, fair_victim, NULL, fair_pick },
	[ACCEL_SCHED_HYBRID] = { "hybrid", hybrid_before, hybrid_victim, hybrid_outranks,
				 hybrid_pick },
};
