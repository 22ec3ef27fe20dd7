/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - a socketpair that stands in for kvacceld's hand-offs
 * between two engines (migrate_sock.c): the same fds and the same
 * done-with-status, for tests and benchmarks of a node's migration
 * (migrate_node.h) without the daemon. A peer that dies fails what it did
 * not answer with -ECONNRESET, as a hand-off to an engine that left.
 */
#ifndef SERVE_MIGRATE_SOCK_H
#define SERVE_MIGRATE_SOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "migrate_node.h"

#define SERVE_MSOCK_PENDING_MAX	64

struct serve_msock {
	int sock;		/* one end of a SOCK_SEQPACKET socketpair */
	const char *peer;	/* the other engine's name */
	struct serve_nmig *n;	/* the messages' receiver (set after serve_nmig_create()) */
	bool peer_gone;
	uint64_t pending[SERVE_MSOCK_PENDING_MAX];	/* tags sent, not yet answered */
	uint32_t nr_pending;
	/* Fault injection: _exit(0) on, or take and drop, a message of this kind (0: none). */
	uint32_t die_on, ignore_on;
};

void serve_msock_init(struct serve_msock *ms, int sock, const char *peer);
/** struct serve_nmig_ops.send with @arg a struct serve_msock. */
int serve_msock_send(void *arg, const char *to, uint64_t tag, const int *fds,
		     const enum accel_handoff_kind *kinds, unsigned int n);
/** Take what the peer sent, waiting up to @ms ms for the first frame. */
void serve_msock_pump(struct serve_msock *ms, int ms_wait);

#endif /* SERVE_MIGRATE_SOCK_H */
