// SPDX-License-Identifier: MIT
/*
 * libaccel - the scheduler's queues: waiting and swapped requests in a heap
 * in the policy's order (slo: feasible, no SLO, late), or per-client FIFOs
 * (fair: the client with the smallest virtual counter first); and the
 * running list, in admission order.
 */
#include <stdlib.h>

#include "../internal.h"
#include "../bm/bm.h"
#include "sched.h"

static void heap_set(struct accel_sched *s, struct squeue *q, uint32_t i, uint32_t id)
{
	q->heap[i] = id;
	R(s, id)->hidx = i;
}

static void heap_up(struct accel_sched *s, struct squeue *q, uint32_t i)
{
	uint32_t id = q->heap[i];

	while (i) {
		uint32_t p = (i - 1) / 2;

		if (!q_before(s, id, q->heap[p]))
			break;
		heap_set(s, q, i, q->heap[p]);
		i = p;
	}
	heap_set(s, q, i, id);
}

static void heap_down(struct accel_sched *s, struct squeue *q, uint32_t i)
{
	uint32_t id = q->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= q->n)
			break;
		if (c + 1 < q->n && q_before(s, q->heap[c + 1], q->heap[c]))
			c++;
		if (!q_before(s, q->heap[c], id))
			break;
		heap_set(s, q, i, q->heap[c]);
		i = c;
	}
	heap_set(s, q, i, id);
}

static uint8_t slo_class(const struct accel_sched *s, const struct sreq *r)
{
	uint64_t need;

	if (!r->deadline)
		return 1;
	need = s->now + predict_prefill(s, r->nr_tok - r->computed);
	return need <= r->deadline ? 0 : 2;
}

uint64_t sched_fair_min_active(const struct accel_sched *s, uint32_t except)
{
	uint64_t m = UINT64_MAX;
	uint32_t c;

	for (c = 0; c < s->cfg.max_clients; c++)
		if (c != except && s->client_active[c] && s->vtc[c] < m)
			m = s->vtc[c];
	return m;
}

void sched_q_push(struct accel_sched *s, struct squeue *q, struct sreq *r)
{
	uint32_t id = rid(s, r);

	r->inq = q->id;
	if (is_fair(s)) {
		uint32_t c = r->client;

		r->qnext = SREQ_NONE;
		r->qprev = q->tail[c];
		if (q->tail[c] != SREQ_NONE)
			R(s, q->tail[c])->qnext = id;
		else
			q->head[c] = id;
		q->tail[c] = id;
		q->count[c]++;
		q->n++;
		return;
	}
	if (s->cfg.policy == ACCEL_SCHED_SLO)
		r->hclass = slo_class(s, r);
	q->heap[q->n++] = id;
	heap_up(s, q, q->n - 1);
}

void sched_q_remove(struct accel_sched *s, struct squeue *q, struct sreq *r)
{
	uint32_t i, last;

	r->inq = 0;
	if (is_fair(s)) {
		uint32_t c = r->client;

		if (r->qprev != SREQ_NONE)
			R(s, r->qprev)->qnext = r->qnext;
		else
			q->head[c] = r->qnext;
		if (r->qnext != SREQ_NONE)
			R(s, r->qnext)->qprev = r->qprev;
		else
			q->tail[c] = r->qprev;
		q->count[c]--;
		q->n--;
		return;
	}
	i = r->hidx;
	last = q->heap[--q->n];
	if (i == q->n)
		return;
	heap_set(s, q, i, last);
	heap_down(s, q, i);
	heap_up(s, q, R(s, last)->hidx);
}

/* The queue's first request, or SREQ_NONE. */
uint32_t sched_q_peek(struct accel_sched *s, struct squeue *q)
{
	if (!q->n)
		return SREQ_NONE;
	if (is_fair(s)) {
		uint32_t c, best = SREQ_NONE;

		for (c = 0; c < s->cfg.max_clients; c++) {
			if (!q->count[c])
				continue;
			if (best == SREQ_NONE || s->vtc[c] < s->vtc[best])
				best = c;
		}
		return q->head[best];
	}
	if (s->cfg.policy == ACCEL_SCHED_SLO) {
		/* A feasible request whose slack ran out is late from now on. */
		while (R(s, q->heap[0])->hclass == 0 && slo_class(s, R(s, q->heap[0])) == 2) {
			R(s, q->heap[0])->hclass = 2;
			heap_down(s, q, 0);
		}
	}
	return q->heap[0];
}

/* ---- the running list ---- */

/* A running request that bounds hybrid's step (an online one with a TPOT). */
static bool paces(const struct sreq *r)
{
	return !(r->flags & ACCEL_SCHED_REQ_OFFLINE) && r->tpot_slo;
}

void sched_running_add(struct accel_sched *s, struct sreq *r)
{
	r->ridx = s->nr_running;
	r->admit_seq = ++s->seqno;
	s->running[s->nr_running++] = rid(s, r);
	if (!paces(r) || s->tpot_stale || r->tpot_slo > s->tpot_min)
		return;
	if (r->tpot_slo < s->tpot_min) {
		s->tpot_min = r->tpot_slo;
		s->tpot_min_n = 0;
	}
	s->tpot_min_n++;
}

void sched_running_del(struct accel_sched *s, struct sreq *r)
{
	uint32_t i;

	if (r->ridx == SREQ_NONE)
		return;
	for (i = r->ridx; i + 1 < s->nr_running; i++) {
		s->running[i] = s->running[i + 1];
		R(s, s->running[i])->ridx = i;
	}
	s->nr_running--;
	r->ridx = SREQ_NONE;
	if (paces(r) && !s->tpot_stale && r->tpot_slo == s->tpot_min && !--s->tpot_min_n)
		s->tpot_stale = true;
}

uint64_t sched_tpot_min(struct accel_sched *s)
{
	uint32_t i;

	if (!s->tpot_stale)
		return s->tpot_min;
	s->tpot_min = UINT64_MAX;
	s->tpot_min_n = 0;
	for (i = 0; i < s->nr_running; i++) {
		const struct sreq *r = R(s, s->running[i]);

		if (!paces(r) || r->tpot_slo > s->tpot_min)
			continue;
		if (r->tpot_slo < s->tpot_min) {
			s->tpot_min = r->tpot_slo;
			s->tpot_min_n = 0;
		}
		s->tpot_min_n++;
	}
	s->tpot_stale = false;
	return s->tpot_min;
}

/* ---- setup ---- */

int sched_q_init(struct squeue *q, uint8_t id, uint32_t max_req, uint32_t clients)
{
	uint32_t c;

	q->id = id;
	q->heap = calloc(max_req, sizeof(*q->heap));
	q->head = calloc(clients, sizeof(*q->head));
	q->tail = calloc(clients, sizeof(*q->tail));
	q->count = calloc(clients, sizeof(*q->count));
	if (!q->heap || !q->head || !q->tail || !q->count)
		return -ENOMEM;
	for (c = 0; c < clients; c++)
		q->head[c] = q->tail[c] = SREQ_NONE;
	return 0;
}

void sched_q_fini(struct squeue *q)
{
	free(q->heap);
	free(q->head);
	free(q->tail);
	free(q->count);
}
