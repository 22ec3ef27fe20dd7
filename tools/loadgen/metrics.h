/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-loadgen - the Prometheus text format (a server's GET /metrics) as a set of samples.
 *
 * A line is "NAME VALUE [TIMESTAMP]" or "NAME{LABELS} VALUE [TIMESTAMP]"; lines starting with #
 * (HELP, TYPE, comments) and blank lines are skipped; any other line that is not one of those
 * (a bad name, unbalanced labels, a value that is no number or overflows a double, text after
 * the timestamp) is counted in ignored and skipped. A sample's key is its name with its labels
 * as written but for spaces: name{a="x",b="y"} (no trailing comma; {} is the name alone). The
 * first sample of a key wins over later ones. A value of digits only (and a sign) that fits in
 * 64 bits is also kept exactly (is_int); NaN and +Inf are numbers like any other.
 */
#ifndef LG_METRICS_H
#define LG_METRICS_H

#include <stddef.h>

struct lg_sample {
	char *key;		/* name{labels} as above */
	size_t name_len;	/* the name's length: key[0..name_len) */
	double value;
	long long ival;		/* the value, exactly, when is_int */
	int is_int;
	size_t line;		/* its line in the text, from 1 */
};

struct lg_metrics {
	struct lg_sample *s;	/* sorted by key */
	size_t n, cap;
	size_t ignored;		/* malformed lines skipped */
};

/* Parse len bytes of text (no NUL needed) into m (zeroed first); -1 if memory ran out. */
int lg_metrics_parse(const char *text, size_t len, struct lg_metrics *m);

/* The sample of that key (name, or name{labels} as keyed above), or NULL. */
const struct lg_sample *lg_metrics_find(const struct lg_metrics *m, const char *key);

void lg_metrics_free(struct lg_metrics *m);

#endif
