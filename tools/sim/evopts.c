// SPDX-License-Identifier: MIT
/* kvaccel-sim - the events' command-line options (see evopts.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evopts.h"
#include "wlopts.h"

enum { E_PRESSURE = SIM_EV_OPT, E_EVERY, E_TIMEOUT, E_ABORT, E_SWAPFAIL };

const struct option sim_ev_options[SIM_EV_NR_OPTS] = {
	{ "pressure", required_argument, NULL, E_PRESSURE },
	{ "pressure-every", required_argument, NULL, E_EVERY },
	{ "client-timeout-ms", required_argument, NULL, E_TIMEOUT },
	{ "abort-frac", required_argument, NULL, E_ABORT },
	{ "swap-fail-frac", required_argument, NULL, E_SWAPFAIL },
};

const char sim_ev_usage[] =
	"  --pressure AT_S:TIER:BLOCKS[:HOLD_S][@I]   a pressure round at AT_S s: every\n"
	"                      instance (or instance I) releases BLOCKS blocks of tier 0 or 1;\n"
	"                      HOLD_S: what it frees is withheld that long (repeatable)\n"
	"  --pressure-every S:TIER:BLOCKS[:HOLD_S][@I]   a round every S s while requests remain\n"
	"  --client-timeout-ms MS   a request with no first token MS after arrival is aborted\n"
	"  --abort-frac F      a fraction F of requests (seeded) aborted during their decode\n"
	"  --swap-fail-frac F  a fraction F of swap transfers (seeded) fail\n";

/* A number of @s up to @end: strtod's, finite, >= 0; -1 otherwise. */
static int field(const char *s, const char *end, double *out)
{
	char buf[64], *e;
	size_t n = (size_t)(end - s);

	if (!n || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	*out = strtod(buf, &e);
	return e == buf || *e || !(*out >= 0) || *out > 1e12 ? -1 : 0;
}

/* AT_S:TIER:BLOCKS[:HOLD_S][@I] (or S:... for --pressure-every). */
static int pressure_opt(const char *prog, const char *name, const char *arg, int every,
			struct sim_config *c)
{
	const char *bad = "not AT_S:TIER:BLOCKS[:HOLD_S][@INSTANCE]";
	struct sim_pressure p = { .inst = -1 };
	const char *s = arg, *at = strchr(arg, '@'), *end = at ? at : arg + strlen(arg);
	double v[4] = { 0 };
	int n = 0;

	if (every)
		bad = "not S:TIER:BLOCKS[:HOLD_S][@INSTANCE]";
	if (c->nr_pressure == SIM_MAX_PRESSURE)
		return lg_opt_bad(prog, name, arg, "more than 32 pressure rounds");
	for (;;) {
		const char *colon = memchr(s, ':', (size_t)(end - s));
		const char *e = colon ? colon : end;

		if (n == 4 || field(s, e, &v[n++]))
			return lg_opt_bad(prog, name, arg, bad);
		if (!colon)
			break;
		s = colon + 1;
	}
	if (n < 3)
		return lg_opt_bad(prog, name, arg, bad);
	if (v[1] != 0 && v[1] != 1)
		return lg_opt_bad(prog, name, arg, "TIER is 0 (GPU) or 1 (host)");
	if (v[2] < 1 || v[2] != (double)(uint64_t)v[2] || v[2] > (1u << 30))
		return lg_opt_bad(prog, name, arg, "BLOCKS is a whole number, 1 to 2^30");
	if (every && !(v[0] > 0))
		return lg_opt_bad(prog, name, arg, "S must be more than 0");
	if (at) {
		char *e;
		unsigned long i = strtoul(at + 1, &e, 10);

		if (e == at + 1 || *e || at[1] == '-' || i >= SIM_MAX_INSTANCES)
			return lg_opt_bad(prog, name, arg, "@INSTANCE is 0 to 63");
		p.inst = (int32_t)i;
	}
	p.at_s = v[0];
	p.every_s = every ? v[0] : 0;
	p.tier = (uint32_t)v[1];
	p.blocks = (uint64_t)v[2];
	p.hold_s = n > 3 ? v[3] : 0;
	c->pressure[c->nr_pressure++] = p;
	return 0;
}

static int frac(const char *prog, const char *name, const char *arg, double *out)
{
	if (lg_opt_real(prog, name, arg, 0, out))
		return -1;
	if (*out > 1)
		return lg_opt_bad(prog, name, arg, "a fraction: 0 to 1");
	return 0;
}

int sim_ev_parse(const char *prog, int opt, const char *arg, struct sim_config *c)
{
	const char *name;

	if (opt < SIM_EV_OPT || opt >= SIM_EV_OPT + SIM_EV_NR_OPTS)
		return 1;
	name = sim_ev_options[opt - SIM_EV_OPT].name;
	switch (opt) {
	case E_PRESSURE:
	case E_EVERY:
		return pressure_opt(prog, name, arg, opt == E_EVERY, c);
	case E_TIMEOUT:
		if (lg_opt_real(prog, name, arg, 0, &c->client_timeout_ms))
			return -1;
		if (!(c->client_timeout_ms > 0))
			return lg_opt_bad(prog, name, arg, "must be more than 0");
		return 0;
	case E_ABORT:
		return frac(prog, name, arg, &c->abort_frac);
	default:
		return frac(prog, name, arg, &c->swap_fail_frac);
	}
}
