/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvacceld - the daemon's state: engines connected to the socket, hand-offs
 * in flight, the pressure round, counters for the metrics. One main thread
 * changes it (the sd-event loop in kvacceld.c); the metrics thread reads
 * it. Both hold kvd.lock while they touch it.
 */
#ifndef KVD_H
#define KVD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "kvacceld.h"
#include "kvaccel_netlink.h"

struct kvnl;
struct kvd;
typedef struct sd_event sd_event;
typedef struct sd_event_source sd_event_source;

/*
 * A message waiting in a connection's output queue (the peer's socket
 * buffer was full): its bytes and its own duplicates of the fds it
 * carries, closed if the connection dies before it is sent.
 */
struct kvd_out {
	struct kvd_out *next;
	unsigned int nfds;
	int fds[KVD_HANDOFF_MAX_FDS];
	size_t size;
	uint64_t msg[];			/* @size bytes, 8-aligned */
};

/* A peer whose queue would pass any of these is dropped (it does not read). */
#define KVD_OUT_MAX_MSGS	256
#define KVD_OUT_MAX_BYTES	(1u << 20)
#define KVD_OUT_MAX_FDS		1024

/** A connection to the engine socket: an engine once it has registered. */
struct kvd_conn {
	struct kvd_conn *next;
	struct kvd *d;
	int fd;
	sd_event_source *src;		/* EPOLLIN, and EPOLLOUT while @out is not empty */
	/* The output queue, oldest first; its counts under kvd.lock (the metrics read them). */
	struct kvd_out *out, **out_tail;
	unsigned int out_msgs, out_fds;
	size_t out_bytes;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool admin;			/* uid 0 or in the admin group */
	bool registered;
	bool dead;			/* sending failed: dropped by kvd_reap() */
	const char *dead_why;
	uint64_t id;
	char name[KVD_NAME_MAX];
	uint32_t priority;
	/* From its REGISTER: its KVD_PROTO_REVISION, the features both sides know, its incarnation. */
	uint32_t revision;
	uint64_t features;
	uint64_t incarnation;
	uint64_t quota;			/* last granted or read from the kernel */
	/* The release request it has not answered yet (round 0: none). */
	uint64_t release_round;
	int64_t release_deadline;	/* CLOCK_MONOTONIC ns */
	bool asked_this_round;
	uint64_t releases_asked, releases_ignored, released_bytes;
};

/** A hand-off the daemon holds fds for until the receiver acknowledges. */
struct kvd_xfer {
	struct kvd_xfer *next;
	uint64_t id, tag;
	uint64_t incarnation;		/* the sender's, from its REGISTER (0: none) */
	char from[KVD_NAME_MAX], to[KVD_NAME_MAX];
	bool offered;			/* sent to the receiver */
	uint32_t count;
	int fds[KVD_HANDOFF_MAX_FDS];
	struct kvd_obj objs[KVD_HANDOFF_MAX_FDS];
	uint64_t inos[KVD_HANDOFF_MAX_FDS];	/* the dma-bufs' inodes: their fd store names */
	int64_t queued, deadline;	/* CLOCK_MONOTONIC ns */
};

struct kvd {
	const struct kvd_config *cfg;
	struct kvnl *nl;		/* requests (main thread) */
	sd_event *ev;
	int listen_fd;
	bool listen_activated;		/* from systemd (sd_listen_fds): not ours to unlink */
	sd_event_source *listen_src;
	/* The fd store (FDSTORE=1): used when the service manager listens (NOTIFY_SOCKET). */
	bool fdstore;
	int state_fd;			/* memfd "handoffs": the hand-offs' records, -1: none */
	gid_t admin_gid;
	bool admin_gid_set;
	pthread_mutex_t lock;		/* everything below, against the metrics thread */
	struct kvd_conn *conns;
	struct kvd_xfer *xfers;
	uint64_t next_conn_id, next_xfer_id;
	/* Pressure: the kernel's state and the daemon's round. */
	bool pressure;
	uint64_t round;			/* current or last round */
	bool round_active;
	int64_t round_retry;		/* when to start another round under pressure */
	/* Engines that left recently, to name them in the kernel's client-close events. */
	struct { pid_t pid; char name[KVD_NAME_MAX]; } gone[64];
	unsigned int gone_next;
	/* Counters. */
	uint64_t events[KVACCEL_CMD_MAX + 1];
	uint64_t handoffs_done, handoffs_failed, handoffs_timed_out;
	uint64_t rounds, rounds_resolved, releases_asked, releases_ignored;
	uint64_t conns_total, protocol_errors;
	uint64_t slow_peers_dropped;	/* output queue past its bounds */
};

int64_t kvd_now(void);
/* Log a line: to the journal under systemd, else to stderr. */
void kvd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* engines.c: the socket. */
/* Bind the socket, or (@activated >= 0) serve the service manager's listening one. */
int kvd_socket_open(struct kvd *d, int activated);
void kvd_socket_close(struct kvd *d);
/* The engine socket's listening fd became readable. */
void kvd_accept(struct kvd *d);
/* The admin group changed (reload): every connection's admin right again. */
void kvd_conns_admin_update(struct kvd *d);
/* Handle what @c sent; false when the connection is closed (and freed). */
bool kvd_conn_input(struct kvd *d, struct kvd_conn *c);
void kvd_conn_drop(struct kvd *d, struct kvd_conn *c, const char *why);
/*
 * Send to a peer, never waiting: what its socket cannot take now is queued
 * (with duplicates of @fds) and sent when it is writable. 0 (sent or
 * queued), or -errno when the peer is marked dead (sending failed, or its
 * queue passed its bounds).
 */
int kvd_send(struct kvd_conn *c, const void *msg, const int *fds, unsigned int nfds);
/* Drop the peers marked dead. */
void kvd_reap(struct kvd *d);
struct kvd_conn *kvd_conn_by_name(struct kvd *d, const char *name);
int kvd_send_error(struct kvd *d, struct kvd_conn *c, uint64_t seq, unsigned int type,
		   int error, bool closing, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
/* procs.c: the kernel's per-process accounting, one dump for all processes. */
struct kvd_proc {
	pid_t pid;
	uint64_t usage, quota;
};

struct kvd_procs {
	struct kvd_proc *p;
	size_t n, cap;
};

int kvd_procs_read(struct kvnl *nl, struct kvd_procs *ps);
const struct kvd_proc *kvd_procs_find(const struct kvd_procs *ps, pid_t pid);
void kvd_procs_free(struct kvd_procs *ps);
/* One process's usage and quota (0s if it has no client). */
int kvd_proc_usage(struct kvd *d, pid_t pid, uint64_t *usage, uint64_t *quota);

/* handoffs.c: the two-phase hand-off broker. */
int kvd_handoff_queue(struct kvd *d, struct kvd_conn *c, const struct kvd_handoff *m,
		      int *fds);
int kvd_handoff_ack(struct kvd *d, struct kvd_conn *c, const struct kvd_handoff_ack *m);
/* A receiver registered: offer what waits for it. */
void kvd_handoff_offer_waiting(struct kvd *d, struct kvd_conn *c);
/* A receiver left: what was offered to it waits for it again. */
void kvd_handoff_conn_gone(struct kvd *d, struct kvd_conn *c);
void kvd_handoff_expire(struct kvd *d, int64_t now);
void kvd_handoff_free_all(struct kvd *d);
/*
 * The fd store: hand-offs given back by the service manager at start
 * (@fds/@names from sd_listen_fds_with_names(), those not the socket's),
 * taken or closed.
 */
void kvd_handoff_restore(struct kvd *d, int *fds, char **names, unsigned int n);
int64_t kvd_handoff_next_deadline(const struct kvd *d);

/* pressure.c: rounds of release requests. */
void kvd_pressure_event(struct kvd *d, bool on, uint64_t usage);
/* 0, or -EPROTO for an answer to a round that never was. */
int kvd_pressure_released(struct kvd *d, struct kvd_conn *c, const struct kvd_released *m);
/* An engine asked in this round left. */
void kvd_pressure_conn_gone(struct kvd *d);
void kvd_pressure_tick(struct kvd *d, int64_t now);
int64_t kvd_pressure_next_deadline(const struct kvd *d);

/* metrics.c: Prometheus text over libmicrohttpd. */
int kvd_metrics_start(struct kvd *d);
void kvd_metrics_stop(void);

#endif
