/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - the discrete-event core: a binary min-heap of events keyed by simulated time
 * (ns), ties broken by insertion order (a sequence number), so that events of the same instant
 * come out in the order they were pushed and a run is the same whatever the heap's layout.
 */
#ifndef SIM_EVENT_H
#define SIM_EVENT_H

#include <stddef.h>
#include <stdint.h>

enum sim_ev_type {
	SIM_EV_ARRIVAL = 0,	/* arg: the workload's request index */
	SIM_EV_STEP_END = 1,	/* arg: unused */
	SIM_EV_SWAP_DONE = 2,	/* arg: the scheduler's request id */
	SIM_EV_TICK = 3,	/* an idle engine polls again (arg: unused) */
	SIM_EV_HANDOFF = 4,	/* a prefill/decode hand-off lands (arg: the request index) */
};

struct sim_event {
	uint64_t t_ns;
	uint64_t seq;		/* insertion order: the tie-break */
	uint32_t type;		/* enum sim_ev_type */
	uint32_t arg;
};

struct sim_heap {
	struct sim_event *v;
	size_t n, cap;
	uint64_t next_seq;
};

void sim_heap_init(struct sim_heap *h);
void sim_heap_free(struct sim_heap *h);
/* 0, or -1 when memory ran out (the heap unchanged). */
int sim_heap_push(struct sim_heap *h, uint64_t t_ns, uint32_t type, uint32_t arg);
/* The earliest event into *ev: 1, or 0 when the heap is empty. */
int sim_heap_pop(struct sim_heap *h, struct sim_event *ev);
/* The earliest event without removing it, or NULL. */
const struct sim_event *sim_heap_peek(const struct sim_heap *h);

#endif
