#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The guest side of `make demo`: set pressure watermarks, watch the
# module's events with kvaccelctl while kvaccel-demo runs, then show the
# device's status and the events seen; then libaccel's KV cache swapping
# a sequence out and back in, with its throughput; last, the reference
# engine under libaccel's scheduler: a high-priority arrival preempting a
# burst by swap, the per-request table, the digests checked against each
# request run alone; a drain migrating a decoding request between engines;
# the MoE experts rebalanced under serving; the three-node cluster.
set -e
echo "-- kvaccelctl watermarks set 5M 1M (pressure events above 5 MiB, until below 1 MiB)"
kvaccelctl watermarks set 5M 1M
kvaccelctl watch --timeout 120 > /tmp/events 2> /tmp/watch.err &
watch=$!
i=0
while ! grep -q watching /tmp/watch.err 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
kvaccel-demo
echo "-- kvaccelctl status"
kvaccelctl status
kill $watch
wait $watch || true
echo "-- kvaccelctl watch: what the demo did, as the module's events group saw it"
cat /tmp/events
echo "-- libaccel's KV cache: a sequence of 64 MiB of KV in 16 KiB blocks, scattered,"
echo "   swapped out to the host tier and back in (kvaccel-bench-kv 64 1)"
kvaccel-bench-kv 64 1

echo
echo "-- kvacceld, the node daemon, with two engines: a hand-off and a pressure round"
echo "   (watermarks 32 MiB / 20 MiB; prefill has priority 1, decode priority 5)"
kvaccelctl watermarks off
export KVACCELD_SOCKET=/tmp/kvacceld.sock
kvacceld --socket $KVACCELD_SOCKET --metrics off --high-watermark 32M \
	--low-watermark 20M 2> /tmp/kvacceld.log &
kvd=$!
i=0
while ! grep -q ready /tmp/kvacceld.log 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
kvaccel-engine decode > /tmp/decode.out &
dec=$!
i=0
while ! grep -q registered /tmp/decode.out 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
kvaccel-engine prefill
sleep 1
cat /tmp/decode.out
echo "-- kvaccelctl engines"
kvaccelctl engines || true
kill $dec
wait $dec || true
kill $kvd
wait $kvd || true
echo "-- the daemon's log"
grep -v 'event \(client\|region\)' /tmp/kvacceld.log
kvaccelctl watermarks off

echo
echo "== kvaccel-serve: libaccel's scheduler preempts by swap for a high-priority request"
echo "   (a burst of 4 requests fills a compute tier of 22 KV blocks of 16 KiB in kvaccel"
echo "    regions; request 5, priority -10, arrives at step 8; swaps on the copy engine)"
set -- --blocks 22 --swap-blocks 64 --max-tokens 32 --quiet --table \
	--prompt "Request 1 of the burst: a long prompt of many tokens." \
	--prompt "Request 2 of the burst: also long enough to need blocks." \
	--prompt "Request 3 of the burst, long too, more blocks." \
	--prompt "Request 4: the last of the burst." \
	--at-step 8 --priority -10 --prompt "Request 5: urgent, priority -10."
rc=0
kvaccel-serve --policy priority --check-alone "$@" > /tmp/serve.out 2> /tmp/serve.err || rc=$?
grep -v '^  text:\|^request ' /tmp/serve.out
cat /tmp/serve.err
echo "-- the same burst under fcfs: request 5, the last admitted, is the one preempted"
kvaccel-serve --policy fcfs "$@" 2> /dev/null | grep '^req \|^5 ' || true
[ $rc -eq 0 ] || { echo "kvaccel-serve failed ($rc)"; exit 1; }

echo
echo "== live migration: kvacceld drains engine A; its decoding request moves to engine B"
echo "   (same node: the request's KV pages change hands through kvacceld, no byte copied;"
echo "    B goes on decoding where A stopped; every digest checked against the request alone)"
kvacceld --socket /tmp/mig.sock --metrics off 2> /tmp/mig-kvd.log &
kvd=$!
i=0
while ! grep -q ready /tmp/mig-kvd.log 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
export KVACCELD_SOCKET=/tmp/mig.sock
kvaccel-serve --kvacceld B --until-exit --check-alone > /tmp/mig-b.out 2> /tmp/mig-b.err &
b=$!
kvaccel-serve --kvacceld A --max-tokens 600 --check-alone \
	--prompt "Migrate me: the quick brown fox jumps over the lazy dog." \
	> /tmp/mig-a.out 2> /tmp/mig-a.err &
a=$!
i=0
until kvaccelctl --socket /tmp/mig.sock engines 2> /dev/null | grep -q '^A ' || [ $i -ge 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 1
echo "-- kvaccelctl drain A (after A decoded for a second)"
kvaccelctl --socket /tmp/mig.sock drain A
wait $a || { echo "engine A failed"; cat /tmp/mig-a.err; exit 1; }
echo "-- engine A's output"
grep -v '^kvaccel-serve: [0-9]* tokens' /tmp/mig-a.out
grep 'migration' /tmp/mig-a.err
echo "-- kvaccelctl migrations"
kvaccelctl --socket /tmp/mig.sock migrations || true
kvaccelctl --socket /tmp/mig.sock drain B > /dev/null
wait $b || { echo "engine B failed"; cat /tmp/mig-b.err; exit 1; }
echo "-- engine B's output (the request's first tokens were A's)"
sed -e 's/^\(  digests:\( [0-9a-f]*\)\{6\}\).*/\1 .../' \
	-e 's/^\(  text: .\{60\}\).*/\1.../' /tmp/mig-b.out
grep 'migration' /tmp/mig-b.err
kill $kvd
wait $kvd || true
unset KVACCELD_SOCKET
grep -q 'migrated digests: identical' /tmp/mig-b.out || { echo "migration digests differ"; exit 1; }

echo
echo "== elastic MoE: experts placed again as the load shifts, moved while serving goes on"
kvaccel-moe-demo.sh || { echo "the MoE demo failed"; exit 1; }

# Three nodes: only where the guest has what it takes (the demo VM ships it).
IP=/bin/ip-iproute2
mkdir -p /run/netns
if [ -x /bin/etcd ] && [ -x $IP ] && $IP netns add demo-probe 2>/dev/null; then
	$IP netns del demo-probe
	echo
	echo "== the cluster: three nodes (network namespaces), their kvacceld publishing into a"
	echo "   three-member etcd cluster; engine A of n1 drained to the engine the view shows"
	echo "   least loaded on another node, its KV moved over UCX (pre-copy in stages while it"
	echo "   decodes; a request of fewer blocks than final_blocks, as here, in one stop)"
	kvaccel-cluster-demo.sh || { echo "the cluster demo failed"; exit 1; }
fi
