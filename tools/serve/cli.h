/* SPDX-License-Identifier: MIT */
/* kvaccel-serve - the command line, parsed and checked. */
#ifndef SERVE_CLI_H
#define SERVE_CLI_H

#include "driver.h"
#include "engine.h"
#include "moe.h"
#include "moe_policy.h"
#include "stack.h"

#define SERVE_CLI_PROMPTS	256

struct serve_cli {
	struct serve_config cfg;
	const char *prompt[SERVE_CLI_PROMPTS];
	/* Per prompt: --priority and --at-step in force when it was given. */
	int32_t prio[SERVE_CLI_PROMPTS];
	uint32_t at_step[SERVE_CLI_PROMPTS];
	int32_t cur_prio;
	uint32_t cur_step;
	uint32_t nr_prompts, max_tokens, threads, max_ctx;
	uint64_t seed;
	float temperature;
	const char *weights, *save_weights, *device;
	/* --step-log FILE: a CSV line per step and per swap (steplog.h). */
	const char *step_log;
	uint32_t block_tokens, blocks, swap_blocks;
	bool memfd, quiet, table, check_alone;
	/* libaccel's scheduler: policy, preemption, budget (engine fields unset). */
	struct serve_driver_opts sched;
	/* --kvacceld NAME: answer the node daemon's pressure rounds (class --kvacceld-priority). */
	const char *kvacceld;
	uint32_t kvacceld_prio;
	/* --until-exit: serve migrations in until kvacceld says exit (or SIGTERM). */
	bool until_exit;
	/* --xfer HOST:PORT: take part in migrations to and from other nodes (UCX). */
	const char *xfer;
	/* --listen ADDR:PORT and the HTTP server's limits (0: its defaults). */
	char listen_addr[64];
	uint16_t listen_port;
	bool listen;
	uint32_t max_concurrent, max_body, max_prompt, max_tokens_limit;
	/* --moe-store D and its options: the experts in libaccel's expert store. */
	struct serve_moe_opts moe;
	bool moe_on, moe_exec_set;
	/* --moe-policy and --moe-nodes: the rebalances' placements (moe.policy points here). */
	struct serve_moe_planner moe_planner;
	bool moe_policy_set;
	/* --moe-from PEER: the experts from engine PEER's store (through kvacceld). */
	const char *moe_from;
};

/** 0, or -EINVAL after printing why to stderr; 1: --help printed. */
int serve_cli_parse(struct serve_cli *c, int argc, char **argv);

#endif /* SERVE_CLI_H */
