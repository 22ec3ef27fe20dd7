/* SPDX-License-Identifier: MIT */
/* kvaccel-serve - the driver's internals, shared by driver.c and driver_migrate.c. */
#ifndef SERVE_DRIVER_INT_H
#define SERVE_DRIVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "driver.h"

struct dslot {
	bool used;		/* under d->lock */
	bool pending;		/* under d->lock: no engine request yet */
	bool failed;		/* the engine could not take it: aborted */
	uint32_t gen;		/* uses of the slot: tags of its earlier requests are stale */
	uint32_t sreq;		/* the scheduler's id */
	uint32_t eid;		/* the engine's, 0 while pending */
	int32_t *prompt;	/* under d->lock, while pending */
	uint32_t n_prompt;
	struct serve_params p;
	/* Live migration (driver_migrate.c): SLOT_MIGR_*, and the scheduler's last word on it. */
	uint8_t migr;
	struct accel_sched_req_info sinfo;
};

#define SLOT_MIGR_OUT	1	/* taken out of the scheduler, on its way */
#define SLOT_MIGR_GONE	2	/* another engine has it */

struct serve_driver {
	struct serve_driver_opts o;
	struct accel_sched *sched;
	pthread_mutex_t lock;
	struct dslot *slot;
	uint32_t nr_slots, max_h;	/* max_h: handles below it may be in use */
	/* A step's arrays. */
	struct accel_sched_run *runs;
	struct accel_sched_swap *swaps;
	struct accel_sched_event ev[256];	/* more changes come with the next step */
	struct serve_compute *comp;
	uint32_t *offsets, *ids, max_ids, max_runs;
	struct accel_bm_run *plan_runs;
	uint32_t max_plan_runs;
	/* Swaps on the mover: the reaper thread reports their ends as they come. */
	atomic_uint swaps_in_flight;
	atomic_uint swaps_ended;	/* since the last step looked */
	pthread_t reaper;
	int stop_fd;
	bool reaper_started;
	/* With opts.step_log: t0, a step returned 0 since the last line, each swap's start. */
	uint64_t log_t0;
	bool log_idle;
	uint64_t *swap_t0, *swap_blocks;
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline struct dslot *slot_of(struct serve_driver *d, uint32_t h)
{
	return h && h <= d->nr_slots && d->slot[h - 1].used ? &d->slot[h - 1] : NULL;
}

/* The scheduler's tag: the handle and the slot's generation (events may outlive a request). */
static inline uint64_t tag_of(const struct dslot *s, uint32_t h)
{
	return (uint64_t)s->gen << 32 | h;
}

static inline struct dslot *slot_of_tag(struct serve_driver *d, uint64_t tag)
{
	struct dslot *s = slot_of(d, (uint32_t)tag);

	return s && s->gen == (uint32_t)(tag >> 32) ? s : NULL;
}

/*
 * A free slot, its generation bumped and max_h covering it (d->lock held):
 * NULL when every slot is in use. *i is its index (its handle is i + 1).
 */
static inline struct dslot *slot_new_locked(struct serve_driver *d, uint32_t *i)
{
	for (*i = 0; *i < d->nr_slots; (*i)++) {
		struct dslot *s = &d->slot[*i];

		if (s->used)
			continue;
		s->gen++;
		if (*i + 1 > d->max_h)
			d->max_h = *i + 1;
		return s;
	}
	return NULL;
}

#endif /* SERVE_DRIVER_INT_H */
