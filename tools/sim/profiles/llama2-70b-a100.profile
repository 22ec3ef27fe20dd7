# SPDX-License-Identifier: MIT
# kvaccel-sim profile: Llama-2-70B (bf16, GQA with 8 KV heads) on four A100-SXM4-80GB, TP 4.
# Format: Documentation/sim.rst, "Profiles" (key = value, # comments).
#
# Why TP 4: the weights (68.98e9 parameters x 2 bytes = 128.5 GiB) need more than
# one 80 GB GPU, and TP 2 would leave 72 - 64.2 - 4 = 3.8 GiB a GPU for the KV cache;
# TP 4 leaves about 35 GiB a GPU. TP 8 buys about 1.8x the speed (Vidur's Llama-2-70B tables)
# for twice the GPUs, and Vidur's Llama-3-70B table is TP 4 only: all four 70B profiles are
# TP 4, so they compare alike.
#
# Everything below is per GPU: each holds 1/4 of every layer's weights and of every token's KV
# (profile key tp) and the four run each step in lock step.
#
# Sources and derivation:
# - Linear part (measured): Vidur's operator table, microsoft/vidur
#   data/profiling/compute/a100/meta-llama/Llama-2-70b-hf/mlp.csv at TP 4 (MIT licence), fitted
#   as max(F, b + S * n) in the project's notes (../shared/latency-anchors.md): floor F = 25.6
#   ms, slope S = 155.7 us/token, 89 ms at 512 tokens, so b = 89 - 512 x 0.1557 = 9.28 ms.
#   These are one GPU's operators on its quarter of the weights: compute per GPU, measured.
# - All-reduce (derived): 2 a layer (after attention and after the MLP), 160 a step, not in
#   Vidur's compute tables. Each costs 30 us (the low end of Vidur's measured 0.03-0.06 ms a
#   call below 1 MB, network/a100_dgx/all_reduce.csv, in latency-anchors.md) plus a ring's
#   2 x (4 - 1) / 4 = 1.5 times the message (8192 x 2 bytes a token) over NVLink3 at
#   200 GB/s (two thirds of the link's one-way rate, an assumption: 8 and 32 MB then take
#   0.09 and 0.27 ms, inside or near Vidur's measured 0.1-0.4 ms at 8-32 MB). So 160 x 30 us =
#   4.8 ms a step and 160 x 24576 / 200e9 s = 19.66 us a token: floor = F + 4.8 = 30.40 ms, fixed
#   part = b + 4.8 = 14.08 ms, per token S + 19.66 = 175.4 us. Where the floor holds, the
#   all-reduce's per-token part is left out (under 2.1 ms, below the floor's knee).
# - Attention, roofline (derived): decode reads each context token's KV, 2 x 8 heads x 128 x
#   2 bytes x 80 layers = 320 KiB, 80 KiB a GPU, at 70 % of the A100's 2.0 TB/s:
#   81920 / 1.4e12 s = 0.0585 us per context token. Prefill: causal attention
#   2 x n^2 x (8192 / 4) x 80 FLOPs a GPU at 50 % of 312 TFLOP/s dense: 2.1 ms per
#   (1k tokens)^2, 0.0021 us per token^2.
# - Memory, a GPU: 80 GiB x 0.9 - 32.12 GiB of weights (68.98e9 x 2 bytes / 4) - 4 GiB of
#   activations and CUDA graphs (an assumption): 29392 blocks of 16 tokens (1.25 MiB each).
# - Host link: pcie4 (25 GB/s, 20 us: Documentation/sim.rst, "Links"), one x16 link a GPU, each
#   GPU swapping its own quarter of the KV at once; host_mem_gib (128) is one GPU's share of
#   the pinned host memory.
# - Link between instances: 100gbe (11 GB/s, 30 us), prefill and decode instances on different nodes
#   (two TP 4 instances fill an 8-GPU node; DistServe places a large model's phases across
#   nodes), one NIC a GPU, each GPU sending its own quarter of the KV.
name = llama2-70b-a100
model = Llama-2-70B
gpu = A100-SXM4-80GB
tp = 4
layers = 80
kv_heads = 8
head_dim = 128
dtype_bytes = 2
block_tokens = 16
gpu_mem_gib = 80
mem_util = 0.9
weights_gib = 32.12
reserve_gib = 4
host_mem_gib = 128
swap_link = pcie4
net_link = 100gbe
step_floor_us = 30400
# The floor is the linear part's (the weights' read at n <= 32): attention adds to it.
floor_linear = 1
step_base_us = 14080
prefill_token_us = 175.4
decode_token_us = 175.4
context_token_us = 0.0585
prefill_quad_us = 0.0021
