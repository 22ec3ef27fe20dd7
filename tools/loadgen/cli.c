// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - command-line options (getopt_long), each checked with a clear message. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wlopts.h"

#define PROG "kvaccel-loadgen"

static const char head[] =
	"usage: kvaccel-loadgen (--trace FILE | --synthetic) [options]\n"
	"  --url URL           the server (default http://127.0.0.1:8000)\n";
static const char tail[] =
	"  --seed S            generator, prompts, and request i's \"seed\" S+i (default 1)\n"
	"  --temperature T     sent with every request (default 0)\n"
	"  --timeout S         per wait for a response byte (default 60; 0: none)\n"
	"  --check-digests FILE   record (no FILE) or compare (FILE) every request's digests\n"
	"  --server-metrics    GET the server's /metrics before and after the run and\n"
	"                      report what changed (counters, gauges, recompute tax)\n"
	"  --json              the report as one JSON object\n"
	"  --dump-workload     print the workload as JSONL and send nothing\n";

enum {
	O_URL = 256, O_TEMP, O_TIMEOUT, O_DIGESTS, O_SRVMETRICS, O_JSON, O_DUMP, O_HELP,
};

#define NR_OWN	(O_HELP - O_URL + 1)

static const struct option own[NR_OWN] = {
	{ "url", required_argument, NULL, O_URL },
	{ "temperature", required_argument, NULL, O_TEMP },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "check-digests", required_argument, NULL, O_DIGESTS },
	{ "server-metrics", no_argument, NULL, O_SRVMETRICS },
	{ "json", no_argument, NULL, O_JSON },
	{ "dump-workload", no_argument, NULL, O_DUMP },
	{ "help", no_argument, NULL, O_HELP },
};

static void usage(FILE *f)
{
	fprintf(f, "%s%s%s", head, lg_wl_usage, tail);
}

static void defaults(struct lg_cli *c)
{
	memset(c, 0, sizeof(*c));
	lg_wl_defaults(&c->wl);
	lg_url_parse("http://127.0.0.1:8000", &c->ropt.url);
	c->ropt.timeout_s = 60;
}

/* A tool's own option: 0, or -1 said; 1: --help printed. */
static int own_opt(int opt, const char *arg, struct lg_cli *c)
{
	const char *name = own[opt - O_URL].name;

	switch (opt) {
	case O_URL:
		if (lg_url_parse(arg, &c->ropt.url))
			return lg_opt_bad(PROG, name, arg, "not http://HOST[:PORT][/PREFIX]");
		return 0;
	case O_TEMP:
		return lg_opt_real(PROG, name, arg, 0, &c->ropt.temperature);
	case O_TIMEOUT:
		if (lg_opt_real(PROG, name, arg, 0, &c->ropt.timeout_s))
			return -1;
		if (c->ropt.timeout_s > 86400)
			return lg_opt_bad(PROG, name, arg, "more than a day");
		return 0;
	case O_DIGESTS:
		c->check_digests = arg;
		return 0;
	case O_SRVMETRICS:
		c->server_metrics = 1;
		return 0;
	case O_JSON:
		c->json = 1;
		return 0;
	case O_DUMP:
		c->dump = 1;
		return 0;
	default:	/* O_HELP */
		usage(stdout);
		return 1;
	}
}

int lg_cli_parse(int argc, char **argv, struct lg_cli *c)
{
	struct option opts[NR_OWN + LG_WL_NR_OPTS + 1] = { { 0 } };
	int opt, ret;

	memcpy(opts, own, sizeof(own));
	memcpy(opts + NR_OWN, lg_wl_options, sizeof(lg_wl_options));
	defaults(c);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt >= O_URL && opt <= O_HELP)
			ret = own_opt(opt, optarg, c);
		else
			ret = lg_wl_parse(PROG, opt, optarg, &c->wl);
		if (ret < 0 || (ret > 0 && opt == O_HELP))
			return ret;
		if (ret > 0) {
			usage(stderr);
			return -1;
		}
	}
	/* One seed for the generator, the prompts and the requests' sampling. */
	c->ropt.seed = c->wl.sopt.seed;
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	if (lg_wl_check(PROG, &c->wl, "")) {
		usage(stderr);
		return -1;
	}
	return 0;
}
