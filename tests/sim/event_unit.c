// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim's event core (tools/sim/event.c): events come out by time, those of the same
 * instant in the order they were pushed; a long random mix of pushes and pops against a
 * reference (sorted by time, then insertion order).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "event.h"

static void test_empty(void **state)
{
	struct sim_heap h;
	struct sim_event ev;

	(void)state;
	sim_heap_init(&h);
	assert_null(sim_heap_peek(&h));
	assert_int_equal(sim_heap_pop(&h, &ev), 0);
	sim_heap_free(&h);
}

static void test_order(void **state)
{
	static const uint64_t t[] = { 50, 10, 40, 30, 20, 60, 0, 70 };
	struct sim_heap h;
	struct sim_event ev;
	uint64_t last = 0;
	size_t i;

	(void)state;
	sim_heap_init(&h);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(sim_heap_push(&h, t[i], SIM_EV_ARRIVAL, (uint32_t)i), 0);
	assert_int_equal(sim_heap_peek(&h)->t_ns, 0);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(sim_heap_pop(&h, &ev), 1);
		assert_true(ev.t_ns >= last);
		assert_int_equal(ev.t_ns, t[ev.arg]);
		last = ev.t_ns;
	}
	assert_int_equal(sim_heap_pop(&h, &ev), 0);
	sim_heap_free(&h);
}

/* Ties come out in push order, whatever the types, interleaved with other times. */
static void test_ties(void **state)
{
	struct sim_heap h;
	struct sim_event ev;
	uint32_t i;

	(void)state;
	sim_heap_init(&h);
	for (i = 0; i < 100; i++) {
		assert_int_equal(sim_heap_push(&h, 1000, i % 3, i), 0);
		assert_int_equal(sim_heap_push(&h, 2000 - i, SIM_EV_STEP_END, 1000 + i), 0);
	}
	for (i = 0; i < 100; i++) {
		assert_int_equal(sim_heap_pop(&h, &ev), 1);
		assert_int_equal(ev.t_ns, 1000);
		assert_int_equal(ev.arg, i);
		assert_int_equal(ev.type, i % 3);
	}
	for (i = 0; i < 100; i++) {
		assert_int_equal(sim_heap_pop(&h, &ev), 1);
		assert_int_equal(ev.t_ns, 1901 + i);
	}
	sim_heap_free(&h);
}

/* The reference: a FIFO per time (pushes come in insertion order). */
#define TIMES 512

struct fifo {
	uint32_t *arg;
	size_t head, n, cap;
};

/*
 * 200000 operations, pushes (times drawn from a small range, so ties are common) and pops in a
 * random mix, then a drain: every pop is the reference's least (time, insertion order).
 */
static void test_many(void **state)
{
	enum { OPS = 200000 };
	struct fifo *q = calloc(TIMES, sizeof(*q));
	uint64_t rng = 88172645463325252ull;
	size_t n = 0, pops = 0, t, k;
	struct sim_heap h;
	struct sim_event ev;
	int i;

	(void)state;
	assert_non_null(q);
	sim_heap_init(&h);
	for (i = 0; i < OPS || n; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		if (n && (i >= OPS || rng % 9 < 4)) {
			for (t = 0; t < TIMES && q[t].head == q[t].n; t++)
				;
			assert_true(t < TIMES);
			assert_int_equal(sim_heap_pop(&h, &ev), 1);
			assert_int_equal(ev.t_ns, t);
			assert_int_equal(ev.arg, q[t].arg[q[t].head]);
			q[t].head++;
			n--;
			pops++;
			continue;
		}
		t = (rng >> 8) % TIMES;
		if (q[t].n == q[t].cap) {
			q[t].cap = q[t].cap ? 2 * q[t].cap : 16;
			q[t].arg = realloc(q[t].arg, q[t].cap * sizeof(*q[t].arg));
			assert_non_null(q[t].arg);
		}
		q[t].arg[q[t].n++] = (uint32_t)i;
		assert_int_equal(sim_heap_push(&h, t, SIM_EV_ARRIVAL, (uint32_t)i), 0);
		n++;
	}
	assert_int_equal(sim_heap_pop(&h, &ev), 0);
	assert_true(pops > OPS / 3);
	for (k = 0; k < TIMES; k++)
		free(q[k].arg);
	free(q);
	sim_heap_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
