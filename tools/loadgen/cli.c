// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - command-line options (getopt_long), each checked with a clear message. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
	"usage: kvaccel-loadgen (--trace FILE | --synthetic) [options]\n"
	"  --url URL           the server (default http://127.0.0.1:8000)\n"
	"  --trace FILE        Azure 2023 CSV, Mooncake JSONL, or plain CSV/JSONL\n"
	"  --time-scale X      trace: arrivals X times faster (default 1)\n"
	"  --limit N           trace: the first N requests only\n"
	"  --max-input N --max-output N   clip lengths (trace and synthetic)\n"
	"  --synthetic         generate the workload from the options below\n"
	"  --requests N        synthetic: how many (default 100)\n"
	"  --rate R            synthetic: mean requests per second (default 1)\n"
	"  --arrival poisson|gamma|burst   synthetic arrivals (default poisson)\n"
	"  --cv C              gamma: the gaps' coefficient of variation (default 2)\n"
	"  --burst N           burst: requests arriving together (default 8)\n"
	"  --input DIST --output DIST   fixed:N, uniform:A:B or lognormal:MU:SIGMA\n"
	"                      (default lognormal:6.6:1.0 and lognormal:5.0:0.9)\n"
	"  --class NAME:WEIGHT:PRIORITY:TTFT_MS:TPOT_MS   a class of the mix (repeatable)\n"
	"  --clients N         synthetic: clients c0..cN-1, round robin\n"
	"  --ttft-slo-ms MS --tpot-slo-ms MS   the SLO of requests without one (default none)\n"
	"  --seed S            generator, prompts, and request i's \"seed\" S+i (default 1)\n"
	"  --temperature T     sent with every request (default 0)\n"
	"  --timeout S         per wait for a response byte (default 60; 0: none)\n"
	"  --check-digests FILE   record (no FILE) or compare (FILE) every request's digests\n"
	"  --server-metrics    GET the server's /metrics before and after the run and\n"
	"                      report what changed (counters, gauges, recompute tax)\n"
	"  --json              the report as one JSON object\n"
	"  --dump-workload     print the workload as JSONL and send nothing\n";

enum {
	O_URL = 256, O_TRACE, O_TSCALE, O_LIMIT, O_MAXIN, O_MAXOUT, O_SYNTH, O_REQS, O_RATE,
	O_ARR, O_CV, O_BURST, O_INPUT, O_OUTPUT, O_CLASS, O_CLIENTS, O_TTFT, O_TPOT, O_SEED,
	O_TEMP, O_TIMEOUT, O_DIGESTS, O_SRVMETRICS, O_JSON, O_DUMP, O_HELP,
};

static const struct option longopts[] = {
	{ "url", required_argument, NULL, O_URL },
	{ "trace", required_argument, NULL, O_TRACE },
	{ "time-scale", required_argument, NULL, O_TSCALE },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "max-input", required_argument, NULL, O_MAXIN },
	{ "max-output", required_argument, NULL, O_MAXOUT },
	{ "synthetic", no_argument, NULL, O_SYNTH },
	{ "requests", required_argument, NULL, O_REQS },
	{ "rate", required_argument, NULL, O_RATE },
	{ "arrival", required_argument, NULL, O_ARR },
	{ "cv", required_argument, NULL, O_CV },
	{ "burst", required_argument, NULL, O_BURST },
	{ "input", required_argument, NULL, O_INPUT },
	{ "output", required_argument, NULL, O_OUTPUT },
	{ "class", required_argument, NULL, O_CLASS },
	{ "clients", required_argument, NULL, O_CLIENTS },
	{ "ttft-slo-ms", required_argument, NULL, O_TTFT },
	{ "tpot-slo-ms", required_argument, NULL, O_TPOT },
	{ "seed", required_argument, NULL, O_SEED },
	{ "temperature", required_argument, NULL, O_TEMP },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "check-digests", required_argument, NULL, O_DIGESTS },
	{ "server-metrics", no_argument, NULL, O_SRVMETRICS },
	{ "json", no_argument, NULL, O_JSON },
	{ "dump-workload", no_argument, NULL, O_DUMP },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *opt, const char *v, const char *why)
{
	fprintf(stderr, "kvaccel-loadgen: --%s %s: %s\n", opt, v, why);
	return -1;
}

static int real(const char *opt, const char *v, double min, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	if (end == v || *end || errno || !isfinite(*out))
		return bad(opt, v, "not a number");
	if (*out < min) {
		fprintf(stderr, "kvaccel-loadgen: --%s %s: below %g\n", opt, v, min);
		return -1;
	}
	return 0;
}

static int whole(const char *opt, const char *v, unsigned long long min,
		 unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (end == v || *end || errno || *v == '-')
		return bad(opt, v, "not a whole number");
	if (*out < min || *out > max) {
		fprintf(stderr, "kvaccel-loadgen: --%s %s: not in %llu..%llu\n", opt, v, min, max);
		return -1;
	}
	return 0;
}

static void defaults(struct lg_cli *c)
{
	memset(c, 0, sizeof(*c));
	lg_url_parse("http://127.0.0.1:8000", &c->ropt.url);
	c->ropt.timeout_s = 60;
	c->ropt.seed = 1;
	c->topt.time_scale = 1;
	c->sopt.requests = 100;
	c->sopt.rate = 1;
	c->sopt.cv = 2;
	c->sopt.burst = 8;
	c->sopt.seed = 1;
	c->sopt.input = (struct lg_dist){ LG_DIST_LOGNORMAL, 6.6, 1.0 };
	c->sopt.output = (struct lg_dist){ LG_DIST_LOGNORMAL, 5.0, 0.9 };
}

int lg_cli_parse(int argc, char **argv, struct lg_cli *c)
{
	const char *name;
	unsigned long long u;
	double d;
	int opt, synth = 0;

	defaults(c);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		name = opt >= O_URL && opt <= O_HELP ? longopts[opt - O_URL].name : "";
		switch (opt) {
		case O_URL:
			if (lg_url_parse(optarg, &c->ropt.url))
				return bad(name, optarg, "not http://HOST[:PORT][/PREFIX]");
			break;
		case O_TRACE:
			c->trace = optarg;
			break;
		case O_TSCALE:
			if (real(name, optarg, 1e-9, &c->topt.time_scale))
				return -1;
			break;
		case O_LIMIT:
			if (whole(name, optarg, 1, 1ULL << 32, &u))
				return -1;
			c->topt.limit = u;
			break;
		case O_MAXIN:
		case O_MAXOUT:
			if (whole(name, optarg, 1, 1u << 30, &u))
				return -1;
			if (opt == O_MAXIN)
				c->topt.max_input = c->sopt.max_input = u;
			else
				c->topt.max_output = c->sopt.max_output = u;
			break;
		case O_SYNTH:
			synth = 1;
			break;
		case O_REQS:
			if (whole(name, optarg, 1, 1ULL << 32, &u))
				return -1;
			c->sopt.requests = u;
			break;
		case O_RATE:
			if (real(name, optarg, 1e-9, &c->sopt.rate))
				return -1;
			break;
		case O_ARR:
			if (!strcmp(optarg, "poisson"))
				c->sopt.arrival = LG_ARR_POISSON;
			else if (!strcmp(optarg, "gamma"))
				c->sopt.arrival = LG_ARR_GAMMA;
			else if (!strcmp(optarg, "burst"))
				c->sopt.arrival = LG_ARR_BURST;
			else
				return bad(name, optarg, "not poisson, gamma or burst");
			break;
		case O_CV:
			if (real(name, optarg, 0.01, &c->sopt.cv))
				return -1;
			break;
		case O_BURST:
			if (whole(name, optarg, 1, 1u << 20, &u))
				return -1;
			c->sopt.burst = u;
			break;
		case O_INPUT:
		case O_OUTPUT:
			if (lg_dist_parse(optarg, opt == O_INPUT ? &c->sopt.input : &c->sopt.output))
				return bad(name, optarg, "not fixed:N, uniform:A:B (1 <= A <= B) or "
					   "lognormal:MU:SIGMA");
			break;
		case O_CLASS:
			if (c->sopt.nr_classes == LG_MAX_CLASSES)
				return bad(name, optarg, "too many classes");
			if (lg_class_parse(optarg, &c->sopt.classes[c->sopt.nr_classes++]))
				return bad(name, optarg, "not NAME:WEIGHT:PRIORITY:TTFT_MS:TPOT_MS "
					   "(weight > 0, SLOs >= 0, 0 for none)");
			break;
		case O_CLIENTS:
			if (whole(name, optarg, 1, 1u << 20, &u))
				return -1;
			c->sopt.clients = u;
			break;
		case O_TTFT:
		case O_TPOT:
			if (real(name, optarg, 0, &d))
				return -1;
			if (opt == O_TTFT)
				c->topt.ttft_slo_ms = c->sopt.ttft_slo_ms = d;
			else
				c->topt.tpot_slo_ms = c->sopt.tpot_slo_ms = d;
			break;
		case O_SEED:
			if (whole(name, optarg, 0, UINT64_MAX, &u))
				return -1;
			c->ropt.seed = c->sopt.seed = u;
			break;
		case O_TEMP:
			if (real(name, optarg, 0, &c->ropt.temperature))
				return -1;
			break;
		case O_TIMEOUT:
			if (real(name, optarg, 0, &c->ropt.timeout_s))
				return -1;
			if (c->ropt.timeout_s > 86400)
				return bad(name, optarg, "more than a day");
			break;
		case O_DIGESTS:
			c->check_digests = optarg;
			break;
		case O_SRVMETRICS:
			c->server_metrics = 1;
			break;
		case O_JSON:
			c->json = 1;
			break;
		case O_DUMP:
			c->dump = 1;
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 1;
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvaccel-loadgen: unexpected argument \"%s\"\n%s", argv[optind],
			usage);
		return -1;
	}
	if (!!c->trace == synth) {
		fprintf(stderr, "kvaccel-loadgen: give one of --trace FILE and --synthetic\n%s",
			usage);
		return -1;
	}
	return 0;
}
