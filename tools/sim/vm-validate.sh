#!/bin/sh
# SPDX-License-Identifier: MIT
# vm-validate.sh [KVACCEL_SERVE [KVACCEL_LOADGEN]] - the guest side of `make sim-validate`
# (tools/sim/validate.sh): kvaccel-serve with its step log on, twice on the same pool and
# scheduler settings: (a) a calibration workload of varied batch shapes (bursts of long and
# short prompts), (b) the validation workload (Poisson arrivals) replayed by kvaccel-loadgen
# --json. The rates follow the engine's speed here: a batch run first measures its tokens per
# second, and each workload is offered a fixed share of it. Prints, for the host:
#   === options SERVE_OPTIONS            the pool and the scheduler
#   === workload NAME LOADGEN_OPTIONS    each workload, as kvaccel-loadgen took it
#   === steplog NAME ... === end         its step log
#   === report NAME ... === end          kvaccel-loadgen's --json report
# SIM_VALIDATE_REQUESTS (default 100) sizes (b), SIM_VALIDATE_LOAD (default 0.3) its share of
# the batch run's speed (the HTTP server's own work takes about a quarter more);
# SIM_VALIDATE_SERVE adds kvaccel-serve options (--memfd for a run without the VM).
set -u
serve=${1:-/bin/kvaccel-serve}
lg=${2:-/bin/kvaccel-loadgen}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ifconfig lo 127.0.0.1 up 2> /dev/null || ip link set lo up 2> /dev/null || true
# One worker thread (a step's time is then the sum of its runs'), no operator-level yields
# (the simulator runs every step whole), a pool no workload fills (no preemption), the budget
# and chunk given (the simulator's defaults differ from the engine's).
opts="--blocks 2048 --swap-blocks 256 --budget 256 --chunk 256 --max-running 256 --threads 1
	--no-yield --preempt swap --policy fcfs ${SIM_VALIDATE_SERVE:-}"
rc=0

# The engine's speed: 16 prompts of 96 bytes, 32 tokens each, in one batch run.
p=""
i=0
while [ $i -lt 16 ]; do
	p="$p --prompt $(printf 'r%02d%093d' $i $i)"
	i=$((i + 1))
done
# shellcheck disable=SC2086
"$serve" $opts --quiet --max-tokens 32 $p > /dev/null 2> "$tmp/speed" || rc=1
tps=$(sed -n 's/.* in \([0-9.]*\) s: \([0-9]*\) tokens\/s.*/\2/p' "$tmp/speed")
[ -n "$tps" ] || { echo "no speed measured:"; cat "$tmp/speed"; exit 1; }
echo "=== speed $tps tokens/s"
# (b): prompts 16-128 (72 on average), outputs 8-40 (24): 96 tokens a request.
n=${SIM_VALIDATE_REQUESTS:-100}
rate_b=$(awk -v t="$tps" -v l="${SIM_VALIDATE_LOAD:-0.3}" 'BEGIN { printf "%.3f", l * t / 96 }')
# (a): at (b)'s request rate (an HTTP request's own work, its connection, thread and parsing,
# lands in whatever step it interrupts: the same rate keeps it the same share of a step),
# other lengths, seeds and arrivals: its first half Poisson, prompts 8-160 and outputs 4-48,
# its second Gamma (CV 1.5, clumps), prompts 24-112 and outputs 12-36.
wl_a1="--synthetic --requests 40 --rate $rate_b --arrival poisson --input uniform:8:160
	--output uniform:4:48 --seed 11"
wl_a2="--synthetic --requests 40 --rate $rate_b --arrival gamma --cv 1.5 --input uniform:24:112
	--output uniform:12:36 --seed 12"
wl_b="--synthetic --requests $n --rate $rate_b --arrival poisson --input uniform:16:128
	--output uniform:8:40 --seed 5"

run() {
	name=$1
	shift
	# shellcheck disable=SC2086
	"$serve" --listen 127.0.0.1:0 $opts --max-concurrent 1024 --step-log "$tmp/$name.csv" \
		> "$tmp/$name.out" 2> "$tmp/$name.err" &
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
	"$lg" --url "$url" "$@" --timeout 600 --json > "$tmp/$name.json" 2> "$tmp/$name.lgerr" ||
		rc=1
	kill -TERM $pid
	wait $pid || rc=1
	echo "=== workload $name" "$@"
	echo "=== steplog $name"
	cat "$tmp/$name.csv"
	echo "=== end"
	echo "=== report $name"
	cat "$tmp/$name.json"
	echo "=== end"
	cat "$tmp/$name.lgerr" "$tmp/$name.err"
}

# shellcheck disable=SC2086
echo "=== options" $opts
# shellcheck disable=SC2086
run calibration-1 $wl_a1
# shellcheck disable=SC2086
run validation $wl_b
# shellcheck disable=SC2086
run calibration-2 $wl_a2
exit $rc
