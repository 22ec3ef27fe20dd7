// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the etcd gateway's JSON (etcd_int.h): proto3's JSON mapping
 * as etcd 3.4's grpc-gateway writes it. bytes fields (keys, values) are
 * base64; int64 fields are strings of digits; a field at its default
 * value (0, false, "", an enum's first value such as a PUT event's type)
 * is left out, so absent means 0 and never "missing". Anything else
 * (a wrong type, an unparsable number, bad base64) is -EPROTO.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_int.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *p, size_t len)
{
	const unsigned char *s = p;
	char *out, *o;
	size_t i;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = b64[s[i] >> 2];
		*o++ = b64[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*o++ = b64[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		*o++ = b64[s[i + 2] & 63];
	}
	if (i < len) {
		*o++ = b64[s[i] >> 2];
		if (i + 1 < len) {
			*o++ = b64[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
			*o++ = b64[(s[i + 1] & 15) << 2];
		} else {
			*o++ = b64[(s[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = 0;
	return out;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

int etcd_b64_decode(const char *s, char **out, size_t *len)
{
	size_t n = strlen(s), i, pad = 0;
	unsigned char *o;
	size_t k = 0;

	*out = NULL;
	if (n % 4)
		return -EPROTO;
	if (n && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	o = malloc(n / 4 * 3 + 1);
	if (!o)
		return -ENOMEM;
	for (i = 0; i < n; i += 4) {
		int v[4], j;
		bool last = i + 4 == n;

		for (j = 0; j < 4; j++) {
			if (last && s[i + j] == '=' && j >= 4 - (int)pad) {
				v[j] = 0;
				continue;
			}
			v[j] = b64_val(s[i + j]);
			if (v[j] < 0) {
				free(o);
				return -EPROTO;
			}
		}
		o[k++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		if (!last || pad < 2)
			o[k++] = (unsigned char)((v[1] << 4) | (v[2] >> 2));
		if (!last || pad < 1)
			o[k++] = (unsigned char)((v[2] << 6) | v[3]);
		/* Bits past the data must be zero (one encoding per byte string). */
		if (last && ((pad == 2 && (v[1] & 15)) || (pad == 1 && (v[2] & 3)))) {
			free(o);
			return -EPROTO;
		}
	}
	o[k] = 0;
	*out = (char *)o;
	*len = k;
	return 0;
}

int etcd_json_i64(json_object *o, const char *key, int64_t *v)
{
	json_object *m;
	const char *s;
	char *end;
	long long n;

	*v = 0;
	if (!json_object_object_get_ex(o, key, &m) || json_object_is_type(m, json_type_null))
		return 0;
	if (json_object_is_type(m, json_type_int)) {
		errno = 0;
		*v = json_object_get_int64(m);
		return errno ? -EPROTO : 0;
	}
	if (!json_object_is_type(m, json_type_string))
		return -EPROTO;
	s = json_object_get_string(m);
	if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -EPROTO;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end)
		return -EPROTO;
	*v = n;
	return 0;
}

int etcd_json_revision(json_object *o, int64_t *rev)
{
	json_object *h;

	if (!json_object_object_get_ex(o, "header", &h) || !json_object_is_type(h, json_type_object))
		return -EPROTO;
	return etcd_json_i64(h, "revision", rev);
}

/* A base64 member @key of @o ("" when absent): decoded into @dst at @at. */
static int bytes_member(json_object *o, const char *key, char **dst, size_t *len)
{
	json_object *m;

	if (!json_object_object_get_ex(o, key, &m)) {
		*dst = strdup("");
		*len = 0;
		return *dst ? 0 : -ENOMEM;
	}
	if (!json_object_is_type(m, json_type_string))
		return -EPROTO;
	return etcd_b64_decode(json_object_get_string(m), dst, len);
}

int etcd_json_kv(json_object *o, struct etcd_kv *kv, char **buf)
{
	char *k = NULL, *v = NULL;
	size_t kl = 0, vl = 0;
	int ret;

	*buf = NULL;
	memset(kv, 0, sizeof(*kv));
	if (!json_object_is_type(o, json_type_object))
		return -EPROTO;
	ret = bytes_member(o, "key", &k, &kl);
	if (!ret)
		ret = bytes_member(o, "value", &v, &vl);
	if (!ret && !kl)
		ret = -EPROTO;		/* etcd has no empty key */
	if (!ret)
		ret = etcd_json_i64(o, "create_revision", &kv->create_revision);
	if (!ret)
		ret = etcd_json_i64(o, "mod_revision", &kv->mod_revision);
	if (!ret)
		ret = etcd_json_i64(o, "version", &kv->version);
	if (!ret)
		ret = etcd_json_i64(o, "lease", &kv->lease);
	if (!ret) {
		/* One buffer: the key, its NUL, the value, its NUL. */
		*buf = malloc(kl + vl + 2);
		if (!*buf) {
			ret = -ENOMEM;
		} else {
			memcpy(*buf, k, kl + 1);
			memcpy(*buf + kl + 1, v, vl + 1);
			kv->key = *buf;
			kv->key_len = kl;
			kv->value = *buf + kl + 1;
			kv->value_len = vl;
		}
	}
	free(k);
	free(v);
	return ret;
}

int etcd_grpc_errno(int code)
{
	switch (code) {
	case 3: return -EINVAL;		/* INVALID_ARGUMENT */
	case 4: return -ETIMEDOUT;	/* DEADLINE_EXCEEDED: "request timed out" */
	case 5: return -ENOENT;		/* NOT_FOUND: "requested lease not found" */
	case 7: return -EPERM;		/* PERMISSION_DENIED */
	case 8: return -ENOSPC;		/* RESOURCE_EXHAUSTED: "database space exceeded" */
	case 9: return -EAGAIN;		/* FAILED_PRECONDITION */
	case 11: return -ERANGE;	/* OUT_OF_RANGE: "required revision has been compacted" */
	case 14: return -EAGAIN;	/* UNAVAILABLE: "no leader", "not capable" */
	case 16: return -EACCES;	/* UNAUTHENTICATED */
	}
	return -EIO;
}

int etcd_json_error(struct etcd *e, json_object *o)
{
	json_object *err, *m;
	int64_t code = 0;
	const char *msg = "";

	if (!json_object_object_get_ex(o, "error", &err))
		return 0;
	if (json_object_is_type(err, json_type_object)) {
		/* A stream's error: {"grpc_code", "http_code", "message", "http_status"}. */
		if (etcd_json_i64(err, "grpc_code", &code))
			code = 2;
		if (json_object_object_get_ex(err, "message", &m) &&
		    json_object_is_type(m, json_type_string))
			msg = json_object_get_string(m);
	} else {
		if (etcd_json_i64(o, "code", &code))
			code = 2;
		if (json_object_object_get_ex(o, "message", &m) &&
		    json_object_is_type(m, json_type_string))
			msg = json_object_get_string(m);
		else if (json_object_is_type(err, json_type_string))
			msg = json_object_get_string(err);
	}
	if (code < 0 || code > 16)
		code = 2;
	return etcd_fail(e, code ? etcd_grpc_errno((int)code) : -EIO, "etcd: %s (gRPC code %d)",
			 *msg ? msg : "error", (int)code);
}
