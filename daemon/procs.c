// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the kernel's per-process accounting (usage, quota), read in
 * one CLIENT_GET dump: one entry per process, not per open file. Used
 * where the daemon needs several processes at once (the admin list, a
 * pressure round's choice, the metrics) so that a step costs one dump,
 * not one per engine.
 */
#include <errno.h>
#include <stdlib.h>

#include "kvd.h"
#include "kvnl.h"

static int proc_cb(const struct kvnl_msg *m, void *arg)
{
	struct kvd_procs *ps = arg;
	struct kvd_proc *p;
	uint32_t pid;

	if (!kvnl_u32(m, KVACCEL_A_PID, &pid) || kvd_procs_find(ps, (pid_t)pid))
		return 0;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 64;
		struct kvd_proc *np = realloc(ps->p, cap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		ps->p = np;
		ps->cap = cap;
	}
	p = &ps->p[ps->n++];
	p->pid = (pid_t)pid;
	p->usage = 0;
	p->quota = 0;
	kvnl_u64(m, KVACCEL_A_USAGE, &p->usage);
	kvnl_u64(m, KVACCEL_A_QUOTA, &p->quota);
	return 0;
}

int kvd_procs_read(struct kvnl *nl, struct kvd_procs *ps)
{
	ps->n = 0;
	return kvnl_exec(nl, kvnl_request(nl, KVACCEL_CMD_CLIENT_GET, true), proc_cb, ps);
}

const struct kvd_proc *kvd_procs_find(const struct kvd_procs *ps, pid_t pid)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (ps->p[i].pid == pid)
			return &ps->p[i];
	return NULL;
}

void kvd_procs_free(struct kvd_procs *ps)
{
	free(ps->p);
	ps->p = NULL;
	ps->n = ps->cap = 0;
}

int kvd_proc_usage(struct kvd *d, pid_t pid, uint64_t *usage, uint64_t *quota)
{
	struct kvd_procs ps = { 0 };
	const struct kvd_proc *p;
	int ret = kvd_procs_read(d->nl, &ps);

	p = ret ? NULL : kvd_procs_find(&ps, pid);
	*usage = p ? p->usage : 0;
	*quota = p ? p->quota : 0;
	kvd_procs_free(&ps);
	return ret;
}
