#!/bin/sh
# SPDX-License-Identifier: MIT
# vm-bench-sched.sh [KVACCEL_SERVE [KVACCEL_LOADGEN]] - the two-class
# scheduling benchmark, in a VM with the module loaded: one bursty workload
# of a high-priority class (online, priority 0, 1 in 4) and a low one
# (offline, priority 10) replayed by
# kvaccel-loadgen against kvaccel-serve on region tiers too small for a
# burst, first under fcfs with recompute preemption (vLLM V1's behaviour),
# then under priority with swap preemption; every request's digests must be
# the same in both runs. Each run's report is printed between "=== NAME"
# and "=== end" (JSON); tools/bench/sched-two-class.py reads them.
# Documentation/serve.rst, "The two-class benchmark".
set -u
serve=${1:-/bin/kvaccel-serve}
lg=${2:-/bin/kvaccel-loadgen}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ifconfig lo 127.0.0.1 up 2> /dev/null || ip link set lo up 2> /dev/null || true
pool="--blocks 48 --swap-blocks 1024 --budget 64 --chunk 32 --threads 2 --max-concurrent 256"
workload="--synthetic --requests ${BENCH_REQUESTS:-96} --arrival burst --burst 24 --rate ${BENCH_RATE:-2}
	--input uniform:64:192 --output uniform:16:40 --class online:1:0:3000:0 --class offline:3:10:0:0
	--seed 7 --timeout 900"
rc=0

run() {
	name=$1
	shift
	"$serve" --listen 127.0.0.1:0 $pool "$@" > "$tmp/$name.out" 2> "$tmp/$name.err" &
	pid=$!
	i=0
	while ! grep -q "listening on" "$tmp/$name.out" 2> /dev/null; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 $pid 2> /dev/null; then
			echo "kvaccel-serve did not start:"
			cat "$tmp/$name.err"
			rc=1
			return
		fi
		sleep 0.1
	done
	url=$(sed -n 's/^kvaccel-serve: listening on //p' "$tmp/$name.out")
	# shellcheck disable=SC2086
	"$lg" --url "$url" $workload --server-metrics --check-digests "$tmp/digests" --json \
		> "$tmp/$name.json" 2> "$tmp/$name.lgerr" || rc=1
	kill -TERM $pid
	wait $pid || rc=1
	echo "=== $name $*"
	cat "$tmp/$name.json"
	echo "=== end"
	cat "$tmp/$name.lgerr"
}

run fcfs-recompute --policy fcfs --preempt recompute
run priority-swap --policy priority --preempt swap
exit $rc
