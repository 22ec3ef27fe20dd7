/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the C library serving engines link to use kvaccel.
 *
 * Conventions (Documentation/libaccel.rst):
 * - Objects are opaque handles with accel_ names. Every function returns 0
 *   (or a count, or a value documented as such) or a negative errno;
 *   constructors return NULL and set errno. Nothing prints: messages go to
 *   the log callback (accel_set_log()).
 * - Thread safety is stated per object. A device may be used from any
 *   number of threads at once. Regions, spaces and fences may be used
 *   from several threads, but destroying one must not race with any other
 *   call on it, and an object must be destroyed before its device.
 * - Sizes are bytes; timeouts are relative nanoseconds (-1: forever).
 */
#ifndef ACCEL_H
#define ACCEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "accel_bm.h"
#include "accel_moe_plan.h"
#include "accel_mover.h"
#include "accel_offload.h"
#include "accel_sched.h"
#include "accel_xfer.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The kvaccel ABI major version this library speaks. */
#define ACCEL_ABI_MAJOR	1
/** The oldest ABI minor version it needs (1: COPY_SUBMIT status, netlink). */
#define ACCEL_ABI_MINOR_MIN	1

/**
 * ACCEL_OPTS() - declare @NAME, a struct @TYPE that may grow in later
 * versions (its first member is size_t sz, as libbpf's opts): all of it
 * zeroed, padding included, sz set to this header's sizeof, then the
 * fields given. A library older than the header refuses fields it does not
 * know that are not zero (-E2BIG); a newer one reads fields past sz as
 * zero and does not write them.
 *
 *	ACCEL_OPTS(accel_device_info, info);
 *	ret = accel_device_info(dev, &info);
 */
#define ACCEL_OPTS(TYPE, NAME, ...)						\
	struct TYPE NAME = ({							\
		memset(&NAME, 0, sizeof(struct TYPE));				\
		(struct TYPE) { .sz = sizeof(struct TYPE), __VA_ARGS__ };	\
	})

struct accel_device;
struct accel_region;
struct accel_space;
struct accel_fence;
/** A region or a space, where a call takes either (accel_region_obj()). */
struct accel_obj;

/* ---- logging ---------------------------------------------------------- */

enum accel_log_level {
	ACCEL_LOG_ERR = 3,
	ACCEL_LOG_WARNING = 4,
	ACCEL_LOG_INFO = 6,
	ACCEL_LOG_DEBUG = 7,
};

/** Receives the library's messages (never called for level > max_level). */
typedef void (*accel_log_fn)(void *arg, enum accel_log_level level, const char *msg);

/* Process-wide; default: none. Thread-safe. */
void accel_set_log(accel_log_fn fn, void *arg, enum accel_log_level max_level);

/* ---- devices ---------------------------------------------------------- */

#define ACCEL_PATH_MAX	64

/**
 * Find kvaccel devices: accel nodes (/dev/accel/accel*) and render nodes
 * (/dev/dri/renderD*) whose driver is "kvaccel". Fills up to @max paths and
 * returns how many exist (may exceed @max), or -errno.
 */
int accel_device_list(char (*paths)[ACCEL_PATH_MAX], int max);

/**
 * Open a device (NULL: the first one found) and check that it speaks ABI
 * ACCEL_ABI_MAJOR.ACCEL_ABI_MINOR_MIN or a later minor. errno: ENODEV (no
 * kvaccel device, or @path is not one), EPROTO (ABI mismatch: the log says
 * which versions), EACCES, ENOMEM, ...
 */
struct accel_device *accel_device_open(const char *path);
void accel_device_close(struct accel_device *dev);

/*
 * What accel_device_info() reports: an extensible struct (ACCEL_OPTS()).
 * Since LIBACCEL_0.2; binaries built against 0.1's header, whose struct
 * had no sz, keep calling 0.1's accel_device_info (symbol versioning).
 */
struct accel_device_info {
	size_t sz;		/* sizeof(struct accel_device_info): ACCEL_OPTS() */
	char path[ACCEL_PATH_MAX];
	uint32_t abi_major, abi_minor;
	uint64_t caps;		/* KVACCEL_CAP_* bits */
	uint64_t block_sizes;	/* bit n: 2^n-byte blocks supported */
	uint64_t limit;		/* device limit */
	uint64_t usage;		/* device usage */
	uint64_t process_usage;	/* charged to this process */
	uint64_t process_quota;	/* this process's quota, 0 for none */
};

/**
 * Fill @info (declared with ACCEL_OPTS(): the fields up to info->sz).
 * -EINVAL: no device, no @info or a sz smaller than sz; -E2BIG: non-zero
 * bytes past the struct this library knows.
 */
int accel_device_info(struct accel_device *dev, struct accel_device_info *info);
/** The device's file descriptor (owned by the device). */
int accel_device_fd(const struct accel_device *dev);

/* ---- regions ---------------------------------------------------------- */

/** Any NUMA node (accel_region_create()). */
#define ACCEL_NODE_ANY	(-1)

/**
 * Create a region of @size bytes (a multiple of @block_size, a power of two
 * from 4 KiB to 2 MiB), all blocks on @node (or ACCEL_NODE_ANY). errno:
 * EINVAL, EDQUOT (process quota), ENOMEM (device limit or memory), ...
 */
struct accel_region *accel_region_create(struct accel_device *dev, uint64_t size,
					 uint32_t block_size, int node);
/** Drop the handle and the mapping; the memory lives on while shared. */
void accel_region_destroy(struct accel_region *region);

uint64_t accel_region_size(const struct accel_region *region);
uint32_t accel_region_block_size(const struct accel_region *region);
/** The region's device-wide id (as in kvaccelctl regions), 0 for a foreign import. */
uint64_t accel_region_id(const struct accel_region *region);
/** The NUMA node of all its blocks, or -1. */
int accel_region_node(const struct accel_region *region);
/** Map the region (once; later calls return the same address). NULL + errno. */
void *accel_region_map(struct accel_region *region);

/** Export as a dma-buf (close-on-exec); the caller owns *fd. */
int accel_region_export(struct accel_region *region, int *fd);
/**
 * Import a dma-buf: a kvaccel region's (the same memory, any process) or
 * another driver's CPU-reachable buffer (a "foreign" region: it can be
 * copied from and to, not bound or mapped through kvaccel).
 */
struct accel_region *accel_region_import(struct accel_device *dev, int fd);
/** 1 if the region is another driver's buffer, 0 if kvaccel's. */
int accel_region_is_foreign(const struct accel_region *region);

struct accel_obj *accel_region_obj(struct accel_region *region);

/* ---- spaces ----------------------------------------------------------- */

struct accel_space *accel_space_create(struct accel_device *dev, uint32_t nr_slots,
				       uint32_t block_size);
void accel_space_destroy(struct accel_space *space);
uint32_t accel_space_slots(const struct accel_space *space);
uint32_t accel_space_block_size(const struct accel_space *space);

enum accel_bind_kind {
	ACCEL_BIND = 0,		/* slot <- block of region */
	ACCEL_UNBIND = 1,	/* slot <- empty */
	ACCEL_MOVE = 2,		/* other <- slot, slot <- empty */
	ACCEL_SWAP = 3,		/* exchange slot and other */
};

struct accel_bind_op {
	enum accel_bind_kind kind;
	uint32_t slot;
	uint32_t other;			/* MOVE, SWAP */
	struct accel_region *region;	/* BIND */
	uint64_t block;			/* BIND */
};

/**
 * Apply a batch atomically: readers of the window see all of it or none.
 * On error nothing changed. @generation (may be NULL) receives the
 * space's generation after the batch.
 */
int accel_space_bind(struct accel_space *space, const struct accel_bind_op *ops,
		     uint32_t count, uint64_t *generation);

struct accel_slot_binding {
	uint64_t region_id;	/* 0: empty */
	uint64_t block;
};

/** What slots [first, first + count) are bound to, all at one generation. */
int accel_space_query(struct accel_space *space, uint32_t first, uint32_t count,
		      struct accel_slot_binding *out, uint64_t *generation);
/** Map the window (once); *size (may be NULL) receives its size. NULL + errno. */
void *accel_space_map(struct accel_space *space, size_t *size);
/** The generation in the mapped control page (even: stable), or -errno. */
int64_t accel_space_generation(struct accel_space *space);

int accel_space_export(struct accel_space *space, int *fd);
struct accel_space *accel_space_import(struct accel_device *dev, int fd);

struct accel_obj *accel_space_obj(struct accel_space *space);

/* ---- copies and fences ------------------------------------------------ */

struct accel_copy_seg {
	struct accel_obj *src;
	uint64_t src_offset;
	struct accel_obj *dst;
	uint64_t dst_offset;
	uint64_t length;
};

/**
 * Copy segments on the module's copy engine, after @after (may be NULL)
 * has completed; an error of @after becomes this copy's. Returns the
 * copy's fence (NULL + errno: the copy was not queued).
 */
struct accel_fence *accel_copy(struct accel_device *dev, const struct accel_copy_seg *segs,
			       uint32_t count, struct accel_fence *after);
/** 1 done, 0 running, -errno failed. */
int accel_fence_status(struct accel_fence *fence);
/** Wait up to @timeout_ns (-1: forever): 0 done, -ETIME, -errno the copy's error. */
int accel_fence_wait(struct accel_fence *fence, int64_t timeout_ns);
/** A sync_file fd that polls readable when the copy is done; the caller owns it. */
int accel_fence_fd(struct accel_fence *fence);
/**
 * Drop the caller's reference to @fence (NULL-safe). Fences are reference
 * counted: one the library hands out and also keeps (accel_kv_swap_out())
 * stays valid until both have dropped theirs.
 */
void accel_fence_destroy(struct accel_fence *fence);

/* ---- passing objects between processes --------------------------------- */

/**
 * Send @nfds descriptors (at most ACCEL_MAX_FDS) and @len bytes of data
 * (at least 1) over a Unix socket. Returns 0 or -errno.
 */
#define ACCEL_MAX_FDS	16
int accel_send_fds(int sock, const int *fds, int nfds, const void *data, size_t len);
/**
 * Receive what accel_send_fds() sent: up to *nfds descriptors (close-on-exec;
 * *nfds receives the count) and up to *len bytes (*len receives the count).
 * A message with more descriptors than room, or more data than *len
 * (SOCK_SEQPACKET), gives -EMSGSIZE; a packet of 0 bytes with descriptors
 * gives -EPROTO; the end of the stream -ECONNRESET. On every error the
 * descriptors that came are closed.
 */
int accel_recv_fds(int sock, int *fds, int *nfds, void *data, size_t *len);

/* ---- the KV-cache manager -------------------------------------------- */

struct accel_kv;

/** Where a sequence's KV is. */
enum accel_kv_place {
	ACCEL_KV_DEVICE = 0,	/* on the device tier, usable */
	ACCEL_KV_HOST = 1,	/* swapped out to the host tier */
	ACCEL_KV_MOVING = 2,	/* a swap is in flight (accel_kv_progress()) */
};

/*
 * The cache's shape: an extensible struct (ACCEL_OPTS()), zero meaning the
 * default in every field. Since LIBACCEL_0.2; binaries built against 0.1's
 * header (no sz, host_node 0 meaning node 0) keep calling 0.1's
 * accel_kv_create.
 */
struct accel_kv_config {
	size_t sz;		/* sizeof(struct accel_kv_config): ACCEL_OPTS() */
	/** Tokens per block (1 to 65536, the block manager's bound). */
	uint32_t block_tokens;
	/** KV bytes per block: a power of two from 4 KiB to 2 MiB. */
	uint32_t block_bytes;
	/** Blocks of the device tier and of the host tier. */
	uint32_t device_blocks, host_blocks;
	/**
	 * "host" (both tiers in kvaccel regions; the default), "cuda" or
	 * "cuda:N" (the device tier in the memory of CUDA device N, 0 for
	 * "cuda": a reserved virtual range, all its chunks created with the
	 * cache, mapped when first used; ENODEV and a log line naming why
	 * without a driver or that GPU).
	 */
	const char *backend;
	/** Largest coalesced transfer in bytes (0: 2 MiB). */
	uint32_t transfer_unit;
	/** NUMA node of the host tier, with ACCEL_KV_HOST_NODE (else any node). */
	int host_node;
	/** ACCEL_KV_* flags. */
	uint32_t flags;
};

/**
 * Move every block in a copy job of its own, waiting as they complete
 * (a naive per-block mover, for comparison: benchmarks only; its swaps
 * wait in the call).
 */
#define ACCEL_KV_PER_BLOCK_COPIES	(1u << 0)
/** host_node names the host tier's NUMA node (without it: any node). */
#define ACCEL_KV_HOST_NODE		(1u << 1)
#define ACCEL_KV_FLAGS			(ACCEL_KV_PER_BLOCK_COPIES | ACCEL_KV_HOST_NODE)

/* Counters (ACCEL_OPTS(): fields past the caller's sz are not written). */
struct accel_kv_stats {
	size_t sz;		/* sizeof(struct accel_kv_stats): ACCEL_OPTS() */
	uint64_t swaps_out, swaps_in;
	uint64_t blocks_out, blocks_in;	/* blocks whose bytes moved */
	uint64_t blocks_reused;		/* not moved: host copy still valid, or cached on device */
	uint64_t transfers;		/* coalesced copy segments submitted */
	uint64_t bytes_moved;
	uint64_t cow_copies;
	uint64_t prefix_hit_tokens;
	uint32_t device_free, host_free;	/* blocks free (incl. evictable cache) */
};

/*
 * A tiered, paged KV cache: fixed-size blocks, per-sequence block tables,
 * prefix sharing with copy-on-write, LRU eviction of cached prefixes, and
 * swapping whole sequences between tiers in coalesced transfers. One lock
 * per cache, never held while waiting: thread-safe, and a thread waiting
 * for a copy stalls no other. Prefix keys are SHA-256 over the parent
 * block's key, the block's tokens and the sequence's extra keys.
 * accel_kv_create(): NULL + errno (EINVAL: a bad field, the log says
 * which; E2BIG: unknown non-zero fields past sz; ENODEV, ENOMEM).
 */
struct accel_kv *accel_kv_create(struct accel_device *dev, const struct accel_kv_config *cfg);
void accel_kv_destroy(struct accel_kv *kv);

/** Options of a new sequence (ACCEL_OPTS(); NULL: none). */
struct accel_kv_seq_opts {
	size_t sz;
	/**
	 * Extra keys hashed into every block's prefix key (an adapter id, a
	 * per-tenant cache salt): sequences share cached blocks only when
	 * their extra keys are the same bytes. Copied.
	 */
	const void *extra_keys;
	size_t extra_keys_len;
};

/**
 * A new sequence with a prompt; *cached_tokens (may be NULL) were shared
 * from the prefix cache. -E2BIG: more tokens than a sequence can hold.
 */
int accel_kv_seq_create(struct accel_kv *kv, const int32_t *prompt, uint64_t n,
			uint32_t *seq, uint64_t *cached_tokens);
int accel_kv_seq_create_opts(struct accel_kv *kv, const int32_t *prompt, uint64_t n,
			     const struct accel_kv_seq_opts *opts, uint32_t *seq,
			     uint64_t *cached_tokens);
/**
 * Append tokens (their KV is written into the blocks accel_kv_seq_blocks()
 * names). All or nothing: on error no token was added. Writing into a
 * shared partial block first copies it (the call waits for that copy,
 * without holding the cache's lock); -EBUSY while the sequence moves.
 */
int accel_kv_seq_append(struct accel_kv *kv, uint32_t seq, const int32_t *tokens, uint64_t n);
/** A new sequence sharing every block of @seq (copy-on-write). */
int accel_kv_seq_fork(struct accel_kv *kv, uint32_t seq, uint32_t *child);
/** Free a sequence; one that is moving is freed once its copy is over (waits). */
int accel_kv_seq_free(struct accel_kv *kv, uint32_t seq);
/** The device-tier block table (on the device only); returns the block count. */
int accel_kv_seq_blocks(struct accel_kv *kv, uint32_t seq, uint32_t *blocks, uint32_t max);
int accel_kv_seq_tokens(struct accel_kv *kv, uint32_t seq, uint64_t *tokens);
/** ACCEL_KV_DEVICE, ACCEL_KV_HOST, ACCEL_KV_MOVING or -errno. */
int accel_kv_seq_place(struct accel_kv *kv, uint32_t seq);

/** How a swap orders against the engine's own work (ACCEL_OPTS(); NULL: not at all). */
struct accel_kv_swap_opts {
	size_t sz;
	/**
	 * cuda backend: a CUevent of the engine's: the swap's copies start
	 * after it (the engine's last writes to the blocks, or its last
	 * reads of the blocks a swap in overwrites). Other backends: must be
	 * NULL (-EOPNOTSUPP).
	 */
	void *cuda_wait_event;
	/**
	 * cuda backend: a CUevent of the engine's, recorded after the
	 * swap's copies: cuStreamWaitEvent() on it before computing on
	 * swapped-in blocks. Created in the GPU's primary context.
	 */
	void *cuda_done_event;
};

/**
 * Swap a sequence out (device -> host) or in (host -> device),
 * asynchronously: adjacent blocks move in coalesced transfers; a sequence
 * swapped out again moves only the blocks written since it was swapped in.
 * The sequence is ACCEL_KV_MOVING until accel_kv_progress() sees the copy
 * done; its old tier's blocks are released then. *fence (may be NULL)
 * receives the copy's fence, which the caller owns (accel_fence_destroy()
 * it; it stays valid after the cache is done with the copy), or NULL when
 * nothing is in flight or the backend has no fences (cuda: order with
 * accel_kv_swap_opts' events, or wait with accel_kv_progress()).
 */
int accel_kv_swap_out(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence);
int accel_kv_swap_in(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence);
int accel_kv_swap_out_opts(struct accel_kv *kv, uint32_t seq,
			   const struct accel_kv_swap_opts *opts, struct accel_fence **fence);
int accel_kv_swap_in_opts(struct accel_kv *kv, uint32_t seq,
			  const struct accel_kv_swap_opts *opts, struct accel_fence **fence);
/**
 * Complete finished swaps, waiting up to @timeout_ns in all (0: poll, -1:
 * until every swap in flight is done); returns the swaps still in flight.
 * Waits without holding the cache's lock.
 */
int accel_kv_progress(struct accel_kv *kv, int64_t timeout_ns);

/**
 * The address of a block of a tier: a CPU address, except on the cuda
 * backend's device tier, where it is a device pointer (CUdeviceptr).
 */
void *accel_kv_block_addr(struct accel_kv *kv, enum accel_kv_place tier, uint32_t block);
/**
 * Map the sequence's blocks, on the tier it is on, as one contiguous
 * window (a kvaccel space); *addr and *len receive it. Valid until the
 * sequence moves or changes; a later call remaps. On the cuda backend's
 * device tier the window is a CUDA virtual range (a device pointer) and
 * needs blocks of the GPU's mapping granularity (2 MiB): -EOPNOTSUPP for
 * smaller blocks.
 */
int accel_kv_seq_window(struct accel_kv *kv, uint32_t seq, void **addr, size_t *len);
/** Fill @stats (declared with ACCEL_OPTS()). */
int accel_kv_stats(struct accel_kv *kv, struct accel_kv_stats *stats);

/**
 * Share KV with another process (a decode engine, a migration target):
 * export a tier's memory as a dma-buf (close-on-exec; the cuda backend's
 * device tier: the driver's dma-buf of GPU memory, for kvaccel or a NIC to
 * import, not for mapping). The other process
 * imports it (accel_region_import()) and maps it, or binds the blocks a
 * sequence's table names (accel_kv_seq_blocks(), or
 * accel_kv_seq_host_blocks() on the host tier) into its own space: no copy.
 */
int accel_kv_tier_export(struct accel_kv *kv, enum accel_kv_place tier, int *fd);
/** The host-tier blocks of a sequence that is on the host; returns the count. */
int accel_kv_seq_host_blocks(struct accel_kv *kv, uint32_t seq, uint32_t *blocks, uint32_t max);

/* ---- the node daemon: engine side of kvacceld's socket ------------------ */

/*
 * An engine's connection to kvacceld (Documentation/kvacceld.rst): it
 * registers with a name and a priority class, asks for quota, answers the
 * daemon's release requests through a callback, and hands dma-bufs of
 * regions and spaces to other engines (and receives theirs) without a copy.
 * One thread at a time per engine object. The library reads the socket only
 * inside accel_engine_* calls: poll accel_engine_fd() and call
 * accel_engine_dispatch() when it is readable.
 *
 * The callbacks (struct accel_engine_ops) may call accel_engine_* on their
 * engine: a reply is kept for the request it answers, whichever call reads
 * it, so a request made from a callback and the request the callback runs
 * under both get theirs. accel_engine_reconnect() from a callback (or while
 * a request waits) returns -EDEADLK; accel_engine_close() must not be
 * called from a callback.
 */
struct accel_engine;

/** The highest priority class; 0 is released first under pressure. */
#define ACCEL_ENGINE_PRIORITY_MAX	7
/** Most objects in one hand-off. */
#define ACCEL_HANDOFF_MAX	16

enum accel_handoff_kind {
	ACCEL_HANDOFF_REGION = 1,
	ACCEL_HANDOFF_SPACE = 2,
	/*
	 * A memfd sealed with F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_WRITE, of
	 * at most ACCEL_HANDOFF_MEMFD_MAX bytes (a request's state, sent with
	 * its pages): the daemon refuses others (-EPERM: not sealed; -EINVAL:
	 * size; -EBADF: not a memfd). Not kept across a restart of a daemon
	 * without the fd store: the sender sends it again, like any hand-off.
	 */
	ACCEL_HANDOFF_MEMFD = 3,
};

/** The largest ACCEL_HANDOFF_MEMFD object (KVD_MEMFD_MAX). */
#define ACCEL_HANDOFF_MEMFD_MAX	(64ULL << 20)

/** A hand-off offered to this engine. */
struct accel_handoff {
	const char *from;		/* the sending engine */
	uint64_t tag;			/* the sender's tag */
	unsigned int count;
	const int *fds;			/* dma-bufs, close-on-exec */
	const enum accel_handoff_kind *kinds;
	const uint64_t *sizes;
};

struct accel_engine_ops {
	/*
	 * Pressure: free about @bytes (swap out, evict) and set *released to
	 * what was freed; the return value is ignored. NULL: answers 0 bytes.
	 */
	int (*release)(void *arg, uint64_t bytes, uint64_t *released);
	/*
	 * A hand-off: return 0 to take the fds (the callback owns them from
	 * then on: import them, then close them) or -errno to refuse (the
	 * library closes them). A hand-off taken before (a resend after the
	 * daemon restarted) is recognised by (from, the sender's incarnation,
	 * tag) and acknowledged again without calling this; a sender that
	 * restarted is a new incarnation, whose tags are new hand-offs.
	 * NULL: every hand-off is refused with -EOPNOTSUPP.
	 */
	int (*receive)(void *arg, const struct accel_handoff *h);
	/* A hand-off this engine sent is finished: 0 (the receiver holds the objects) or -errno. */
	void (*handoff_done)(void *arg, uint64_t tag, int status);
};

/**
 * Who sent a hand-off, as kvacceld saw the sending process (SO_PEERCRED):
 * an extensible struct (ACCEL_OPTS()).
 */
struct accel_handoff_sender {
	size_t sz;		/* sizeof(struct accel_handoff_sender): ACCEL_OPTS() */
	uint64_t incarnation;	/* the sending engine's instance (0: none) */
	uint32_t uid;		/* its process's user */
	uint32_t pid;		/* its process, in the daemon's pid namespace (0: unknown) */
};

/**
 * From the receive callback: who sent @h (the hand-off the callback was
 * given; no other, and only while the callback runs). 0; -ENODATA when the
 * daemon did not say (an older kvacceld: uid and pid are 0, which does not
 * mean root); -EINVAL for a NULL argument or one not set up with
 * ACCEL_OPTS(); -E2BIG for fields this library does not know that are set.
 */
int accel_handoff_sender(const struct accel_handoff *h, struct accel_handoff_sender *sender);

/**
 * Connect to the daemon at @path (NULL: KVACCELD_SOCKET from the
 * environment, else /run/kvacceld/engine.sock) and register as @name
 * (1-31 of [A-Za-z0-9._-], unique on the node) with @priority (0 to
 * ACCEL_ENGINE_PRIORITY_MAX). @ops may be NULL. NULL and errno on failure
 * (EEXIST: the name is taken; EACCES: the name is not this user's, by the
 * daemon's [tenants] rules; EPERM: @priority above the daemon's ceiling
 * for a non-admin; EMFILE: this user has as many connections as it may;
 * ECONNREFUSED/ENOENT: no daemon).
 */
struct accel_engine *accel_engine_connect(const char *path, const char *name,
					  unsigned int priority,
					  const struct accel_engine_ops *ops, void *arg);
void accel_engine_close(struct accel_engine *e);
/** The socket, to poll for POLLIN. */
int accel_engine_fd(const struct accel_engine *e);
/**
 * Handle what the daemon sent, waiting up to @timeout_ns (0: only what is
 * there, -1: until something comes): release requests, offers, hand-offs
 * done. Returns the messages handled, or -ECONNRESET when the daemon went
 * away (then accel_engine_reconnect()).
 */
int accel_engine_dispatch(struct accel_engine *e, int64_t timeout_ns);
/**
 * Ask for a quota of @bytes (whole MiB) for this process, which must have
 * a kvaccel device open. *granted (may be NULL) receives it. -ENOSPC: the
 * node cannot promise it (the daemon's message is logged).
 */
int accel_engine_quota(struct accel_engine *e, uint64_t bytes, uint64_t *granted);
/** The quota the kernel keeps for this process, as of registering (or granting). */
uint64_t accel_engine_quota_now(const struct accel_engine *e);
/**
 * Hand @count dma-buf fds to engine @to; @tag names the hand-off (unique
 * among this engine's pending ones, else -EEXIST; a tag may be used again
 * once its hand-off finished). The library duplicates the fds: the caller
 * keeps its own and should keep the objects until the hand-off is done (the
 * handoff_done callback or accel_engine_handoff_wait()). Returns once the
 * daemon has queued it. Refusals: -EPERM (no [tenants] allow rule lets
 * this engine hand to @to), -EDQUOT (this user's hand-offs held by the
 * daemon are at their maximum), -EMFILE (so are its fds), -ENOSPC (the
 * daemon has no room for more fds), -EBUSY (this engine's).
 */
int accel_engine_handoff(struct accel_engine *e, const char *to, uint64_t tag,
			 const int *fds, const enum accel_handoff_kind *kinds, unsigned int count);
/**
 * Wait up to @timeout_ns for hand-off @tag to finish: its status, or
 * -ETIMEDOUT; -ENOENT when no hand-off under @tag is pending or recently
 * finished. A finished one's status answers only until @tag is used again.
 */
int accel_engine_handoff_wait(struct accel_engine *e, uint64_t tag, int64_t timeout_ns);
/** Hand-offs sent and not yet finished. */
int accel_engine_pending(const struct accel_engine *e);
/**
 * After -ECONNRESET: connect again (once; -ECONNREFUSED/-ENOENT while the
 * daemon is not back), register under the same name and send again every
 * hand-off not yet finished. -EDEADLK from a callback.
 */
int accel_engine_reconnect(struct accel_engine *e);

/* ---- live migration (kvacceld's broker) -------------------------------- */

/**
 * What the daemon asks of an engine that takes part in live migrations:
 * an extensible struct (ACCEL_OPTS()). The callbacks run inside
 * accel_engine_* calls, like struct accel_engine_ops's.
 */
struct accel_engine_migration_ops {
	size_t sz;		/* sizeof(struct accel_engine_migration_ops): ACCEL_OPTS() */
	/*
	 * Move running request @req to engine @to; @id names this migration
	 * in accel_engine_migrated() and migrate_abort. Return 0 when it has
	 * started (the engine moves the request's KV itself, e.g. with
	 * accel_engine_handoff(), and calls accel_engine_migrated() when it
	 * is over), or -errno to refuse (-ENOENT: no such request running).
	 * NULL: every migration is refused with -EOPNOTSUPP.
	 */
	int (*migrate)(void *arg, uint64_t id, uint64_t req, const char *to);
	/*
	 * Migration @id (this engine's as source or destination) is over
	 * without it: the other engine left or it timed out. A source runs the
	 * request again; a destination frees what it set up for it. An id the
	 * engine does not know is to be ignored.
	 */
	void (*migrate_abort)(void *arg, uint64_t id);
	/* The engine was drained: nothing runs or waits; finish and exit. */
	void (*exit)(void *arg);
	/*
	 * Move running request @req to engine @to of another node, @node,
	 * which takes migrations at transfer address @addr ("HOST:PORT", as
	 * it announced it with accel_engine_set_xfer_addr()). As @migrate:
	 * 0 when it has started (the engine connects and moves the KV
	 * itself, e.g. over accel_xfer, and calls accel_engine_migrated()),
	 * or -errno to refuse. Set: the engine announces KVD_FEAT_XMIGRATION.
	 */
	int (*migrate_remote)(void *arg, uint64_t id, uint64_t req, const char *node,
			      const char *to, const char *addr);
};

/**
 * Take part in live migrations: set @ops (copied; NULL: stop) and @arg
 * for its callbacks, and announce it to the daemon (KVD_FEAT_MIGRATION),
 * registering again when the connection's features change (a new
 * connection under the same name: hand-offs pending are sent again, as by
 * accel_engine_reconnect()). 0; -EINVAL (not set up with ACCEL_OPTS());
 * -E2BIG (fields this library does not know); -EDEADLK from a callback;
 * -EOPNOTSUPP when the daemon does not know migrations (the ops are kept);
 * a reconnect's error.
 */
int accel_engine_set_migration_ops(struct accel_engine *e,
				   const struct accel_engine_migration_ops *ops, void *arg);

/**
 * Announce where this engine takes migrations from other nodes: @addr
 * "HOST:PORT" (its accel_xfer listener; "" withdraws it). The daemon
 * publishes it in its cluster view, so that other nodes' daemons can send
 * their engines' requests here; it is sent again after every
 * registration. 0; -EINVAL (not HOST:PORT with a port of 1 to 65535);
 * -EOPNOTSUPP (no migrate_remote callback set, or a daemon without
 * KVD_FEAT_XMIGRATION); -EDEADLK (from a callback); -ECONNRESET (kept,
 * sent on reconnection).
 */
int accel_engine_set_xfer_addr(struct accel_engine *e, const char *addr);

/** Most candidates in one load report (KVD_LOAD_REQS_MAX). */
#define ACCEL_ENGINE_LOAD_REQS_MAX	64

/** A running request the engine could move (struct kvd_load_req). */
struct accel_engine_load_req {
	uint64_t req;		/* the engine's id of the request */
	uint32_t tokens;	/* its length: prompt and generated tokens */
	uint32_t blocks;	/* compute-tier blocks it holds */
	int32_t priority;	/* higher: more important */
	uint32_t flags;		/* 0 */
};

/* accel_engine_load.flags */
/** Take no migrations in for now. */
#define ACCEL_ENGINE_LOAD_NO_INBOUND	(1u << 0)
/** Send now, even within 50 ms of the last report (not sent to the daemon). */
#define ACCEL_ENGINE_LOAD_FORCE		(1u << 31)

/** An engine's load: an extensible struct (ACCEL_OPTS()). */
struct accel_engine_load {
	size_t sz;		/* sizeof(struct accel_engine_load): ACCEL_OPTS() */
	uint64_t block_bytes;	/* bytes of one compute-tier block */
	uint32_t blocks_total;	/* compute-tier blocks */
	uint32_t blocks_free;	/* of those, free */
	uint32_t running;	/* requests running */
	uint32_t waiting;	/* requests waiting */
	uint32_t hol_blocks;	/* blocks the head-of-line waiting request needs (0: none waits) */
	uint32_t flags;		/* ACCEL_ENGINE_LOAD_* */
	const struct accel_engine_load_req *reqs;	/* migration candidates */
	unsigned int nreqs;	/* 0 to ACCEL_ENGINE_LOAD_REQS_MAX */
};

/**
 * Report the engine's load to the daemon (KVD_MSG_LOAD), when it changed:
 * a report equal to the last one sent is not sent again, and reports
 * come at most every 50 ms (a later one in between is kept and sent by the
 * next accel_engine_report_load() or accel_engine_dispatch() after the
 * 50 ms) unless flags has ACCEL_ENGINE_LOAD_FORCE. 0 (sent, kept or
 * unchanged); -E2BIG (more than ACCEL_ENGINE_LOAD_REQS_MAX candidates, or
 * unknown fields set); -EINVAL (free above total, a demand with nothing
 * waiting, unknown flags, reqs NULL with nreqs); -EOPNOTSUPP (no migration
 * ops set); -ECONNRESET.
 */
int accel_engine_report_load(struct accel_engine *e, const struct accel_engine_load *load);

/** What a migration cost, as the source saw it: an extensible struct (ACCEL_OPTS()). */
struct accel_engine_migration_stats {
	size_t sz;		/* sizeof(struct accel_engine_migration_stats): ACCEL_OPTS() */
	uint64_t downtime_us;	/* the request did not decode */
	uint64_t total_us;	/* from the migrate callback to the end */
	uint64_t bytes_copied;	/* bytes moved or copied for it */
	uint32_t blocks;	/* blocks moved */
};

/**
 * As source: migration @id is over, @status 0 (the destination runs the
 * request) or -errno (it failed; this engine runs it again); @st may be
 * NULL. 0, -EINVAL, -E2BIG or -ECONNRESET.
 */
int accel_engine_migrated(struct accel_engine *e, uint64_t id, int status,
			  const struct accel_engine_migration_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* ACCEL_H */
