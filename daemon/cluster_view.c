// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the cluster view (cluster_view.h): keys and JSON values of
 * the nodes and engines under PREFIX/CLUSTER/.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster_view.h"

bool kvd_cview_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n >= KVD_NODE_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* An engine name: 1-31 of the same set (the engine socket's rule). */
static bool engine_name_ok(const char *s)
{
	return strlen(s) < KVD_CVIEW_ENGINE_MAX && kvd_cview_name_ok(s);
}

int kvd_cview_init(struct kvd_cview *v, const char *prefix, const char *cluster)
{
	size_t n = strlen(prefix);

	memset(v, 0, sizeof(*v));
	if (prefix[0] != '/' || n < 2 || prefix[n - 1] == '/' || strstr(prefix, "//") ||
	    !kvd_cview_name_ok(cluster))
		return -EINVAL;
	if (snprintf(v->base, sizeof(v->base), "%s/%s/", prefix, cluster) >= (int)sizeof(v->base))
		return -EINVAL;
	v->base_len = strlen(v->base);
	return 0;
}

void kvd_cview_clear(struct kvd_cview *v)
{
	v->nnodes = 0;
	v->nengines = 0;
}

void kvd_cview_free(struct kvd_cview *v)
{
	free(v->nodes);
	free(v->engines);
	v->nodes = NULL;
	v->engines = NULL;
	v->nnodes = v->nengines = v->cap_nodes = v->cap_engines = 0;
}

int kvd_cview_node_key(const struct kvd_cview *v, const char *node, char *buf, size_t len)
{
	return snprintf(buf, len, "%snodes/%s", v->base, node) >= (int)len ? -ENAMETOOLONG : 0;
}

int kvd_cview_engine_key(const struct kvd_cview *v, const char *node, const char *engine,
			 char *buf, size_t len)
{
	return snprintf(buf, len, "%sengines/%s/%s", v->base, node, engine) >= (int)len ?
	       -ENAMETOOLONG : 0;
}

const struct kvd_cview_node *kvd_cview_find_node(const struct kvd_cview *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->nnodes; i++)
		if (!strcmp(v->nodes[i].name, name))
			return &v->nodes[i];
	return NULL;
}

static int ignored(struct kvd_cview *v, char *why, size_t len, const char *fmt, const char *a)
{
	v->ignored++;
	snprintf(why, len, fmt, a);
	return 1;
}

/* ---- reading values --------------------------------------------------- */

/* A member that is an unsigned integer no larger than @max. */
static bool get_u64(json_object *o, const char *key, uint64_t max, uint64_t *out)
{
	json_object *m;
	int64_t v;

	if (!json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, json_type_int))
		return false;
	v = json_object_get_int64(m);
	if (v < 0 || (uint64_t)v > max)
		return false;
	*out = (uint64_t)v;
	return true;
}

static bool get_u32(json_object *o, const char *key, uint32_t *out)
{
	uint64_t v;

	if (!get_u64(o, key, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool get_bool(json_object *o, const char *key, bool *out)
{
	json_object *m;

	if (!json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, json_type_boolean))
		return false;
	*out = json_object_get_boolean(m);
	return true;
}

/* A JSON string of printable bytes that fits @size with its NUL. */
static bool str_of(json_object *m, char *dst, size_t size)
{
	const char *s;
	size_t i;

	if (!json_object_is_type(m, json_type_string))
		return false;
	s = json_object_get_string(m);
	if (strlen(s) >= size || (size_t)json_object_get_string_len(m) != strlen(s))
		return false;
	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

static bool get_str(json_object *o, const char *key, char *dst, size_t size)
{
	json_object *m;

	return json_object_object_get_ex(o, key, &m) && str_of(m, dst, size);
}

static json_object *parse_object(const char *val, size_t vlen)
{
	json_tokener *tok = json_tokener_new_ex(16);
	json_object *o;

	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, val, (int)vlen);
	if (o && (json_tokener_get_parse_end(tok) != vlen || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static bool read_node(json_object *o, struct kvd_cview_node *n)
{
	uint64_t up;

	memset(n, 0, sizeof(*n));
	if (!get_str(o, "node", n->name, sizeof(n->name)) || !get_u64(o, "capacity", UINT64_MAX >> 1,
	    &n->capacity) || !get_u64(o, "limit", UINT64_MAX >> 1, &n->limit) ||
	    !get_u64(o, "usage", UINT64_MAX >> 1, &n->usage) || !get_bool(o, "pressure", &n->pressure) ||
	    !get_str(o, "ucx_address", n->ucx_address, sizeof(n->ucx_address)) ||
	    !get_u32(o, "engines", &n->engines) || !get_u64(o, "updated_ms", INT64_MAX, &up))
		return false;
	n->updated_ms = (int64_t)up;
	return true;
}

static bool read_engine(json_object *o, struct kvd_cview_engine *e)
{
	json_object *models, *m;
	size_t i, k;

	memset(e, 0, sizeof(*e));
	if (!get_str(o, "node", e->node, sizeof(e->node)) || !get_str(o, "name", e->name,
	    sizeof(e->name)) || !get_u32(o, "priority", &e->priority) ||
	    !get_u64(o, "block_bytes", UINT64_MAX >> 1, &e->block_bytes) ||
	    !get_u32(o, "blocks_total", &e->blocks_total) ||
	    !get_u32(o, "blocks_free", &e->blocks_free) || e->blocks_free > e->blocks_total ||
	    !get_u32(o, "running", &e->running) || !get_u32(o, "waiting", &e->waiting) ||
	    !get_bool(o, "draining", &e->draining) ||
	    !json_object_object_get_ex(o, "load", &m) ||
	    !(json_object_is_type(m, json_type_double) || json_object_is_type(m, json_type_int)))
		return false;
	e->load = json_object_get_double(m);
	if (!isfinite(e->load) || e->load < 0 || e->load > 1)
		return false;
	if (!json_object_object_get_ex(o, "models", &models) ||
	    !json_object_is_type(models, json_type_array) ||
	    json_object_array_length(models) > KVD_CVIEW_MODELS_MAX)
		return false;
	k = json_object_array_length(models);
	for (i = 0; i < k; i++)
		if (!str_of(json_object_array_get_idx(models, i), e->models[i], sizeof(e->models[i])))
			return false;
	e->nmodels = (unsigned int)k;
	/* Optional (publishers before migrations to other nodes have none). */
	if (json_object_object_get_ex(o, "xfer", &m) && !str_of(m, e->xfer, sizeof(e->xfer)))
		return false;
	return true;
}

/* ---- applying keys ---------------------------------------------------- */

static void *grow(void *p, size_t *cap, size_t n, size_t size, size_t max)
{
	size_t c = *cap ? *cap * 2 : 16;
	void *q;

	if (n < *cap)
		return p;
	if (c > max)
		c = max;
	if (n >= c)
		return NULL;
	q = realloc(p, c * size);
	if (q)
		*cap = c;
	return q;
}

static int put_node(struct kvd_cview *v, const struct kvd_cview_node *n)
{
	size_t i;
	void *p;

	for (i = 0; i < v->nnodes; i++) {
		if (!strcmp(v->nodes[i].name, n->name)) {
			v->nodes[i] = *n;
			return 0;
		}
	}
	if (v->nnodes >= KVD_CVIEW_NODES_MAX)
		return 1;
	p = grow(v->nodes, &v->cap_nodes, v->nnodes, sizeof(*n), KVD_CVIEW_NODES_MAX);
	if (!p)
		return -ENOMEM;
	v->nodes = p;
	v->nodes[v->nnodes++] = *n;
	return 0;
}

static int put_engine(struct kvd_cview *v, const struct kvd_cview_engine *e)
{
	size_t i;
	void *p;

	for (i = 0; i < v->nengines; i++) {
		if (!strcmp(v->engines[i].node, e->node) && !strcmp(v->engines[i].name, e->name)) {
			v->engines[i] = *e;
			return 0;
		}
	}
	if (v->nengines >= KVD_CVIEW_ENGINES_MAX)
		return 1;
	p = grow(v->engines, &v->cap_engines, v->nengines, sizeof(*e), KVD_CVIEW_ENGINES_MAX);
	if (!p)
		return -ENOMEM;
	v->engines = p;
	v->engines[v->nengines++] = *e;
	return 0;
}

static void del_node(struct kvd_cview *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->nnodes; i++) {
		if (!strcmp(v->nodes[i].name, name)) {
			v->nodes[i] = v->nodes[--v->nnodes];
			return;
		}
	}
}

static void del_engine(struct kvd_cview *v, const char *node, const char *name)
{
	size_t i;

	for (i = 0; i < v->nengines; i++) {
		if (!strcmp(v->engines[i].node, node) && !strcmp(v->engines[i].name, name)) {
			v->engines[i] = v->engines[--v->nengines];
			return;
		}
	}
}

int kvd_cview_apply(struct kvd_cview *v, bool del, const char *key, size_t klen,
		    const char *val, size_t vlen, int64_t rev, char *why, size_t len)
{
	char rest[192], node[KVD_NODE_NAME_MAX], engine[KVD_CVIEW_ENGINE_MAX];
	const char *r, *slash;
	json_object *o;
	int ret;

	why[0] = 0;
	if (klen != strlen(key) || klen <= v->base_len || strncmp(key, v->base, v->base_len) ||
	    klen - v->base_len >= sizeof(rest))
		return ignored(v, why, len, "key %.120s is not PREFIX/CLUSTER/nodes/NODE or "
			       ".../engines/NODE/ENGINE", key);
	memcpy(rest, key + v->base_len, klen - v->base_len + 1);
	if (!strncmp(rest, "nodes/", 6)) {
		r = rest + 6;
		if (!kvd_cview_name_ok(r))
			return ignored(v, why, len, "key %.120s: not a node name", key);
		if (del) {
			del_node(v, r);
			return 0;
		}
		memcpy(node, r, strlen(r) + 1);	/* kvd_cview_name_ok(): it fits */
		engine[0] = 0;
	} else if (!strncmp(rest, "engines/", 8)) {
		r = rest + 8;
		slash = strchr(r, '/');
		if (!slash || (size_t)(slash - r) >= sizeof(node))
			return ignored(v, why, len, "key %.120s: not engines/NODE/ENGINE", key);
		snprintf(node, sizeof(node), "%.*s", (int)(slash - r), r);
		if (!kvd_cview_name_ok(node) || !engine_name_ok(slash + 1))
			return ignored(v, why, len, "key %.120s: not engines/NODE/ENGINE", key);
		memcpy(engine, slash + 1, strlen(slash + 1) + 1);	/* engine_name_ok() */
		if (del) {
			del_engine(v, node, engine);
			return 0;
		}
	} else {
		return ignored(v, why, len, "key %.120s: neither nodes/ nor engines/", key);
	}
	if (vlen > KVD_CVIEW_VALUE_MAX)
		return ignored(v, why, len, "key %.120s: value over 4096 bytes", key);
	o = parse_object(val, vlen);
	if (!o)
		return ignored(v, why, len, "key %.120s: value is not a JSON object", key);
	if (!engine[0]) {
		struct kvd_cview_node n;

		if (!read_node(o, &n) || strcmp(n.name, node)) {
			json_object_put(o);
			return ignored(v, why, len, "key %.120s: not a node's value", key);
		}
		n.mod_revision = rev;
		ret = put_node(v, &n);
	} else {
		struct kvd_cview_engine e;

		if (!read_engine(o, &e) || strcmp(e.node, node) || strcmp(e.name, engine)) {
			json_object_put(o);
			return ignored(v, why, len, "key %.120s: not an engine's value", key);
		}
		e.mod_revision = rev;
		ret = put_engine(v, &e);
	}
	json_object_put(o);
	if (ret == 1)
		return ignored(v, why, len, "key %.120s: the view is full", key);
	return ret;
}

long kvd_cview_pick_engine(const struct kvd_cview *v, const char *self, uint32_t blocks,
			   uint64_t block_bytes)
{
	long best = -1;
	size_t i;

	for (i = 0; i < v->nengines; i++) {
		const struct kvd_cview_engine *e = &v->engines[i], *b;
		const struct kvd_cview_node *n = kvd_cview_find_node(v, e->node);

		if (!n || n->pressure || !strcmp(e->node, self) || e->draining ||
		    e->blocks_free < blocks || (block_bytes && e->block_bytes != block_bytes))
			continue;
		if (best < 0) {
			best = (long)i;
			continue;
		}
		b = &v->engines[best];
		if (e->load < b->load || (e->load == b->load &&
		    (e->blocks_free > b->blocks_free || (e->blocks_free == b->blocks_free &&
		     strcmp(e->node, b->node) + (strcmp(e->node, b->node) ? 0 :
						 strcmp(e->name, b->name)) < 0))))
			best = (long)i;
	}
	return best;
}

/* ---- encoding --------------------------------------------------------- */

static int add(json_object *o, const char *key, json_object *m)
{
	if (!m)
		return -ENOMEM;
	if (json_object_object_add(o, key, m)) {
		json_object_put(m);
		return -ENOMEM;
	}
	return 0;
}

static char *finish(json_object *o, int bad)
{
	char *s = NULL;

	if (!bad)
		s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

char *kvd_cview_encode_node(const struct kvd_cview_node *n)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	return finish(o, add(o, "node", json_object_new_string(n->name)) ||
		      add(o, "capacity", json_object_new_int64((int64_t)n->capacity)) ||
		      add(o, "limit", json_object_new_int64((int64_t)n->limit)) ||
		      add(o, "usage", json_object_new_int64((int64_t)n->usage)) ||
		      add(o, "pressure", json_object_new_boolean(n->pressure)) ||
		      add(o, "ucx_address", json_object_new_string(n->ucx_address)) ||
		      add(o, "engines", json_object_new_int64(n->engines)) ||
		      add(o, "updated_ms", json_object_new_int64(n->updated_ms)));
}

char *kvd_cview_encode_engine(const struct kvd_cview_engine *e)
{
	json_object *o = json_object_new_object(), *models = json_object_new_array();
	unsigned int i;
	int bad;

	if (!o || !models) {
		json_object_put(o);
		json_object_put(models);
		return NULL;
	}
	bad = add(o, "models", models);
	for (i = 0; !bad && i < e->nmodels; i++)
		bad = json_object_array_add(models, json_object_new_string(e->models[i]));
	return finish(o, bad || add(o, "node", json_object_new_string(e->node)) ||
		      add(o, "name", json_object_new_string(e->name)) ||
		      add(o, "priority", json_object_new_int64(e->priority)) ||
		      add(o, "block_bytes", json_object_new_int64((int64_t)e->block_bytes)) ||
		      add(o, "blocks_total", json_object_new_int64(e->blocks_total)) ||
		      add(o, "blocks_free", json_object_new_int64(e->blocks_free)) ||
		      add(o, "load", json_object_new_double(e->load)) ||
		      add(o, "running", json_object_new_int64(e->running)) ||
		      add(o, "waiting", json_object_new_int64(e->waiting)) ||
		      add(o, "draining", json_object_new_boolean(e->draining)) ||
		      (e->xfer[0] && add(o, "xfer", json_object_new_string(e->xfer))));
}
