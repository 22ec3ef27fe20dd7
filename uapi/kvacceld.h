/* SPDX-License-Identifier: MIT */
/*
 * kvacceld - the engine socket: the messages between serving engines (and
 * kvaccelctl) and the node daemon. Documentation/kvacceld.rst describes the
 * protocol; libaccel's accel_engine_* calls implement the engine side.
 *
 * Transport: a Unix socket of type SOCK_SEQPACKET (default path
 * %KVD_SOCKET_PATH): one message per packet, at most %KVD_MSG_MAX bytes,
 * each starting with &struct kvd_hdr. Fds (dma-bufs of kvaccel regions and
 * spaces) travel as SCM_RIGHTS ancillary data of the message that lists
 * them, never with any other message.
 *
 * Rules: all integers are in the host's byte order (the socket is local);
 * structures have no holes and every pad is zero; a message type keeps its
 * layout for a given %KVD_PROTO_VERSION, and new types are only appended.
 *
 * Growth: a structure only grows at its end, and a zero in a new field
 * means the old behaviour. A message shorter than its type's current size
 * but at least its first size is read with the missing fields as zero (an
 * older peer); a longer one is accepted when every byte past the known
 * size is zero (a newer peer) and refused otherwise. REGISTER and its reply
 * exchange the two sides' %KVD_PROTO_REVISION and %KVD_FEATURES; each side
 * sends the other only what both know (revision 0: the first layouts).
 *
 * A message that is malformed (short, oversized, wrong size for its type,
 * non-zero pad or unknown trailing bytes, unterminated name, fds where none
 * belong, a packet of 0 bytes with fds), of an unknown type or version, or
 * out of order (anything but %KVD_MSG_REGISTER or an admin request before
 * registering) gets a %KVD_MSG_ERROR reply and the daemon closes the
 * connection; the fds that came with it are closed. A request that is well formed but refused
 * (permission, unknown target, no room) gets a %KVD_MSG_ERROR reply and the
 * connection stays open.
 *
 * Identity: the daemon identifies peers with SO_PEERCRED. An engine acts
 * only on itself: its quota is its own process's, it acknowledges only the
 * hand-offs offered to it and answers only its own release requests and
 * migrations. Admin requests (%KVD_MSG_LIST_ENGINES, %KVD_MSG_LIST_HANDOFFS,
 * %KVD_MSG_MIGRATE_REQ, %KVD_MSG_DRAIN, %KVD_MSG_LIST_MIGRATIONS,
 * %KVD_MSG_LIST_CLUSTER) need uid 0 or membership of the daemon's admin
 * group.
 */
#ifndef _UAPI_KVACCELD_H_
#define _UAPI_KVACCELD_H_

#include <linux/const.h>
#include <linux/types.h>

/** KVD_PROTO_VERSION - &kvd_hdr.version of this protocol. */
#define KVD_PROTO_VERSION	1
/**
 * KVD_PROTO_REVISION - the compatible revision of %KVD_PROTO_VERSION this
 * header describes, exchanged in &kvd_register.revision and
 * &kvd_registered.revision. 0: the first layouts (REGISTER 56 bytes,
 * REGISTERED 32, no &struct kvd_handoff_ext); 1: negotiation, incarnations,
 * messages that grow at their end.
 */
#define KVD_PROTO_REVISION	1
/**
 * KVD_FEAT_INCARNATION - hand-offs carry &struct kvd_handoff_ext, the
 * sending engine's incarnation: receivers recognise a resend by
 * (incarnation, tag), so a restarted sender may use its tags again.
 */
#define KVD_FEAT_INCARNATION	_BITULL(0)
/**
 * KVD_FEAT_SENDER - offers carry the sending process's credentials as the
 * daemon saw them (SO_PEERCRED): &kvd_handoff_ext.uid, .pid and .flags
 * after the incarnation. A receiver that does not know it gets the 8-byte
 * extension of %KVD_FEAT_INCARNATION only.
 */
#define KVD_FEAT_SENDER		_BITULL(1)
/**
 * KVD_FEAT_MIGRATION - the engine takes part in live migrations of its
 * running requests: it reports its load (%KVD_MSG_LOAD) and understands
 * %KVD_MSG_MIGRATE, %KVD_MSG_MIGRATE_ABORT and %KVD_MSG_EXIT. The daemon
 * sends those only to an engine whose REGISTER announced this bit, and
 * migrates requests only between two such engines.
 */
#define KVD_FEAT_MIGRATION	_BITULL(2)
/**
 * KVD_FEAT_CLUSTER - the daemon knows %KVD_MSG_LIST_CLUSTER: the view of
 * the cluster it keeps through etcd (an ERROR with -ENOTCONN when its
 * [cluster] part is off). An engine announcing it asks for nothing more.
 */
#define KVD_FEAT_CLUSTER	_BITULL(3)
/**
 * KVD_FEAT_XMIGRATION - with %KVD_FEAT_MIGRATION: the engine migrates
 * requests to engines of other nodes itself, over the transport whose
 * address it announces (%KVD_MSG_XFER_ADDR: where it listens for other
 * nodes' migrations in), and understands %KVD_MSG_MIGRATE_REMOTE.
 */
#define KVD_FEAT_XMIGRATION	_BITULL(4)
/** KVD_FEATURES - mask of the features this header knows. */
#define KVD_FEATURES		(KVD_FEAT_INCARNATION | KVD_FEAT_SENDER | KVD_FEAT_MIGRATION | \
				 KVD_FEAT_CLUSTER | KVD_FEAT_XMIGRATION)
/** KVD_SOCKET_PATH - the daemon's default socket. */
#define KVD_SOCKET_PATH		"/run/kvacceld/engine.sock"
/** KVD_MSG_MAX - the largest message, header included. */
#define KVD_MSG_MAX		4096
/** KVD_NAME_MAX - bytes of a name, its terminating NUL included. */
#define KVD_NAME_MAX		32
/** KVD_NODE_MAX - bytes of a node's name (the cluster view's), its NUL included. */
#define KVD_NODE_MAX		64
/** KVD_XFER_ADDR_MAX - bytes of a transfer address ("HOST:PORT"), its NUL included. */
#define KVD_XFER_ADDR_MAX	64
/** KVD_HANDOFF_MAX_FDS - most objects one hand-off carries. */
#define KVD_HANDOFF_MAX_FDS	16
/** KVD_PRIORITY_MAX - the highest priority class (0 is the lowest). */
#define KVD_PRIORITY_MAX	7

/**
 * enum kvd_msg_type - message types. E: engine to daemon, D: daemon to
 * engine, A: admin client to daemon.
 * @KVD_MSG_REGISTER: E, &struct kvd_register; first message of an engine.
 *	Reply %KVD_MSG_REGISTERED.
 * @KVD_MSG_REGISTERED: D, &struct kvd_registered.
 * @KVD_MSG_QUOTA: E, &struct kvd_quota: ask for a quota of @bytes for the
 *	engine's process. Reply %KVD_MSG_QUOTA_GRANTED, or %KVD_MSG_ERROR
 *	with -ENOSPC when the node cannot promise it.
 * @KVD_MSG_QUOTA_GRANTED: D, &struct kvd_quota: what is now the quota.
 * @KVD_MSG_RELEASE: D, &struct kvd_release: free @bytes (swap or evict)
 *	before the deadline, then answer %KVD_MSG_RELEASED.
 * @KVD_MSG_RELEASED: E, &struct kvd_released.
 * @KVD_MSG_HANDOFF: E, &struct kvd_handoff plus one fd per object: hand
 *	the objects to engine @peer. Reply %KVD_MSG_HANDOFF_QUEUED; later
 *	%KVD_MSG_HANDOFF_DONE. The sender keeps its own handles until DONE.
 * @KVD_MSG_HANDOFF_QUEUED: D, &struct kvd_handoff_id.
 * @KVD_MSG_HANDOFF_OFFER: D, &struct kvd_handoff (@peer is the sender)
 *	plus the fds. Answer %KVD_MSG_HANDOFF_ACK once the objects are held.
 * @KVD_MSG_HANDOFF_ACK: E, &struct kvd_handoff_ack.
 * @KVD_MSG_HANDOFF_DONE: D, &struct kvd_handoff_ack: the receiver's
 *	answer (or the daemon's: -ETIMEDOUT), for the sender.
 * @KVD_MSG_LIST_ENGINES: A, header only. Replies: one %KVD_MSG_ENGINE_INFO
 *	per registered engine, then %KVD_MSG_END.
 * @KVD_MSG_ENGINE_INFO: D, &struct kvd_engine_info.
 * @KVD_MSG_LIST_HANDOFFS: A, header only. Replies: one
 *	%KVD_MSG_HANDOFF_INFO per hand-off in flight, then %KVD_MSG_END.
 * @KVD_MSG_HANDOFF_INFO: D, &struct kvd_handoff_info.
 * @KVD_MSG_END: D, header only: the end of a list.
 * @KVD_MSG_ERROR: D, &struct kvd_error.
 * @KVD_MSG_LOAD: E, &struct kvd_load plus @count &struct kvd_load_req: the
 *	engine's load and its migration candidates, sent when it changes. No
 *	reply (an ERROR if it is refused).
 * @KVD_MSG_MIGRATE: D, &struct kvd_migrate, to an engine with
 *	%KVD_FEAT_MIGRATION: move request @req to engine @to. Answer
 *	%KVD_MSG_MIGRATE_STARTED (or a refusal in it), later %KVD_MSG_MIGRATED.
 * @KVD_MSG_MIGRATE_STARTED: E, &struct kvd_migrate_started.
 * @KVD_MSG_MIGRATED: E, &struct kvd_migrated: the source's account of a
 *	migration that is over.
 * @KVD_MSG_MIGRATE_ABORT: D, &struct kvd_migrate_abort, to both engines of
 *	a migration that is over without them (the other left, or it timed out).
 * @KVD_MSG_EXIT: D, header only, to a draining engine with nothing left to
 *	run: finish and exit.
 * @KVD_MSG_MIGRATE_REQ: A, &struct kvd_migrate_req: a manual migration.
 *	Reply %KVD_MSG_MIGRATION_INFO (the migration asked for) or ERROR.
 * @KVD_MSG_DRAIN: A, &struct kvd_drain: migrate all of an engine's
 *	requests away, then tell it to exit. Reply %KVD_MSG_END or ERROR.
 * @KVD_MSG_LIST_MIGRATIONS: A, header only. Replies: one
 *	%KVD_MSG_MIGRATION_INFO per migration in flight, per recently finished
 *	one and per engine draining, then %KVD_MSG_END.
 * @KVD_MSG_MIGRATION_INFO: D, &struct kvd_migration_info.
 * @KVD_MSG_LIST_CLUSTER: A, header only. Replies: one %KVD_MSG_CLUSTER_INFO
 *	of kind %KVD_CLUSTER_STATUS, one per node and one per engine of the
 *	cluster view, then %KVD_MSG_END; %KVD_MSG_ERROR with -ENOTCONN when
 *	the cluster part is not enabled.
 * @KVD_MSG_CLUSTER_INFO: D, &struct kvd_cluster_info.
 * @KVD_MSG_XFER_ADDR: E, &struct kvd_xfer_addr, from an engine with
 *	%KVD_FEAT_XMIGRATION: where it takes migrations from other nodes (the
 *	daemon publishes it in the cluster view). No reply (an ERROR if it is
 *	refused).
 * @KVD_MSG_MIGRATE_REMOTE: D, &struct kvd_migrate_remote, to an engine with
 *	%KVD_FEAT_XMIGRATION: move request @req to engine @to of node @node,
 *	which listens at @addr. Answered as %KVD_MSG_MIGRATE.
 */
enum kvd_msg_type {
	KVD_MSG_REGISTER = 1,
	KVD_MSG_REGISTERED,
	KVD_MSG_QUOTA,
	KVD_MSG_QUOTA_GRANTED,
	KVD_MSG_RELEASE,
	KVD_MSG_RELEASED,
	KVD_MSG_HANDOFF,
	KVD_MSG_HANDOFF_QUEUED,
	KVD_MSG_HANDOFF_OFFER,
	KVD_MSG_HANDOFF_ACK,
	KVD_MSG_HANDOFF_DONE,
	KVD_MSG_LIST_ENGINES,
	KVD_MSG_ENGINE_INFO,
	KVD_MSG_LIST_HANDOFFS,
	KVD_MSG_HANDOFF_INFO,
	KVD_MSG_END,
	KVD_MSG_ERROR,
	KVD_MSG_LOAD,
	KVD_MSG_MIGRATE,
	KVD_MSG_MIGRATE_STARTED,
	KVD_MSG_MIGRATED,
	KVD_MSG_MIGRATE_ABORT,
	KVD_MSG_EXIT,
	KVD_MSG_MIGRATE_REQ,
	KVD_MSG_DRAIN,
	KVD_MSG_LIST_MIGRATIONS,
	KVD_MSG_MIGRATION_INFO,
	KVD_MSG_LIST_CLUSTER,
	KVD_MSG_CLUSTER_INFO,
	KVD_MSG_XFER_ADDR,
	KVD_MSG_MIGRATE_REMOTE,
	KVD_MSG_TYPE_MAX = KVD_MSG_MIGRATE_REMOTE,
};

/**
 * struct kvd_hdr - the start of every message.
 * @version: %KVD_PROTO_VERSION.
 * @type: &enum kvd_msg_type.
 * @size: bytes of the message, this header included.
 * @seq: chosen by the sender of a request, copied into its replies (0 in
 *	messages the daemon starts: RELEASE, HANDOFF_OFFER, HANDOFF_DONE).
 */
struct kvd_hdr {
	__u16 version;
	__u16 type;
	__u32 size;
	__u64 seq;
};

/**
 * struct kvd_register - %KVD_MSG_REGISTER.
 * @hdr: header.
 * @name: the engine's name, NUL-terminated, unique on the node: letters,
 *	digits, '-', '_', '.'.
 * @priority: priority class, 0 (released first) to %KVD_PRIORITY_MAX.
 * @flags: none known yet (%KVD_REGISTER_FLAGS); others give -EBADMSG.
 * @revision: the engine's %KVD_PROTO_REVISION (0: an older engine, whose
 *	REGISTER ends before this field).
 * @pad: 0.
 * @features: the %KVD_FEATURES the engine knows; the daemon uses those it
 *	knows too, and ignores the others.
 * @incarnation: a random non-zero id of the sending engine's instance,
 *	chosen once per engine object (kept when it reconnects, new when the
 *	engine restarts); 0: none. The daemon forwards it with the engine's
 *	hand-offs (&struct kvd_handoff_ext).
 *
 * Revision 0 of this message is 56 bytes long (up to @flags).
 */
struct kvd_register {
	struct kvd_hdr hdr;
	char name[KVD_NAME_MAX];
	__u32 priority;
	__u32 flags;
	__u32 revision;
	__u32 pad;
	__u64 features;
	__u64 incarnation;
};

/** KVD_REGISTER_FLAGS - mask of known &kvd_register.flags: none. */
#define KVD_REGISTER_FLAGS	0u

/**
 * struct kvd_registered - %KVD_MSG_REGISTERED.
 * @hdr: header.
 * @engine_id: the daemon's id of this connection.
 * @quota: the process's quota as the kernel has it (0: none), so an engine
 *	that reconnects to a restarted daemon keeps what it was granted.
 * @revision: the daemon's %KVD_PROTO_REVISION.
 * @pad: 0.
 * @features: the features both sides know (the engine's &kvd_register.features
 *	the daemon knows too): what the connection uses from now on.
 *
 * An engine whose REGISTER had revision 0 gets the 32 bytes of revision 0
 * (up to @quota); a shorter reply from an older daemon means revision 0 and
 * no features.
 */
struct kvd_registered {
	struct kvd_hdr hdr;
	__u64 engine_id;
	__u64 quota;
	__u32 revision;
	__u32 pad;
	__u64 features;
};

/**
 * struct kvd_quota - %KVD_MSG_QUOTA and %KVD_MSG_QUOTA_GRANTED.
 * @hdr: header.
 * @bytes: bytes asked for (a multiple of 1 MiB) or granted.
 */
struct kvd_quota {
	struct kvd_hdr hdr;
	__u64 bytes;
};

/**
 * struct kvd_release - %KVD_MSG_RELEASE.
 * @hdr: header.
 * @round: the pressure round asking.
 * @bytes: bytes the daemon would like freed.
 * @deadline_ms: milliseconds the engine has to answer.
 * @pad: 0.
 */
struct kvd_release {
	struct kvd_hdr hdr;
	__u64 round;
	__u64 bytes;
	__u32 deadline_ms;
	__u32 pad;
};

/**
 * struct kvd_released - %KVD_MSG_RELEASED.
 * @hdr: header.
 * @round: &kvd_release.round answered.
 * @bytes: bytes the engine freed (may be 0).
 */
struct kvd_released {
	struct kvd_hdr hdr;
	__u64 round;
	__u64 bytes;
};

/**
 * enum kvd_obj_kind - what a handed-off fd is.
 * @KVD_OBJ_REGION: a dma-buf of a kvaccel region.
 * @KVD_OBJ_SPACE: a dma-buf of a kvaccel space.
 * @KVD_OBJ_MEMFD: a sealed memfd (F_SEAL_SHRINK, F_SEAL_GROW and
 *	F_SEAL_WRITE at least) of at most %KVD_MEMFD_MAX bytes: a small
 *	state, such as a migrating request's, sent with its pages.
 */
enum kvd_obj_kind {
	KVD_OBJ_REGION = 1,
	KVD_OBJ_SPACE = 2,
	KVD_OBJ_MEMFD = 3,
};

/** KVD_MEMFD_MAX - the largest %KVD_OBJ_MEMFD object, in bytes (64 MiB). */
#define KVD_MEMFD_MAX		(64ULL << 20)

/**
 * struct kvd_obj - one handed-off object.
 * @kind: &enum kvd_obj_kind.
 * @pad: 0.
 * @size: its size in bytes.
 */
struct kvd_obj {
	__u32 kind;
	__u32 pad;
	__u64 size;
};

/**
 * struct kvd_handoff - %KVD_MSG_HANDOFF and %KVD_MSG_HANDOFF_OFFER; the
 * message goes on with @count entries of @objs, then, where the connection
 * uses %KVD_FEAT_INCARNATION, a &struct kvd_handoff_ext; it carries @count
 * fds.
 * @hdr: header.
 * @peer: HANDOFF: the receiving engine; OFFER: the sending engine.
 * @tag: the sender's name for this hand-off, unique among its pending
 *	hand-offs: the receiver uses (sender, incarnation, tag) to recognise
 *	an offer it already took (a resend after a daemon restart) and
 *	acknowledges it again.
 * @id: OFFER: the daemon's id, named by the ACK; HANDOFF: 0.
 * @count: objects, 1 to %KVD_HANDOFF_MAX_FDS.
 * @pad: 0.
 * @objs: the objects, in the order of the fds.
 */
struct kvd_handoff {
	struct kvd_hdr hdr;
	char peer[KVD_NAME_MAX];
	__u64 tag;
	__u64 id;
	__u32 count;
	__u32 pad;
	struct kvd_obj objs[];
};

/**
 * struct kvd_handoff_ext - what follows the objects of a &struct
 * kvd_handoff on a connection that uses %KVD_FEAT_INCARNATION. A hand-off
 * without it has incarnation 0. Its first 8 bytes (@incarnation) are
 * revision 1's; the rest is there only in offers to a connection that uses
 * %KVD_FEAT_SENDER (a shorter extension reads as zeros: sender unknown).
 * @incarnation: OFFER: the sending engine's &kvd_register.incarnation (0:
 *	it has none); HANDOFF: 0 or the sender's own, as it registered.
 * @uid: OFFER: the sending process's user (valid with
 *	%KVD_SENDER_KNOWN); HANDOFF: 0.
 * @pid: OFFER: the sending process, in the daemon's pid namespace (0:
 *	unknown, e.g. not in it); HANDOFF: 0.
 * @flags: OFFER: %KVD_SENDER_KNOWN when @uid and @pid are the daemon's
 *	(0: unknown, an older daemon); HANDOFF: 0. Others: -EBADMSG.
 * @pad: 0.
 */
struct kvd_handoff_ext {
	__u64 incarnation;
	__u32 uid;
	__u32 pid;
	__u32 flags;
	__u32 pad;
};

/** KVD_SENDER_KNOWN - &kvd_handoff_ext.uid and .pid say who sent the offer. */
#define KVD_SENDER_KNOWN	_BITUL(0)
/** KVD_SENDER_FLAGS - mask of known &kvd_handoff_ext.flags. */
#define KVD_SENDER_FLAGS	KVD_SENDER_KNOWN
/** KVD_HANDOFF_EXT_V1_SIZE - the extension's size in revision 1 (@incarnation only). */
#define KVD_HANDOFF_EXT_V1_SIZE	8

/**
 * struct kvd_handoff_id - %KVD_MSG_HANDOFF_QUEUED.
 * @hdr: header (@seq: the HANDOFF's).
 * @id: the daemon's id of the hand-off.
 * @tag: the sender's tag.
 */
struct kvd_handoff_id {
	struct kvd_hdr hdr;
	__u64 id;
	__u64 tag;
};

/**
 * struct kvd_handoff_ack - %KVD_MSG_HANDOFF_ACK and %KVD_MSG_HANDOFF_DONE.
 * @hdr: header.
 * @id: the hand-off.
 * @tag: DONE: the sender's tag; ACK: 0.
 * @status: 0 when the receiver holds the objects, or -errno.
 * @pad: 0.
 */
struct kvd_handoff_ack {
	struct kvd_hdr hdr;
	__u64 id;
	__u64 tag;
	__s32 status;
	__u32 pad;
};

/**
 * struct kvd_engine_info - %KVD_MSG_ENGINE_INFO.
 * @hdr: header.
 * @name: the engine's name.
 * @engine_id: its id.
 * @pid: its process (in the daemon's pid namespace).
 * @uid: its user.
 * @priority: its priority class.
 * @pad: 0.
 * @quota: the process's quota (kernel's view).
 * @usage: the process's usage (kernel's view).
 * @releases_asked: release requests sent to it.
 * @releases_ignored: release requests it let pass their deadline.
 */
struct kvd_engine_info {
	struct kvd_hdr hdr;
	char name[KVD_NAME_MAX];
	__u64 engine_id;
	__u32 pid;
	__u32 uid;
	__u32 priority;
	__u32 pad;
	__u64 quota;
	__u64 usage;
	__u64 releases_asked;
	__u64 releases_ignored;
};

/**
 * struct kvd_handoff_info - %KVD_MSG_HANDOFF_INFO.
 * @hdr: header.
 * @from: the sending engine.
 * @to: the receiving engine.
 * @id: the hand-off.
 * @tag: the sender's tag.
 * @count: objects.
 * @state: 0: waiting for the receiver to register; 1: offered.
 * @bytes: total size of the objects.
 * @age_ms: milliseconds since the daemon queued it.
 */
struct kvd_handoff_info {
	struct kvd_hdr hdr;
	char from[KVD_NAME_MAX];
	char to[KVD_NAME_MAX];
	__u64 id;
	__u64 tag;
	__u32 count;
	__u32 state;
	__u64 bytes;
	__u64 age_ms;
};

/**
 * struct kvd_error - %KVD_MSG_ERROR.
 * @hdr: header (@seq: the request's, 0 if it could not be read).
 * @error: -errno.
 * @type: the type of the request refused (0 if unknown).
 * @closing: 1 when the daemon closes the connection after this message.
 * @pad: 0.
 * @message: what was wrong, NUL-terminated.
 */
struct kvd_error {
	struct kvd_hdr hdr;
	__s32 error;
	__u16 type;
	__u8 closing;
	__u8 pad;
	char message[128];
};

/** KVD_LOAD_REQS_MAX - most candidates in one %KVD_MSG_LOAD. */
#define KVD_LOAD_REQS_MAX	64

/**
 * struct kvd_load_req - a migration candidate: a running request the
 * engine could move to another engine.
 * @req: the engine's id of the request (unique in the engine while it runs).
 * @tokens: its tokens (prompt and generated so far): its length.
 * @blocks: compute-tier blocks it holds (what the destination needs free).
 * @priority: its priority, the engine's scale (higher: more important).
 * @flags: none known yet (%KVD_LOAD_REQ_FLAGS); others: -EBADMSG.
 */
struct kvd_load_req {
	__u64 req;
	__u32 tokens;
	__u32 blocks;
	__s32 priority;
	__u32 flags;
};

/** KVD_LOAD_REQ_FLAGS - mask of known &kvd_load_req.flags: none. */
#define KVD_LOAD_REQ_FLAGS	0u

/**
 * KVD_LOAD_NO_INBOUND - &kvd_load.flags: the engine takes no migrations
 * in for now (the daemon sends it none; a manual one gets -EOPNOTSUPP).
 */
#define KVD_LOAD_NO_INBOUND	_BITUL(0)
/** KVD_LOAD_FLAGS - mask of known &kvd_load.flags. */
#define KVD_LOAD_FLAGS		KVD_LOAD_NO_INBOUND

/**
 * struct kvd_load - %KVD_MSG_LOAD; the message goes on with @count entries
 * of &struct kvd_load_req (its size is exactly that).
 * @hdr: header.
 * @block_bytes: bytes of one compute-tier block.
 * @blocks_total: compute-tier blocks the engine has.
 * @blocks_free: of those, blocks free (<= @blocks_total).
 * @running: requests running (decoding or prefilling).
 * @waiting: requests waiting to be admitted.
 * @hol_blocks: blocks the head-of-line waiting request needs to be
 *	admitted (0 when @waiting is 0).
 * @flags: %KVD_LOAD_FLAGS.
 * @count: candidates that follow, 0 to %KVD_LOAD_REQS_MAX.
 * @pad: 0.
 * @reqs: the candidates.
 */
struct kvd_load {
	struct kvd_hdr hdr;
	__u64 block_bytes;
	__u32 blocks_total;
	__u32 blocks_free;
	__u32 running;
	__u32 waiting;
	__u32 hol_blocks;
	__u32 flags;
	__u32 count;
	__u32 pad;
	struct kvd_load_req reqs[];
};

/**
 * enum kvd_migrate_reason - why a migration was chosen.
 * @KVD_MIGRATE_MANUAL: an admin's %KVD_MSG_MIGRATE_REQ.
 * @KVD_MIGRATE_DRAIN: the source engine is draining.
 * @KVD_MIGRATE_PRESSURE: the source's head-of-line waiting request did not
 *	fit: room made for it.
 * @KVD_MIGRATE_BALANCE: the source's virtual usage was the highest, by
 *	more than the balance threshold over the destination's.
 */
enum kvd_migrate_reason {
	KVD_MIGRATE_MANUAL = 1,
	KVD_MIGRATE_DRAIN = 2,
	KVD_MIGRATE_PRESSURE = 3,
	KVD_MIGRATE_BALANCE = 4,
};

/**
 * struct kvd_migrate - %KVD_MSG_MIGRATE.
 * @hdr: header (@seq 0).
 * @id: the daemon's id of the migration (unique, never 0), named by every
 *	message about it.
 * @req: the request to move (&kvd_load_req.req).
 * @to: the destination engine.
 * @reason: &enum kvd_migrate_reason.
 * @pad: 0.
 */
struct kvd_migrate {
	struct kvd_hdr hdr;
	__u64 id;
	__u64 req;
	char to[KVD_NAME_MAX];
	__u32 reason;
	__u32 pad;
};

/**
 * struct kvd_migrate_remote - %KVD_MSG_MIGRATE_REMOTE.
 * @hdr: header (@seq 0).
 * @id: as &kvd_migrate.id.
 * @req: the request to move.
 * @node: the destination's node (a name of the cluster view).
 * @to: the destination engine there.
 * @addr: its transfer address, as it announced it (%KVD_MSG_XFER_ADDR).
 * @reason: &enum kvd_migrate_reason.
 * @pad: 0.
 *
 * The source connects to @addr and moves the request itself (for
 * kvaccel-serve: multi-stage pre-copy over UCX); the destination's daemon
 * takes no part. Answered %KVD_MSG_MIGRATE_STARTED, then %KVD_MSG_MIGRATED.
 */
struct kvd_migrate_remote {
	struct kvd_hdr hdr;
	__u64 id;
	__u64 req;
	char node[KVD_NODE_MAX];
	char to[KVD_NAME_MAX];
	char addr[KVD_XFER_ADDR_MAX];
	__u32 reason;
	__u32 pad;
};

/**
 * struct kvd_xfer_addr - %KVD_MSG_XFER_ADDR.
 * @hdr: header (@seq 0).
 * @addr: "HOST:PORT" where the engine listens for migrations from other
 *	nodes; "" withdraws it.
 */
struct kvd_xfer_addr {
	struct kvd_hdr hdr;
	char addr[KVD_XFER_ADDR_MAX];
};

/**
 * struct kvd_migrate_started - %KVD_MSG_MIGRATE_STARTED.
 * @hdr: header.
 * @id: &kvd_migrate.id.
 * @status: 0: started (%KVD_MSG_MIGRATED follows); -errno: refused (over).
 * @pad: 0.
 */
struct kvd_migrate_started {
	struct kvd_hdr hdr;
	__u64 id;
	__s32 status;
	__u32 pad;
};

/**
 * struct kvd_migrated - %KVD_MSG_MIGRATED, from the source.
 * @hdr: header.
 * @id: &kvd_migrate.id.
 * @status: 0: the destination runs the request now; -errno: it failed
 *	and the source runs it again.
 * @blocks: blocks moved.
 * @downtime_us: microseconds the request did not decode.
 * @total_us: microseconds from MIGRATE to the end.
 * @bytes_copied: bytes the engines moved or copied for it.
 */
struct kvd_migrated {
	struct kvd_hdr hdr;
	__u64 id;
	__s32 status;
	__u32 blocks;
	__u64 downtime_us;
	__u64 total_us;
	__u64 bytes_copied;
};

/**
 * struct kvd_migrate_abort - %KVD_MSG_MIGRATE_ABORT.
 * @hdr: header (@seq 0).
 * @id: &kvd_migrate.id.
 * @req: the request (the source's id of it).
 * @error: why: -ECONNRESET (the other engine left), -ETIMEDOUT (not over
 *	within migration_timeout_ms).
 * @pad: 0.
 *
 * The source runs the request again; the destination frees what it set
 * up for it. An id the engine does not know is ignored.
 */
struct kvd_migrate_abort {
	struct kvd_hdr hdr;
	__u64 id;
	__u64 req;
	__s32 error;
	__u32 pad;
};

/**
 * struct kvd_migrate_req - %KVD_MSG_MIGRATE_REQ.
 * @hdr: header.
 * @engine: the source engine.
 * @to: the destination engine.
 * @req: the request, one of the source's candidates.
 * @to_node: "" (@to is an engine of this node), or the node of the cluster
 *	view whose engine @to is (the daemon sends the source
 *	%KVD_MSG_MIGRATE_REMOTE).
 *
 * Errors: -ENOENT (no such engine, or no such candidate), -EINVAL (@to is
 * @engine), -EOPNOTSUPP (an engine without %KVD_FEAT_MIGRATION, or a
 * destination draining or not taking migrations in), -ENOSPC (the
 * destination's free blocks are fewer than the request's), -EBUSY (the
 * request migrates already, or an engine is at its maximum of
 * migrations at a time). With @to_node: -ENOENT (no such node or engine in
 * the cluster view), -EOPNOTSUPP (the source or the destination without
 * %KVD_FEAT_XMIGRATION and a transfer address, or the daemon without a
 * cluster view), -ESTALE (the view is stale), -ENOSPC as above by the
 * view's free blocks.
 */
struct kvd_migrate_req {
	struct kvd_hdr hdr;
	char engine[KVD_NAME_MAX];
	char to[KVD_NAME_MAX];
	__u64 req;
	char to_node[KVD_NODE_MAX];
};

/** KVD_DRAIN_CANCEL - &kvd_drain.flags: stop draining the engine. */
#define KVD_DRAIN_CANCEL	_BITUL(0)
/** KVD_DRAIN_FLAGS - mask of known &kvd_drain.flags. */
#define KVD_DRAIN_FLAGS		KVD_DRAIN_CANCEL

/**
 * struct kvd_drain - %KVD_MSG_DRAIN.
 * @hdr: header.
 * @engine: the engine to drain.
 * @flags: %KVD_DRAIN_FLAGS.
 * @pad: 0.
 *
 * Errors: -ENOENT (no such engine), -EOPNOTSUPP (it has not announced
 * %KVD_FEAT_MIGRATION).
 */
struct kvd_drain {
	struct kvd_hdr hdr;
	char engine[KVD_NAME_MAX];
	__u32 flags;
	__u32 pad;
};

/**
 * enum kvd_migration_state - &kvd_migration_info.state.
 * @KVD_MIG_ASKED: MIGRATE sent, the source has not answered.
 * @KVD_MIG_RUNNING: the source started it.
 * @KVD_MIG_DONE: over: the destination runs the request.
 * @KVD_MIG_FAILED: over: refused or failed (&kvd_migration_info.status).
 * @KVD_MIG_ABORTED: over: an engine left or it timed out.
 * @KVD_MIG_DRAINING: not a migration: @from is an engine draining, @blocks
 *	its candidates' blocks left, @req the number of candidates.
 */
enum kvd_migration_state {
	KVD_MIG_ASKED = 1,
	KVD_MIG_RUNNING = 2,
	KVD_MIG_DONE = 3,
	KVD_MIG_FAILED = 4,
	KVD_MIG_ABORTED = 5,
	KVD_MIG_DRAINING = 6,
};

/**
 * struct kvd_migration_info - %KVD_MSG_MIGRATION_INFO.
 * @hdr: header.
 * @id: the migration (0 for %KVD_MIG_DRAINING).
 * @req: the request.
 * @from: the source engine.
 * @to: the destination engine.
 * @state: &enum kvd_migration_state.
 * @reason: &enum kvd_migrate_reason.
 * @status: 0 or -errno (the outcome, once over).
 * @blocks: blocks of the request (as its candidate said, or as moved).
 * @downtime_us: &kvd_migrated.downtime_us (0 until over).
 * @total_us: &kvd_migrated.total_us (0 until over).
 * @bytes_copied: &kvd_migrated.bytes_copied.
 * @age_ms: milliseconds since the daemon asked for it.
 * @to_node: "" (@to is of this node), or the destination's node.
 */
struct kvd_migration_info {
	struct kvd_hdr hdr;
	__u64 id;
	__u64 req;
	char from[KVD_NAME_MAX];
	char to[KVD_NAME_MAX];
	__u32 state;
	__u32 reason;
	__s32 status;
	__u32 blocks;
	__u64 downtime_us;
	__u64 total_us;
	__u64 bytes_copied;
	__u64 age_ms;
	char to_node[KVD_NODE_MAX];
};

/**
 * enum kvd_cluster_kind - &kvd_cluster_info.kind.
 * @KVD_CLUSTER_STATUS: the cluster part itself: @cluster, @node (this
 *	node's name), @flags (%KVD_CLUSTER_STALE, %KVD_CLUSTER_PUBLISHED),
 *	@age_ms, @revision, @lease, the counters, @error, @endpoint in
 *	@ucx_address, @engines (engines in the view), @usage (nodes in it).
 * @KVD_CLUSTER_NODE: a node of the view: @node, @capacity, @limit,
 *	@usage, @flags (%KVD_CLUSTER_PRESSURE, %KVD_CLUSTER_SELF), @engines,
 *	@ucx_address, @age_ms (since it published), @revision.
 * @KVD_CLUSTER_ENGINE: an engine of the view: @node, @name, @priority,
 *	@block_bytes, @blocks_total, @blocks_free, @running, @waiting,
 *	@load_ppm, @flags (%KVD_CLUSTER_DRAINING), @models, @revision.
 */
enum kvd_cluster_kind {
	KVD_CLUSTER_STATUS = 1,
	KVD_CLUSTER_NODE = 2,
	KVD_CLUSTER_ENGINE = 3,
};

/** KVD_CLUSTER_STALE - status: the view may be out of date (etcd unreachable). */
#define KVD_CLUSTER_STALE	_BITUL(0)
/** KVD_CLUSTER_PUBLISHED - status: this node's keys are under a live lease. */
#define KVD_CLUSTER_PUBLISHED	_BITUL(1)
/** KVD_CLUSTER_PRESSURE - node: above its high watermark. */
#define KVD_CLUSTER_PRESSURE	_BITUL(2)
/** KVD_CLUSTER_SELF - node: the daemon's own node. */
#define KVD_CLUSTER_SELF	_BITUL(3)
/** KVD_CLUSTER_DRAINING - engine: it is being drained. */
#define KVD_CLUSTER_DRAINING	_BITUL(4)
/** KVD_CLUSTER_FLAGS - mask of known &kvd_cluster_info.flags. */
#define KVD_CLUSTER_FLAGS	(KVD_CLUSTER_STALE | KVD_CLUSTER_PUBLISHED | \
				 KVD_CLUSTER_PRESSURE | KVD_CLUSTER_SELF | KVD_CLUSTER_DRAINING)

/**
 * struct kvd_cluster_info - %KVD_MSG_CLUSTER_INFO: one entry of the cluster
 * view, or its status (&enum kvd_cluster_kind says which members count;
 * the others are 0).
 * @hdr: header.
 * @kind: &enum kvd_cluster_kind.
 * @flags: %KVD_CLUSTER_FLAGS.
 * @node: a node name (1-63 bytes), NUL-terminated.
 * @name: an engine name.
 * @cluster: the cluster's name (status).
 * @capacity: the node's host memory, bytes.
 * @limit: the node's device limit, bytes (0: none).
 * @usage: the node's pinned memory in use, bytes (status: nodes in the view).
 * @block_bytes: an engine's block size.
 * @priority: an engine's priority.
 * @blocks_total: an engine's KV blocks.
 * @blocks_free: of which free.
 * @running: an engine's running requests.
 * @waiting: its waiting requests.
 * @engines: a node's engines (status: engines in the view).
 * @load_ppm: an engine's load, (total - free) / total, in millionths.
 * @pad: 0.
 * @age_ms: status: milliseconds since the view was last known in sync (0:
 *	it is; -1: never); node: since it last published.
 * @revision: the etcd revision (status: the last seen; node, engine: of
 *	its key).
 * @lease: status: this node's lease ID (0: none).
 * @publishes: status: publications done.
 * @publish_errors: status: publications that failed.
 * @keepalive_errors: status: lease renewals that failed.
 * @watch_restarts: status: watches that broke and were made again.
 * @ignored: status: keys and values under the prefix ignored (garbage).
 * @ucx_address: node: its UCX address for transfers; status: the etcd
 *	endpoint the watch uses; engine: where it takes other nodes'
 *	migrations (%KVD_MSG_XFER_ADDR; "": nowhere).
 * @models: engine: the models it serves, comma-separated.
 * @error: status: the last failure talking to etcd ("" : none).
 */
struct kvd_cluster_info {
	struct kvd_hdr hdr;
	__u32 kind;
	__u32 flags;
	char node[64];
	char name[KVD_NAME_MAX];
	char cluster[64];
	__u64 capacity;
	__u64 limit;
	__u64 usage;
	__u64 block_bytes;
	__u32 priority;
	__u32 blocks_total;
	__u32 blocks_free;
	__u32 running;
	__u32 waiting;
	__u32 engines;
	__u32 load_ppm;
	__u32 pad;
	__s64 age_ms;
	__s64 revision;
	__u64 lease;
	__u64 publishes;
	__u64 publish_errors;
	__u64 keepalive_errors;
	__u64 watch_restarts;
	__u64 ignored;
	char ucx_address[256];
	char models[256];
	char error[200];
};

#endif /* _UAPI_KVACCELD_H_ */
