/* SPDX-License-Identifier: MIT */
/*
 * libaccel - transfers between nodes (accel_xfer_*): a UCX endpoint that
 * writes KV blocks straight into a peer's registered memory (one-sided
 * puts) and carries small control messages on the same connection
 * (Documentation/libaccel.rst, "Transfers between nodes").
 *
 * UCX (libucp.so.0, Debian's libucx0) is loaded at run time, on the first
 * accel_xfer_create(): a process that never creates one never loads it,
 * and a machine without it gets -ENOPKG from the constructor.
 *
 * Thread safety: every call may be made from any thread at any time; one
 * mutex per struct accel_xfer serializes them with the progress thread
 * (the UCX worker runs in UCS_THREAD_MODE_SERIALIZED). Destroying an
 * object must not race with other calls on it. A forked child must not
 * use its parent's objects (UCX's threads and sockets are the parent's):
 * it creates its own. Timeouts are relative nanoseconds, -1 (any
 * negative value) for forever, 0 for "do not wait".
 */
#ifndef ACCEL_XFER_H
#define ACCEL_XFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct accel_xfer;
struct accel_xfer_ep;
struct accel_xfer_mem;
struct accel_xfer_rkey;

/** The longest control message accel_xfer_send() takes (16 MiB). */
#define ACCEL_XFER_MSG_MAX	(16u << 20)
/** The longest memory descriptor accel_xfer_mem_pack() writes. */
#define ACCEL_XFER_DESC_MAX	4096u

/** Options of accel_xfer_create() (ACCEL_OPTS(); NULL: all zero). */
struct accel_xfer_opts {
	size_t sz;		/* sizeof(struct accel_xfer_opts): ACCEL_OPTS() */
	uint32_t flags;		/* none defined yet: 0 */
	uint32_t pad;		/* 0 */
};

/**
 * accel_xfer_create() - a UCX context (RMA and active messages), one
 * worker and the progress thread that drives it.
 * @opts: options (ACCEL_OPTS()), or NULL.
 *
 * The progress thread is not optional: without RDMA hardware UCX emulates
 * one-sided puts with messages the target must process, so a node whose
 * memory is written must keep progressing its worker even while its owner
 * waits for nothing.
 *
 * Return: the endpoint set, or NULL and errno: EINVAL (flags, pad), E2BIG
 * (unknown options), ENOPKG (libucp.so.0 missing or too old: the log says
 * why), ENOMEM, or UCX's own failure as an errno.
 */
struct accel_xfer *accel_xfer_create(const struct accel_xfer_opts *opts);

/**
 * accel_xfer_destroy() - stop the progress thread, close every endpoint
 * (forcibly: nothing in flight is waited for), the listener, every
 * memory mapping left, and free @x (NULL-safe). Handles of @x's
 * endpoints, mappings and rkeys are invalid afterwards.
 */
void accel_xfer_destroy(struct accel_xfer *x);

/**
 * accel_xfer_listen() - accept connections on an IP address.
 * @x: the endpoint set.
 * @addr: a numeric IPv4 or IPv6 address, NULL for any (IPv4).
 * @port: the port, 0 for one the system picks.
 * @bound_port: Out, the port listened on (NULL: not wanted).
 *
 * Accepted connections wait in a queue for accel_xfer_accept().
 *
 * Return: 0; -EINVAL (not an address), -EBUSY (already listening),
 * -EADDRINUSE, ... (UCX's status as an errno).
 */
int accel_xfer_listen(struct accel_xfer *x, const char *addr, uint16_t port,
		      uint16_t *bound_port);

/**
 * accel_xfer_connect() - connect to a peer's listener.
 * @x: the endpoint set.
 * @addr: the peer's numeric IPv4 or IPv6 address.
 * @port: its port.
 * @timeout_ns: how long to wait for the peer's libaccel to answer.
 * @ep: Out, the endpoint.
 *
 * Returns once the peer has answered a handshake, so a listener that
 * accepts TCP connections but is no accel_xfer does not connect.
 *
 * Return: 0; -EINVAL, -ETIMEDOUT (no answer: a silent listener, a
 * dropped network), -ECONNREFUSED (nothing listens), -ECONNRESET /
 * -EHOSTUNREACH (as UCX reports it), -ENOMEM.
 */
int accel_xfer_connect(struct accel_xfer *x, const char *addr, uint16_t port,
		       int64_t timeout_ns, struct accel_xfer_ep **ep);

/**
 * accel_xfer_accept() - take the oldest accepted connection.
 * @x: the endpoint set.
 * @ep: Out, the endpoint (the caller closes it).
 * @timeout_ns: how long to wait for one (0: do not wait).
 *
 * Return: 0; -ETIMEDOUT (none came; -EAGAIN for a timeout of 0),
 * -EINVAL.
 */
int accel_xfer_accept(struct accel_xfer *x, struct accel_xfer_ep **ep, int64_t timeout_ns);

/**
 * accel_xfer_ep_status() - whether @ep still works.
 *
 * Return: 0, or the error every later call on @ep returns: -ECONNRESET
 * (the peer closed its end), -ETIMEDOUT (its process died: UCX's
 * "Endpoint timeout", or UCX or TCP gave up on an unreachable peer), ...
 * A peer that is alive but silent (stopped) does not fail the endpoint:
 * the calls' timeouts are what bound a wait for it.
 */
int accel_xfer_ep_status(const struct accel_xfer_ep *ep);

/**
 * accel_xfer_ep_close() - close @ep (NULL-safe): a working endpoint is
 * flushed first (puts and messages sent before reach the peer; at most a
 * second is spent on it), a failed one closed at once. Its rkeys are
 * destroyed and its messages not yet received are dropped. The peer sees
 * -ECONNRESET on its end.
 */
void accel_xfer_ep_close(struct accel_xfer_ep *ep);

/* ---- memory ------------------------------------------------------------ */

/**
 * accel_xfer_mem_map() - register memory that peers may write (and that
 * local puts may read from without a bounce): a tier's mapping, from
 * accel_tier_block_addr(tier, 0) for blocks * block_bytes bytes.
 * @x: the endpoint set.
 * @addr: the start (existing memory, it stays the caller's).
 * @len: its length (> 0).
 * @m: Out, the mapping.
 *
 * Return: 0; -EINVAL, -ENOMEM, UCX's status as an errno.
 */
int accel_xfer_mem_map(struct accel_xfer *x, void *addr, size_t len, struct accel_xfer_mem **m);

/** accel_xfer_mem_unmap() - unregister @m (NULL-safe); peers' puts into it then fail. */
void accel_xfer_mem_unmap(struct accel_xfer_mem *m);

/**
 * accel_xfer_mem_pack() - the descriptor of @m a peer needs to write into
 * it (accel_xfer_rkey()): base address, length and UCX's packed remote
 * key, with a checksum (Documentation/libaccel.rst has the format).
 * @m: the mapping.
 * @buf: where to write it, or NULL to ask for the size.
 * @len: In, the size of @buf; Out, the descriptor's size (at most
 *	ACCEL_XFER_DESC_MAX).
 *
 * Return: 0; -ENOSPC (@buf too small: *len says how much is needed),
 * -EINVAL.
 */
int accel_xfer_mem_pack(const struct accel_xfer_mem *m, void *buf, size_t *len);

/**
 * accel_xfer_rkey() - unpack a peer's descriptor for use on @ep.
 * @ep: the endpoint to the peer that packed it.
 * @desc: the descriptor.
 * @len: its length, exactly as packed.
 * @rk: Out, the remote key (destroyed by accel_xfer_rkey_destroy() or
 *	with @ep).
 *
 * The descriptor is checked (magic, version, lengths, checksum) before
 * UCX sees a byte of it: a truncated or garbled one is -EINVAL.
 *
 * Return: 0; -EINVAL, the endpoint's error, UCX's status as an errno.
 */
int accel_xfer_rkey(struct accel_xfer_ep *ep, const void *desc, size_t len,
		    struct accel_xfer_rkey **rk);

/** accel_xfer_rkey_destroy() - free @rk (NULL-safe). */
void accel_xfer_rkey_destroy(struct accel_xfer_rkey *rk);

/**
 * accel_xfer_rkey_len() - the length of the remote memory @rk covers
 * (0 for NULL).
 */
uint64_t accel_xfer_rkey_len(const struct accel_xfer_rkey *rk);

/* ---- data -------------------------------------------------------------- */

/** One piece of a put: @len bytes from @local to @remote bytes into the rkey's memory. */
struct accel_xfer_iov {
	const void *local;
	uint64_t remote;	/* offset from the descriptor's base */
	uint64_t len;
};

/**
 * accel_xfer_put() - submit one-sided writes (non-blocking).
 * @ep: the endpoint.
 * @iov: what to write.
 * @n: how many (1 to 65536).
 * @rk: the peer memory's key, unpacked on @ep.
 *
 * Every piece is checked before any is submitted. The local bytes must
 * stay unchanged until accel_xfer_flush() returns 0 (or the endpoint is
 * closed); puts into the same remote bytes are not ordered unless a flush
 * separates them.
 *
 * Return: 0; -EINVAL (no piece, a NULL local address, a piece past the
 * rkey's length, an rkey of another endpoint), the endpoint's error.
 */
int accel_xfer_put(struct accel_xfer_ep *ep, const struct accel_xfer_iov *iov, uint32_t n,
		   struct accel_xfer_rkey *rk);

/**
 * accel_xfer_flush() - wait until every put submitted on @ep so far is
 * complete in the peer's memory.
 * @ep: the endpoint.
 * @timeout_ns: how long to wait.
 *
 * Return: 0; -ETIMEDOUT (the puts go on; their local bytes stay in use
 * until a later flush returns 0 or the endpoint is closed), the
 * endpoint's error (-ECONNRESET, ...).
 */
int accel_xfer_flush(struct accel_xfer_ep *ep, int64_t timeout_ns);

/* ---- control messages ----------------------------------------------------- */

/**
 * accel_xfer_send() - send a message to the peer (a UCX active message).
 * @ep: the endpoint.
 * @msg: the bytes (copied: reusable when the call returns).
 * @len: their length, 0 to ACCEL_XFER_MSG_MAX.
 * @timeout_ns: how long to wait for UCX to take it (sent or buffered).
 *
 * Messages on one endpoint arrive in the order sent, after the puts
 * submitted on it before only if a flush separated them.
 *
 * Return: 0; -EMSGSIZE, -EINVAL, -ETIMEDOUT (it may still arrive), the
 * endpoint's error.
 */
int accel_xfer_send(struct accel_xfer_ep *ep, const void *msg, size_t len, int64_t timeout_ns);

/**
 * accel_xfer_recv() - take the oldest message that arrived on any of @x's
 * endpoints (those of one endpoint in order).
 * @x: the endpoint set.
 * @from: Out, the endpoint it came on (NULL: not wanted). A message that
 *	came on a connection not yet taken by accel_xfer_accept() is
 *	delivered too, with the endpoint accept will return.
 * @buf: where to copy it.
 * @len: In, the size of @buf; Out, the message's length.
 * @timeout_ns: how long to wait for one (0: do not wait).
 *
 * Return: 0; -EMSGSIZE (the message is longer than *len, which says its
 * length: it is dropped, the next call gets the next one), -ETIMEDOUT
 * (-EAGAIN for a timeout of 0), -EINVAL.
 */
int accel_xfer_recv(struct accel_xfer *x, struct accel_xfer_ep **from, void *buf, size_t *len,
		    int64_t timeout_ns);

/**
 * accel_xfer_fd() - an eventfd (owned by @x) readable while a message or
 * an accepted connection waits, for an event loop; read it never (the
 * library clears it when the queues are empty).
 *
 * Return: the fd, or -EINVAL.
 */
int accel_xfer_fd(const struct accel_xfer *x);

#ifdef __cplusplus
}
#endif

#endif /* ACCEL_XFER_H */
