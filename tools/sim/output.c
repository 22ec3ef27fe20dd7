// SPDX-License-Identifier: MIT
/* kvaccel-sim - the report (see output.h). */
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "accel.h"
#include "dispatch.h"
#include "metrics.h"
#include "output.h"
#include "stats.h"
#include "stream.h"

static void sim_report_metrics(FILE *f, json_object *o, const struct lg_workload *wl,
			       const struct lg_result *res, const struct sim_totals *t);

static const char *const preempt_names[] = { "cost", "recompute", "swap" };
static const char *const role_names[] = { "both", "prefill", "decode" };

static double inst_util(const struct sim_totals *t, uint32_t i)
{
	return t->duration_s > 0 ? t->inst[i].busy_ns / 1e9 / t->duration_s : 0;
}

/* With more than one instance: each one's share, and the hand-offs. */
static void cluster_table(FILE *f, const struct sim_config *c, const struct sim_totals *t)
{
	uint32_t i;

	if (t->nr_instances < 2)
		return;
	fprintf(f, "instances: %u, dispatch %s", t->nr_instances,
		sim_dispatch_name(c->dispatch));
	if (c->pd_prefill)
		fprintf(f, ", %u prefill and %u decode; %llu hand-offs (%llu blocks, %.3f GiB, "
			"links busy %.3f s)", c->pd_prefill, c->pd_decode,
			(unsigned long long)t->transfers, (unsigned long long)t->transfer_blocks,
			t->transfer_bytes / (1024.0 * 1024 * 1024), t->transfer_ns / 1e9);
	fprintf(f, "\n");
	for (i = 0; i < t->nr_instances; i++) {
		const struct sim_inst_totals *n = &t->inst[i];

		fprintf(f, "  instance %u (%s): %llu requests, %llu steps, busy %.3f s (%.1f%%); "
			"%llu prefill and %llu decode tokens, %llu yields\n", i,
			role_names[n->role], (unsigned long long)n->requests,
			(unsigned long long)n->steps, n->busy_ns / 1e9, 100 * inst_util(t, i),
			(unsigned long long)n->prefill_tokens, (unsigned long long)n->decode_tokens,
			(unsigned long long)n->yields);
	}
}

/* The events' totals (--pressure, --client-timeout-ms, --abort-frac, --swap-fail-frac). */
static void events_table(FILE *f, const struct sim_totals *t)
{
	fprintf(f, "events: %llu pressure rounds freed %llu blocks now and %llu pending (%llu "
		"cached dropped, %llu requests swapped out, %llu recomputed; %llu blocks held); "
		"%llu client timeouts, %llu client aborts; %llu swap transfers failed\n",
		(unsigned long long)t->pressure_rounds, (unsigned long long)t->pressure_freed,
		(unsigned long long)t->pressure_pending,
		(unsigned long long)t->pressure_dropped_cached,
		(unsigned long long)t->pressure_swapped_out,
		(unsigned long long)t->pressure_recomputed, (unsigned long long)t->pressure_held,
		(unsigned long long)t->timeouts, (unsigned long long)t->client_aborts,
		(unsigned long long)t->swap_fails_injected);
	if (t->pressure_stopped)
		fprintf(f, "events: the periodic pressure rounds stopped after 1000 in a row "
			"with no request ending between them\n");
}

static double util(const struct sim_totals *t)
{
	uint32_t n = t->nr_instances ? t->nr_instances : 1;

	return t->duration_s > 0 ? t->busy_ns / 1e9 / t->duration_s / n : 0;
}

void sim_report_table(FILE *f, const struct sim_config *c, const struct lg_workload *wl,
		      const struct lg_result *res, const struct sim_stream *st,
		      const struct sim_totals *t, double wall_s)
{
	const struct sim_profile *p = c->prof;

	fprintf(f, "kvaccel-sim: %s (%s on %s, tp %g), policy %s, preempt %s; %u GPU blocks, "
		"%u host blocks of %u tokens (%llu KiB each)\n", p->name, p->model, p->gpu, p->tp,
		accel_sched_policy_name(c->policy), preempt_names[c->preempt], t->gpu_blocks,
		t->host_blocks, t->block_tokens, (unsigned long long)(p->block_bytes >> 10));
	if (st)
		sim_stream_table(f, st, t->duration_s);
	else
		lg_report_table(f, wl, res, t->duration_s, NULL, NULL);
	fprintf(f, "engine: %llu steps, busy %.3f s of %.3f s simulated (%.1f%%); %llu prefill "
		"and %llu decode tokens\n", (unsigned long long)t->steps, t->busy_ns / 1e9,
		t->duration_s, 100 * util(t), (unsigned long long)t->prefill_tokens,
		(unsigned long long)t->decode_tokens);
	fprintf(f, "preemption: %llu swaps out, %llu in (%.3f GiB, link busy %.3f s), %llu "
		"recomputes (%llu tokens recomputed), %llu swap failures, %llu yields; %llu "
		"prefix-cache block hits\n", (unsigned long long)t->swaps_out,
		(unsigned long long)t->swaps_in, t->swapped_bytes / (1024.0 * 1024 * 1024),
		t->swap_ns / 1e9, (unsigned long long)t->recomputes,
		(unsigned long long)t->recomputed_tokens, (unsigned long long)t->swap_failures,
		(unsigned long long)t->yields, (unsigned long long)t->prefix_hit_blocks);
	cluster_table(f, c, t);
	sim_report_metrics(f, NULL, wl, res, t);
	if (t->unfinished)
		fprintf(f, "unfinished: %zu requests never finished\n", t->unfinished);
	if (sim_events_on(c))
		events_table(f, t);
	fprintf(f, "simulated in %.3f s of wall time\n", wall_s);
}

static json_object *u64(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}

/* With more than one instance (N = 1 leaves the object as it was). */
static void cluster_obj(json_object *o, const struct sim_config *c, const struct sim_totals *t)
{
	json_object *a = json_object_new_array();
	uint32_t i;

	json_object_object_add(o, "dispatch",
			       json_object_new_string(sim_dispatch_name(c->dispatch)));
	if (c->pd_prefill) {
		json_object_object_add(o, "pd_prefill", u64(c->pd_prefill));
		json_object_object_add(o, "pd_decode", u64(c->pd_decode));
		json_object_object_add(o, "transfers", u64(t->transfers));
		json_object_object_add(o, "transfer_blocks", u64(t->transfer_blocks));
		json_object_object_add(o, "transfer_bytes", u64(t->transfer_bytes));
		json_object_object_add(o, "transfer_link_s",
				       json_object_new_double(t->transfer_ns / 1e9));
	}
	for (i = 0; i < t->nr_instances; i++) {
		const struct sim_inst_totals *n = &t->inst[i];
		json_object *e = json_object_new_object();

		json_object_object_add(e, "role", json_object_new_string(role_names[n->role]));
		json_object_object_add(e, "requests", u64(n->requests));
		json_object_object_add(e, "steps", u64(n->steps));
		json_object_object_add(e, "busy_s", json_object_new_double(n->busy_ns / 1e9));
		json_object_object_add(e, "utilisation", json_object_new_double(inst_util(t, i)));
		json_object_object_add(e, "prefill_tokens", u64(n->prefill_tokens));
		json_object_object_add(e, "decode_tokens", u64(n->decode_tokens));
		json_object_object_add(e, "yields", u64(n->yields));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "instances", a);
}

/* The events' totals, only when asked for (without them the object is as it was). */
static void events_obj(json_object *o, const struct sim_totals *t)
{
	json_object_object_add(o, "pressure_rounds", u64(t->pressure_rounds));
	json_object_object_add(o, "pressure_freed", u64(t->pressure_freed));
	json_object_object_add(o, "pressure_pending", u64(t->pressure_pending));
	json_object_object_add(o, "pressure_dropped_cached", u64(t->pressure_dropped_cached));
	json_object_object_add(o, "pressure_swapped_out", u64(t->pressure_swapped_out));
	json_object_object_add(o, "pressure_recomputed", u64(t->pressure_recomputed));
	json_object_object_add(o, "pressure_held", u64(t->pressure_held));
	json_object_object_add(o, "timeouts", u64(t->timeouts));
	json_object_object_add(o, "client_aborts", u64(t->client_aborts));
	json_object_object_add(o, "swap_fails_injected", u64(t->swap_fails_injected));
	json_object_object_add(o, "end_used_blocks", u64(t->end_used_blocks));
	json_object_object_add(o, "pressure_stopped", json_object_new_boolean(t->pressure_stopped));
}

static json_object *engine_obj(const struct sim_config *c, const struct sim_totals *t)
{
	const struct sim_profile *p = c->prof;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "profile", json_object_new_string(p->name));
	json_object_object_add(o, "model", json_object_new_string(p->model));
	json_object_object_add(o, "gpu", json_object_new_string(p->gpu));
	json_object_object_add(o, "policy",
			       json_object_new_string(accel_sched_policy_name(c->policy)));
	json_object_object_add(o, "preempt", json_object_new_string(preempt_names[c->preempt]));
	json_object_object_add(o, "gpu_blocks", u64(t->gpu_blocks));
	json_object_object_add(o, "host_blocks", u64(t->host_blocks));
	json_object_object_add(o, "block_tokens", u64(t->block_tokens));
	json_object_object_add(o, "kv_bytes_per_token", u64(p->kv_bytes_per_token));
	json_object_object_add(o, "steps", u64(t->steps));
	json_object_object_add(o, "busy_s", json_object_new_double(t->busy_ns / 1e9));
	json_object_object_add(o, "utilisation", json_object_new_double(util(t)));
	json_object_object_add(o, "prefill_tokens", u64(t->prefill_tokens));
	json_object_object_add(o, "decode_tokens", u64(t->decode_tokens));
	json_object_object_add(o, "swaps_out", u64(t->swaps_out));
	json_object_object_add(o, "swaps_in", u64(t->swaps_in));
	json_object_object_add(o, "swap_failures", u64(t->swap_failures));
	json_object_object_add(o, "swapped_bytes", u64(t->swapped_bytes));
	json_object_object_add(o, "swap_link_s", json_object_new_double(t->swap_ns / 1e9));
	json_object_object_add(o, "recomputes", u64(t->recomputes));
	json_object_object_add(o, "recomputed_tokens", u64(t->recomputed_tokens));
	json_object_object_add(o, "yields", u64(t->yields));
	json_object_object_add(o, "prefix_hit_blocks", u64(t->prefix_hit_blocks));
	json_object_object_add(o, "unfinished", u64(t->unfinished));
	if (t->nr_instances > 1)
		cluster_obj(o, c, t);
	if (sim_events_on(c))
		events_obj(o, t);
	return o;
}

/* Fairness and token throughput: a line of the table (@o NULL), or keys of @o. */
static void sim_report_metrics(FILE *f, json_object *o, const struct lg_workload *wl,
			       const struct lg_result *res, const struct sim_totals *t)
{
	unsigned long long out, all;
	size_t clients;
	double jain, d = t->duration_s > 0 ? t->duration_s : 0;

	/* --stream keeps no request's result: neither is in its report. */
	if (!wl || !res)
		return;
	jain = sim_jain(wl, res, &clients);
	sim_tokens(wl, res, &out, &all);
	if (!o) {
		fprintf(f, "fairness: Jain's index %.4f over %zu clients (VTC-weighted tokens a "
			"second in the system); throughput %.1f output tokens/s, %.1f tokens/s\n",
			jain, clients, d ? out / d : 0, d ? all / d : 0);
		return;
	}
	json_object_object_add(o, "jain_fairness", json_object_new_double(jain));
	json_object_object_add(o, "fairness_clients", u64(clients));
	json_object_object_add(o, "output_tokens_per_s", json_object_new_double(d ? out / d : 0));
	json_object_object_add(o, "tokens_per_s", json_object_new_double(d ? all / d : 0));
}

int sim_report_json(FILE *f, const struct sim_config *c, const struct lg_workload *wl,
		    const struct lg_result *res, const struct sim_stream *st,
		    const struct sim_totals *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	json_object *o;

	if (!m)
		return -1;
	if (st)
		sim_stream_json(m, st, t->duration_s);
	else
		lg_report_json(m, wl, res, t->duration_s, NULL, NULL);
	fclose(m);
	o = json_tokener_parse(buf);
	free(buf);
	if (!o)
		return -1;
	json_object_object_add(o, "engine", engine_obj(c, t));
	sim_report_metrics(f, json_object_object_get(o, "engine"), wl, res, t);
	fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return 0;
}
