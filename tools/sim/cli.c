// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - command-line options (getopt_long), each checked with a clear message. The
 * workload options are kvaccel-loadgen's (the same names, defaults and parsers).
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "accel.h"
#include "cli.h"
#include "dispatch.h"
#include "evopts.h"
#include "wlopts.h"

#define PROG "kvaccel-sim"

static const char head[] =
	"usage: kvaccel-sim --profile FILE (--trace FILE | --synthetic) [options]\n"
	"       kvaccel-sim calibrate [options] STEP_LOG...   (a profile of kvaccel-serve)\n"
	"  --profile FILE      the latency profile (tools/sim/profiles/*.profile)\n";
static const char tail[] =
	"  --seed S            the generator and the prompts' tokens (default 1)\n"
	"  --policy fcfs|priority|slo|fair|hybrid   the scheduler's policy (default fcfs)\n"
	"  --preempt cost|swap|recompute   how victims are preempted (default cost)\n"
	"  --budget N          tokens per step (default 2048)\n"
	"  --max-seqs N        running requests at once (default 256)\n"
	"  --chunk N           longest prefill chunk (default: the budget)\n"
	"  --priority-threshold N   priority: how much more urgent a preemptor must be\n"
	"  --gpu-blocks N --host-blocks N   override the profile's block counts\n"
	"  --no-host           no host tier (every preemption recomputes)\n"
	"  --no-yield          no operator-level preemption of running prefills\n"
	"  --instances N       engines behind the dispatcher (default 1, at most 64)\n"
	"  --dispatch rr|least|llumnix   which instance takes a request (default rr)\n"
	"  --pd P:D            prefill/decode disaggregation: P prefill, D decode instances\n"
	"  --json              the report as one JSON object\n"
	"  --system NAME|FILE  a system's options (tools/sim/systems/NAME.system) before these\n"
	"  --systems-dir DIR   where NAMEs are (default $KVACCEL_SIM_SYSTEMS, or by the binary)\n"
	"  --goodput           the highest rate meeting --goodput-target (default 0.9) of SLOs,\n"
	"                      by bisection to --goodput-tol (default 0.01, relative);\n"
	"                      --goodput-per-class: by every class of requests\n"
	"  --csv FILE          a time series, a row per --csv-interval MS (default 1000)\n"
	"  --requests-csv FILE a row per request (TTFT, TPOT, e2e, SLO met)\n"
	"  --stream            requests made (or read: a trace sorted by arrival) as they\n"
	"                      arrive, results folded as they end (memory follows the requests\n"
	"                      alive; percentiles estimated)\n";

enum {
	O_PROFILE = 256, O_POLICY, O_PREEMPT, O_BUDGET, O_MAXSEQS, O_CHUNK, O_THRESH, O_GPUB,
	O_HOSTB, O_NOHOST, O_NOYIELD, O_INST, O_DISPATCH, O_PD, O_JSON, O_STREAM, O_HELP,
};

#define NR_OWN	(O_HELP - O_PROFILE + 1)

static const struct option own[NR_OWN] = {
	{ "profile", required_argument, NULL, O_PROFILE },
	{ "policy", required_argument, NULL, O_POLICY },
	{ "preempt", required_argument, NULL, O_PREEMPT },
	{ "budget", required_argument, NULL, O_BUDGET },
	{ "max-seqs", required_argument, NULL, O_MAXSEQS },
	{ "chunk", required_argument, NULL, O_CHUNK },
	{ "priority-threshold", required_argument, NULL, O_THRESH },
	{ "gpu-blocks", required_argument, NULL, O_GPUB },
	{ "host-blocks", required_argument, NULL, O_HOSTB },
	{ "no-host", no_argument, NULL, O_NOHOST },
	{ "no-yield", no_argument, NULL, O_NOYIELD },
	{ "instances", required_argument, NULL, O_INST },
	{ "dispatch", required_argument, NULL, O_DISPATCH },
	{ "pd", required_argument, NULL, O_PD },
	{ "json", no_argument, NULL, O_JSON },
	{ "stream", no_argument, NULL, O_STREAM },
	{ "help", no_argument, NULL, O_HELP },
};

/* Goodput and the time series: their own values, apart from the engine's. */
enum { R_GOODPUT = 384, R_TARGET, R_TOL, R_CSV, R_CSVMS, R_REQCSV, R_PERCLASS, R_END };

#define NR_REP	(R_END - R_GOODPUT)

static const struct option rep[NR_REP] = {
	{ "goodput", no_argument, NULL, R_GOODPUT },
	{ "goodput-target", required_argument, NULL, R_TARGET },
	{ "goodput-tol", required_argument, NULL, R_TOL },
	{ "csv", required_argument, NULL, R_CSV },
	{ "csv-interval", required_argument, NULL, R_CSVMS },
	{ "requests-csv", required_argument, NULL, R_REQCSV },
	{ "goodput-per-class", no_argument, NULL, R_PERCLASS },
};

static int rep_opt(int opt, const char *arg, struct sim_cli_rep *r)
{
	const char *name = rep[opt - R_GOODPUT].name;

	switch (opt) {
	case R_GOODPUT:
		r->goodput = 1;
		return 0;
	case R_TARGET:
		if (lg_opt_real(PROG, name, arg, 1e-6, &r->target))
			return -1;
		if (r->target > 1)
			return lg_opt_bad(PROG, name, arg, "above 1");
		return 0;
	case R_TOL:
		if (lg_opt_real(PROG, name, arg, 1e-6, &r->tol))
			return -1;
		if (r->tol > 1)
			return lg_opt_bad(PROG, name, arg, "above 1");
		return 0;
	case R_CSV:
		r->csv = arg;
		return 0;
	case R_CSVMS:
		return lg_opt_real(PROG, name, arg, 1e-3, &r->csv_ms);
	case R_REQCSV:
		r->requests_csv = arg;
		return 0;
	case R_PERCLASS:
		r->per_class = 1;
		return 0;
	}
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f, "%s%s%s%s", head, lg_wl_usage, tail, sim_ev_usage);
}

static void defaults(struct sim_cli *c)
{
	memset(c, 0, sizeof(*c));
	lg_wl_defaults(&c->wl);
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

/* --pd P:D: P prefill and D decode instances, each 1 at least, 64 in all at most. */
static int pd_opt(const char *arg, struct sim_cli *c)
{
	unsigned int p, d;
	int end = 0;

	if (sscanf(arg, "%u:%u%n", &p, &d, &end) != 2 || arg[end] || !isdigit((unsigned char)*arg))
		return lg_opt_bad(PROG, "pd", arg, "not P:D (two whole numbers)");
	if (!p || !d)
		return lg_opt_bad(PROG, "pd", arg, "P and D must be 1 at least");
	if (p > SIM_MAX_INSTANCES || d > SIM_MAX_INSTANCES || p + d > SIM_MAX_INSTANCES)
		return lg_opt_bad(PROG, "pd", arg, "more than 64 instances in all");
	c->cfg.pd_prefill = p;
	c->cfg.pd_decode = d;
	return 0;
}

/* The engine's options: 0, or -1 said; 1: --help printed. */
static int engine_opt(int opt, const char *arg, struct sim_cli *c)
{
	const char *name = own[opt - O_PROFILE].name;
	unsigned long long u;

	switch (opt) {
	case O_PROFILE:
		c->profile = arg;
		return 0;
	case O_JSON:
		c->json = 1;
		return 0;
	case O_STREAM:
		c->stream = 1;
		return 0;
	case O_HELP:
		usage(stdout);
		return 1;
	case O_POLICY:
		if (policy(arg, &c->cfg.policy))
			return lg_opt_bad(PROG, name, arg,
					  "not fcfs, priority, slo, fair or hybrid");
		return 0;
	case O_PREEMPT:
		if (!strcmp(arg, "cost"))
			c->cfg.preempt = ACCEL_SCHED_PREEMPT_COST;
		else if (!strcmp(arg, "swap"))
			c->cfg.preempt = ACCEL_SCHED_PREEMPT_SWAP;
		else if (!strcmp(arg, "recompute"))
			c->cfg.preempt = ACCEL_SCHED_PREEMPT_RECOMPUTE;
		else
			return lg_opt_bad(PROG, name, arg, "not cost, swap or recompute");
		return 0;
	case O_BUDGET:
	case O_MAXSEQS:
	case O_CHUNK:
		if (lg_opt_whole(PROG, name, arg, 1, 1u << 24, &u))
			return -1;
		if (opt == O_BUDGET)
			c->cfg.max_tokens = u;
		else if (opt == O_MAXSEQS)
			c->cfg.max_seqs = u;
		else
			c->cfg.chunk_tokens = u;
		return 0;
	case O_THRESH:
		if (lg_opt_whole(PROG, name, arg, 0, 1u << 30, &u))
			return -1;
		c->cfg.priority_threshold = u;
		return 0;
	case O_GPUB:
	case O_HOSTB:
		if (lg_opt_whole(PROG, name, arg, 1, 1u << 24, &u))
			return -1;
		if (opt == O_GPUB)
			c->cfg.gpu_blocks = u;
		else
			c->cfg.host_blocks = u;
		return 0;
	case O_NOHOST:
		c->cfg.no_host = 1;
		return 0;
	case O_NOYIELD:
		c->cfg.no_yield = 1;
		return 0;
	case O_INST:
		if (lg_opt_whole(PROG, name, arg, 1, SIM_MAX_INSTANCES, &u))
			return -1;
		c->cfg.instances = u;
		return 0;
	case O_DISPATCH:
		if (sim_dispatch_parse(arg, &c->cfg.dispatch))
			return lg_opt_bad(PROG, name, arg, "not rr, least or llumnix");
		return 0;
	case O_PD:
		return pd_opt(arg, c);
	}
	return 1;
}

int sim_cli_parse(int argc, char **argv, struct sim_cli *c)
{
	struct option opts[NR_OWN + LG_WL_NR_OPTS + SIM_EV_NR_OPTS + NR_REP + 1] = { { 0 } };
	int opt, ret;
	uint32_t budget;

	memcpy(opts, own, sizeof(own));
	memcpy(opts + NR_OWN, lg_wl_options, sizeof(lg_wl_options));
	memcpy(opts + NR_OWN + LG_WL_NR_OPTS, sim_ev_options, sizeof(sim_ev_options));
	memcpy(opts + NR_OWN + LG_WL_NR_OPTS + SIM_EV_NR_OPTS, rep, sizeof(rep));
	defaults(c);
	c->rep = (struct sim_cli_rep){ .target = 0.9, .tol = 0.01, .csv_ms = 1000 };
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt >= O_PROFILE && opt <= O_HELP)
			ret = engine_opt(opt, optarg, c);
		else if (opt >= SIM_EV_OPT && opt < SIM_EV_OPT + SIM_EV_NR_OPTS)
			ret = sim_ev_parse(PROG, opt, optarg, &c->cfg);
		else if (opt >= R_GOODPUT && opt < R_END)
			ret = rep_opt(opt, optarg, &c->rep);
		else
			ret = lg_wl_parse(PROG, opt, optarg, &c->wl);
		if (ret < 0 || (ret > 0 && opt == O_HELP))
			return ret;
		if (ret > 0) {
			usage(stderr);
			return -1;
		}
	}
	c->cfg.seed = c->wl.sopt.seed;
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	if (!c->profile) {
		fprintf(stderr, PROG ": give --profile FILE\n");
		usage(stderr);
		return -1;
	}
	if (lg_wl_check(PROG, &c->wl, "")) {
		usage(stderr);
		return -1;
	}
	if (c->stream && (c->rep.goodput || c->rep.csv || c->rep.requests_csv)) {
		fprintf(stderr, PROG ": --stream: not with --%s (it needs every request's result)\n",
			c->rep.goodput ? "goodput" : c->rep.csv ? "csv" : "requests-csv");
		return -1;
	}
	if (c->rep.per_class && !c->rep.goodput) {
		fprintf(stderr, PROG ": --goodput-per-class: only with --goodput\n");
		return -1;
	}
	if (c->rep.goodput && (c->rep.csv || c->rep.requests_csv)) {
		fprintf(stderr, PROG ": --%s %s: not with --goodput (a run per rate)\n",
			c->rep.csv ? "csv" : "requests-csv",
			c->rep.csv ? c->rep.csv : c->rep.requests_csv);
		return -1;
	}
	if (c->cfg.pd_prefill && c->cfg.instances) {
		fprintf(stderr, "kvaccel-sim: --pd %u:%u: give --pd or --instances, not both\n",
			c->cfg.pd_prefill, c->cfg.pd_decode);
		return -1;
	}
	if (c->stream && c->wl.sopt.sessions) {
		fprintf(stderr, "kvaccel-sim: --stream: not with --sessions (a session's turns "
			"are made out of arrival order)\n");
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
