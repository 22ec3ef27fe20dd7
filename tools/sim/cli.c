// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - command-line options (getopt_long), each checked with a clear message. The
 * workload options are kvaccel-loadgen's (the same names, defaults and parsers).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "cli.h"

static const char usage[] =
	"usage: kvaccel-sim --profile FILE (--trace FILE | --synthetic) [options]\n"
	"  --profile FILE      the latency profile (tools/sim/profiles/*.profile)\n"
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
	"  --class NAME:WEIGHT:PRIORITY:TTFT_MS:TPOT_MS   a class of the mix (repeatable;\n"
	"                      a class named offline is best effort under hybrid)\n"
	"  --clients N         synthetic: clients c0..cN-1, round robin\n"
	"  --ttft-slo-ms MS --tpot-slo-ms MS   the SLO of requests without one (default none)\n"
	"  --seed S            the generator and the prompts' tokens (default 1)\n"
	"  --policy fcfs|priority|slo|fair|hybrid   the scheduler's policy (default fcfs)\n"
	"  --preempt cost|swap|recompute   how victims are preempted (default cost)\n"
	"  --budget N          tokens per step (default 2048)\n"
	"  --max-seqs N        running requests at once (default 256)\n"
	"  --chunk N           longest prefill chunk (default: the budget)\n"
	"  --priority-threshold N   priority: how much more urgent a preemptor must be\n"
	"  --gpu-blocks N --host-blocks N   override the profile's block counts\n"
	"  --no-host           no host tier (every preemption recomputes)\n"
	"  --json              the report as one JSON object\n";

enum {
	O_PROFILE = 256, O_TRACE, O_TSCALE, O_LIMIT, O_MAXIN, O_MAXOUT, O_SYNTH, O_REQS, O_RATE,
	O_ARR, O_CV, O_BURST, O_INPUT, O_OUTPUT, O_CLASS, O_CLIENTS, O_TTFT, O_TPOT, O_SEED,
	O_POLICY, O_PREEMPT, O_BUDGET, O_MAXSEQS, O_CHUNK, O_THRESH, O_GPUB, O_HOSTB, O_NOHOST,
	O_JSON, O_HELP,
};

static const struct option longopts[] = {
	{ "profile", required_argument, NULL, O_PROFILE },
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
	{ "policy", required_argument, NULL, O_POLICY },
	{ "preempt", required_argument, NULL, O_PREEMPT },
	{ "budget", required_argument, NULL, O_BUDGET },
	{ "max-seqs", required_argument, NULL, O_MAXSEQS },
	{ "chunk", required_argument, NULL, O_CHUNK },
	{ "priority-threshold", required_argument, NULL, O_THRESH },
	{ "gpu-blocks", required_argument, NULL, O_GPUB },
	{ "host-blocks", required_argument, NULL, O_HOSTB },
	{ "no-host", no_argument, NULL, O_NOHOST },
	{ "json", no_argument, NULL, O_JSON },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *opt, const char *v, const char *why)
{
	fprintf(stderr, "kvaccel-sim: --%s %s: %s\n", opt, v, why);
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
		fprintf(stderr, "kvaccel-sim: --%s %s: below %g\n", opt, v, min);
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
		fprintf(stderr, "kvaccel-sim: --%s %s: not in %llu..%llu\n", opt, v, min, max);
		return -1;
	}
	return 0;
}

static void defaults(struct sim_cli *c)
{
	memset(c, 0, sizeof(*c));
	c->topt.time_scale = 1;
	c->sopt.requests = 100;
	c->sopt.rate = 1;
	c->sopt.cv = 2;
	c->sopt.burst = 8;
	c->sopt.seed = 1;
	c->sopt.input = (struct lg_dist){ LG_DIST_LOGNORMAL, 6.6, 1.0 };
	c->sopt.output = (struct lg_dist){ LG_DIST_LOGNORMAL, 5.0, 0.9 };
	c->cfg.seed = 1;
	c->cfg.policy = ACCEL_SCHED_FCFS;
	c->cfg.preempt = ACCEL_SCHED_PREEMPT_COST;
}

static int policy(const char *v, uint32_t *out)
{
	uint32_t p;

	for (p = 0; p < ACCEL_SCHED_NR_POLICIES; p++)
		if (!strcmp(v, accel_sched_policy_name(p))) {
			*out = p;
			return 0;
		}
	return -1;
}

/* The workload and engine options (a switch too long for one function otherwise). */
static int engine_opt(int opt, const char *name, struct sim_cli *c)
{
	unsigned long long u;

	switch (opt) {
	case O_POLICY:
		if (policy(optarg, &c->cfg.policy))
			return bad(name, optarg, "not fcfs, priority, slo, fair or hybrid");
		return 0;
	case O_PREEMPT:
		if (!strcmp(optarg, "cost"))
			c->cfg.preempt = ACCEL_SCHED_PREEMPT_COST;
		else if (!strcmp(optarg, "swap"))
			c->cfg.preempt = ACCEL_SCHED_PREEMPT_SWAP;
		else if (!strcmp(optarg, "recompute"))
			c->cfg.preempt = ACCEL_SCHED_PREEMPT_RECOMPUTE;
		else
			return bad(name, optarg, "not cost, swap or recompute");
		return 0;
	case O_BUDGET:
	case O_MAXSEQS:
	case O_CHUNK:
		if (whole(name, optarg, 1, 1u << 24, &u))
			return -1;
		if (opt == O_BUDGET)
			c->cfg.max_tokens = u;
		else if (opt == O_MAXSEQS)
			c->cfg.max_seqs = u;
		else
			c->cfg.chunk_tokens = u;
		return 0;
	case O_THRESH:
		if (whole(name, optarg, 0, 1u << 30, &u))
			return -1;
		c->cfg.priority_threshold = u;
		return 0;
	case O_GPUB:
	case O_HOSTB:
		if (whole(name, optarg, 1, 1u << 24, &u))
			return -1;
		if (opt == O_GPUB)
			c->cfg.gpu_blocks = u;
		else
			c->cfg.host_blocks = u;
		return 0;
	case O_NOHOST:
		c->cfg.no_host = 1;
		return 0;
	}
	return 1;
}

static int workload_opt(int opt, const char *name, struct sim_cli *c, int *synth)
{
	unsigned long long u;
	double d;

	switch (opt) {
	case O_TRACE:
		c->trace = optarg;
		return 0;
	case O_TSCALE:
		return real(name, optarg, 1e-9, &c->topt.time_scale);
	case O_LIMIT:
		if (whole(name, optarg, 1, 1ULL << 32, &u))
			return -1;
		c->topt.limit = u;
		return 0;
	case O_MAXIN:
	case O_MAXOUT:
		if (whole(name, optarg, 1, 1u << 30, &u))
			return -1;
		if (opt == O_MAXIN)
			c->topt.max_input = c->sopt.max_input = u;
		else
			c->topt.max_output = c->sopt.max_output = u;
		return 0;
	case O_SYNTH:
		*synth = 1;
		return 0;
	case O_REQS:
		if (whole(name, optarg, 1, 1ULL << 32, &u))
			return -1;
		c->sopt.requests = u;
		return 0;
	case O_RATE:
		return real(name, optarg, 1e-9, &c->sopt.rate);
	case O_ARR:
		if (!strcmp(optarg, "poisson"))
			c->sopt.arrival = LG_ARR_POISSON;
		else if (!strcmp(optarg, "gamma"))
			c->sopt.arrival = LG_ARR_GAMMA;
		else if (!strcmp(optarg, "burst"))
			c->sopt.arrival = LG_ARR_BURST;
		else
			return bad(name, optarg, "not poisson, gamma or burst");
		return 0;
	case O_CV:
		return real(name, optarg, 0.01, &c->sopt.cv);
	case O_BURST:
		if (whole(name, optarg, 1, 1u << 20, &u))
			return -1;
		c->sopt.burst = u;
		return 0;
	case O_INPUT:
	case O_OUTPUT:
		if (lg_dist_parse(optarg, opt == O_INPUT ? &c->sopt.input : &c->sopt.output))
			return bad(name, optarg, "not fixed:N, uniform:A:B (1 <= A <= B) or "
				   "lognormal:MU:SIGMA");
		return 0;
	case O_CLASS:
		if (c->sopt.nr_classes == LG_MAX_CLASSES)
			return bad(name, optarg, "too many classes");
		if (lg_class_parse(optarg, &c->sopt.classes[c->sopt.nr_classes++]))
			return bad(name, optarg, "not NAME:WEIGHT:PRIORITY:TTFT_MS:TPOT_MS "
				   "(weight > 0, SLOs >= 0, 0 for none)");
		return 0;
	case O_CLIENTS:
		if (whole(name, optarg, 1, 1u << 20, &u))
			return -1;
		c->sopt.clients = u;
		return 0;
	case O_TTFT:
	case O_TPOT:
		if (real(name, optarg, 0, &d))
			return -1;
		if (opt == O_TTFT)
			c->topt.ttft_slo_ms = c->sopt.ttft_slo_ms = d;
		else
			c->topt.tpot_slo_ms = c->sopt.tpot_slo_ms = d;
		return 0;
	case O_SEED:
		if (whole(name, optarg, 0, UINT64_MAX, &u))
			return -1;
		c->cfg.seed = c->sopt.seed = u;
		return 0;
	}
	return 1;
}

int sim_cli_parse(int argc, char **argv, struct sim_cli *c)
{
	const char *name;
	int opt, synth = 0, ret;
	uint32_t budget;

	defaults(c);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		name = opt >= O_PROFILE && opt <= O_HELP ? longopts[opt - O_PROFILE].name : "";
		if (opt == O_HELP) {
			fputs(usage, stdout);
			return 1;
		}
		if (opt == O_PROFILE) {
			c->profile = optarg;
			continue;
		}
		if (opt == O_JSON) {
			c->json = 1;
			continue;
		}
		ret = workload_opt(opt, name, c, &synth);
		if (ret > 0)
			ret = engine_opt(opt, name, c);
		if (ret < 0)
			return -1;
		if (ret > 0) {
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvaccel-sim: unexpected argument \"%s\"\n%s", argv[optind], usage);
		return -1;
	}
	if (!c->profile) {
		fprintf(stderr, "kvaccel-sim: give --profile FILE\n%s", usage);
		return -1;
	}
	if (!!c->trace == synth) {
		fprintf(stderr, "kvaccel-sim: give one of --trace FILE and --synthetic\n%s", usage);
		return -1;
	}
	budget = c->cfg.max_tokens ? c->cfg.max_tokens : 2048;
	if (c->cfg.chunk_tokens > budget) {
		fprintf(stderr, "kvaccel-sim: --chunk %u: more than the budget (%u)\n",
			c->cfg.chunk_tokens, budget);
		return -1;
	}
	if ((c->cfg.max_seqs ? c->cfg.max_seqs : 256) > budget) {
		fprintf(stderr, "kvaccel-sim: --max-seqs %u: more than the budget (%u)\n",
			c->cfg.max_seqs ? c->cfg.max_seqs : 256, budget);
		return -1;
	}
	return 0;
}
