/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A real etcd for native tests: started on free loopback ports with a
 * data dir of its own, killed (and its dir removed) at stop, at exit and
 * when the test process dies (PR_SET_PDEATHSIG). Tests SKIP when
 * /usr/bin/etcd (or $ETCD) is absent.
 */
#ifndef ETCD_FIXTURE_H
#define ETCD_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

struct etcdfx {
	pid_t pid;
	int client_port, peer_port;
	char dir[64];
	char url[64];			/* http://127.0.0.1:PORT */
	/* A member of a cluster (etcdfx_start_members()): its name and the cluster's peers. */
	char name[16];
	char cluster[512];
};

/* The etcd binary, or NULL when there is none (the caller skips). */
const char *etcdfx_binary(void);
/* Start etcd (ports chosen when 0) and wait until it answers: 0 or -errno. */
int etcdfx_start(struct etcdfx *fx);
/*
 * Start @n members of one cluster (m1..mN, free ports), each as
 * etcdfx_start() would; 0 once all answer, or -errno (all stopped).
 * A member killed with etcdfx_kill() restarts with etcdfx_start().
 */
int etcdfx_start_members(struct etcdfx *fx, unsigned int n);
/* Wait until every running member of @fx (@n) answers healthy: 0 or -ETIMEDOUT. */
int etcdfx_wait_members(struct etcdfx *fx, unsigned int n);
/* SIGKILL it (the data dir stays, for a restart on the same ports). */
void etcdfx_kill(struct etcdfx *fx);
/* Kill it and remove its data dir. */
void etcdfx_stop(struct etcdfx *fx);
/* A free TCP port on 127.0.0.1. */
int etcdfx_free_port(void);

#endif
