# SPDX-License-Identifier: MIT
# kvaccel-sim profile: Llama-2-7B (fp16, MHA) on one H100-SXM5-80GB, TP 1.
# Format: Documentation/sim.rst, "Profiles" (key = value, # comments).
#
# Sources and derivation:
# - Linear part (measured): Vidur's operator table, microsoft/vidur
#   data/profiling/compute/h100/meta-llama/Llama-2-7b-hf/mlp.csv (MIT licence), fitted as
#   max(F, b + S * n) in the project's notes (../shared/latency-anchors.md): floor F = 5.6 ms,
#   slope S = 20.2 us/token, 12 ms at 512 tokens, so b = 12 - 512 x 0.0202 = 1.66 ms.
# - Attention, roofline (derived; not in Vidur's public tables): decode reads each context
#   token's KV (2 x 32 heads x 128 x 2 bytes x 32 layers = 512 KiB) at 70 % of the H100's
#   3.35 TB/s: 524288 / 2.345e12 s = 0.224 us per context token. Prefill: causal attention
#   2 x n^2 x 4096 x 32 FLOPs at 50 % of about 990 TFLOP/s dense fp16: 0.53 ms per
#   (1k tokens)^2, 0.53e-3 us per token^2.
# - Memory: 80 GiB x 0.9 - 12.55 GiB of weights (6.74e9 x 2 bytes) - 4 GiB of activations and
#   CUDA graphs (an assumption): 7097 blocks of 16 tokens.
# - Host link: pcie5 (55 GB/s, 20 us: Documentation/sim.rst, "Links"); 256 GiB of pinned host
#   memory for the swap tier, as llama3-8b-h100.
# - Link between instances: nvlink4 (405 GB/s, 10 us), prefill and decode on one DGX H100 node.
name = llama2-7b-h100
model = Llama-2-7B
gpu = H100-SXM5-80GB
tp = 1
layers = 32
kv_heads = 32
head_dim = 128
dtype_bytes = 2
block_tokens = 16
gpu_mem_gib = 80
mem_util = 0.9
weights_gib = 12.55
reserve_gib = 4
host_mem_gib = 256
swap_link = pcie5
net_link = nvlink4
step_floor_us = 5600
# The floor is the linear part's (the weights' read at n <= 32): attention adds to it.
floor_linear = 1
step_base_us = 1660
prefill_token_us = 20.2
decode_token_us = 20.2
context_token_us = 0.224
prefill_quad_us = 0.00053
