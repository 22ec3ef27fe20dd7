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
 * hand-offs offered to it and answers only its own release requests. Admin
 * requests (%KVD_MSG_LIST_ENGINES, %KVD_MSG_LIST_HANDOFFS) need uid 0 or
 * membership of the daemon's admin group.
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
/** KVD_FEATURES - mask of the features this header knows. */
#define KVD_FEATURES		(KVD_FEAT_INCARNATION | KVD_FEAT_SENDER)
/** KVD_SOCKET_PATH - the daemon's default socket. */
#define KVD_SOCKET_PATH		"/run/kvacceld/engine.sock"
/** KVD_MSG_MAX - the largest message, header included. */
#define KVD_MSG_MAX		4096
/** KVD_NAME_MAX - bytes of a name, its terminating NUL included. */
#define KVD_NAME_MAX		32
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
	KVD_MSG_TYPE_MAX = KVD_MSG_ERROR,
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

/** enum kvd_obj_kind - what a handed-off fd is. */
enum kvd_obj_kind {
	KVD_OBJ_REGION = 1,
	KVD_OBJ_SPACE = 2,
};

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

#endif /* _UAPI_KVACCELD_H_ */
