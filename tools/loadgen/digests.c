// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen - --check-digests FILE: one line per completed request, "INDEX HEX HEX...",
 * its token digests in order; recorded when FILE does not exist, compared when it does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static int record(const char *path, const struct lg_workload *wl, const struct lg_result *res,
		  struct lg_digest_check *dc, char *err, size_t errlen)
{
	FILE *f = fopen(path, "wx");
	size_t i, k;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	dc->mode = 1;
	for (i = 0; i < wl->n; i++) {
		if (!res[i].ok || !res[i].nr_digests)
			continue;
		fprintf(f, "%zu", i);
		for (k = 0; k < res[i].nr_digests; k++)
			fprintf(f, " %016" PRIx64, res[i].digests[k]);
		fputc('\n', f);
		dc->recorded++;
	}
	if (fclose(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void compare_line(char *line, size_t lineno, const struct lg_workload *wl,
			 const struct lg_result *res, struct lg_digest_check *dc, char *seen)
{
	char *p = line, *end;
	unsigned long long idx = strtoull(p, &end, 10), v;
	const struct lg_result *r;
	uint32_t k = 0;

	if (end == p || idx >= wl->n) {
		snprintf(dc->first, sizeof(dc->first), "line %zu: no request %.20s", lineno, line);
		dc->mismatched++;
		return;
	}
	r = &res[idx];
	seen[idx] = 1;
	if (!r->ok || !r->nr_digests)
		return;	/* failed this time: nothing to compare */
	dc->compared++;
	for (p = end;; k++) {
		v = strtoull(p, &end, 16);
		if (end == p)	/* the line ended: equal if the run had no more */
			break;
		if (k >= r->nr_digests || r->digests[k] != v)
			goto differ;
		p = end;
	}
	if (k == r->nr_digests)
		return;
differ:
	dc->mismatched++;
	if (!*dc->first)
		snprintf(dc->first, sizeof(dc->first), "request %llu, token %u", idx, k);
}

int lg_digests_check(const char *path, const struct lg_workload *wl, const struct lg_result *res,
		     struct lg_digest_check *dc, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *seen;
	size_t cap = 0, lineno = 0, i;

	memset(dc, 0, sizeof(*dc));
	if (!f && errno == ENOENT)
		return record(path, wl, res, dc, err, errlen);
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	seen = calloc(wl->n + 1, 1);
	dc->mode = 2;
	while (seen && getline(&line, &cap, f) >= 0)
		compare_line(line, ++lineno, wl, res, dc, seen);
	for (i = 0; seen && i < wl->n; i++)
		dc->missing += res[i].ok && res[i].nr_digests && !seen[i];
	free(seen);
	free(line);
	fclose(f);
	return 0;
}
