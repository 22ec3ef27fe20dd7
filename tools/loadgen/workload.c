// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - a workload's storage. */
#include <stdlib.h>
#include <string.h>

#include "workload.h"

struct lg_req *lg_workload_push(struct lg_workload *wl)
{
	struct lg_req *r;

	if (wl->n == wl->cap) {
		size_t cap = wl->cap ? wl->cap * 2 : 64;
		struct lg_req *n = realloc(wl->req, cap * sizeof(*n));

		if (!n)
			return NULL;
		wl->req = n;
		wl->cap = cap;
	}
	r = &wl->req[wl->n++];
	memset(r, 0, sizeof(*r));
	strcpy(r->cls, "online");
	return r;
}

void lg_workload_free(struct lg_workload *wl)
{
	size_t i;

	for (i = 0; i < wl->n; i++) {
		free(wl->req[i].prompt);
		free(wl->req[i].hash_ids);
	}
	free(wl->req);
	memset(wl, 0, sizeof(*wl));
}
