/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - a latency profile: a (model, GPU, tensor parallelism) as the simulator sees it,
 * read from a key = value file (tools/sim/profiles/, Documentation/sim.rst, "Profiles").
 *
 *   step_us = max(step_floor_us, step_base_us + prefill_token_us * P + decode_token_us * D
 *                 + context_token_us * C + prefill_quad_us * Q)
 *
 * or, with floor_linear = 1, the floor bounding the linear part alone (the weights' read a
 * small batch waits for), the attention added to it:
 *
 *   step_us = max(step_floor_us, step_base_us + prefill_token_us * P + decode_token_us * D)
 *             + context_token_us * C + prefill_quad_us * Q
 *
 * P: prefill tokens of the step; D: decode runs (one token each); C: the context the decodes
 * read (sum of start + 1 over decode runs); Q: sum over prefill runs of n * (2 * start + n)
 * (n the chunk's tokens: n^2 for a whole prompt, DistServe's sum of len^2; twice the causal
 * query-key pairs of a chunk after start tokens).
 *
 * KV bytes per token = 2 (K and V) * layers * kv_heads * head_dim * dtype_bytes / tp; device
 * blocks from the GPU memory left for the KV cache (gpu_mem_gib * mem_util - weights_gib -
 * reserve_gib), host blocks from host_mem_gib; a swap of B blocks takes
 * swap_transfer_us + B * block bytes / swap_gbps, a hand-off between instances
 * net_transfer_us + B * block bytes / net_gbps.
 *
 * Links: swap_link and net_link name a preset of sim_links[] (pcie4, pcie5, nvlink3, nvlink4,
 * 100gbe, 400gbe) that sets the link's GB/s and per-transfer cost; swap_gbps, swap_transfer_us,
 * net_gbps and net_transfer_us given in the same file override the preset's figure.
 */
#ifndef SIM_PROFILE_H
#define SIM_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#define SIM_NAME_MAX 64

/* A link preset: usable GB/s (1e9 bytes) and a fixed cost per transfer. */
struct sim_link {
	const char *name;
	double gbps, transfer_us;
	const char *what;
};

extern const struct sim_link sim_links[];
extern const unsigned int sim_nr_links;

/* The preset named @name, NULL if none. */
const struct sim_link *sim_link_find(const char *name);

struct sim_profile {
	char name[SIM_NAME_MAX], model[SIM_NAME_MAX], gpu[SIM_NAME_MAX];
	/* The presets named by swap_link and net_link, "" when none. */
	char swap_link[SIM_NAME_MAX], net_link[SIM_NAME_MAX];
	/* Model shape. */
	double layers, kv_heads, head_dim, dtype_bytes, tp;
	/* Memory. */
	double block_tokens;
	double gpu_mem_gib, mem_util, weights_gib, reserve_gib, host_mem_gib;
	/* Link to the host tier: GB/s (1e9 bytes) and a fixed cost per transfer. */
	double swap_gbps, swap_transfer_us;
	/*
	 * Link between instances (prefill/decode hand-off, migration): GB/s and a fixed cost per
	 * transfer; net_gbps 0 when the profile names none.
	 */
	double net_gbps, net_transfer_us;
	/* Step time model, us. */
	double step_floor_us, step_base_us, prefill_token_us, decode_token_us, context_token_us;
	double prefill_quad_us;
	/* 1: the floor bounds the linear part only (default 0: the whole step). */
	double floor_linear;
	/* Derived by sim_profile_derive(). */
	uint64_t kv_bytes_per_token, block_bytes;
	uint32_t gpu_blocks, host_blocks;
};

/* One step's shape, the model's inputs. */
struct sim_batch {
	uint64_t prefill_tokens, decode_tokens, context_tokens;
	double quad;		/* sum of n * (2 * start + n) over prefill runs */
};

/*
 * Read a profile; -1 with "FILE:LINE: what" (or "FILE: what") in err: an unknown key, a value
 * that is not a number or out of range, a key given twice, a required key missing.
 */
int sim_profile_load(const char *path, struct sim_profile *p, char *err, size_t errlen);
/* Fill the derived fields; -1 with err if the KV cache gets no block. */
int sim_profile_derive(struct sim_profile *p, char *err, size_t errlen);
/* A step's duration in ns (at least 1). */
uint64_t sim_step_ns(const struct sim_profile *p, const struct sim_batch *b);
/* A transfer of @blocks blocks over the host link, ns. */
uint64_t sim_swap_ns(const struct sim_profile *p, uint64_t blocks);
/* A transfer of @blocks blocks between instances, ns (net_gbps must be set). */
uint64_t sim_net_ns(const struct sim_profile *p, uint64_t blocks);

#endif
