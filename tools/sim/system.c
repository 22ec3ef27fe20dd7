// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - systems (see system.h): a file of options, one or more a line, '#' to the end of
 * a line a comment; each line starts with an option ("--name", "--name=value"), a value follows
 * the option it belongs to. The options are not checked here: the command line's parser checks
 * them as it checks the command line's own (an option this binary does not know fails there).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "system.h"

#define PROG "kvaccel-sim"

static int is_dir(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISDIR(st.st_mode);
}

/* @base/@rel, canonical if it exists (malloc'd). */
static char *join(const char *base, const char *rel)
{
	size_t n = strlen(base) + strlen(rel) + 2;
	char *p = malloc(n), *r;

	if (!p)
		return NULL;
	snprintf(p, n, "%s/%s", base, rel);
	r = realpath(p, NULL);
	if (r) {
		free(p);
		return r;
	}
	return p;
}

char *sim_systems_dir(const char *dir)
{
	static const char *const rel[] = {
		"../../tools/sim/systems", "../share/kvaccel/sim/systems",
	};
	const char *env = getenv("KVACCEL_SIM_SYSTEMS");
	char exe[PATH_MAX], *slash, *p, *first = NULL;
	ssize_t n;
	size_t i;

	if (dir)
		return strdup(dir);
	if (env && *env)
		return strdup(env);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return strdup("tools/sim/systems");
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		p = join(exe, rel[i]);
		if (p && is_dir(p)) {
			free(first);
			return p;
		}
		if (!first)
			first = p;
		else
			free(p);
	}
	return first;
}

/* @path relative to the working directory when it is under it (for messages). */
static const char *shorter(const char *path)
{
	static char cwd[PATH_MAX];
	size_t n;

	if (!getcwd(cwd, sizeof(cwd)))
		return path;
	n = strlen(cwd);
	return !strncmp(path, cwd, n) && path[n] == '/' ? path + n + 1 : path;
}

/* The file @path read whole into a NUL-ended buffer, or NULL (errno). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *b = realloc(buf, cap + 8192);

			if (!b) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = b;
			cap += 8192;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
	} while (got);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	buf[len] = 0;
	return buf;
}

/*
 * The words of the file into @words (pointers into @buf, which is cut up), at most @max; their
 * count, or -1 with FILE:LINE: what said.
 */
static int words_of(const char *path, char *buf, char **words, int max)
{
	int n = 0, line = 1;
	char *p = buf;

	while (*p) {
		char *eol = strchr(p, '\n'), *hash, *w, *save = NULL;
		int first = 1, value_ok = 0;

		if (eol)
			*eol = 0;
		hash = strchr(p, '#');
		if (hash)
			*hash = 0;
		for (w = strtok_r(p, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
			if (strpbrk(w, "\"'\\")) {
				fprintf(stderr, "%s:%d: \"%s\": quotes and escapes are not "
					"supported\n", path, line, w);
				return -1;
			}
			if (!strncmp(w, "--system", 8) && (!w[8] || w[8] == '=' || w[8] == 's')) {
				fprintf(stderr, "%s:%d: %s: not in a system file\n", path, line, w);
				return -1;
			}
			if (w[0] == '-' && w[1] == '-' && w[2]) {
				value_ok = !strchr(w, '=');
			} else if (first || !value_ok) {
				fprintf(stderr, "%s:%d: \"%s\": not an option (a line holds "
					"options, \"--name [value]\")\n", path, line, w);
				return -1;
			} else {
				value_ok = 0;
			}
			if (n == max) {
				fprintf(stderr, "%s:%d: more than %d words\n", path, line, max);
				return -1;
			}
			words[n++] = w;
			first = 0;
		}
		if (!eol)
			break;
		p = eol + 1;
		line++;
	}
	return n;
}

#define MAX_WORDS 256

int sim_system_expand(int argc, char **argv, struct sim_argv *out)
{
	const char *sys = NULL, *dir = NULL;
	char *words[MAX_WORDS], *d;
	int i, k, n, nw = 0;

	memset(out, 0, sizeof(*out));
	out->argv = calloc(argc + MAX_WORDS + 1, sizeof(*out->argv));
	if (!out->argv) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	/* The command line's own, less --system and --systems-dir (after argv[0] and the words). */
	for (i = 1, k = 0; i < argc; i++) {
		const char **to = NULL;
		const char *opt = NULL, *v = NULL;

		if (!strcmp(argv[i], "--system") || !strncmp(argv[i], "--system=", 9)) {
			to = &sys;
			opt = "--system";
		} else if (!strcmp(argv[i], "--systems-dir") ||
			   !strncmp(argv[i], "--systems-dir=", 14)) {
			to = &dir;
			opt = "--systems-dir";
		} else if (!strcmp(argv[i], "--")) {
			while (i < argc)
				out->argv[MAX_WORDS + 1 + k++] = argv[i++];
			break;
		}
		if (!to) {
			out->argv[MAX_WORDS + 1 + k++] = argv[i];
			continue;
		}
		v = strchr(argv[i], '=');
		if (v)
			v++;
		else if (i + 1 < argc)
			v = argv[++i];
		if (!v || !*v) {
			fprintf(stderr, PROG ": %s: give a value\n", opt);
			goto bad;
		}
		if (*to) {
			fprintf(stderr, PROG ": %s %s: given twice (%s before)\n", opt, v, *to);
			goto bad;
		}
		*to = v;
	}
	if (sys) {
		if (strchr(sys, '/') || (strlen(sys) > 7 && !strcmp(sys + strlen(sys) - 7,
								    ".system"))) {
			out->path = strdup(sys);
		} else {
			size_t len;

			d = sim_systems_dir(dir);
			len = (d ? strlen(d) : 0) + strlen(sys) + 16;
			out->path = d ? malloc(len) : NULL;
			if (out->path)
				snprintf(out->path, len, "%s/%s.system", d, sys);
			free(d);
		}
		if (!out->path) {
			fprintf(stderr, PROG ": out of memory\n");
			goto bad;
		}
		out->buf = slurp(out->path);
		if (!out->buf) {
			if (errno == ENOENT && !strchr(sys, '/'))
				fprintf(stderr, PROG ": --system %s: no such system (%s)\n", sys,
					shorter(out->path));
			else
				fprintf(stderr, PROG ": --system %s: %s: %s\n", sys, out->path,
					strerror(errno));
			goto bad;
		}
		nw = words_of(out->path, out->buf, words, MAX_WORDS);
		if (nw < 0)
			goto bad;
	} else if (dir && !is_dir(dir)) {
		fprintf(stderr, PROG ": --systems-dir %s: not a directory\n", dir);
		goto bad;
	}
	n = 0;
	out->argv[n++] = argv[0];
	for (i = 0; i < nw; i++)
		out->argv[n++] = words[i];
	for (i = 0; i < k; i++)
		out->argv[n++] = out->argv[MAX_WORDS + 1 + i];
	out->argv[n] = NULL;
	out->argc = n;
	return 0;
bad:
	sim_system_free(out);
	return -1;
}

void sim_system_free(struct sim_argv *a)
{
	free(a->argv);
	free(a->buf);
	free(a->path);
	memset(a, 0, sizeof(*a));
}
