#!/bin/sh
# SPDX-License-Identifier: MIT
# kvacceld killed (SIGKILL) in the middle of a node's live migration, at
# each stage: after it asked the source to migrate (MIGRATE), after the
# source's OFFER, after the destination's READY (its blocks pre-bound),
# after the source's COMMIT, and with the COMMIT in the destination's
# hands. The engine at that stage stops itself there (SERVE_MIGR_STOP_AT,
# tools/serve/migrate_node.h) until the daemon is dead and, in the first
# four cases, started again (a crash and its restart: the engines register
# again and their hand-offs pending are sent again); then it goes on. Each
# time the request must end on exactly one side with the digests of the
# request run alone, or fail to its client with a clear error, never on
# both sides, never lost; and the device holds no region once all are
# gone. The last two do not restart the daemon: a source stopped at COMMIT
# may not resume the request (the destination may have it); when nothing
# more comes it fails it to its client after its timeout, while the
# destination, which took the COMMIT, finishes it alone. kvacceld,
# kvaccelctl, kvaccel-serve on PATH (next to this script).
PATH=$(cd "$(dirname "$0")" && pwd):$PATH
t=/tmp/migrate_kvd_kill.$$
mkdir -p $t
n=0
echo "TAP version 13"
echo "1..12"

prefix=migrate_kvd_kill
. "$(dirname "$0")/kvd_test.lib"

cat > $t/kvd.conf <<CONF
[daemon]
socket = $t/engine.sock
metrics = off

[migration]
enabled = false
CONF
export KVACCELD_SOCKET=$t/engine.sock

daemon_up() { # log
	rm -f $t/engine.sock
	kvacceld --config $t/kvd.conf 2> "$1" &
	dpid=$!
	wait_for ready "$1"
}

# scenario NAME STAGE ENGINE RESTART: one migration of A's request to B,
# the daemon killed when ENGINE (A or B) reached STAGE.
scenario() {
	name=$1 stage=$2 who=$3 restart=$4
	rm -f $t/*.out $t/*.err $t/kvd*.log
	daemon_up $t/kvd.log
	if [ "$who" = B ]; then
		SERVE_MIGR_STOP_AT=$stage kvaccel-serve --kvacceld B --until-exit --check-alone \
			--quiet > $t/b.out 2> $t/b.err &
	else
		kvaccel-serve --kvacceld B --until-exit --check-alone --quiet \
			> $t/b.out 2> $t/b.err &
	fi
	bpid=$!
	[ "$who" = A ] && export SERVE_MIGR_STOP_AT=$stage
	kvaccel-serve --kvacceld A --max-tokens 600 --check-alone --quiet \
		--prompt "The quick brown fox jumps over the lazy dog, and then some more of it." \
		> $t/a.out 2> $t/a.err &
	apid=$!
	unset SERVE_MIGR_STOP_AT
	i=0
	while [ $i -lt 300 ]; do
		kvaccelctl --socket $t/engine.sock engines > $t/engines 2>&1
		grep -q '^A ' $t/engines && grep -q '^B ' $t/engines && break
		sleep 0.1
		i=$((i + 1))
	done
	# As soon as A's load lists its request (decoding), long before its end.
	wait_for 'engine A: first load: .* 1 candidates' $t/kvd.log 300
	kvaccelctl --socket $t/engine.sock drain A > $t/drain 2>&1
	[ "$who" = A ] && spid=$apid || spid=$bpid
	r=1
	if wait_for "stopped at $stage" $t/$(echo "$who" | tr AB ab).err 600 &&
		stopped $spid 100; then
		kill -KILL $dpid
		wait $dpid 2>/dev/null
		[ "$restart" = 1 ] && daemon_up $t/kvd2.log
		kill -CONT $spid
		r=0
	fi
	gone $apid 1800 || r=1
	wait $apid
	ast=$?
	# B finishes what arrived, then exits when told (SIGTERM).
	kill -TERM $bpid 2>/dev/null
	gone $bpid 1800 || { kill -KILL $bpid; r=1; }
	wait $bpid
	kill -TERM $dpid 2>/dev/null
	wait $dpid 2>/dev/null
	a_left=$(grep -c 'migrated to B' $t/a.out)
	a_here=$(grep -c '^request 1: [0-9]* prompt tokens' $t/a.out)
	a_failed=$(grep -c '^request 1: failed .*never confirmed' $t/a.out)
	b_in=$(grep -c '^request [0-9]* of A, migrated here' $t/b.out)
	# Exactly one side finished it, with its digests as alone; or it failed to its client.
	if [ "$a_here" -eq 1 ]; then
		[ "$a_left" -eq 0 ] && [ "$b_in" -eq 0 ] && [ $ast -eq 0 ] &&
			grep -q 'digests: identical to each request run alone (0 of 1' $t/a.out || r=1
		where=source
	elif [ "$a_left" -eq 1 ]; then
		[ "$b_in" -eq 1 ] && grep -q 'migrated digests: identical' $t/b.out || r=1
		where=destination
	elif [ "$a_failed" -eq 1 ]; then
		# Failed to its client; B either never had it or finished it with its digests.
		[ "$b_in" -eq 0 ] || grep -q 'migrated digests: identical' $t/b.out || r=1
		where="source as failed to its client (the destination finished it: $b_in)"
	else
		r=1
		where=nowhere
	fi
	echo "# $name: the request ended on the $where"
	[ "$where" = nowhere ] && r=1
	ok $r "$name" $t/a.out $t/a.err $t/b.out $t/b.err $t/kvd.log $t/kvd2.log
	# Nothing leaked: once every engine is gone, the device holds no region.
	i=0
	while [ $i -lt 50 ]; do
		kvaccelctl --json status > $t/status 2>&1
		grep -q '"regions": *0[,}]' $t/status && break
		sleep 0.1
		i=$((i + 1))
	done
	grep -q '"regions": *0[,}]' $t/status
	ok $? "${name}_no_region_left" $t/status
}

scenario killed_after_migrate migrate A 1
scenario killed_after_offer offer A 1
scenario killed_after_ready ready B 1
scenario killed_after_commit commit A 1
scenario killed_after_commit_not_restarted commit A 0
scenario killed_with_the_commit_at_the_destination_not_restarted commit-in B 0
rm -rf $t
