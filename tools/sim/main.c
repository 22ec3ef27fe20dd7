// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - a discrete-event serving simulator: libaccel's own scheduler and block manager
 * over a GPU latency profile, fed kvaccel-loadgen's workloads (traces or synthetic), reporting
 * what kvaccel-loadgen reports (Documentation/sim.rst). Exit status: 0, 1 (the run failed), 2
 * (bad options, a bad profile or trace).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calibrate.h"
#include "cli.h"
#include "engine.h"
#include "goodput.h"
#include "metrics.h"
#include "output.h"
#include "profile.h"
#include "stream.h"
#include "system.h"

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --stream: the synthetic workload or the trace made (read) and reported request by request. */
static int run_stream(struct sim_cli *c)
{
	struct sim_stream *st = malloc(sizeof(*st));
	struct lg_trace_iter *tr = NULL;
	struct sim_totals t;
	char err[512];
	double t0 = wall();
	int ret = 0;

	if (!st) {
		fprintf(stderr, "kvaccel-sim: out of memory\n");
		return 1;
	}
	if (c->wl.trace) {
		tr = lg_trace_open(c->wl.trace, &c->wl.topt, err, sizeof(err));
		if (!tr) {
			fprintf(stderr, "kvaccel-sim: %s\n", err);
			free(st);
			return 2;
		}
	}
	sim_stream_init(st);
	if (sim_run_stream(&c->cfg, &c->wl.sopt, tr, st, &t, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-sim: %s\n", err);
		ret = 2;
	} else if (c->json) {
		ret = sim_report_json(stdout, &c->cfg, NULL, NULL, st, &t) ? 1 : 0;
	} else {
		sim_report_table(stdout, &c->cfg, NULL, NULL, st, &t, wall() - t0);
	}
	lg_trace_close(tr);
	sim_stream_free(st);
	free(st);
	return ret;
}

static int sim_main(int argc, char **argv)
{
	struct lg_workload wl = { 0 };
	struct lg_result *res = NULL;
	struct sim_profile prof;
	struct sim_totals t;
	struct sim_cli c;
	char err[512];
	double t0;
	int ret;

	if (argc > 1 && !strcmp(argv[1], "calibrate"))
		return sim_calibrate_main(argc - 1, argv + 1);
	ret = sim_cli_parse(argc, argv, &c);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (sim_profile_load(c.profile, &prof, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-sim: %s\n", err);
		return 2;
	}
	c.cfg.prof = &prof;
	if (c.stream)
		return run_stream(&c);
	if (c.wl.trace) {
		if (lg_trace_load(c.wl.trace, &c.wl.topt, &wl, err, sizeof(err))) {
			fprintf(stderr, "kvaccel-sim: %s\n", err);
			lg_workload_free(&wl);
			return 2;
		}
	} else if (lg_synth(&c.wl.sopt, &wl)) {
		fprintf(stderr, "kvaccel-sim: the synthetic workload could not be generated\n");
		lg_workload_free(&wl);
		return 2;
	}
	if (c.rep.goodput) {
		ret = sim_goodput_cmd(&c, &wl);
		lg_workload_free(&wl);
		return ret;
	}
	res = calloc(wl.n + 1, sizeof(*res));
	if (!res) {
		fprintf(stderr, "kvaccel-sim: out of memory\n");
		lg_workload_free(&wl);
		return 1;
	}
	t0 = wall();
	if (sim_run(&c.cfg, &wl, res, &t, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-sim: %s\n", err);
		ret = 2;
	} else if (c.json) {
		ret = sim_report_json(stdout, &c.cfg, &wl, res, NULL, &t) ? 1 : 0;
	} else {
		sim_report_table(stdout, &c.cfg, &wl, res, NULL, &t, wall() - t0);
	}
	if (!ret && c.rep.csv)
		ret = sim_csv_file(c.rep.csv, c.rep.csv_ms / 1e3, &wl, res);
	if (!ret && c.rep.requests_csv)
		ret = sim_requests_csv_file(c.rep.requests_csv, &wl, res);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	return ret;
}

/* --system's options inserted before the command line's (system.h). */
int main(int argc, char **argv)
{
	struct sim_argv a;
	int ret;

	if (sim_system_expand(argc, argv, &a))
		return 2;
	ret = sim_main(a.argc, a.argv);
	sim_system_free(&a);
	return ret;
}
