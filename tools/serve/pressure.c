// SPDX-License-Identifier: MIT
/* kvaccel-serve - kvacceld's pressure rounds answered through the scheduler (pressure.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvd_int.h"

static int on_release(void *arg, uint64_t bytes, uint64_t *released)
{
	struct serve_kvd *k = arg;
	struct accel_sched_stats before = { .sz = sizeof(before) }, after = { .sz = sizeof(after) };
	int ret;

	if (!k->d) {
		*released = 0;	/* nothing to release before the engine is made */
		return 0;
	}
	serve_driver_stats(k->d, &before);
	ret = serve_driver_pressure(k->d, bytes, released);
	serve_driver_stats(k->d, &after);
	k->rounds++;
	fprintf(stderr, "kvaccel-serve: kvacceld asks for %llu bytes: %llu released "
		"(%llu swap-outs, %llu dropped for recompute)%s%s\n",
		(unsigned long long)bytes, (unsigned long long)*released,
		(unsigned long long)(after.swaps_out - before.swaps_out),
		(unsigned long long)(after.recomputes - before.recomputes),
		ret ? ": " : "", ret ? strerror(-ret) : "");
	return 0;
}

struct serve_kvd *serve_kvd_connect(const char *name, uint32_t prio, struct serve_driver *d,
				    char *err, size_t errlen)
{
	static const struct accel_engine_ops ops = { .release = on_release,
						     .receive = serve_kvd_receive,
						     .handoff_done = serve_kvd_handoff_done };
	struct serve_kvd *k = calloc(1, sizeof(*k));

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->d = d;
	k->e = accel_engine_connect(NULL, name, prio, &ops, k);
	if (!k->e) {
		snprintf(err, errlen, "registering with kvacceld as '%s': %s", name,
			 strerror(errno));
		free(k);
		return NULL;
	}
	return k;
}

void serve_kvd_set_driver(struct serve_kvd *k, struct serve_driver *d)
{
	if (k)
		k->d = d;
}

void serve_kvd_close(struct serve_kvd *k)
{
	if (!k)
		return;
	serve_kvd_migrations_end(k);
	serve_moe_peer_destroy(k->mp);
	accel_engine_close(k->e);
	free(k);
}

int serve_kvd_fd(const struct serve_kvd *k)
{
	return k ? accel_engine_fd(k->e) : -1;
}

void serve_kvd_dispatch(struct serve_kvd *k)
{
	int ret;

	if (!k)
		return;
	ret = accel_engine_dispatch(k->e, 0);
	if (ret == -ECONNRESET) {
		ret = accel_engine_reconnect(k->e);
		fprintf(stderr, "kvaccel-serve: kvacceld went away; %s\n",
			ret ? "not back yet (retried at the next message)" : "registered again");
	}
}

uint64_t serve_kvd_rounds(const struct serve_kvd *k)
{
	return k ? k->rounds : 0;
}
