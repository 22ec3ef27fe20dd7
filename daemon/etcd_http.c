// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the etcd client's transport (etcd_int.h): libcurl's easy
 * interface, one handle per etcd handle (its connection kept between
 * requests).
 *
 * Each request goes to the current endpoint; when it cannot be reached
 * (connect refused or timed out, the request timed out) or the member
 * says it cannot serve (gRPC UNAVAILABLE: no leader; DEADLINE_EXCEEDED),
 * the next endpoint is tried, each once per call, and the one that
 * answered becomes the current one. Retrying later, with backoff, is the
 * caller's (cluster.c's) business: a call is bounded by
 * n * (connect_timeout_ms + timeout_ms).
 *
 * Requests carry "Expect:" empty: one small JSON message per request (the
 * watch's create_request included) needs no 100-continue round trip;
 * etcd's gateway reads a streaming request's body as it comes, so a
 * client that sent several messages on one stream (watch create and
 * cancel, repeated keepalives) would send them chunked behind
 * "Expect: 100-continue" -- this client opens one stream per watch and
 * one request per keepalive instead.
 *
 * Auth: with a user configured, /v3/auth/authenticate gives a token sent
 * raw (no "Bearer") in "Authorization"; an "invalid auth token" answer
 * (expired: etcd's simple tokens live 5 minutes) gets one new token and
 * one retry.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_int.h"

int etcd_fail(struct etcd *e, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->errmsg, sizeof(e->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

struct body {
	struct etcd *e;
	char *p;
	size_t len, cap;
	bool too_big;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = size * n;

	if (b->len + add > b->e->max_response) {
		b->too_big = true;
		return 0;
	}
	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + add + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, add);
	b->len += add;
	b->p[b->len] = 0;
	return add;
}

/* The options every request has; @stream: no total timeout. */
static struct curl_slist *setup(struct etcd *e, const char *url, const char *body,
				bool stream, bool auth)
{
	struct curl_slist *h = NULL, *t;
	char *hdr = NULL;
	CURL *c = e->curl;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)e->connect_timeout_ms);
	if (!stream)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	/* A peer that vanished without a FIN (a partition) is found by TCP keepalives. */
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 2L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "");
	if (e->ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, e->ca);
	if (e->cert)
		curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert);
	if (e->key)
		curl_easy_setopt(c, CURLOPT_SSLKEY, e->key);
	t = curl_slist_append(h, "Content-Type: application/json");
	if (t)
		h = t, t = curl_slist_append(h, "Expect:");
	if (t && auth && e->token) {
		h = t;
		if (asprintf(&hdr, "Authorization: %s", e->token) < 0)
			hdr = NULL;
		t = hdr ? curl_slist_append(h, hdr) : NULL;
		free(hdr);
	}
	if (!t) {
		curl_slist_free_all(h);
		return NULL;
	}
	h = t;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	return h;
}

/* A libcurl failure as -errno, recorded. */
static int transport_error(struct etcd *e, CURLcode rc, const char *url)
{
	int err;

	switch (rc) {
	case CURLE_COULDNT_CONNECT: err = -ECONNREFUSED; break;
	case CURLE_OPERATION_TIMEDOUT: err = -ETIMEDOUT; break;
	case CURLE_COULDNT_RESOLVE_HOST: err = -EHOSTUNREACH; break;
	case CURLE_OUT_OF_MEMORY: err = -ENOMEM; break;
	case CURLE_GOT_NOTHING: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		err = -ECONNRESET;
		break;
	case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CACERT_BADFILE:
		err = -EACCES;
		break;
	default: err = -EIO; break;
	}
	return etcd_fail(e, err, "%s: %s", url, curl_easy_strerror(rc));
}

/* One POST to one endpoint: 0 with *@resp, or -errno; *@next: try another endpoint. */
static int post_once(struct etcd *e, unsigned int ep, const char *path, const char *body,
		     bool auth, json_object **resp, bool *next)
{
	struct body b = { .e = e };
	struct curl_slist *h;
	json_tokener *tok;
	json_object *o;
	char url[512];
	long status = 0;
	CURLcode rc;
	int ret;

	*resp = NULL;
	*next = false;
	snprintf(url, sizeof(url), "%s%s", e->endpoints[ep], path);
	h = setup(e, url, body, false, auth);
	if (!h)
		return etcd_fail(e, -ENOMEM, "%s", strerror(ENOMEM));
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(e->curl);
	curl_slist_free_all(h);
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	if (b.too_big) {
		free(b.p);
		return etcd_fail(e, -EFBIG, "%s: response over %zu bytes", url, e->max_response);
	}
	if (rc != CURLE_OK) {
		free(b.p);
		ret = transport_error(e, rc, url);
		*next = ret != -ENOMEM && ret != -EACCES;
		return ret;
	}
	tok = json_tokener_new_ex(64);
	o = tok && b.p ? json_tokener_parse_ex(tok, b.p, (int)b.len) : NULL;
	if (o && json_tokener_get_parse_end(tok) < b.len &&
	    strspn(b.p + json_tokener_get_parse_end(tok), " \t\r\n") !=
	    b.len - json_tokener_get_parse_end(tok)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		ret = status >= 400 ? -EIO : -EPROTO;
		etcd_fail(e, ret, "%s: HTTP %ld, %s", url, status, b.p ? "not a JSON object" : "no body");
		free(b.p);
		*next = status >= 500;
		return ret;
	}
	free(b.p);
	ret = etcd_json_error(e, o);
	if (!ret && status != 200) {
		ret = etcd_fail(e, -EIO, "%s: HTTP %ld", url, status);
	}
	if (ret) {
		json_object_put(o);
		*next = ret == -EAGAIN || ret == -ETIMEDOUT;
		return ret;
	}
	*resp = o;
	return 0;
}

/* POST on each endpoint in turn, from the current one. */
static int post(struct etcd *e, const char *path, const char *body, bool auth,
		json_object **resp)
{
	unsigned int i;
	int ret = -EIO;

	for (i = 0; i < e->n; i++) {
		unsigned int ep = (e->cur + i) % e->n;
		bool next;

		ret = post_once(e, ep, path, body, auth, resp, &next);
		if (!ret || !next) {
			e->cur = ep;	/* it answered */
			return ret;
		}
	}
	return ret;
}

static int authenticate(struct etcd *e)
{
	json_object *req = json_object_new_object(), *resp = NULL, *t;
	int ret = -ENOMEM;

	free(e->token);
	e->token = NULL;
	if (req && !json_object_object_add(req, "name", json_object_new_string(e->user)) &&
	    !json_object_object_add(req, "password", json_object_new_string(e->password))) {
		ret = post(e, "/v3/auth/authenticate", json_object_to_json_string_ext(req,
			   JSON_C_TO_STRING_PLAIN), false, &resp);
	}
	json_object_put(req);
	if (ret) {
		if (ret == -EINVAL || ret == -EACCES)
			ret = etcd_fail(e, -EACCES, "authentication as %s refused: %s", e->user,
					e->errmsg);
		return ret;
	}
	if (!json_object_object_get_ex(resp, "token", &t) || !json_object_is_type(t, json_type_string) ||
	    !*json_object_get_string(t) || strpbrk(json_object_get_string(t), "\r\n")) {
		json_object_put(resp);
		return etcd_fail(e, -EPROTO, "authenticate: no token in the answer");
	}
	e->token = strdup(json_object_get_string(t));
	json_object_put(resp);
	return e->token ? 0 : -ENOMEM;
}

static bool token_expired(const struct etcd *e, int ret)
{
	return ret == -EACCES && strstr(e->errmsg, "auth token");
}

/* A request's start: @req's text in *@body, a token when a user is configured. */
static int prepare(struct etcd *e, json_object *req, const char **body)
{
	e->errmsg[0] = 0;
	*body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!*body)
		return etcd_fail(e, -ENOMEM, "%s", strerror(ENOMEM));
	return e->user && !e->token ? authenticate(e) : 0;
}

int etcd_call(struct etcd *e, const char *path, json_object *req, json_object **resp)
{
	const char *body;
	int ret = prepare(e, req, &body);

	if (ret)
		return ret;
	ret = post(e, path, body, true, resp);
	if (e->user && token_expired(e, ret)) {
		ret = authenticate(e);
		if (!ret)
			ret = post(e, path, body, true, resp);
	}
	return ret;
}

/* ---- streams ---------------------------------------------------------- */

struct stream {
	struct etcd *e;
	json_tokener *tok;
	size_t msg_bytes;		/* of the message being parsed */
	etcd_msg_cb cb;
	void *arg;
	int ret;			/* what stopped it */
	const volatile bool *stop;
	long status;
	bool got;			/* a message came */
};

static size_t on_stream(char *data, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t len = size * n, at = 0;

	if (!s->status)
		curl_easy_getinfo(s->e->curl, CURLINFO_RESPONSE_CODE, &s->status);
	while (at < len) {
		json_object *o;
		size_t used;

		/* Between messages: the gateway's newline, and any blank. */
		if (!s->msg_bytes) {
			while (at < len && (data[at] == ' ' || data[at] == '\t' ||
					    data[at] == '\r' || data[at] == '\n'))
				at++;
			if (at == len)
				break;
		}
		o = json_tokener_parse_ex(s->tok, data + at, (int)(len - at));
		used = json_tokener_get_parse_end(s->tok);
		if (!o) {
			if (json_tokener_get_error(s->tok) != json_tokener_continue &&
			    s->status >= 400) {
				s->ret = etcd_fail(s->e, -EIO, "stream: HTTP %ld", s->status);
				return 0;
			}
			if (json_tokener_get_error(s->tok) != json_tokener_continue) {
				s->ret = etcd_fail(s->e, -EPROTO, "stream: bad JSON: %s",
						   json_tokener_error_desc(json_tokener_get_error(s->tok)));
				return 0;
			}
			s->msg_bytes += len - at;
			if (s->msg_bytes > s->e->max_response) {
				s->ret = etcd_fail(s->e, -EFBIG, "stream: a message over %zu bytes",
						   s->e->max_response);
				return 0;
			}
			break;
		}
		s->msg_bytes += used;
		at += used;
		json_tokener_reset(s->tok);
		if (s->msg_bytes > s->e->max_response) {
			json_object_put(o);
			s->ret = etcd_fail(s->e, -EFBIG, "stream: a message over %zu bytes",
					   s->e->max_response);
			return 0;
		}
		s->msg_bytes = 0;
		s->got = true;
		if (!json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			s->ret = etcd_fail(s->e, -EPROTO, "stream: a message that is not an object");
			return 0;
		}
		s->ret = s->status == 200 ? etcd_json_error(s->e, o) : 0;
		if (!s->ret && s->status != 200) {
			s->ret = etcd_json_error(s->e, o);
			if (!s->ret)
				s->ret = etcd_fail(s->e, -EIO, "stream: HTTP %ld", s->status);
		}
		if (!s->ret)
			s->ret = s->cb(o, s->arg);
		json_object_put(o);
		if (s->ret)
			return 0;
	}
	return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct stream *s = arg;

	(void)dt, (void)dn, (void)ut, (void)un;
	if (*s->stop) {
		s->ret = -ECANCELED;
		return 1;
	}
	return 0;
}

int etcd_stream(struct etcd *e, const char *path, json_object *req, etcd_msg_cb cb, void *arg,
		const volatile bool *stop, unsigned int timeout_ms)
{
	const char *body;
	unsigned int i;
	int ret = prepare(e, req, &body);

	if (ret)
		return ret;
	ret = -EIO;
	for (i = 0; i < e->n; i++) {
		unsigned int ep = (e->cur + i) % e->n;
		struct stream s = { .e = e, .cb = cb, .arg = arg, .stop = stop };
		struct curl_slist *h;
		char url[512];
		CURLcode rc;

		snprintf(url, sizeof(url), "%s%s", e->endpoints[ep], path);
		s.tok = json_tokener_new_ex(64);
		h = s.tok ? setup(e, url, body, true, true) : NULL;
		if (!h) {
			json_tokener_free(s.tok);
			return etcd_fail(e, -ENOMEM, "%s", strerror(ENOMEM));
		}
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_stream);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &s);
		curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, &s);
		if (timeout_ms)
			curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		rc = curl_easy_perform(e->curl);
		curl_slist_free_all(h);
		json_tokener_free(s.tok);
		if (s.ret)
			return s.ret;
		if (!s.status)
			curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &s.status);
		if (rc == CURLE_OK) {
			if (s.msg_bytes)
				return etcd_fail(e, -EPROTO, "%s: stream cut in a message", url);
			if (s.status != 200)
				return etcd_fail(e, -EIO, "%s: HTTP %ld", url, s.status);
			return etcd_fail(e, -ECONNRESET, "%s: the stream ended", url);
		}
		ret = transport_error(e, rc, url);
		if (s.got || s.msg_bytes) {
			/* It was serving: the stream broke, the caller decides. */
			if (s.msg_bytes)
				etcd_fail(e, ret, "%s: stream cut in a message: %s", url,
					  curl_easy_strerror(rc));
			return ret;
		}
		if (ret == -ENOMEM || ret == -EACCES)
			return ret;
		/* Could not be reached: the next endpoint, once. */
		e->cur = (ep + 1) % e->n;
	}
	return ret;
}
