#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# bench_gpu_fake.sh BENCH FAKEDIR OFFLOAD MOE - kvaccel-bench-gpu against the fake CUDA
# driver (tests/libaccel/fake_cuda.c: two GPUs over host memory, strict
# per-device access): every mover, layout, the window growing and both
# GPU-to-GPU paths run with their data checked; then once more on a driver
# without cuMemcpyBatchAsync and peers, and on one GPU, and bad arguments;
# then kvaccel-bench-offload-gpu (OFFLOAD: offload through the data mover,
# data checked every round) and its skip without a GPU; then
# kvaccel-bench-moe-gpu (MOE: the MoE expert store's copies between four
# GPUs, peer to peer and staged, and device to device on one GPU, every
# expert read back) and its bad arguments.
# The figures mean nothing here (memcpy). Prints TAP.
set -u
bench=$1 fake=$2 offload=$3 moe=$4
log=$(mktemp)
trap 'rm -f "$log"' EXIT
n=0
echo "TAP version 13"
echo "1..10"
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n bench_gpu_fake.$2"
	else
		echo "not ok $n bench_gpu_fake.$2"
		sed 's/^/# /' "$log"
	fi
}
run() { env FAKE_CUDA_STRICT_ACCESS=1 LD_LIBRARY_PATH="$fake" "$@" > "$log" 2>&1; }

# Every row and section there, the batch used, both peer paths measured.
run "$bench" -s 8 -r 2 -c 8
rc=$?
[ $rc -eq 0 ] &&
	[ "$(grep -c 'x *[0-9.]*x$' "$log")" -eq 6 ] &&
	grep -q 'cuMemcpyBatchAsync used' "$log" &&
	grep -q 'map from the pool' "$log" &&
	grep -q 'GPU 1 granted access too' "$log" &&
	grep -q 'staged through pinned host memory' "$log" &&
	grep -q 'peer path (cuMemSetAccess)' "$log" &&
	grep -q '^summary: scattered swap' "$log"
ok $? all_sections

run env FAKE_CUDA_NO_BATCH=1 FAKE_CUDA_NO_PEER=1 "$bench" -s 4 -r 1 -c 4
rc=$?
[ $rc -eq 0 ] && grep -q 'cuMemcpyBatchAsync absent' "$log" &&
	grep -q 'peer path: none between these GPUs' "$log" &&
	grep -q 'GPU 1 cannot reach GPU 0' "$log"
ok $? without_batch_or_peers

run env FAKE_CUDA_DEVICES=1 "$bench" -s 2 -r 1 -c 2
rc=$?
[ $rc -eq 0 ] && grep -q 'one GPU, nothing to measure' "$log"
ok $? one_gpu

# No such GPU, or no GPU at all: a skip (4) and why.
run "$bench" -d 5 -s 2
rc=$?
[ $rc -eq 4 ] && grep -q 'SKIP: no GPU 5 (2 present)' "$log"
ok $? no_such_gpu_skips

run "$bench" -s 0
rc1=$?
run "$bench" -r 17
rc2=$?
run "$bench" extra
rc3=$?
[ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && [ $rc3 -eq 2 ] && grep -q '^usage:' "$log"
ok $? bad_arguments

# Offload through the mover: every block size and the layer-wise store.
run "$offload" -s 8 -r 2
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c 'KiB blocks .*ratio [0-9.]* .*layer-wise store' "$log")" -eq 3 ] &&
	grep -q '^summary:' "$log"
ok $? offload_all_sizes

run env FAKE_CUDA_DEVICES=1 "$offload" -d 1 -s 2
rc1=$?
run "$offload" -s 0
rc2=$?
[ $rc1 -eq 4 ] && [ $rc2 -eq 2 ]
ok $? offload_skip_and_usage

# The MoE store on four GPUs (new memory garbage), peers and staged, and on one.
run env FAKE_CUDA_DEVICES=4 FAKE_CUDA_DIRTY=1 "$moe" -e 4 -x 2 -l 2 -r 2
rc=$?
[ $rc -eq 0 ] && grep -q 'on 4 GPUs: 4 devices (one per GPU)' "$log" &&
	[ "$(grep -c 'rotate: 16 copies, 64.0 MiB' "$log")" -eq 2 ] &&
	[ "$(grep -c 'permute: 16 rebinds, no copy' "$log")" -eq 2 ] &&
	[ "$(grep -c '^scale-up: 2 layers x 8 experts of 4 MiB: from the running store' "$log")" -eq 1 ] &&
	grep -q '^summary: expert copies .* faster than from host memory, data checked$' "$log"
ok $? moe_store_four_gpus

run env FAKE_CUDA_DEVICES=4 FAKE_CUDA_DIRTY=1 FAKE_CUDA_NO_PEER=1 FAKE_CUDA_NO_BATCH=1 \
	"$moe" -e 3 -x 1 -l 1 -r 1
rc1=$?
run env FAKE_CUDA_DEVICES=1 FAKE_CUDA_DIRTY=1 "$moe" -e 2 -x 2 -l 1 -r 1
rc2=$?
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && grep -q 'two on the GPU: device-to-device copies' "$log" &&
	grep -q '^summary: expert copies' "$log"
ok $? moe_store_staged_and_one_gpu

run "$moe" -e 0
rc1=$?
run "$moe" -r 99
rc2=$?
run "$moe" extra
rc3=$?
[ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && [ $rc3 -eq 2 ] && grep -q '^usage:' "$log"
ok $? moe_bad_arguments
