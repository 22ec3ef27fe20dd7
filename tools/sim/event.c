// SPDX-License-Identifier: MIT
/* kvaccel-sim - the event heap (see event.h). */
#include <stdlib.h>
#include <string.h>

#include "event.h"

static int before(const struct sim_event *a, const struct sim_event *b)
{
	if (a->t_ns != b->t_ns)
		return a->t_ns < b->t_ns;
	return a->seq < b->seq;
}

void sim_heap_init(struct sim_heap *h)
{
	memset(h, 0, sizeof(*h));
}

void sim_heap_free(struct sim_heap *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

int sim_heap_push(struct sim_heap *h, uint64_t t_ns, uint32_t type, uint32_t arg)
{
	struct sim_event ev = { .t_ns = t_ns, .type = type, .arg = arg };
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct sim_event *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	ev.seq = h->next_seq++;
	for (i = h->n++; i > 0; i = (i - 1) / 2) {
		size_t parent = (i - 1) / 2;

		if (!before(&ev, &h->v[parent]))
			break;
		h->v[i] = h->v[parent];
	}
	h->v[i] = ev;
	return 0;
}

int sim_heap_pop(struct sim_heap *h, struct sim_event *ev)
{
	struct sim_event last;
	size_t i = 0;

	if (!h->n)
		return 0;
	*ev = h->v[0];
	last = h->v[--h->n];
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return 1;
}

const struct sim_event *sim_heap_peek(const struct sim_heap *h)
{
	return h->n ? &h->v[0] : NULL;
}
