#!/bin/sh
# SPDX-License-Identifier: MIT
# Elastic MoE scale-up and scale-down on a node, in the guest: kvacceld and
# kvaccel-serve engines of one MoE model (its weights in a safetensors
# file). A serves from its expert store (2 devices, rebalancing every 8
# steps) while new engines start with --moe-from A: they ask A through
# kvacceld for its expert copies, A hands them over as dma-bufs (no byte
# copied) and the new engine's store binds the same pages instead of
# reading the file's experts. B1 (4 devices) runs two prompts and exits:
# its digests equal those of the same prompts on an engine that read the
# file (C). B2 scales up the same way, then a drain scales it down: its
# decoding requests migrate to A, which finishes them with the digests of
# each request run alone there. An engine without a store, another model,
# an unknown peer: each a clear error, A unharmed; a new engine killed
# before its copies came: the daemon gives them back to A at its timeout. A2 hands its copies to
# B3 and exits while B3 decodes from them: B3 finishes with the digests of
# its request run alone. A drain's migrations that a destination refuses
# are retried with a backoff. The device holds no region afterwards. kvacceld, kvaccelctl, kvaccel-serve on PATH.
PATH=$(cd "$(dirname "$0")" && pwd):$PATH
t=/tmp/moe_scale_kvd.$$
mkdir -p $t
n=0
echo "TAP version 13"
echo "1..13"

prefix=moe_scale_kvd
. "$(dirname "$0")/kvd_test.lib"

shape="--experts 8 --top-k 2"
kvaccel-serve $shape --save-weights $t/w.st > $t/save.out 2>&1
ok $? weights_saved $t/save.out

cat > $t/kvd.conf <<CONF
[daemon]
socket = $t/engine.sock
metrics = off
handoff_timeout_ms = 5000

[migration]
enabled = false
CONF
kvacceld --config $t/kvd.conf 2> $t/kvd.log &
dpid=$!
wait_for ready $t/kvd.log
export KVACCELD_SOCKET=$t/engine.sock

registered() { # name
	i=0
	while [ $i -lt 300 ]; do
		kvaccelctl --socket $t/engine.sock engines > $t/engines 2>&1
		grep -q "^$1 " $t/engines && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

P1="The quick brown fox jumps over the lazy dog."
P2="kvaccel: pinned host memory for KV caches, remapped without copying."
P3="Paged attention reads K and V through block tables."
P4="Experts move between devices while the engine serves."

kvaccel-serve --kvacceld A --weights $t/w.st --moe-store 2 --moe-redundant 2 \
	--moe-rebalance-every 8 --until-exit --check-alone --quiet --max-tokens 600 --blocks 256 \
	--prompt "$P1" --prompt "$P2" > $t/a.out 2> $t/a.err &
apid=$!
registered A
sleep 1

# B1: its experts from A's memory, 4 devices of its own; then C from the file.
kvaccel-serve --kvacceld B1 --weights $t/w.st --moe-from A --moe-store 4 \
	--moe-rebalance-every 8 --check-alone --max-tokens 48 --prompt "$P3" --prompt "$P4" \
	> $t/b1.out 2> $t/b1.err
st=$?
[ $st -eq 0 ] && grep -q 'experts from A: [1-9][0-9]* copies handed over' $t/b1.err &&
	grep -q 'ready to serve .* [1-9][0-9]* copies taken from A without a copy' $t/b1.err &&
	grep -q 'experts asked for by B1: handing over [1-9][0-9]* copies' $t/a.err &&
	wait_for 'experts to B1: [1-9][0-9]* copies handed over' $t/a.err 100 &&
	grep -q 'digests: identical to each request run alone' $t/b1.out
ok $? scale_up_from_peer $t/b1.out $t/b1.err $t/a.err

kvaccel-serve --weights $t/w.st --moe-store 4 --moe-rebalance-every 8 --max-tokens 48 \
	--prompt "$P3" --prompt "$P4" > $t/c.out 2> $t/c.err
grep 'digests:' $t/b1.out | grep -v identical > $t/b1.d
grep 'digests:' $t/c.out > $t/c.d
[ -s $t/c.d ] && [ "$(wc -l < $t/c.d)" -eq 2 ] && cmp -s $t/b1.d $t/c.d
ok $? digests_as_from_the_file $t/b1.d $t/c.d $t/c.err
echo "# scale-up from A: $(grep 'ready to serve' $t/b1.err | sed 's/^kvaccel-serve: //')"
echo "# from the file:   $(grep 'ready to serve' $t/c.err | sed 's/^kvaccel-serve: //')"

# B2 scales up the same way and decodes; a drain scales it down onto A.
kvaccel-serve --kvacceld B2 --weights $t/w.st --moe-from A --moe-store 4 \
	--moe-rebalance-every 8 --until-exit --quiet --max-tokens 1000 --blocks 160 \
	--prompt "$P3" --prompt "$P4" > $t/b2.out 2> $t/b2.err &
b2pid=$!
wait_for 'ready to serve' $t/b2.err
sleep 1
kvaccelctl --socket $t/engine.sock drain B2 > $t/drain 2>&1
gone $b2pid 1200
st=$?
wait $b2pid
[ $st -eq 0 ] && [ "$(grep -c 'migrated to A' $t/b2.out)" -eq 2 ]
ok $? scale_down_drained_to_a $t/b2.out $t/b2.err $t/drain $t/kvd.log

# A taker killed before its copies came: A (stopped meanwhile) answers a
# dead engine; the daemon's hand-off timeout gives them back, A goes on.
kill -STOP $apid
kvaccel-serve --kvacceld B4 --weights $t/w.st --moe-from A --moe-store 2 --prompt x \
	> $t/b4.out 2> $t/b4.err &
b4pid=$!
registered B4
sleep 0.5
kill -KILL $b4pid
wait $b4pid 2> /dev/null
kill -CONT $apid
wait_for 'experts to B4: refused: Connection timed out' $t/a.err 300
ok $? taker_killed_copies_given_back $t/a.err $t/kvd.log

# Refusals, each a clear error, nothing started. D: the same model, no expert store.
kvaccel-serve --kvacceld D --until-exit --weights $t/w.st --check-alone --quiet \
	> $t/d.out 2> $t/d.err &
ddpid=$!
registered D
kvaccel-serve --kvacceld E --weights $t/w.st --moe-from D --moe-store 2 --prompt x \
	> $t/e.out 2> $t/e.err
[ $? -eq 1 ] && grep -q 'D gives no experts: it has no expert store' $t/e.err &&
	grep -q 'experts asked for by E: refused' $t/d.err
ok $? refused_without_a_store $t/e.err $t/d.err
kvaccel-serve --kvacceld F $shape --seed 7 --moe-from A --moe-store 2 --prompt x \
	> $t/f.out 2> $t/f.err
[ $? -eq 1 ] && grep -q 'A gives no experts: it serves another model' $t/f.err
ok $? refused_another_model $t/f.err
kvaccel-serve --kvacceld G --weights $t/w.st --moe-from B1 --moe-store 2 --prompt x \
	> $t/g.out 2> $t/g.err
[ $? -eq 1 ] && grep -q 'B1 did not hand over its experts within' $t/g.err
ok $? unknown_peer_times_out $t/g.err

kvaccelctl --socket $t/engine.sock drain A > $t/drain 2>&1
# A finishes B2's two requests itself (about 1000 steps of 100 to 200 ms
# under the emulator, more with the other kernel's VM beside it).
gone $apid 3000
st=$?
wait $apid
# A's own two requests finish on A, or the drain moves them to D (D has
# room for them, not for B2's longer ones): one or the other, digests as
# alone either way (D's checked when D ends, below).
a_here=$(grep -c '^request [12]: [0-9]* prompt tokens' $t/a.out)
a_left=$(grep -c '^request [12]: migrated to D' $t/a.out)
[ $st -eq 0 ] && [ $((a_here + a_left)) -eq 2 ] &&
	{ [ "$a_here" -eq 0 ] || grep -q '^digests: identical to each request run alone' $t/a.out; } &&
	[ "$(grep -c '^request [0-9]* of B2, migrated here' $t/a.out)" -eq 2 ] &&
	grep -q 'migrated digests: identical to each request run alone (0 differ' $t/a.out
ok $? a_served_throughout $t/a.out $t/a.err
# D has no room for A's longer requests (E2BIG, each time): the daemon's
# drain picks them again only after a backoff (0.5 s doubling to 30 s),
# not at every tick (hundreds of OFFERs while A decodes).
[ "$(grep -c ' to D: Argument list too long' $t/a.err)" -le 30 ]
ok $? refused_destination_backed_off $t/a.err

# The creator leaves while another engine serves from its pages: A2 (no
# requests) hands its copies to B3 and is drained while B3 decodes.
kvaccel-serve --kvacceld A2 --weights $t/w.st --moe-store 2 --until-exit --quiet \
	> $t/a2.out 2> $t/a2.err &
a2pid=$!
registered A2
kvaccel-serve --kvacceld B3 --weights $t/w.st --moe-from A2 --moe-store 2 --check-alone \
	--quiet --max-tokens 600 --prompt "$P3" > $t/b3.out 2> $t/b3.err &
b3pid=$!
wait_for 'ready to serve' $t/b3.err
kvaccelctl --socket $t/engine.sock drain A2 > $t/drain 2>&1
gone $a2pid 600
st=$?
kill -0 $b3pid 2> /dev/null	# still decoding from A2's pages
alive=$?
gone $b3pid 1200
wait $b3pid
[ $? -eq 0 ] && [ $st -eq 0 ] && [ $alive -eq 0 ] &&
	grep -q 'ready to serve .* [1-9][0-9]* copies taken from A2 without a copy' $t/b3.err &&
	grep -q 'digests: identical to each request run alone' $t/b3.out
ok $? creator_gone_pages_stay $t/b3.out $t/b3.err $t/a2.err

kvaccelctl --socket $t/engine.sock drain D > $t/drain 2>&1
gone $ddpid 1800
st=$?
[ $st -eq 0 ] && [ "$(grep -c '^request [0-9]* of A, migrated here' $t/d.out)" -eq "$a_left" ] &&
	{ [ "$a_left" -eq 0 ] ||
	  grep -q 'migrated digests: identical to each request run alone (0 differ' $t/d.out; }
ok $? others_drained $t/d.out $t/d.err

kill -TERM $dpid
wait $dpid
kvaccelctl --json status > $t/status 2>&1
grep -q '"regions": *0[,}]' $t/status
ok $? no_region_left $t/status
rm -rf $t
