/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvacceld - a client of etcd's v3 gRPC-JSON gateway (etcd 3.4: /v3/...)
 * over libcurl and json-c; no maintained C client of etcd exists.
 *
 *   etcd_http.c  the transport: POSTs to the configured endpoints in turn
 *                (short timeouts, the next endpoint on a transport failure),
 *                TLS and the auth token, streams of JSON messages;
 *   etcd_json.c  the gateway's encoding: keys and values in base64, 64-bit
 *                numbers as strings, fields at their default value omitted,
 *                errors as {"error","message","code"} (or inside a stream's
 *                message);
 *   etcd_client.c the operations below.
 *
 * Blocking calls, each bounded by the endpoints' timeouts (worst case
 * n_endpoints * (connect_timeout_ms + timeout_ms), and twice that when an
 * expired auth token is renewed); a watch runs until @stop is set, its
 * callback says stop, or the stream fails. They are meant for a thread
 * of their own (cluster.c runs two), never for the daemon's loop.
 *
 * Thread safety: a handle is used by one thread at a time; handles are
 * independent (call etcd_global_init() once before any thread starts).
 *
 * Errors: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH (no endpoint answered),
 * -EPROTO (a response that is not what the gateway sends: bad JSON, wrong
 * types, missing fields, bad base64), -EFBIG (a response or a stream
 * message over max_response), -EIO (an HTTP error status without a
 * better errno), -EACCES (authentication refused), -EPERM (permission
 * denied by etcd's RBAC), -ENOENT (lease not found), -ESTALE (a watch
 * from a compacted revision), -ECANCELED (a watch stopped by @stop or by
 * its callback), -ENOMEM. etcd_errmsg() says more about the last one.
 */
#ifndef KVD_ETCD_H
#define KVD_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Endpoints a handle rotates through, at most. */
#define ETCD_ENDPOINTS_MAX	8

/**
 * struct etcd_opts - how to reach etcd.
 * @endpoints: base URLs ("http://127.0.0.1:2379", "https://h:2379").
 * @n_endpoints: 1 to %ETCD_ENDPOINTS_MAX.
 * @user: with @password, etcd's user authentication (NULL: none).
 * @password: never logged, never published.
 * @ca: CA bundle to check the server's certificate (NULL: the system's).
 * @cert: client certificate (PEM; NULL: none), with @key.
 * @key: its private key.
 * @timeout_ms: a unary request's total time per endpoint (0: 1000).
 * @connect_timeout_ms: connecting to one endpoint (0: 300).
 * @max_response: bytes of a response, or of one stream message (0: 4 MiB).
 */
struct etcd_opts {
	const char *const *endpoints;
	unsigned int n_endpoints;
	const char *user, *password;
	const char *ca, *cert, *key;
	unsigned int timeout_ms, connect_timeout_ms;
	size_t max_response;
};

/**
 * struct etcd_kv - a key and its value, decoded (each NUL-terminated past
 * its length, so text can be used as a string).
 */
struct etcd_kv {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

enum etcd_event_type {
	ETCD_EVENT_PUT = 0,		/* the gateway omits "type" for it (the default) */
	ETCD_EVENT_DELETE = 1,
};

/**
 * struct etcd_event - one event of a watch.
 * @type: &enum etcd_event_type.
 * @kv: the key (its value too for a PUT).
 * @revision: the revision of the watch response that carried it.
 */
struct etcd_event {
	int type;
	struct etcd_kv kv;
	int64_t revision;
};

struct etcd;

/* Call once before any handle is made (curl_global_init). 0 or -ENOMEM. */
int etcd_global_init(void);

/*
 * A handle (nothing is sent yet). NULL with errno (EINVAL: bad options,
 * @err says which) on failure.
 */
struct etcd *etcd_new(const struct etcd_opts *o, char *err, size_t len);
void etcd_free(struct etcd *e);

/* What went wrong in the last call that failed ("" when none did). */
const char *etcd_errmsg(const struct etcd *e);
/* The endpoint the handle talks to now. */
const char *etcd_endpoint(const struct etcd *e);

/* Put @key = @value (@lease 0: none). @rev (may be NULL): the revision after it. */
int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
	     int64_t *rev);

/*
 * Every key starting with @prefix ("" is refused), each given to @cb
 * (which returns 0, or non-zero to stop: etcd_range_prefix() then
 * returns it); @rev: the store's revision the range was read at.
 */
typedef int (*etcd_kv_cb)(const struct etcd_kv *kv, void *arg);
int etcd_range_prefix(struct etcd *e, const char *prefix, etcd_kv_cb cb, void *arg,
		      int64_t *rev);

/* Delete @key, or every key starting with it (@prefix). @deleted may be NULL. */
int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted);

/* A lease of @ttl seconds: its @id and the @granted TTL. */
int etcd_lease_grant(struct etcd *e, int64_t ttl, int64_t *id, int64_t *granted);
/* Renew lease @id: its TTL now (@ttl may be NULL), or -ENOENT when it expired. */
int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl);
/* Revoke lease @id (and delete its keys). -ENOENT when it was gone. */
int etcd_lease_revoke(struct etcd *e, int64_t id);

/*
 * Watch every key starting with @prefix from @start_rev (0: from now),
 * with etcd's progress notifications. @created (may be NULL) is called
 * once the watch is in place, with the revision etcd reported;
 * @cb for each event, in order (non-zero: stop). Returns when @stop
 * reads true (checked at least once a second), @cb stops it
 * (-ECANCELED), or the stream fails or ends (-errno; -ESTALE with
 * *@compact_rev set when @start_rev was compacted: range again).
 */
typedef int (*etcd_event_cb)(const struct etcd_event *ev, void *arg);
typedef void (*etcd_created_cb)(int64_t revision, void *arg);
int etcd_watch(struct etcd *e, const char *prefix, int64_t start_rev, etcd_created_cb created,
	       etcd_event_cb cb, void *arg, const volatile bool *stop, int64_t *compact_rev);

#endif
