// SPDX-License-Identifier: MIT
/* kvaccel-serve - command-line options (getopt_long), each checked with a clear message. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <accel_moe.h>

#include "cli.h"

static const char usage[] =
	"usage: kvaccel-serve --prompt TEXT [--prompt TEXT...] [options]\n"
	"       kvaccel-serve --listen ADDR:PORT [options]   (HTTP API, until SIGINT/SIGTERM)\n"
	"  --max-tokens N      tokens to generate per prompt (default 16)\n"
	"  --seed S            weights seed (no --weights) and sampling seed base (default 1)\n"
	"  --temperature T     0: greedy (default); else seeded sampling\n"
	"  --weights FILE      safetensors weights (F32) instead of the seed's\n"
	"  --save-weights FILE write the model's weights as safetensors\n"
	"  --layers N --d-model N --heads N --kv-heads N --ff N\n"
	"  --experts N --top-k N --shared-expert   the model's shape (default 2/64/4/4/128, dense)\n"
	"  --block-tokens N    tokens per KV block (default 16)\n"
	"  --blocks N          compute-tier KV blocks (default 64)\n"
	"  --swap-blocks N     swap-tier KV blocks (default 64)\n"
	"  --policy P          fcfs (default), priority, slo, fair or hybrid\n"
	"  --preempt swap|recompute|cost  how to preempt when blocks run out (default swap)\n"
	"  --victim last|least-computed   which running request goes first (default last)\n"
	"  --priority-threshold N  priority: how much more urgent a waiting request must be\n"
	"  --no-yield          no operator-level preemption of running prefills\n"
	"  --budget N          tokens per step (default 256)\n"
	"  --chunk N           longest prefill chunk (default: the budget)\n"
	"  --max-running N     most running requests (default 256)\n"
	"  --priority N        the priority of the --prompt options after it (lower: sooner)\n"
	"  --at-step N         the --prompt options after it arrive at step N (default 0)\n"
	"  --table             print a per-request table (TTFT, TPOT, preemptions, swapped bytes)\n"
	"  --check-alone       run each prompt alone afterwards and compare its digests\n"
	"  --kvacceld NAME     register with kvacceld and answer its pressure rounds\n"
	"  --kvacceld-priority N   the class registered with (default 0: released first)\n"
	"  --until-exit        with --kvacceld: after its prompts (none needed), take requests\n"
	"                      migrated in until kvacceld says exit (a drain) or SIGTERM\n"
	"  --xfer HOST:PORT    with --kvacceld: migrations to and from other nodes, listening\n"
	"                      there (UCX; the address kvacceld publishes in its cluster view)\n"
	"  --threads N         worker threads (default 1)\n"
	"  --memfd             memfd tiers: no kvaccel device needed\n"
	"  --device PATH       the kvaccel device (default: the first)\n"
	"  --quiet             no per-token digests\n"
	"  --moe-store D       the MoE experts in libaccel's expert store over D devices\n"
	"                      (NUMA nodes in turn), expert e on device e %% D at first\n"
	"  --moe-redundant R   redundant expert slots (experts + R must divide by D; default 0)\n"
	"  --moe-rebalance-every N  start a rebalance every N steps (default 0: never)\n"
	"  --moe-inflight K    cross-device expert copies in flight per device (default 1)\n"
	"  --moe-executor thread|step  rebalance work on the store's thread (default) or in\n"
	"                      bounded shares at each step's start\n"
	"  --moe-policy rotate|eplb|plan  each rebalance's placement: every expert to the next\n"
	"                      device (default), DeepSeek's EPLB or libaccel's cost-aware planner\n"
	"                      on the tokens routed since the last one (costs on stderr)\n"
	"  --moe-nodes N       the devices in N nodes for eplb and plan (N divides D; default 1)\n"
	"  --moe-from PEER     take the experts from engine PEER's store on this node (zero-copy,\n"
	"                      through kvacceld: needs --kvacceld) instead of the model's weights\n"
	"  --moe-gpus G        the experts in G GPUs' memory (device d on GPU d %% G; the cuda\n"
	"                      backend: the CPU model reads them, so the fake driver or GPU\n"
	"                      memory the CPU can address)\n"
	"  --step-log FILE     a CSV line per step (its batch's shape, its times) and per swap\n"
	"  --listen ADDR:PORT  serve HTTP on an IPv4 address (port 0: any, printed)\n"
	"  --max-concurrent N  requests in flight before 429 (default 64)\n"
	"  --max-body N        request body bytes before 413 (default 1048576)\n"
	"  --max-prompt N      prompt tokens before 413 (default 1024)\n"
	"  --max-tokens-limit N  the largest max_tokens a request may ask (default 1024)\n";

enum {
	O_PROMPT = 256, O_MAX_TOKENS, O_SEED, O_TEMP, O_WEIGHTS, O_SAVE, O_LAYERS, O_DMODEL,
	O_HEADS, O_KVHEADS, O_FF, O_EXPERTS, O_TOPK, O_SHARED, O_BT, O_BLOCKS, O_SWAP, O_BUDGET,
	O_CHUNK, O_MAXRUN, O_PREEMPT, O_THREADS, O_MEMFD, O_DEVICE, O_QUIET, O_HELP,
	O_LISTEN, O_MAXCONC, O_MAXBODY, O_MAXPROMPT, O_MAXTOKLIM, O_POLICY, O_VICTIM, O_PTHRESH,
	O_NOYIELD, O_PRIO, O_ATSTEP, O_TABLE, O_ALONE, O_KVD, O_KVDPRIO, O_UNTILEXIT, O_XFER, O_STEPLOG,
	O_MOE, O_MOERED, O_MOEEVERY, O_MOEK, O_MOEEXEC, O_MOEPOLICY, O_MOENODES, O_MOEFROM,
	O_MOEGPUS,
};

static const struct option longopts[] = {
	{ "prompt", required_argument, NULL, O_PROMPT },
	{ "max-tokens", required_argument, NULL, O_MAX_TOKENS },
	{ "seed", required_argument, NULL, O_SEED },
	{ "temperature", required_argument, NULL, O_TEMP },
	{ "weights", required_argument, NULL, O_WEIGHTS },
	{ "save-weights", required_argument, NULL, O_SAVE },
	{ "layers", required_argument, NULL, O_LAYERS },
	{ "d-model", required_argument, NULL, O_DMODEL },
	{ "heads", required_argument, NULL, O_HEADS },
	{ "kv-heads", required_argument, NULL, O_KVHEADS },
	{ "ff", required_argument, NULL, O_FF },
	{ "experts", required_argument, NULL, O_EXPERTS },
	{ "top-k", required_argument, NULL, O_TOPK },
	{ "shared-expert", no_argument, NULL, O_SHARED },
	{ "block-tokens", required_argument, NULL, O_BT },
	{ "blocks", required_argument, NULL, O_BLOCKS },
	{ "swap-blocks", required_argument, NULL, O_SWAP },
	{ "budget", required_argument, NULL, O_BUDGET },
	{ "chunk", required_argument, NULL, O_CHUNK },
	{ "max-running", required_argument, NULL, O_MAXRUN },
	{ "preempt", required_argument, NULL, O_PREEMPT },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "memfd", no_argument, NULL, O_MEMFD },
	{ "device", required_argument, NULL, O_DEVICE },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "help", no_argument, NULL, O_HELP },
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "max-concurrent", required_argument, NULL, O_MAXCONC },
	{ "max-body", required_argument, NULL, O_MAXBODY },
	{ "max-prompt", required_argument, NULL, O_MAXPROMPT },
	{ "max-tokens-limit", required_argument, NULL, O_MAXTOKLIM },
	{ "policy", required_argument, NULL, O_POLICY },
	{ "victim", required_argument, NULL, O_VICTIM },
	{ "priority-threshold", required_argument, NULL, O_PTHRESH },
	{ "no-yield", no_argument, NULL, O_NOYIELD },
	{ "priority", required_argument, NULL, O_PRIO },
	{ "at-step", required_argument, NULL, O_ATSTEP },
	{ "table", no_argument, NULL, O_TABLE },
	{ "check-alone", no_argument, NULL, O_ALONE },
	{ "kvacceld", required_argument, NULL, O_KVD },
	{ "kvacceld-priority", required_argument, NULL, O_KVDPRIO },
	{ "step-log", required_argument, NULL, O_STEPLOG },
	{ "until-exit", no_argument, NULL, O_UNTILEXIT },
	{ "xfer", required_argument, NULL, O_XFER },
	{ "moe-store", required_argument, NULL, O_MOE },
	{ "moe-redundant", required_argument, NULL, O_MOERED },
	{ "moe-rebalance-every", required_argument, NULL, O_MOEEVERY },
	{ "moe-inflight", required_argument, NULL, O_MOEK },
	{ "moe-executor", required_argument, NULL, O_MOEEXEC },
	{ "moe-policy", required_argument, NULL, O_MOEPOLICY },
	{ "moe-nodes", required_argument, NULL, O_MOENODES },
	{ "moe-from", required_argument, NULL, O_MOEFROM },
	{ "moe-gpus", required_argument, NULL, O_MOEGPUS },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "kvaccel-serve: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n(kvaccel-serve --help lists the options)\n");
	return -EINVAL;
}

/* A count in [lo, hi]. */
static int num(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (!*s || *s == '-' || *end || errno)
		return bad("--%s: '%s' is not a number", opt, s);
	if (*v < lo || *v > hi) {
		fprintf(stderr, "kvaccel-serve: --%s: %s is out of range (%llu to %llu)\n", opt, s,
			(unsigned long long)lo, (unsigned long long)hi);
		return -EINVAL;
	}
	return 0;
}

static int u32(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint32_t *v)
{
	uint64_t x;
	int ret = num(opt, s, lo, hi, &x);

	if (!ret)
		*v = (uint32_t)x;
	return ret;
}

/* ADDR:PORT, ADDR numeric IPv4. */
static int listen_opt(struct serve_cli *c, const char *s)
{
	const char *colon = strrchr(s, ':');
	struct in_addr a;
	uint64_t port;
	size_t n;

	if (!colon || colon == s || (n = (size_t)(colon - s)) >= sizeof(c->listen_addr))
		return bad("--listen: '%s' is not ADDR:PORT (e.g. 127.0.0.1:8000)%s", s, "");
	memcpy(c->listen_addr, s, n);
	c->listen_addr[n] = 0;
	if (inet_pton(AF_INET, c->listen_addr, &a) != 1)
		return bad("--listen: '%s' is not an IPv4 address%s", c->listen_addr, "");
	if (num("listen", colon + 1, 0, 65535, &port))
		return -EINVAL;
	c->listen_port = (uint16_t)port;
	c->listen = true;
	return 0;
}

int serve_cli_parse(struct serve_cli *c, int argc, char **argv)
{
	char err[160], *end;
	int o, ret = 0;

	memset(c, 0, sizeof(*c));
	serve_config_default(&c->cfg);
	c->max_tokens = 16;
	c->seed = 1;
	c->threads = 1;
	c->sched.preempt = ACCEL_SCHED_PREEMPT_SWAP;
	c->sched.yields = true;
	opterr = 0;
	optind = 1;
	while (!ret && (o = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		const char *name = optind > 1 ? argv[optind - 1] : "";

		switch (o) {
		case O_PROMPT:
			if (c->nr_prompts == SERVE_CLI_PROMPTS)
				return bad("more than %s prompts", "256", "");
			if (!*optarg)
				return bad("--prompt: an empty prompt%s", "", "");
			c->prio[c->nr_prompts] = c->cur_prio;
			c->at_step[c->nr_prompts] = c->cur_step;
			c->prompt[c->nr_prompts++] = optarg;
			break;
		case O_PRIO: {
			long v = strtol(optarg, &end, 0);

			if (!*optarg || *end || v < -1000000 || v > 1000000)
				return bad("--priority: '%s' is not a number from -1000000 to "
					   "1000000%s", optarg, "");
			c->cur_prio = (int32_t)v;
			break;
		}
		case O_ATSTEP:
			ret = u32("at-step", optarg, 0, 1u << 30, &c->cur_step);
			break;
		case O_POLICY: {
			uint32_t p;

			for (p = 0; p < ACCEL_SCHED_NR_POLICIES; p++)
				if (!strcmp(optarg, accel_sched_policy_name(p)))
					break;
			if (p == ACCEL_SCHED_NR_POLICIES)
				return bad("--policy: '%s' is none of fcfs, priority, slo, fair, "
					   "hybrid%s", optarg, "");
			c->sched.policy = p;
			break;
		}
		case O_VICTIM:
			if (!strcmp(optarg, "last"))
				c->sched.victim = ACCEL_SCHED_VICTIM_LAST;
			else if (!strcmp(optarg, "least-computed"))
				c->sched.victim = ACCEL_SCHED_VICTIM_LEAST_COMPUTED;
			else
				return bad("--victim: '%s' is neither last nor least-computed%s",
					   optarg, "");
			break;
		case O_PTHRESH:
			ret = u32("priority-threshold", optarg, 0, 1u << 30,
				  &c->sched.priority_threshold);
			break;
		case O_NOYIELD:
			c->sched.yields = false;
			break;
		case O_TABLE:
			c->table = true;
			break;
		case O_ALONE:
			c->check_alone = true;
			break;
		case O_KVD:
			if (!*optarg || strlen(optarg) > 31)
				return bad("--kvacceld: '%s' is not a name of 1 to 31 characters%s",
					   optarg, "");
			c->kvacceld = optarg;
			break;
		case O_KVDPRIO:
			ret = u32("kvacceld-priority", optarg, 0, ACCEL_ENGINE_PRIORITY_MAX,
				  &c->kvacceld_prio);
			break;
		case O_MAX_TOKENS:
			ret = u32("max-tokens", optarg, 1, 1u << 20, &c->max_tokens);
			break;
		case O_SEED:
			ret = num("seed", optarg, 0, UINT64_MAX, &c->seed);
			break;
		case O_TEMP:
			c->temperature = strtof(optarg, &end);
			if (!*optarg || *end || !isfinite(c->temperature) || c->temperature < 0)
				return bad("--temperature: '%s' is not a number of at least 0%s",
					   optarg, "");
			break;
		case O_WEIGHTS:
			c->weights = optarg;
			break;
		case O_SAVE:
			c->save_weights = optarg;
			break;
		case O_LAYERS:
			ret = u32("layers", optarg, 1, 64, &c->cfg.layers);
			break;
		case O_DMODEL:
			ret = u32("d-model", optarg, 2, 4096, &c->cfg.d_model);
			break;
		case O_HEADS:
			ret = u32("heads", optarg, 1, 4096, &c->cfg.heads);
			break;
		case O_KVHEADS:
			ret = u32("kv-heads", optarg, 1, 4096, &c->cfg.kv_heads);
			break;
		case O_FF:
			ret = u32("ff", optarg, 1, 65536, &c->cfg.ff);
			break;
		case O_EXPERTS:
			ret = u32("experts", optarg, 0, SERVE_MAX_EXPERTS, &c->cfg.experts);
			break;
		case O_TOPK:
			ret = u32("top-k", optarg, 1, SERVE_MAX_EXPERTS, &c->cfg.top_k);
			break;
		case O_SHARED:
			c->cfg.shared_expert = 1;
			break;
		case O_BT:
			ret = u32("block-tokens", optarg, 1, 4096, &c->block_tokens);
			break;
		case O_BLOCKS:
			ret = u32("blocks", optarg, 1, 1u << 20, &c->blocks);
			break;
		case O_SWAP:
			ret = u32("swap-blocks", optarg, 1, 1u << 20, &c->swap_blocks);
			break;
		case O_BUDGET:
			ret = u32("budget", optarg, 1, 1u << 20, &c->sched.max_tokens);
			break;
		case O_CHUNK:
			ret = u32("chunk", optarg, 1, 1u << 20, &c->sched.chunk_tokens);
			break;
		case O_MAXRUN:
			ret = u32("max-running", optarg, 1, 1u << 20, &c->sched.max_seqs);
			break;
		case O_PREEMPT:
			if (!strcmp(optarg, "swap"))
				c->sched.preempt = ACCEL_SCHED_PREEMPT_SWAP;
			else if (!strcmp(optarg, "recompute"))
				c->sched.preempt = ACCEL_SCHED_PREEMPT_RECOMPUTE;
			else if (!strcmp(optarg, "cost"))
				c->sched.preempt = ACCEL_SCHED_PREEMPT_COST;
			else
				return bad("--preempt: '%s' is none of swap, recompute, cost%s",
					   optarg, "");
			break;
		case O_THREADS:
			ret = u32("threads", optarg, 1, 256, &c->threads);
			break;
		case O_MEMFD:
			c->memfd = true;
			break;
		case O_DEVICE:
			c->device = optarg;
			break;
		case O_QUIET:
			c->quiet = true;
			break;
		case O_UNTILEXIT:
			c->until_exit = true;
			break;
		case O_XFER:
			if (!strchr(optarg, ':') || strlen(optarg) >= 64)
				return bad("--xfer: '%s' is not HOST:PORT%s", optarg, "");
			c->xfer = optarg;
			break;
		case O_STEPLOG:
			if (!*optarg)
				return bad("--step-log: an empty file name%s%s", "", "");
			c->step_log = optarg;
			break;
		case O_MOE:
			ret = u32("moe-store", optarg, 1, ACCEL_MOE_STORE_MAX_DEVICES, &c->moe.devices);
			c->moe_on = true;
			break;
		case O_MOERED:
			ret = u32("moe-redundant", optarg, 0, 4096, &c->moe.redundant);
			break;
		case O_MOEEVERY:
			ret = u32("moe-rebalance-every", optarg, 0, 1u << 30, &c->moe.rebalance_every);
			break;
		case O_MOEK:
			ret = u32("moe-inflight", optarg, 1, 1024, &c->moe.max_inflight);
			break;
		case O_MOEEXEC:
			if (!strcmp(optarg, "thread") || !strcmp(optarg, "step"))
				c->moe.thread = !strcmp(optarg, "thread");
			else
				return bad("--moe-executor: '%s' is neither thread nor step%s",
					   optarg, "");
			c->moe_exec_set = true;
			break;
		case O_MOEPOLICY:
			if (serve_moe_policy_parse(optarg, &c->moe_planner.kind))
				return bad("--moe-policy: '%s' is none of rotate, eplb, plan%s",
					   optarg, "");
			c->moe_policy_set = true;
			break;
		case O_MOEFROM:
			c->moe_from = optarg;
			break;
		case O_MOEGPUS:
			ret = u32("moe-gpus", optarg, 1, ACCEL_MOE_STORE_MAX_DEVICES, &c->moe.gpus);
			break;
		case O_MOENODES:
			ret = u32("moe-nodes", optarg, 1, ACCEL_MOE_STORE_MAX_DEVICES,
				  &c->moe_planner.nodes);
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 1;
		case O_LISTEN:
			ret = listen_opt(c, optarg);
			break;
		case O_MAXCONC:
			ret = u32("max-concurrent", optarg, 1, 4096, &c->max_concurrent);
			break;
		case O_MAXBODY:
			ret = u32("max-body", optarg, 64, 1u << 30, &c->max_body);
			break;
		case O_MAXPROMPT:
			ret = u32("max-prompt", optarg, 1, 1u << 20, &c->max_prompt);
			break;
		case O_MAXTOKLIM:
			ret = u32("max-tokens-limit", optarg, 1, 1u << 20, &c->max_tokens_limit);
			break;
		case ':':
			return bad("%s needs a value%s", name, "");
		default:
			return bad("unknown option '%s'%s", name, "");
		}
	}
	if (ret)
		return ret;
	if (optind < argc)
		return bad("unexpected argument '%s'%s", argv[optind], "");
	if (c->xfer && (!c->kvacceld || c->listen || c->memfd))
		return bad("--xfer needs --kvacceld and region tiers, not --listen%s%s", "", "");
	if (c->until_exit && (!c->kvacceld || c->listen || c->memfd))
		return bad("--until-exit needs --kvacceld and region tiers, not --listen%s%s", "",
			   "");
	if (!c->nr_prompts && !c->save_weights && !c->listen && !c->until_exit)
		return bad("no --prompt given (nor --listen)%s%s", "", "");
	if (c->nr_prompts && c->listen)
		return bad("--prompt and --listen exclude each other%s%s", "", "");
	if (c->listen && (c->table || c->check_alone))
		return bad("--table and --check-alone are for --prompt runs%s%s", "", "");
	if (c->sched.chunk_tokens && c->sched.max_tokens &&
	    c->sched.chunk_tokens > c->sched.max_tokens)
		return bad("--chunk is over --budget%s%s", "", "");
	if (c->memfd && c->device)
		return bad("--memfd and --device exclude each other%s%s", "", "");
	if (!c->moe_on && (c->moe.redundant || c->moe.rebalance_every || c->moe.max_inflight ||
			   c->moe_exec_set || c->moe_policy_set || c->moe_planner.nodes ||
			   c->moe.gpus))
		return bad("--moe-redundant, --moe-rebalance-every, --moe-inflight, "
			   "--moe-executor, --moe-gpus, --moe-policy and --moe-nodes need "
			   "--moe-store%s%s", "", "");
	if (c->moe.gpus && c->moe_from)
		return bad("--moe-gpus and --moe-from exclude each other (the GPUs' copies are "
			   "not shared)%s%s", "", "");
	if (c->moe_planner.nodes && c->moe_planner.kind == SERVE_MOE_ROTATE)
		return bad("--moe-nodes is for --moe-policy eplb or plan%s%s", "", "");
	if (c->moe_planner.nodes && c->moe.devices % c->moe_planner.nodes)
		return bad("--moe-nodes must divide the --moe-store devices%s%s", "", "");
	if (c->moe_on) {
		c->moe_planner.log = stderr;
		serve_moe_policy_use(&c->moe_planner, &c->moe);
	}
	if (c->moe_on && !c->moe_exec_set)
		c->moe.thread = true;
	if (c->moe_from && (!c->moe_on || !c->kvacceld))
		return bad("--moe-from needs --moe-store and --kvacceld%s%s", "", "");
	if (c->moe_from && c->save_weights)
		return bad("--save-weights needs the experts' weights: not with --moe-from%s%s", "",
			   "");
	if (c->moe_from && (!*c->moe_from || strlen(c->moe_from) > 31))
		return bad("--moe-from: '%s' is not an engine name (1 to 31 characters)%s",
			   c->moe_from, "");
	if (c->moe_on && (c->memfd || c->listen))
		return bad("--moe-store needs region tiers (not --memfd) and --prompt runs%s%s", "",
			   "");
	if (c->moe_on && !c->weights && !c->cfg.experts)
		return bad("--moe-store needs an MoE model (--experts)%s%s", "", "");
	if (c->moe_on && !c->weights && (c->cfg.experts + c->moe.redundant) % c->moe.devices)
		return bad("--moe-store: experts + --moe-redundant must divide by the devices%s%s",
			   "", "");
	if (!c->weights && serve_config_check(&c->cfg, err, sizeof(err)))
		return bad("the model's shape: %s%s", err, "");
	return 0;
}
