// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - safetensors save and load (the header parsed with
 * json-c). Every tensor the model has must be there, F32, of its shape,
 * inside the file; nothing else may be.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this host is not"
#endif

#define ST_HEADER_MAX	(64u << 20)
#define PREFIX		"kvaccel."

#define FAIL(code, ...)						\
	do {							\
		snprintf(err, errlen, __VA_ARGS__);		\
		ret = -(code);					\
		goto out;					\
	} while (0)

static const struct {
	const char *key;
	size_t off;
	bool is_float;
} fields[] = {
	{ "layers", offsetof(struct serve_config, layers), false },
	{ "d_model", offsetof(struct serve_config, d_model), false },
	{ "heads", offsetof(struct serve_config, heads), false },
	{ "kv_heads", offsetof(struct serve_config, kv_heads), false },
	{ "ff", offsetof(struct serve_config, ff), false },
	{ "vocab", offsetof(struct serve_config, vocab), false },
	{ "experts", offsetof(struct serve_config, experts), false },
	{ "top_k", offsetof(struct serve_config, top_k), false },
	{ "shared_expert", offsetof(struct serve_config, shared_expert), false },
	{ "rope_theta", offsetof(struct serve_config, rope_theta), true },
	{ "norm_eps", offsetof(struct serve_config, norm_eps), true },
};

static size_t tensor_floats(const struct serve_tensor *t)
{
	return (size_t)t->rows * (t->cols ? t->cols : 1);
}

static struct serve_tensor *table_of(struct serve_model *m, uint32_t *n)
{
	struct serve_tensor *t;

	*n = serve_model_tensors(m, NULL, 0);
	t = calloc(*n, sizeof(*t));
	if (t)
		serve_model_tensors(m, t, *n);
	return t;
}

int serve_st_save(struct serve_model *m, const char *path, char *err, size_t errlen)
{
	struct json_object *root = json_object_new_object(), *meta = json_object_new_object();
	struct serve_tensor *t = NULL;
	const char *hdr;
	uint64_t off = 0, hlen, len;
	char buf[64], *pad = NULL;
	FILE *f = NULL;
	uint32_t n, i;
	int ret = 0;

	t = table_of(m, &n);
	if (!root || !meta || !t)
		FAIL(ENOMEM, "out of memory");
	json_object_object_add(meta, "format", json_object_new_string("pt"));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *p = (const char *)&m->cfg + fields[i].off;

		if (fields[i].is_float)
			snprintf(buf, sizeof(buf), "%.9g", (double)*(const float *)p);
		else
			snprintf(buf, sizeof(buf), "%u", *(const uint32_t *)p);
		snprintf(buf + 32, 32, PREFIX "%s", fields[i].key);
		json_object_object_add(meta, buf + 32, json_object_new_string(buf));
	}
	json_object_object_add(root, "__metadata__", meta);
	meta = NULL;
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object(), *shape = json_object_new_array();
		struct json_object *offs = json_object_new_array();

		len = tensor_floats(&t[i]) * sizeof(float);
		json_object_array_add(shape, json_object_new_int64(t[i].rows));
		if (t[i].cols)
			json_object_array_add(shape, json_object_new_int64(t[i].cols));
		json_object_array_add(offs, json_object_new_int64((int64_t)off));
		json_object_array_add(offs, json_object_new_int64((int64_t)(off + len)));
		json_object_object_add(o, "dtype", json_object_new_string("F32"));
		json_object_object_add(o, "shape", shape);
		json_object_object_add(o, "data_offsets", offs);
		json_object_object_add(root, t[i].name, o);
		off += len;
	}
	hdr = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	/* The header padded with spaces to 8 bytes, as the reference writer does. */
	hlen = (strlen(hdr) + 7) & ~7ull;
	pad = malloc(hlen);
	if (!pad)
		FAIL(ENOMEM, "out of memory");
	memset(pad, ' ', hlen);
	memcpy(pad, hdr, strlen(hdr));
	f = fopen(path, "wb");
	if (!f)
		FAIL(errno, "%s: %s", path, strerror(errno));
	if (fwrite(&hlen, 8, 1, f) != 1 || fwrite(pad, 1, hlen, f) != hlen)
		FAIL(EIO, "%s: write failed", path);
	for (i = 0; i < n; i++)
		if (fwrite(*t[i].data, sizeof(float), tensor_floats(&t[i]), f) !=
		    tensor_floats(&t[i]))
			FAIL(EIO, "%s: write failed", path);
	if (fclose(f)) {
		f = NULL;
		FAIL(EIO, "%s: write failed", path);
	}
	f = NULL;
out:
	if (f)
		fclose(f);
	free(pad);
	free(t);
	json_object_put(meta);
	json_object_put(root);
	return ret;
}

/* Map @path (read-only, private): what is not read is never paged in. */
static int map_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = 0;

	*buf = NULL;
	if (fd < 0)
		FAIL(errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		FAIL(EINVAL, "%s: not a regular file", path);
	*len = (size_t)st.st_size;
	if (!*len)
		FAIL(EINVAL, "%s: 0 bytes, too short for a safetensors file", path);
	*buf = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (*buf == MAP_FAILED) {
		*buf = NULL;
		FAIL(errno, "%s: %s", path, strerror(errno));
	}
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int read_config(struct json_object *root, struct serve_config *c, char *err, size_t errlen)
{
	struct json_object *meta, *v;
	char key[64], *end;
	uint32_t i;
	int ret = 0;

	if (!json_object_object_get_ex(root, "__metadata__", &meta))
		return 0;
	if (!json_object_is_type(meta, json_type_object))
		FAIL(EINVAL, "__metadata__ is not an object");
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *p = (char *)c + fields[i].off;
		const char *s;

		snprintf(key, sizeof(key), PREFIX "%s", fields[i].key);
		if (!json_object_object_get_ex(meta, key, &v))
			continue;
		if (!json_object_is_type(v, json_type_string))
			FAIL(EINVAL, "__metadata__.%s is not a string", key);
		s = json_object_get_string(v);
		errno = 0;
		if (fields[i].is_float) {
			float f = strtof(s, &end);

			if (errno || end == s || *end)
				FAIL(EINVAL, "__metadata__.%s: \"%s\" is not a number", key, s);
			memcpy(p, &f, sizeof(f));
		} else {
			unsigned long u = strtoul(s, &end, 10);

			if (errno || end == s || *end || u > UINT32_MAX || *s == '-')
				FAIL(EINVAL, "__metadata__.%s: \"%s\" is not a count", key, s);
			*(uint32_t *)p = (uint32_t)u;
		}
	}
out:
	return ret;
}

static int read_tensor(struct json_object *o, const struct serve_tensor *t,
		       const unsigned char *data, uint64_t data_len, bool copy, char *err,
		       size_t errlen)
{
	struct json_object *v, *shape, *offs;
	uint64_t b, e, want = tensor_floats(t) * sizeof(float);
	size_t nd;
	int ret = 0;

	if (!json_object_is_type(o, json_type_object))
		FAIL(EINVAL, "tensor %s: not an object", t->name);
	if (!json_object_object_get_ex(o, "dtype", &v) || !json_object_is_type(v, json_type_string))
		FAIL(EINVAL, "tensor %s: no dtype", t->name);
	if (strcmp(json_object_get_string(v), "F32"))
		FAIL(EINVAL, "tensor %s: dtype %s, only F32 is supported", t->name,
		     json_object_get_string(v));
	if (!json_object_object_get_ex(o, "shape", &shape) ||
	    !json_object_is_type(shape, json_type_array))
		FAIL(EINVAL, "tensor %s: no shape", t->name);
	nd = json_object_array_length(shape);
	if (nd != (t->cols ? 2u : 1u) ||
	    json_object_get_int64(json_object_array_get_idx(shape, 0)) != t->rows ||
	    (t->cols && json_object_get_int64(json_object_array_get_idx(shape, 1)) != t->cols)) {
		if (t->cols)
			FAIL(EINVAL, "tensor %s: shape %s, the model needs [%u, %u]", t->name,
			     json_object_to_json_string_ext(shape, JSON_C_TO_STRING_PLAIN), t->rows, t->cols);
		FAIL(EINVAL, "tensor %s: shape %s, the model needs [%u]", t->name,
		     json_object_to_json_string_ext(shape, JSON_C_TO_STRING_PLAIN), t->rows);
	}
	if (!json_object_object_get_ex(o, "data_offsets", &offs) ||
	    !json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2 ||
	    !json_object_is_type(json_object_array_get_idx(offs, 0), json_type_int) ||
	    !json_object_is_type(json_object_array_get_idx(offs, 1), json_type_int))
		FAIL(EINVAL, "tensor %s: no data_offsets [begin, end]", t->name);
	b = (uint64_t)json_object_get_int64(json_object_array_get_idx(offs, 0));
	e = (uint64_t)json_object_get_int64(json_object_array_get_idx(offs, 1));
	if (json_object_get_int64(json_object_array_get_idx(offs, 0)) < 0 || b > e)
		FAIL(EINVAL, "tensor %s: bad data_offsets", t->name);
	if (e > data_len)
		FAIL(EINVAL, "tensor %s: data_offsets end %llu past the data (%llu bytes): truncated?",
		     t->name, (unsigned long long)e, (unsigned long long)data_len);
	if (e - b != want)
		FAIL(EINVAL, "tensor %s: %llu bytes of data for %llu F32 bytes of its shape", t->name,
		     (unsigned long long)(e - b), (unsigned long long)want);
	if (copy)
		memcpy(*t->data, data + b, want);
out:
	return ret;
}

struct serve_model *serve_st_load(const char *path, const struct serve_config *fallback,
				  char *err, size_t errlen)
{
	return serve_st_load_flags(path, fallback, 0, err, errlen);
}

struct serve_model *serve_st_load_flags(const char *path, const struct serve_config *fallback,
					uint32_t flags, char *err, size_t errlen)
{
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL, *o;
	struct serve_tensor *t = NULL;
	struct serve_model *m = NULL;
	struct serve_config c = *fallback;
	unsigned char *buf = NULL;
	uint64_t hlen;
	size_t len = 0;
	uint32_t n, i;
	int ret;

	ret = map_file(path, &buf, &len, err, errlen);
	if (ret)
		goto out;
	if (len < 8)
		FAIL(EINVAL, "%s: %zu bytes, too short for a safetensors file", path, len);
	memcpy(&hlen, buf, 8);
	if (hlen > ST_HEADER_MAX || hlen > len - 8)
		FAIL(EINVAL, "%s: header of %llu bytes in a %zu-byte file: truncated or not safetensors",
		     path, (unsigned long long)hlen, len);
	tok = json_tokener_new();
	if (!tok)
		FAIL(ENOMEM, "out of memory");
	/* Strict: no unquoted keys, comments or single quotes (json-c's leniencies). */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, (const char *)buf + 8, (int)hlen);
	if (!root || json_tokener_get_error(tok) != json_tokener_success) {
		/* Trailing spaces are the header's padding. */
		size_t used = json_tokener_get_parse_end(tok), k;

		for (k = used; root && k < hlen; k++)
			if (buf[8 + k] != ' ')
				break;
		if (!root || k < hlen)
			FAIL(EINVAL, "%s: bad JSON header: %s", path,
			     json_tokener_error_desc(json_tokener_get_error(tok)));
	}
	if (!json_object_is_type(root, json_type_object))
		FAIL(EINVAL, "%s: the JSON header is not an object", path);
	ret = read_config(root, &c, err, errlen);
	if (ret)
		goto out;
	ret = serve_config_check(&c, err, errlen);
	if (ret)
		goto out;
	m = serve_model_alloc(&c);
	t = m ? table_of(m, &n) : NULL;
	if (!t)
		FAIL(ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (!json_object_object_get_ex(root, t[i].name, &o))
			FAIL(EINVAL, "%s: tensor %s missing", path, t[i].name);
		ret = read_tensor(o, &t[i], buf + 8 + hlen, len - 8 - hlen,
				  !(flags & SERVE_MODEL_NO_EXPERTS) || !serve_tensor_is_expert(t[i].name),
				  err, errlen);
		if (ret)
			goto out;
	}
	json_object_object_foreach(root, key, val) {
		(void)val;
		if (!strcmp(key, "__metadata__"))
			continue;
		for (i = 0; i < n; i++)
			if (!strcmp(key, t[i].name))
				break;
		if (i == n)
			FAIL(EINVAL, "%s: tensor %s is not part of this model", path, key);
	}
out:
	free(t);
	if (buf)
		munmap(buf, len);
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	if (ret) {
		serve_model_free(m);
		errno = -ret;
		return NULL;
	}
	return m;
}
