// SPDX-License-Identifier: MIT
/* kvaccel-serve - a growing string buffer and JSON string escaping for the HTTP server. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

static bool sb_room(struct sbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_room(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_jstr(struct sbuf *b, const int32_t *tok, uint32_t n)
{
	uint32_t i;

	if (!sb_room(b, 6 * (size_t)n + 2))
		return;
	b->p[b->len++] = '"';
	for (i = 0; i < n; i++) {
		int c = tok[i] & 0xff;

		if (c == '"' || c == '\\') {
			b->p[b->len++] = '\\';
			b->p[b->len++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			b->p[b->len++] = (char)c;
		} else {
			snprintf(b->p + b->len, 7, "\\u%04x", c);
			b->len += 6;
		}
	}
	b->p[b->len++] = '"';
	b->p[b->len] = 0;
}

void sb_free(struct sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
