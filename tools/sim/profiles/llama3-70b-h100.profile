# SPDX-License-Identifier: MIT
# kvaccel-sim profile: Llama-3-70B (bf16, GQA with 8 KV heads) on four H100-SXM5-80GB, TP 4.
# Format: Documentation/sim.rst, "Profiles" (key = value, # comments).
#
# Why TP 4: the weights (70.55e9 parameters x 2 bytes = 131.4 GiB) need more than
# one 80 GB GPU, and TP 2 would leave 72 - 65.7 - 4 = 2.3 GiB a GPU for the KV cache;
# TP 4 leaves about 35 GiB a GPU. TP 8 buys about 1.8x the speed (Vidur's Llama-2-70B tables)
# for twice the GPUs, and Vidur's Llama-3-70B table is TP 4 only: all four 70B profiles are
# TP 4, so they compare alike.
#
# Everything below is per GPU: each holds 1/4 of every layer's weights and of every token's KV
# (profile key tp) and the four run each step in lock step.
#
# Sources and derivation:
# - Linear part (derived from measured): Vidur has no Llama-3-70B on H100; its H100
#   Llama-2-70B TP 4 fit (floor 14.7 ms, 52.3 us/token, 30 ms at 512 tokens) scaled by the A100
#   ratio of the two models at TP 4 (floors 25.8 / 25.6, slopes 158.4 / 155.7, 512 tokens
#   90 / 89; the larger vocabulary's embedding and head): F = 14.81 ms, S = 53.2 us/token,
#   30.34 ms at 512 tokens, so b = 30.34 - 512 x 0.0532 = 3.10 ms (latency-anchors.md).
#   Cross-check: BLIS (inference-sim) fits Llama-3.3-70B on H100 TP 4, vLLM v0.8.4, as
#   12.6 ms + 76.4 us per prefill token + 66.8 us per decode token (the same notes): a
#   512-token prefill 51.7 ms there, 42.0 ms here; a 64-decode step 16.9 ms there (no context
#   term), 19.6 ms here before its context.
# - All-reduce (derived): 2 a layer (after attention and after the MLP), 160 a step, not in
#   Vidur's compute tables. Each costs 30 us (the low end of Vidur's measured 0.03-0.06 ms a
#   call below 1 MB, network/h100_dgx/all_reduce.csv, in latency-anchors.md) plus a ring's
#   2 x (4 - 1) / 4 = 1.5 times the message (8192 x 2 bytes a token) over NVLink4 at
#   300 GB/s (two thirds of the link's one-way rate, an assumption: 8 and 32 MB then take
#   0.07 and 0.19 ms, inside or near Vidur's measured 0.1-0.4 ms at 8-32 MB). So 160 x 30 us =
#   4.8 ms a step and 160 x 24576 / 300e9 s = 13.11 us a token: floor = F + 4.8 = 19.62 ms, fixed
#   part = b + 4.8 = 7.90 ms, per token S + 13.11 = 66.3 us. Where the floor holds, the
#   all-reduce's per-token part is left out (under 2.9 ms, below the floor's knee).
# - Attention, roofline (derived): decode reads each context token's KV, 2 x 8 heads x 128 x
#   2 bytes x 80 layers = 320 KiB, 80 KiB a GPU, at 70 % of the H100's 3.35 TB/s:
#   81920 / 2.345e12 s = 0.0349 us per context token. Prefill: causal attention
#   2 x n^2 x (8192 / 4) x 80 FLOPs a GPU at 50 % of 990 TFLOP/s dense: 0.662 ms per
#   (1k tokens)^2, 0.000662 us per token^2.
# - Memory, a GPU: 80 GiB x 0.9 - 32.85 GiB of weights (70.55e9 x 2 bytes / 4) - 4 GiB of
#   activations and CUDA graphs (an assumption): 28794 blocks of 16 tokens (1.25 MiB each).
# - Host link: pcie5 (55 GB/s, 20 us: Documentation/sim.rst, "Links"), one x16 link a GPU, each
#   GPU swapping its own quarter of the KV at once; host_mem_gib (256) is one GPU's share of
#   the pinned host memory.
# - Link between instances: 400gbe (45 GB/s, 30 us), prefill and decode instances on different nodes
#   (two TP 4 instances fill an 8-GPU node; DistServe places a large model's phases across
#   nodes), one NIC a GPU, each GPU sending its own quarter of the KV.
name = llama3-70b-h100
model = Llama-3-70B
gpu = H100-SXM5-80GB
tp = 4
layers = 80
kv_heads = 8
head_dim = 128
dtype_bytes = 2
block_tokens = 16
gpu_mem_gib = 80
mem_util = 0.9
weights_gib = 32.85
reserve_gib = 4
host_mem_gib = 256
swap_link = pcie5
net_link = 400gbe
step_floor_us = 19620
# The floor is the linear part's (the weights' read at n <= 32): attention adds to it.
floor_linear = 1
step_base_us = 7900
prefill_token_us = 66.3
decode_token_us = 66.3
context_token_us = 0.0349
prefill_quad_us = 0.000662
