/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvacceld - the etcd client's inside (etcd.h): the handle, the transport
 * (etcd_http.c) and the gateway's encoding (etcd_json.c).
 */
#ifndef KVD_ETCD_INT_H
#define KVD_ETCD_INT_H

#include <curl/curl.h>
#include <json-c/json.h>

#include "etcd.h"

struct etcd {
	CURL *curl;
	char *endpoints[ETCD_ENDPOINTS_MAX];
	unsigned int n, cur;		/* the endpoint to try first */
	char *user, *password, *ca, *cert, *key;
	unsigned int timeout_ms, connect_timeout_ms;
	size_t max_response;
	char *token;			/* from /v3/auth/authenticate; NULL: none yet */
	char errmsg[256];
};

/* Record what failed in @e's errmsg (printf-style) and return @err. */
int etcd_fail(struct etcd *e, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * etcd_http.c: POST @req (a JSON object, not consumed) to @path on the
 * endpoints in turn, authenticating first when a user is configured (and
 * once more when the token expired); *@resp: the parsed response object
 * (the caller puts it). A gateway error becomes its -errno.
 */
int etcd_call(struct etcd *e, const char *path, json_object *req, json_object **resp);

/*
 * A streaming POST: each JSON message of the response to @cb (0: go on,
 * else stop and return it) until the stream ends (-ECONNRESET), fails,
 * or @stop reads true (-ECANCELED); @timeout_ms bounds the whole (0:
 * no bound). On the current endpoint, then the others if it cannot
 * connect.
 */
typedef int (*etcd_msg_cb)(json_object *msg, void *arg);
int etcd_stream(struct etcd *e, const char *path, json_object *req, etcd_msg_cb cb, void *arg,
		const volatile bool *stop, unsigned int timeout_ms);

/* etcd_json.c */
/* Base64 (RFC 4648, padded) of @len bytes at @p: a new string, NULL on ENOMEM. */
char *etcd_b64_encode(const void *p, size_t len);
/* Decode @s (strict: alphabet, padding, length): a new NUL-terminated buffer. */
int etcd_b64_decode(const char *s, char **out, size_t *len);
/*
 * A 64-bit member @key of @o: a string of digits or a JSON integer; absent
 * is its default (0). -EPROTO for anything else.
 */
int etcd_json_i64(json_object *o, const char *key, int64_t *v);
/* "header"."revision" of a response (-EPROTO when there is no header). */
int etcd_json_revision(json_object *o, int64_t *rev);
/* Decode a mvccpb.KeyValue: @kv points into *@buf (free it after use). */
int etcd_json_kv(json_object *o, struct etcd_kv *kv, char **buf);
/*
 * Is @o a gateway error ({"error": "...", "code": N, "message": "..."}, or
 * a stream's {"error": {"grpc_code": N, "message": "..."}})? 0 when not,
 * else its -errno with the message recorded in @e.
 */
int etcd_json_error(struct etcd *e, json_object *o);
/* A gRPC status code as -errno. */
int etcd_grpc_errno(int code);

#endif
