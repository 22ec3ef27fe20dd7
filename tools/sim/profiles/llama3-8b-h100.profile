# SPDX-License-Identifier: MIT
# kvaccel-sim profile: Llama-3-8B (bf16, GQA with 8 KV heads) on one H100-SXM5-80GB, TP 1.
# Format: Documentation/sim.rst, "Profiles" (key = value, # comments).
#
# Sources and derivation:
# - Linear part: Vidur's measured operator tables (microsoft/vidur, MIT licence) have
#   Llama-2-7B on H100 (data/profiling/compute/h100/meta-llama/Llama-2-7b-hf/mlp.csv: floor
#   5.6 ms, 20.2 us/token) and both Llama-2-7B and Meta-Llama-3-8B on A100
#   (data/profiling/compute/a100/...: floors 9.2 and 10.0 ms, slopes 64.2 and 66.1 us/token),
#   as fitted in the project's notes (../shared/latency-anchors.md). Llama-3-8B on H100 is the
#   H100 Llama-2-7B fit scaled by the A100 ratio of the two models: floor 5.6 x 10.0 / 9.2 =
#   6.09 ms, slope 20.2 x 66.1 / 64.2 = 20.8 us/token, and b from the 512-token points (H100
#   Llama-2-7B 12 ms x A100 35 / 33 = 12.7 ms): 12.7 - 512 x 0.0208 = 2.08 ms.
#   Cross-check: BLIS (inference-sim) fits Llama-3.1-8B on H100, vLLM v0.8.4, as 5.75 ms +
#   17.25 us per prefill token + 6.00 us per decode token (the same notes); this profile is a
#   little slower per prefill token.
# - Attention, roofline (not in Vidur's public tables): decode reads each context token's KV
#   (2 x 8 heads x 128 x 2 bytes x 32 layers = 128 KiB) at 70 % of the H100's 3.35 TB/s:
#   131072 / 2.345e12 s = 0.0559 us per context token. Prefill: 2 x n^2 x 4096 x 32 FLOPs at
#   50 % of about 990 TFLOP/s dense bf16: 0.53 ms per (1k tokens)^2, 0.53e-3 us per token^2.
# - Memory: 80 GiB x 0.9 - 14.96 GiB of weights (8.03e9 x 2 bytes) - 4 GiB of activations and
#   CUDA graphs (an assumption).
# - Host link: the pcie5 preset (PCIe Gen5 x16, 55 GB/s usable, 20 us per transfer:
#   Documentation/sim.rst, "Links"); 256 GiB of pinned host memory for the swap tier.
# - Link between instances: nvlink4 (405 GB/s, 10 us), prefill and decode instances on GPUs of
#   one DGX H100 node.
name = llama3-8b-h100
model = Llama-3-8B
gpu = H100-SXM5-80GB
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
host_mem_gib = 256
swap_link = pcie5
net_link = nvlink4
step_floor_us = 6090
# The floor is the linear part's (the weights' read at n <= 32): attention adds to it.
floor_linear = 1
step_base_us = 2080
prefill_token_us = 20.8
decode_token_us = 20.8
context_token_us = 0.0559
prefill_quad_us = 0.00053
