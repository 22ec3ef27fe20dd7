// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen - replay a workload against kvaccel-serve's HTTP API (POST /v1/completions,
 * streamed) and report TTFT, TPOT, inter-token and end-to-end percentiles, failures by cause,
 * SLO attainment and goodput; with --server-metrics, what the server's /metrics say changed.
 * Exit 0; 1 if the run could not be made or digests differ; 2 for bad options or a bad trace.
 */
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "cli.h"
#include "server.h"
#include "stats.h"

static void dump(const struct lg_workload *wl)
{
	size_t i;

	for (i = 0; i < wl->n; i++) {
		const struct lg_req *r = &wl->req[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "arrival_s", json_object_new_double(r->arrival_s));
		if (r->prompt)
			json_object_object_add(o, "prompt", json_object_new_string(r->prompt));
		else
			json_object_object_add(o, "input_length",
					       json_object_new_int64(r->input_len));
		json_object_object_add(o, "output_length", json_object_new_int64(r->output_len));
		json_object_object_add(o, "priority", json_object_new_int(r->priority));
		json_object_object_add(o, "class", json_object_new_string(r->cls));
		if (r->ttft_slo_ms > 0)
			json_object_object_add(o, "ttft_slo_ms",
					       json_object_new_double(r->ttft_slo_ms));
		if (r->tpot_slo_ms > 0)
			json_object_object_add(o, "tpot_slo_ms",
					       json_object_new_double(r->tpot_slo_ms));
		if (*r->client)
			json_object_object_add(o, "client", json_object_new_string(r->client));
		if (r->hash_ids) {
			json_object *h = json_object_new_array();
			uint32_t k;

			for (k = 0; k < r->nr_hash_ids; k++)
				json_object_array_add(h, json_object_new_int64(r->hash_ids[k]));
			json_object_object_add(o, "hash_ids", h);
		}
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	}
}

int main(int argc, char **argv)
{
	struct lg_workload wl = { 0 };
	struct lg_digest_check dc = { 0 };
	struct lg_server srv = { 0 };
	struct lg_result *res;
	struct lg_cli c;
	double duration = 0;
	char err[512];
	int rc = lg_cli_parse(argc, argv, &c), ret = 0;

	if (rc)
		return rc > 0 ? 0 : 2;
	if (c.wl.trace && lg_trace_load(c.wl.trace, &c.wl.topt, &wl, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-loadgen: %s\n", err);
		return 2;
	}
	if (!c.wl.trace && lg_synth(&c.wl.sopt, &wl)) {
		fprintf(stderr, "kvaccel-loadgen: cannot generate the workload\n");
		return 2;
	}
	if (c.dump) {
		dump(&wl);
		lg_workload_free(&wl);
		return 0;
	}
	res = calloc(wl.n, sizeof(*res));
	if (res && c.server_metrics)
		lg_server_begin(&srv, &c.ropt.url, c.ropt.timeout_s);
	if (!res || lg_run(&wl, &c.ropt, res, &duration)) {
		fprintf(stderr, "kvaccel-loadgen: out of memory\n");
		free(res);
		lg_server_free(&srv);
		lg_workload_free(&wl);
		return 1;
	}
	if (c.server_metrics) {
		lg_server_end(&srv, &c.ropt.url, c.ropt.timeout_s);
		if (!srv.ok)
			fprintf(stderr, "kvaccel-loadgen: warning: --server-metrics: %s\n", srv.err);
	}
	if (c.check_digests && lg_digests_check(c.check_digests, &wl, res, &dc, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-loadgen: --check-digests %s\n", err);
		ret = 1;
	}
	if (c.json)
		lg_report_json(stdout, &wl, res, duration, &dc, c.server_metrics ? &srv : NULL);
	else
		lg_report_table(stdout, &wl, res, duration, &dc, c.server_metrics ? &srv : NULL);
	if (dc.mismatched) {
		fprintf(stderr, "kvaccel-loadgen: %zu requests' digests differ from %s (%s)\n",
			dc.mismatched, c.check_digests, dc.first);
		ret = 1;
	}
	lg_results_free(res, wl.n);
	lg_server_free(&srv);
	lg_workload_free(&wl);
	return ret;
}
