#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The MoE part of `make demo` (guest side): the reference engine's MoE
# model with its experts in libaccel's expert store over 4 devices in 2
# nodes (12 slots for 8 experts), serving two requests of one kind and,
# from step 32, two of another (the load shifts); every 8 steps the
# cost-aware planner places the experts again on the tokens routed since
# the last plan, and the store moves them while serving goes on (a wave of
# copies into free slots, a versioned switch at a step boundary). Then the
# same requests without the store's rebalances: the digests must be equal,
# and the step times with rebalance work are set against those without.
set -e
set -- --layers 3 --experts 8 --top-k 2 --shared-expert --max-tokens 64 \
	--moe-store 4 --moe-redundant 4 \
	--prompt "Alpha: the first kind of traffic, words about the weather and the sea." \
	--prompt "Alpha again: rain, wind, waves and the long grey coast." \
	--at-step 32 \
	--prompt "Zeta 9 7 3: numbers, 42 + 17 = 59, then 3.14159 and 2.71828." \
	--prompt "Zeta 1 2 3: 100 * 256 = 25600, primes 2 3 5 7 11 13."
echo "-- kvaccel-serve --moe-store 4 --moe-redundant 4 --moe-policy plan --moe-nodes 2"
echo "   --moe-rebalance-every 8 (requests 3 and 4 arrive at step 32)"
kvaccel-serve "$@" --moe-policy plan --moe-nodes 2 --moe-rebalance-every 8 \
	> /tmp/moe-a.out 2> /tmp/moe-a.err || { cat /tmp/moe-a.err; exit 1; }
sed 's/^kvaccel-serve: //' /tmp/moe-a.err
echo "-- the same requests, experts where they started (no rebalance)"
kvaccel-serve "$@" > /tmp/moe-b.out 2> /tmp/moe-b.err || { cat /tmp/moe-b.err; exit 1; }
grep '^moe store' /tmp/moe-b.err
if cmp -s /tmp/moe-a.out /tmp/moe-b.out; then
	echo "-- every token's digest: identical with and without the rebalances" \
	     "($(grep -c '^  digests:' /tmp/moe-a.out) requests)"
else
	echo "-- digests differ with rebalances:"
	diff /tmp/moe-a.out /tmp/moe-b.out | head -20
	exit 1
fi
# "... N without rebalance work (median A us, max B us), M with (median C us, max D us)":
# the run with rebalances' steps with work against the plain run's median.
with=$(sed -n 's/.*[0-9]* with (median \([0-9.]*\) us, max \([0-9.]*\) us).*/\1 \2/p' /tmp/moe-a.err)
plain=$(sed -n 's/.*without rebalance work (median \([0-9.]*\) us.*/\1/p' /tmp/moe-b.err)
echo "$with $plain" | awk '{ printf "-- steps of the usual batch while experts moved: median %.2fx, slowest %.2fx the median step without rebalances (goal: at most 1.5x; emulated, so noisy)\n", $1 / $3, $2 / $3 }'
