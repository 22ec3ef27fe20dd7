// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - a completion request's JSON body, parsed with json-c and
 * checked field by field: unknown fields are ignored, a known one of the
 * wrong type or out of range is 400, a prompt over the limit 413.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "http_int.h"

#define BAD(st, ...) do { snprintf(msg, msglen, __VA_ARGS__); ret = (st); goto out; } while (0)

static bool is_num(struct json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* An optional number >= 0 in ms, as microseconds. */
static int slo(struct json_object *top, const char *key, uint64_t *us, char *msg, size_t msglen)
{
	struct json_object *v;
	double d;

	if (!json_object_object_get_ex(top, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	d = json_object_get_double(v);
	if (!is_num(v) || !isfinite(d) || d < 0 || d > 1e9) {
		snprintf(msg, msglen, "'%s' must be a number of milliseconds (0 or more)", key);
		return 400;
	}
	*us = (uint64_t)(d * 1000.0);
	return 0;
}

static int prompt(struct json_object *v, const struct serve_http_opts *o, struct http_creq *r,
		  char *msg, size_t msglen)
{
	size_t i, n;

	if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);

		n = (size_t)json_object_get_string_len(v);
		if (!n || n > o->max_prompt)
			goto len;
		r->prompt = malloc(n * sizeof(*r->prompt));
		if (!r->prompt)
			goto oom;
		for (i = 0; i < n; i++)
			r->prompt[i] = (unsigned char)s[i];
	} else if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		if (!n || n > o->max_prompt)
			goto len;
		r->prompt = malloc(n * sizeof(*r->prompt));
		if (!r->prompt)
			goto oom;
		for (i = 0; i < n; i++) {
			struct json_object *t = json_object_array_get_idx(v, i);
			int64_t x = json_object_get_int64(t);

			if (!json_object_is_type(t, json_type_int) || x < 0 || x > 255) {
				snprintf(msg, msglen, "prompt[%zu]: token ids are integers 0 to 255", i);
				return 400;
			}
			r->prompt[i] = (int32_t)x;
		}
	} else {
		snprintf(msg, msglen, "'prompt' must be a string or a list of token ids");
		return 400;
	}
	r->n_prompt = (uint32_t)n;
	return 0;
len:
	if (!n) {
		snprintf(msg, msglen, "'prompt' is empty");
		return 400;
	}
	snprintf(msg, msglen, "the prompt has %zu tokens, more than the limit %u", n,
		 o->max_prompt);
	return 413;
oom:
	snprintf(msg, msglen, "out of memory");
	return 500;
}

int http_parse_creq(const char *body, size_t len, const struct serve_http_opts *o,
		    struct http_creq *r, char *msg, size_t msglen)
{
	struct json_tokener *tk = json_tokener_new();
	struct json_object *top = NULL, *v;
	int64_t x;
	double d;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->p.max_tokens = 16;
	if (!tk)
		BAD(500, "out of memory");
	json_tokener_set_flags(tk, JSON_TOKENER_STRICT);
	top = len ? json_tokener_parse_ex(tk, body, (int)len) : NULL;
	if (!top || json_tokener_get_error(tk) != json_tokener_success)
		BAD(400, "the body is not valid JSON: %s", !len ? "it is empty" :
		    json_tokener_get_error(tk) == json_tokener_continue ? "it ends early" :
		    json_tokener_error_desc(json_tokener_get_error(tk)));
	if ((size_t)json_tokener_get_parse_end(tk) < len)
		BAD(400, "the body has data after its JSON value");
	if (!json_object_is_type(top, json_type_object))
		BAD(400, "the body must be a JSON object");
	if (!json_object_object_get_ex(top, "prompt", &v))
		BAD(400, "'prompt' is missing");
	ret = prompt(v, o, r, msg, msglen);
	if (ret)
		goto out;
	if (json_object_object_get_ex(top, "max_tokens", &v)) {
		x = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int))
			BAD(400, "'max_tokens' must be an integer");
		if (x < 1 || x > o->max_tokens)
			BAD(400, "'max_tokens' must be 1 to %u", o->max_tokens);
		r->p.max_tokens = (uint32_t)x;
	}
	if (json_object_object_get_ex(top, "stream", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			BAD(400, "'stream' must be true or false");
		r->stream = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(top, "seed", &v)) {
		x = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || x < 0)
			BAD(400, "'seed' must be an integer of at least 0");
		r->p.seed = (uint64_t)x;
	}
	if (json_object_object_get_ex(top, "temperature", &v)) {
		d = json_object_get_double(v);
		if (!is_num(v) || !isfinite(d) || d < 0 || d > 1e6)
			BAD(400, "'temperature' must be a number of at least 0");
		r->p.temperature = (float)d;
	}
	if (json_object_object_get_ex(top, "priority", &v)) {
		x = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || x < INT32_MIN || x > INT32_MAX)
			BAD(400, "'priority' must be a 32-bit integer");
		r->p.priority = (int32_t)x;
	}
	ret = slo(top, "ttft_slo_ms", &r->p.ttft_slo_us, msg, msglen);
	if (!ret)
		ret = slo(top, "tpot_slo_ms", &r->p.tpot_slo_us, msg, msglen);
	if (ret)
		goto out;
	if (json_object_object_get_ex(top, "client", &v)) {
		if (!json_object_is_type(v, json_type_string))
			BAD(400, "'client' must be a string");
		snprintf(r->client, sizeof(r->client), "%s", json_object_get_string(v));
	}
	if (json_object_object_get_ex(top, "class", &v)) {
		const char *s = json_object_get_string(v);

		if (!json_object_is_type(v, json_type_string) ||
		    (strcmp(s, "online") && strcmp(s, "offline")))
			BAD(400, "'class' must be \"online\" or \"offline\"");
		r->offline = !strcmp(s, "offline");
	}
out:
	if (ret) {
		free(r->prompt);
		r->prompt = NULL;
	}
	json_object_put(top);
	if (tk)
		json_tokener_free(tk);
	return ret;
}
