# SPDX-License-Identifier: MIT
# kvaccel-sim profile: Llama-3-8B (bf16, GQA with 8 KV heads) on one A100-SXM4-80GB, TP 1.
# Format: Documentation/sim.rst, "Profiles" (key = value, # comments).
#
# Sources and derivation:
# - Linear part (measured): Vidur's operator table, microsoft/vidur
#   data/profiling/compute/a100/meta-llama/Meta-Llama-3-8B/mlp.csv (MIT licence), fitted as
#   max(F, b + S * n) in the project's notes (../shared/latency-anchors.md): floor F = 10.0 ms,
#   slope S = 66.1 us/token, 35 ms at 512 tokens, so b = 35 - 512 x 0.0661 = 1.16 ms.
#   Cross-check: BLIS (inference-sim) fits Llama-3.1-8B on A100, vLLM v0.8.4, as 16.4 ms +
#   47.8 us per prefill token + 18.2 us per decode token (the same notes): a 512-token prefill
#   40.9 ms there, 35.4 ms here.
# - Attention, roofline (derived): decode reads each context token's KV (2 x 8 heads x 128 x
#   2 bytes x 32 layers = 128 KiB) at 70 % of the A100's 2.0 TB/s: 131072 / 1.4e12 s =
#   0.0936 us per context token (latency-anchors.md's 0.092 takes 128e3 bytes). Prefill: the
#   query heads set the FLOPs (GQA shares only K and V): 2 x n^2 x 4096 x 32 at 50 % of
#   312 TFLOP/s dense bf16: 1.68 ms per (1k tokens)^2, 1.68e-3 us per token^2.
# - Memory: 80 GiB x 0.9 - 14.96 GiB of weights (8.03e9 x 2 bytes) - 4 GiB of activations and
#   CUDA graphs (an assumption): 27156 blocks of 16 tokens.
# - Host link: pcie4 (25 GB/s, 20 us: Documentation/sim.rst, "Links"); 128 GiB of pinned host
#   memory for the swap tier, as llama2-7b-a100.
# - Link between instances: nvlink3 (270 GB/s, 10 us), prefill and decode on one DGX A100 node.
name = llama3-8b-a100
model = Llama-3-8B
gpu = A100-SXM4-80GB
tp = 1
layers = 32
kv_heads = 8
head_dim = 128
dtype_bytes = 2
block_tokens = 16
gpu_mem_gib = 80
mem_util = 0.9
weights_gib = 14.96
reserve_gib = 4
host_mem_gib = 128
swap_link = pcie4
net_link = nvlink3
step_floor_us = 10000
# The floor is the linear part's (the weights' read at n <= 32): attention adds to it.
floor_linear = 1
step_base_us = 1160
prefill_token_us = 66.1
decode_token_us = 66.1
context_token_us = 0.0936
prefill_quad_us = 0.00168
