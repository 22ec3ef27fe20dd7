// SPDX-License-Identifier: MIT
/* kvaccel-loadgen and kvaccel-sim - the workload options both take (wlopts.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlopts.h"

enum {
	O_TRACE = LG_WL_OPT, O_TSCALE, O_LIMIT, O_MAXIN, O_MAXOUT, O_SYNTH, O_REQS, O_RATE,
	O_ARR, O_CV, O_BURST, O_INPUT, O_OUTPUT, O_CLASS, O_CLIENTS, O_TTFT, O_TPOT, O_DIURNAL,
	O_SESSIONS, O_THINK, O_SEED, O_END,
};

const struct option lg_wl_options[LG_WL_NR_OPTS] = {
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
	{ "diurnal", required_argument, NULL, O_DIURNAL },
	{ "sessions", required_argument, NULL, O_SESSIONS },
	{ "think", required_argument, NULL, O_THINK },
	{ "seed", required_argument, NULL, O_SEED },
};

_Static_assert(O_END - LG_WL_OPT == LG_WL_NR_OPTS, "lg_wl_options and its enum agree");

const char lg_wl_usage[] =
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
	"                      a class named offline is best effort)\n"
	"  --clients N         synthetic: clients c0..cN-1, round robin\n"
	"  --ttft-slo-ms MS --tpot-slo-ms MS   the SLO of requests without one (default none)\n"
	"  --diurnal PERIOD_S:AMPLITUDE   poisson: rate x (1 + A sin(2 pi t / PERIOD_S))\n"
	"  --sessions N:TURNS  synthetic: N conversations of TURNS turns (N x TURNS requests),\n"
	"                      each turn's prompt the previous turn's prompt and output and more\n"
	"  --think S           sessions: mean think time between turns (default 10)\n";

int lg_opt_bad(const char *prog, const char *opt, const char *v, const char *why)
{
	fprintf(stderr, "%s: --%s %s: %s\n", prog, opt, v, why);
	return -1;
}

int lg_opt_real(const char *prog, const char *opt, const char *v, double min, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	if (end == v || *end || errno || !isfinite(*out))
		return lg_opt_bad(prog, opt, v, "not a number");
	if (*out < min) {
		fprintf(stderr, "%s: --%s %s: below %g\n", prog, opt, v, min);
		return -1;
	}
	return 0;
}

int lg_opt_whole(const char *prog, const char *opt, const char *v, unsigned long long min,
		 unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (end == v || *end || errno || *v == '-')
		return lg_opt_bad(prog, opt, v, "not a whole number");
	if (*out < min || *out > max) {
		fprintf(stderr, "%s: --%s %s: not in %llu..%llu\n", prog, opt, v, min, max);
		return -1;
	}
	return 0;
}

void lg_wl_defaults(struct lg_wl_cli *w)
{
	memset(w, 0, sizeof(*w));
	w->topt.time_scale = 1;
	w->sopt.requests = 100;
	w->sopt.rate = 1;
	w->sopt.cv = 2;
	w->sopt.burst = 8;
	w->sopt.seed = 1;
	w->sopt.input = (struct lg_dist){ LG_DIST_LOGNORMAL, 6.6, 1.0 };
	w->sopt.output = (struct lg_dist){ LG_DIST_LOGNORMAL, 5.0, 0.9 };
	w->sopt.think_s = 10;
}

/* A whole number into *u: 0, or -1 said. */
#define WHOLE(min, max) lg_opt_whole(prog, name, arg, (min), (max), &u)

int lg_wl_parse(const char *prog, int opt, const char *arg, struct lg_wl_cli *w)
{
	struct lg_synth_opts *s = &w->sopt;
	struct lg_trace_opts *t = &w->topt;
	unsigned long long u;
	const char *name;
	char tail;
	double d;

	if (opt < LG_WL_OPT || opt > O_SEED)
		return 1;
	name = lg_wl_options[opt - LG_WL_OPT].name;
	switch (opt) {
	case O_TRACE:
		w->trace = arg;
		return 0;
	case O_TSCALE:
		return lg_opt_real(prog, name, arg, 1e-9, &t->time_scale);
	case O_LIMIT:
		if (WHOLE(1, 1ULL << 32))
			return -1;
		t->limit = u;
		return 0;
	case O_MAXIN:
	case O_MAXOUT:
		if (WHOLE(1, 1u << 30))
			return -1;
		if (opt == O_MAXIN)
			t->max_input = s->max_input = u;
		else
			t->max_output = s->max_output = u;
		return 0;
	case O_SYNTH:
		w->synthetic = 1;
		return 0;
	case O_REQS:
		if (WHOLE(1, 1ULL << 32))
			return -1;
		s->requests = u;
		return 0;
	case O_RATE:
		return lg_opt_real(prog, name, arg, 1e-9, &s->rate);
	case O_ARR:
		if (!strcmp(arg, "poisson"))
			s->arrival = LG_ARR_POISSON;
		else if (!strcmp(arg, "gamma"))
			s->arrival = LG_ARR_GAMMA;
		else if (!strcmp(arg, "burst"))
			s->arrival = LG_ARR_BURST;
		else
			return lg_opt_bad(prog, name, arg, "not poisson, gamma or burst");
		return 0;
	case O_CV:
		return lg_opt_real(prog, name, arg, 0.01, &s->cv);
	case O_BURST:
		if (WHOLE(1, 1u << 20))
			return -1;
		s->burst = u;
		return 0;
	case O_INPUT:
	case O_OUTPUT:
		if (lg_dist_parse(arg, opt == O_INPUT ? &s->input : &s->output))
			return lg_opt_bad(prog, name, arg, "not fixed:N, uniform:A:B (1 <= A <= B) "
					  "or lognormal:MU:SIGMA");
		return 0;
	case O_CLASS:
		if (s->nr_classes == LG_MAX_CLASSES)
			return lg_opt_bad(prog, name, arg, "too many classes");
		if (lg_class_parse(arg, &s->classes[s->nr_classes++]))
			return lg_opt_bad(prog, name, arg, "not NAME:WEIGHT:PRIORITY:TTFT_MS:"
					  "TPOT_MS (weight > 0, SLOs >= 0, 0 for none)");
		return 0;
	case O_CLIENTS:
		if (WHOLE(1, 1u << 20))
			return -1;
		s->clients = u;
		return 0;
	case O_TTFT:
	case O_TPOT:
		if (lg_opt_real(prog, name, arg, 0, &d))
			return -1;
		if (opt == O_TTFT)
			t->ttft_slo_ms = s->ttft_slo_ms = d;
		else
			t->tpot_slo_ms = s->tpot_slo_ms = d;
		return 0;
	case O_DIURNAL:
		if (sscanf(arg, "%lf:%lf%c", &s->diurnal_period_s, &s->diurnal_amp, &tail) != 2 ||
		    !(s->diurnal_period_s > 0) || !isfinite(s->diurnal_period_s) ||
		    !(s->diurnal_amp >= 0 && s->diurnal_amp <= 1))
			return lg_opt_bad(prog, name, arg, "not PERIOD_S:AMPLITUDE (period > 0, "
					  "0 <= amplitude <= 1)");
		return 0;
	case O_SESSIONS: {
		unsigned long long n, k;
		int used = 0;

		if (*arg == '-' || sscanf(arg, "%llu:%llu%n", &n, &k, &used) != 2 || arg[used] ||
		    !n || !k || n > 1u << 24 || k > 1u << 16 || n * k > 1ULL << 32)
			return lg_opt_bad(prog, name, arg, "not N:TURNS (N 1..16777216, TURNS "
					  "1..65536, N x TURNS at most 2^32)");
		s->sessions = n;
		s->turns = k;
		return 0;
	}
	case O_THINK:
		return lg_opt_real(prog, name, arg, 0, &s->think_s);
	default:	/* O_SEED */
		if (WHOLE(0, UINT64_MAX))
			return -1;
		s->seed = u;
		return 0;
	}
}

int lg_wl_check(const char *prog, const struct lg_wl_cli *w, const char *usage)
{
	if (!!w->trace == w->synthetic) {
		fprintf(stderr, "%s: give one of --trace FILE and --synthetic\n%s", prog, usage);
		return -1;
	}
	if (w->sopt.diurnal_amp > 0 && w->sopt.arrival != LG_ARR_POISSON) {
		fprintf(stderr, "%s: --diurnal: only with --arrival poisson\n", prog);
		return -1;
	}
	return 0;
}
