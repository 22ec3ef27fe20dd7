/* SPDX-License-Identifier: MIT */
/*
 * kvnl - a small client of the "kvaccel" generic netlink family over
 * libnl-genl-3, shared by kvaccelctl, the daemon and the tests.
 *
 * Every function returns 0 (or a count) or a negative errno; the kernel's
 * extended-ack message of the last failed request is in kvnl_errmsg().
 * A handle is not thread-safe: use one per thread.
 */
#ifndef KVNL_H
#define KVNL_H

#include <stdbool.h>
#include <stdint.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "kvaccel_netlink.h"

struct kvnl;

/** A message of the family: its command and attributes (NULL if absent). */
struct kvnl_msg {
	int cmd;
	struct nlattr *tb[KVACCEL_A_MAX + 1];
};

/** Called for each reply, dump entry or event; a negative return aborts. */
typedef int (*kvnl_cb)(const struct kvnl_msg *msg, void *arg);

/* -ENOENT: the family is not registered (the module is not loaded). */
int kvnl_open(struct kvnl **nl);
void kvnl_close(struct kvnl *nl);
const char *kvnl_errmsg(const struct kvnl *nl);

/* A request; add attributes with the nla_put_*() of libnl, then exec. */
struct nl_msg *kvnl_request(struct kvnl *nl, int cmd, bool dump);
/* Send, receive the replies until the ack or the end of the dump; frees msg. */
int kvnl_exec(struct kvnl *nl, struct nl_msg *msg, kvnl_cb cb, void *arg);

/*
 * Join the events group (-EPERM without CAP_NET_ADMIN), with a 4 MiB
 * receive buffer where allowed. Events lost to an overrun surface as
 * -ENOMEM (libnl's name for ENOBUFS) from kvnl_wait_events(): re-read the
 * dumps then.
 */
int kvnl_subscribe(struct kvnl *nl);
/* Wait up to timeout_ms (-1: forever) for events: 1 handled, 0 timeout. */
int kvnl_wait_events(struct kvnl *nl, int timeout_ms, kvnl_cb cb, void *arg);

/* The socket, to poll for events (then kvnl_wait_events(nl, 0, ...)). */
int kvnl_fd(const struct kvnl *nl);

/* An event's name ("client-open", ...), or NULL if @cmd is not an event. */
const char *kvnl_event_name(int cmd);

/* Attribute readers: false if absent or of the wrong size. */
bool kvnl_u64(const struct kvnl_msg *m, int attr, uint64_t *v);
bool kvnl_u32(const struct kvnl_msg *m, int attr, uint32_t *v);
bool kvnl_s32(const struct kvnl_msg *m, int attr, int32_t *v);
bool kvnl_u8(const struct kvnl_msg *m, int attr, uint8_t *v);
const char *kvnl_str(const struct kvnl_msg *m, int attr);

#endif /* KVNL_H */
