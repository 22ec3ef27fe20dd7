// SPDX-License-Identifier: MIT
/*
 * kvsize - parsing sizes (kvsize.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvsize.h"

int kvsize_parse(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTP";
	const char *u;
	char *end;
	uint64_t v;
	int shift = 0;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return errno == ERANGE ? -ERANGE : -EINVAL;
	if (*end) {
		u = strchr(units, *end);
		if (!u)
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}
