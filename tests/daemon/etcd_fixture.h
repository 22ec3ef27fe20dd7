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
};

/* The etcd binary, or NULL when there is none (the caller skips). */
const char *etcdfx_binary(void);
/* Start etcd (ports chosen when 0) and wait until it answers: 0 or -errno. */
int etcdfx_start(struct etcdfx *fx);
/* SIGKILL it (the data dir stays, for a restart on the same ports). */
void etcdfx_kill(struct etcdfx *fx);
/* Kill it and remove its data dir. */
void etcdfx_stop(struct etcdfx *fx);
/* A free TCP port on 127.0.0.1. */
int etcdfx_free_port(void);

#endif
