/* SPDX-License-Identifier: MIT */
/*
 * kvdmsg - the engine socket's messages (uapi/kvacceld.h) on the wire:
 * checking a received message, sending and receiving one packet with its
 * fds. Shared by kvacceld, libaccel's engine side and kvaccelctl.
 */
#ifndef KVDMSG_H
#define KVDMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kvacceld.h"

/* Room for any message plus one byte, to see an oversized one. */
union kvdmsg_buf {
	struct kvd_hdr hdr;
	uint64_t align;
	char bytes[KVD_MSG_MAX + 1];
};

/* Fds a receive makes room for: more than any message carries, to see and close them all. */
#define KVDMSG_RECV_FDS	64

/* Control data for SCM_RIGHTS, aligned for struct cmsghdr (CMSG_FIRSTHDR() points at it). */
union kvdmsg_cmsg {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * KVDMSG_RECV_FDS)];
};

/* Fill @hdr for a message of @type and @size bytes. */
void kvdmsg_hdr(struct kvd_hdr *hdr, unsigned int type, size_t size, uint64_t seq);

/*
 * Check a received message of @len bytes that came with @nfds fds: version,
 * type, size for the type, pads, names, fds only where they belong.
 * A message may be shorter than its type's size down to its revision-0
 * size (the missing fields read as zero: kvdmsg_recv() zeroes the rest of
 * its buffer), or longer when every byte past the known size is zero.
 * 0, or -EPROTO / -EBADMSG / -EMSGSIZE with *@why saying what is wrong
 * (-EPROTO for non-zero bytes this side does not know).
 */
int kvdmsg_check(const void *msg, size_t len, unsigned int nfds, const char **why);

/* The extension of a checked HANDOFF or HANDOFF_OFFER of @len bytes (zeros where absent). */
void kvdmsg_handoff_ext(const struct kvd_handoff *m, size_t len, struct kvd_handoff_ext *ext);

/* The incarnation in a checked HANDOFF or HANDOFF_OFFER of @len bytes (0: none). */
uint64_t kvdmsg_incarnation(const struct kvd_handoff *m, size_t len);

/* A name is 1 to KVD_NAME_MAX - 1 of [A-Za-z0-9._-], NUL-terminated. */
bool kvdmsg_name_ok(const char name[KVD_NAME_MAX]);
/* A node's name (the cluster view's): 1-63 of [A-Za-z0-9._-] in KVD_NODE_MAX bytes, not "." or "..". */
bool kvdmsg_node_ok(const char *name);
/* A transfer address: "HOST:PORT", HOST of [A-Za-z0-9.:[]-], PORT 1-65535. */
bool kvdmsg_addr_ok(const char *addr);

/* Send one message with @nfds fds (MSG_NOSIGNAL): 0 or -errno. */
int kvdmsg_send(int sock, const void *msg, const int *fds, unsigned int nfds);

/*
 * Receive one message into @buf (the rest of @buf is zeroed), close-on-exec
 * fds into @fds (room for KVD_HANDOFF_MAX_FDS). Returns its length, 0 at the
 * end of the stream, -EPROTO for a packet of 0 bytes that came with fds,
 * -EMSGSIZE for a message or fds that did not fit, or -errno; on every
 * error the fds that came are closed and *@nfds is 0. *@nfds gets the
 * number of fds.
 */
long kvdmsg_recv(int sock, union kvdmsg_buf *buf, int *fds, unsigned int *nfds, int flags);

/* Close @n fds. */
void kvdmsg_close_fds(int *fds, unsigned int n);

#endif
