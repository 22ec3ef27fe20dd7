/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvaccelctl - the node daemon's admin requests over its engine socket
 * (uapi/kvacceld.h): the engines registered, the hand-offs in flight, the
 * live migrations; a manual migration and a drain.
 */
#ifndef KVACCELCTL_DAEMON_H
#define KVACCELCTL_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/* How long each reply may take. */
#define DAEMON_REPLY_TIMEOUT_MS	5000

/* What went wrong in daemon_list(). */
struct daemon_error {
	bool connect;		/* connecting failed: no daemon, or not allowed */
	bool refused;		/* the daemon answered KVD_MSG_ERROR */
	char msg[160];		/* the daemon's message, or what was wrong */
};

/* The socket: @opt when set, else $KVACCELD_SOCKET, else KVD_SOCKET_PATH. */
const char *daemon_socket(const char *opt);

/*
 * Ask the daemon at @path for a list (@type: KVD_MSG_LIST_ENGINES or
 * KVD_MSG_LIST_HANDOFFS) and add each entry to @array as a JSON object,
 * sorted by id. 0, or -errno with @err saying where it failed (the
 * daemon's own -errno when it refused).
 */
int daemon_list(const char *path, unsigned int type, json_object *array,
		struct daemon_error *err);

/*
 * Ask for a manual migration of @engine's request @req to @to; the
 * migration started is added to @array. 0 or -errno as daemon_list().
 */
int daemon_migrate(const char *path, const char *engine, uint64_t req, const char *to,
		   json_object *array, struct daemon_error *err);

/*
 * The daemon's cluster view into @out (an object): "status" (an object),
 * "nodes" and "engines" (arrays sorted by node, then name). 0 or -errno
 * as daemon_list() (-ENOTCONN: the daemon's [cluster] part is off).
 */
int daemon_cluster(const char *path, json_object *out, struct daemon_error *err);

/* Drain @engine (or stop draining it, @cancel). 0 or -errno as daemon_list(). */
int daemon_drain(const char *path, const char *engine, bool cancel, struct daemon_error *err);

#endif
