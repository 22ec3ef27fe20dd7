# SPDX-License-Identifier: MIT
# kvaccel-sim profile: Llama-2-7B (fp16, MHA) on one A100-SXM4-80GB, TP 1.
# Format: Documentation/sim.rst, "Profiles" (key = value, # comments).
#
# Sources and derivation:
# - Linear part of a step (the nine non-attention operators x 32 layers) from Vidur's measured
#   operator table, microsoft/vidur data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv
#   (MIT licence), fitted as max(F, b + S * n), n the tokens of the batch: floor F = 9.2 ms
#   (n <= 32), slope S = 64.2 us/token (n >= 512), 33 ms at 512 tokens, so b = 33 - 512 x 0.0642
#   = 0.13 ms. The fit is from the project's notes on published figures
#   (../shared/latency-anchors.md); prefill and decode tokens cost the same in the linear part.
# - Attention is not in Vidur's public tables: derived here with the roofline formula.
#   Decode: each context token's KV (2 x 32 heads x 128 x 2 bytes x 32 layers = 512 KiB) read
#   from HBM at 70 % of the A100's 2.0 TB/s: 524288 / 1.4e12 s = 0.374 us per context token
#   (0.367 before: 512e3 bytes, not 512 KiB, the slip of latency-anchors.md's 0.367).
#   Prefill: causal attention 2 x n^2 x hidden (4096) x layers (32) FLOPs at 50 % of the A100's
#   312 TFLOP/s dense fp16: 1.68 ms per (1k tokens)^2, 1.68e-3 us per token^2.
# - Memory: 80 GiB x 0.9 (vLLM's gpu_memory_utilization default) - 12.55 GiB of weights
#   (6.74e9 parameters x 2 bytes) - 4 GiB of activations and CUDA graphs (an assumption).
# - Host link: the pcie4 preset (PCIe Gen4 x16, 25 GB/s usable, 20 us per transfer:
#   Documentation/sim.rst, "Links"); 128 GiB of pinned host memory for the swap tier.
# - Link between instances: nvlink3 (270 GB/s, 10 us), prefill and decode instances on GPUs of
#   one DGX A100 node (a 7B model runs one instance per GPU).
name = llama2-7b-a100
model = Llama-2-7B
gpu = A100-SXM4-80GB
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
host_mem_gib = 128
swap_link = pcie4
net_link = nvlink3
step_floor_us = 9200
# The floor is the linear part's (the weights' read at n <= 32): attention adds to it.
floor_linear = 1
step_base_us = 130
prefill_token_us = 64.2
decode_token_us = 64.2
context_token_us = 0.374
prefill_quad_us = 0.00168
