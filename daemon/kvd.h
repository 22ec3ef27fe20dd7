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
struct kvd_cluster;
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

/* Groups of a peer kept for the [tenants] name rules (its gid first). */
#define KVD_PEER_GROUPS_MAX	64

/*
 * What one user (uid) holds in the daemon, against the [tenants] maxima:
 * connections, hand-offs queued by its engines and their fds. Freed when
 * it holds nothing. Not limited: uid 0 and the daemon's own uid.
 */
struct kvd_user {
	struct kvd_user *next;
	uid_t uid;
	bool limited;
	unsigned int conns, handoffs, fds;
	/* A refusal is logged once until the user is back under that maximum. */
	bool warned_conns, warned_handoffs, warned_fds;
};

/* Why a request was refused by the tenant rules, for the metrics. */
enum kvd_refusal {
	KVD_REFUSED_NAME,		/* REGISTER: the name is not the peer's (-EACCES) */
	KVD_REFUSED_PRIORITY,		/* REGISTER: above the ceiling (-EPERM) */
	KVD_REFUSED_HANDOFF,		/* HANDOFF: no allow rule (-EPERM) */
	KVD_REFUSED_CONNECTIONS,	/* connections per user (-EMFILE) */
	KVD_REFUSED_HANDOFFS,		/* hand-offs held per user (-EDQUOT) */
	KVD_REFUSED_FDS,		/* hand-off fds held per user (-EMFILE) */
	KVD_REFUSED_DAEMON_FDS,		/* the daemon's own room for fds (-ENOSPC) */
	KVD_REFUSED_MAX,
};

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
	/* The peer's process, pinned at accept (-1: could not be; procs.c). */
	int pidfd;
	bool pidfd_kernel;		/* from SO_PEERPIDFD, not pidfd_open() of its pid */
	gid_t *groups;			/* its gid, then its supplementary groups */
	unsigned int ngroups;
	struct kvd_user *user;
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
	/* Migrations (migrations.c): its last KVD_MSG_LOAD, as it said it. */
	bool has_load;
	uint64_t block_bytes;
	uint32_t blocks_total, blocks_free, running, waiting, hol_blocks, load_flags;
	unsigned int nreqs;
	struct kvd_load_req reqs[KVD_LOAD_REQS_MAX];
	int64_t load_at;		/* CLOCK_MONOTONIC ns */
	bool draining, exit_sent;
	unsigned int mig_out, mig_in;	/* migrations in flight from it, to it */
	/* Where it takes other nodes' migrations (KVD_MSG_XFER_ADDR; "": nowhere). */
	char xfer_addr[KVD_XFER_ADDR_MAX];
};

/* Migrations finished that the daemon remembers (LIST_MIGRATIONS). */
#define KVD_MIG_HISTORY		32
/* A request whose migrations failed is picked again after 0.5 s, 1 s, 2 s ... 30 s. */
#define KVD_MIG_BACKOFF_MS	500
#define KVD_MIG_BACKOFF_MAX_MS	30000
/* Downtime histogram buckets (upper bounds, microseconds), +Inf after them. */
#define KVD_MIG_DOWNTIME_BUCKETS	9

/** A migration the daemon asked for: in flight, or finished (history). */
struct kvd_mig {
	struct kvd_mig *next;
	uint64_t id, req;
	char from[KVD_NAME_MAX], to[KVD_NAME_MAX];
	char to_node[KVD_NODE_MAX];	/* "": @to is of this node; else of that node (remote) */
	unsigned int state;		/* enum kvd_migration_state */
	unsigned int reason;		/* enum kvd_migrate_reason */
	int status;
	uint32_t blocks;
	uint64_t downtime_us, total_us, bytes_copied;
	int64_t asked, deadline;	/* CLOCK_MONOTONIC ns */
	int64_t ended;			/* in the history: when it ended */
};

/* Why a migration did not succeed, for the metrics. */
enum kvd_mig_fail {
	KVD_MIG_FAIL_REFUSED,		/* MIGRATE_STARTED with -errno */
	KVD_MIG_FAIL_FAILED,		/* MIGRATED with -errno */
	KVD_MIG_FAIL_PEER_GONE,		/* aborted: an engine left */
	KVD_MIG_FAIL_TIMEOUT,		/* aborted: migration_timeout_ms */
	KVD_MIG_FAIL_MAX,
};

/* The migration counters (under kvd.lock). Reasons are indexed by enum kvd_migrate_reason. */
struct kvd_mig_stats {
	uint64_t started[KVD_MIGRATE_BALANCE + 1];
	uint64_t succeeded;
	uint64_t failed[KVD_MIG_FAIL_MAX];
	uint64_t downtime_buckets[KVD_MIG_DOWNTIME_BUCKETS + 1];	/* not cumulative */
	uint64_t downtime_us_sum, downtime_count;
	uint64_t bytes_copied, blocks_moved;
	uint64_t exits_sent;
};

extern const uint64_t kvd_mig_downtime_bounds_us[KVD_MIG_DOWNTIME_BUCKETS];

/** A hand-off the daemon holds fds for until the receiver acknowledges. */
struct kvd_xfer {
	struct kvd_xfer *next;
	uint64_t id, tag;
	uint64_t incarnation;		/* the sender's, from its REGISTER (0: none) */
	char from[KVD_NAME_MAX], to[KVD_NAME_MAX];
	/* The sending process (SO_PEERCRED), for the offer; its user holds this. */
	uid_t from_uid;
	pid_t from_pid;
	struct kvd_user *owner;
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
	uid_t self_uid;			/* the daemon's euid: not limited per user */
	unsigned int held_fds_max;	/* hand-off fds the daemon holds at most (-ENOSPC) */
	pthread_mutex_t lock;		/* everything below, against the metrics thread */
	struct kvd_conn *conns;
	struct kvd_xfer *xfers;
	struct kvd_user *users;
	unsigned int held_fds;		/* of all hand-offs */
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
	uint64_t refused[KVD_REFUSED_MAX];
	uint64_t slow_peers_dropped;	/* output queue past its bounds */
	/* Migrations: in flight (newest first), finished (newest first, at most KVD_MIG_HISTORY). */
	struct kvd_mig *migs, *migs_done;
	unsigned int nmigs_done;
	uint64_t next_mig_id;
	int64_t mig_tick_at;		/* the next policy tick (0: none due) */
	struct kvd_mig_stats mig;
	/* The cluster part ([cluster] enabled; NULL: off). Set and cleared under @lock. */
	struct kvd_cluster *cluster;
	int64_t cl_tick_at;		/* the next facts handed to it (main thread) */
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
/* A user's entry (made on first use; NULL: out of memory). Called with d->lock held. */
struct kvd_user *kvd_user_get(struct kvd *d, uid_t uid);
/* Free @u if it holds nothing any more. Called with d->lock held. */
void kvd_user_put(struct kvd *d, struct kvd_user *u);
/* Count a refusal by the tenant rules. */
void kvd_refused(struct kvd *d, enum kvd_refusal why);
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
/*
 * Pin the process at the other end of @sock (SO_PEERCRED said @pid, @uid):
 * its pidfd from SO_PEERPIDFD (Linux 6.5+; *@kernel = true), else from
 * pidfd_open(@pid) checked to be a live process of @uid. -errno on failure.
 */
int kvd_proc_pin(int sock, pid_t pid, uid_t uid, bool *kernel);
/*
 * Is @pidfd's process alive and still @pid? 0, or -ESRCH. Called right
 * before a netlink request that names the process by pid.
 */
int kvd_proc_check(int pidfd, pid_t pid);

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

/* migrations.c: the live-migration broker, its policy ticks and drains. */
void kvd_mig_load(struct kvd *d, struct kvd_conn *c, const struct kvd_load *m);
/* An engine's answers: 0, or -EPROTO for a migration that is not its own. */
int kvd_mig_started(struct kvd *d, struct kvd_conn *c, const struct kvd_migrate_started *m);
int kvd_mig_migrated(struct kvd *d, struct kvd_conn *c, const struct kvd_migrated *m);
/* Admin requests (the caller checked the right). */
void kvd_mig_request(struct kvd *d, struct kvd_conn *c, const struct kvd_migrate_req *m);
void kvd_mig_drain(struct kvd *d, struct kvd_conn *c, const struct kvd_drain *m);
void kvd_mig_list(struct kvd *d, struct kvd_conn *c, uint64_t seq);
/* An engine left (unlinked already): its migrations aborted, the other sides told. */
void kvd_mig_conn_gone(struct kvd *d, const char *name);
void kvd_mig_tick(struct kvd *d, int64_t now);
int64_t kvd_mig_next_deadline(const struct kvd *d);
void kvd_mig_free_all(struct kvd *d);
/* Shared with migrations_remote.c. */
struct kvd_mig *kvd_mig_new(struct kvd *d, struct kvd_conn *s, struct kvd_conn *t,
			    const char *to, const char *to_node, uint64_t req, uint32_t blocks,
			    unsigned int reason);
bool kvd_mig_busy(const struct kvd *d, const char *from, uint64_t req);
/*
 * Is @req of engine @from backing off at @now: its last K migrations (K > 0)
 * failed, the newest less than KVD_MIG_BACKOFF_MS << (K - 1) ago (at most
 * KVD_MIG_BACKOFF_MAX_MS)? The policy does not pick it then.
 */
bool kvd_mig_backing_off(const struct kvd *d, const char *from, uint64_t req, int64_t now);
const struct kvd_load_req *kvd_mig_candidate(const struct kvd_conn *c, uint64_t req);
int kvd_mig_refuse(struct kvd *d, struct kvd_conn *c, const struct kvd_hdr *h, int error,
		   const char *what, const char *a, const char *b);
void kvd_mig_info_of(const struct kvd_mig *g, struct kvd_migration_info *i, uint64_t seq,
		     int64_t now);

/*
 * migrations_remote.c: migrations to engines of other nodes, picked from
 * the cluster view. A manual one (MIGRATE_REQ with to_node); 0 or the
 * -errno the admin was sent.
 */
int kvd_mig_request_remote(struct kvd *d, struct kvd_conn *c, struct kvd_conn *s,
			   const struct kvd_migrate_req *m);
/*
 * A policy tick's drains that no engine of this node took ([migration]
 * drain_to_other_nodes); a request in its backoff waits (kvd_mig_backing_off()).
 */
void kvd_mig_drain_remote(struct kvd *d, int64_t now);

/* cluster_node.c: this node's facts to the cluster part (cluster.h), its view to admins. */
void kvd_cl_start(struct kvd *d);
void kvd_cl_stop(struct kvd *d);
void kvd_cl_tick(struct kvd *d, int64_t now);
int64_t kvd_cl_next_deadline(const struct kvd *d);
/* KVD_MSG_LIST_CLUSTER (the caller checked the right). */
void kvd_cl_list(struct kvd *d, struct kvd_conn *c, uint64_t seq);

/* pressure.c: rounds of release requests. */
/* The device's state as the kernel has it now (one DEVICE_GET on d->nl). 0 or -errno. */
struct kvd_dev {
	uint64_t limit, usage, low_wm;
	uint8_t pressure;
};
int kvd_dev_read(struct kvd *d, struct kvd_dev *s);
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

/* What a scrape shows, taken under kvd.lock (and from the kernel), then rendered. */
struct kvd_metrics_engine {
	char name[KVD_NAME_MAX];
	uint32_t priority;
	uint64_t usage, quota;		/* quota 0: none (no sample) */
	uint64_t releases_asked, releases_ignored;
	bool draining;
};

/* The standard process_* metrics, from /proc/self. */
struct kvd_process_stats {
	bool ok;
	double cpu_seconds, start_time_seconds;
	uint64_t resident_bytes, virtual_bytes, open_fds, max_fds;	/* max_fds 0: unlimited */
};

struct kvd_metrics_snap {
	bool kernel;			/* the node fields were read */
	uint64_t limit, usage, high_wm, low_wm, regions, clients, copy_jobs, copy_errors;
	bool pressure;
	struct kvd_metrics_engine *engines;
	size_t nengines;
	uint64_t events[KVACCEL_CMD_MAX + 1];
	uint64_t handoffs_done, handoffs_failed, handoffs_timed_out, handoffs_in_flight;
	uint64_t rounds, rounds_resolved, releases_asked, releases_ignored;
	uint64_t conns_total, protocol_errors, refused[KVD_REFUSED_MAX];
	uint64_t users, held_fds;
	struct kvd_mig_stats mig;
	uint64_t migrations_in_flight, engines_draining;
	struct kvd_process_stats proc;
	/* The cluster part (cluster.h): rendered when @cluster. */
	bool cluster;
	bool cluster_stale, cluster_published;
	int64_t cluster_age_ms;
	uint64_t cluster_nodes, cluster_engines;
	uint64_t cluster_publishes, cluster_publish_errors, cluster_keepalive_errors;
	uint64_t cluster_leases, cluster_watch_restarts, cluster_ignored;
};

/* A growing text buffer; @oom once an allocation failed. */
struct kvd_mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Render @s in the text format (0.0.4) into @b: no I/O, no locks. */
void kvd_metrics_render(const struct kvd_metrics_snap *s, struct kvd_mbuf *b);
/* This process's process_* figures. */
void kvd_process_stats(struct kvd_process_stats *p);

#endif
