// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - the Prometheus text format (see metrics.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

static int name_char(char c, int first, int colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
		return 1;
	return !first && c >= '0' && c <= '9';
}

/* A line being read: p moves from its start to end; the key is written to out. */
struct cur {
	const char *p, *end;
	char *out;
	size_t n;
};

static void skip_space(struct cur *c)
{
	while (c->p < c->end && is_space(*c->p))
		c->p++;
}

/* A name of [a-zA-Z_:][a-zA-Z0-9_:]* (colon: metric names; labels have none), copied out. */
static int name(struct cur *c, int colon)
{
	const char *s = c->p;

	while (c->p < c->end && name_char(*c->p, c->p == s, colon))
		c->out[c->n++] = *c->p++;
	return c->p == s ? -1 : 0;
}

/* {a="x", b="y",} copied out as {a="x",b="y"}; escapes kept as written. */
static int labels(struct cur *c)
{
	size_t open = c->n;

	c->out[c->n++] = *c->p++;
	for (;;) {
		skip_space(c);
		if (c->p < c->end && *c->p == '}')
			break;
		if (c->n > open + 1)
			c->out[c->n++] = ',';
		if (name(c, 0))
			return -1;
		skip_space(c);
		if (c->p == c->end || *c->p != '=')
			return -1;
		c->out[c->n++] = *c->p++;
		skip_space(c);
		if (c->p == c->end || *c->p != '"')
			return -1;
		c->out[c->n++] = *c->p++;
		while (c->p < c->end && *c->p != '"') {
			if (*c->p == '\\') {
				if (c->p + 1 == c->end)
					return -1;
				c->out[c->n++] = *c->p++;
			}
			c->out[c->n++] = *c->p++;
		}
		if (c->p == c->end)
			return -1;
		c->out[c->n++] = *c->p++;
		skip_space(c);
		if (c->p < c->end && *c->p == ',')
			c->p++;
		else if (c->p == c->end || *c->p != '}')
			return -1;
	}
	c->p++;
	if (c->n == open + 1)
		c->n = open;	/* {}: the name alone */
	else
		c->out[c->n++] = '}';
	return 0;
}

/* The next space-delimited token, NUL-terminated in tok (as long as the line); -1 if none. */
static int token(struct cur *c, char *tok)
{
	size_t n = 0;

	while (c->p < c->end && !is_space(*c->p))
		tok[n++] = *c->p++;
	tok[n] = 0;
	return n ? 0 : -1;
}

static int digits_only(const char *t)
{
	t += *t == '+' || *t == '-';
	return *t && strspn(t, "0123456789") == strlen(t);
}

static int number(const char *t, struct lg_sample *s)
{
	char *end;

	s->is_int = 0;
	if (digits_only(t)) {
		errno = 0;
		s->ival = strtoll(t, &end, 10);
		if (!errno && !*end) {
			s->is_int = 1;
			s->value = (double)s->ival;
			return 0;
		}
	}
	errno = 0;
	s->value = strtod(t, &end);
	if (end == t || *end || (errno == ERANGE && isinf(s->value)))
		return -1;
	return 0;
}

/*
 * One line [p, end) into s (its key malloc'd): 1 skipped, 0 a sample, -1 malformed, -2 out of
 * memory. tok has room for the line and a NUL.
 */
static int line(const char *p, const char *end, struct lg_sample *s, char *tok)
{
	struct cur c = { p, end, tok, 0 };
	char *key;

	skip_space(&c);
	if (c.p == c.end || *c.p == '#')
		return 1;
	if (name(&c, 1))
		return -1;
	s->name_len = c.n;
	if (c.p < c.end && *c.p == '{' && labels(&c))
		return -1;
	if (c.p == c.end || !is_space(*c.p))
		return -1;
	key = malloc(c.n + 1);	/* the key is no longer than the line: spaces go, none come */
	if (!key)
		return -2;
	memcpy(key, tok, c.n);
	key[c.n] = 0;
	skip_space(&c);
	if (token(&c, tok) || number(tok, s))
		goto bad;
	skip_space(&c);
	if (c.p < c.end && (token(&c, tok) || !digits_only(tok)))
		goto bad;	/* the timestamp (milliseconds), not kept */
	skip_space(&c);
	if (c.p != c.end)
		goto bad;
	s->key = key;
	return 0;
bad:
	free(key);
	return -1;
}

static int by_key(const void *a, const void *b)
{
	const struct lg_sample *x = a, *y = b;
	int d = strcmp(x->key, y->key);

	return d ? d : (x->line > y->line) - (x->line < y->line);
}

/* Sorted by key, the first line of each key kept. */
static void dedup(struct lg_metrics *m)
{
	size_t i, k = 0;

	if (!m->n)
		return;
	qsort(m->s, m->n, sizeof(*m->s), by_key);
	for (i = 0; i < m->n; i++) {
		if (k && !strcmp(m->s[k - 1].key, m->s[i].key)) {
			free(m->s[i].key);
			continue;
		}
		m->s[k++] = m->s[i];
	}
	m->n = k;
}

int lg_metrics_parse(const char *text, size_t len, struct lg_metrics *m)
{
	const char *p = text, *end = text + len, *nl;
	struct lg_sample s;
	size_t nr = 0;
	char *tok = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	tok = malloc(len + 1);
	if (!tok)
		return -1;
	while (p < end) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			nl = end;
		nr++;
		memset(&s, 0, sizeof(s));
		s.line = nr;
		rc = line(p, nl > p && nl[-1] == '\r' ? nl - 1 : nl, &s, tok);
		p = nl + 1;
		if (rc > 0)
			continue;
		if (rc == -2)
			goto oom;
		if (rc < 0) {
			m->ignored++;
			continue;
		}
		if (m->n == m->cap) {
			size_t cap = m->cap ? 2 * m->cap : 64;
			struct lg_sample *ns = realloc(m->s, cap * sizeof(*ns));

			if (!ns) {
				free(s.key);
				goto oom;
			}
			m->s = ns;
			m->cap = cap;
		}
		m->s[m->n++] = s;
	}
	free(tok);
	dedup(m);
	return 0;
oom:
	free(tok);
	lg_metrics_free(m);
	return -1;
}

static int key_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct lg_sample *)e)->key);
}

const struct lg_sample *lg_metrics_find(const struct lg_metrics *m, const char *key)
{
	return m->n ? bsearch(key, m->s, m->n, sizeof(*m->s), key_cmp) : NULL;
}

void lg_metrics_free(struct lg_metrics *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->s[i].key);
	free(m->s);
	memset(m, 0, sizeof(*m));
}
