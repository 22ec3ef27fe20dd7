#!/bin/sh
# SPDX-License-Identifier: MIT
# A node's live migration end to end in the guest: kvacceld and two
# kvaccel-serve engines. A decodes three requests; `kvaccelctl drain A`
# moves each of them to B (the pages change hands) while they decode, A
# exits once drained; B finishes them with the digests of each request run
# alone from its start (--check-alone), then a drain of B (nowhere to go,
# nothing left) tells it to exit. kvacceld records every migration; the
# device holds no region afterwards. kvacceld, kvaccelctl, kvaccel-serve on PATH.
PATH=$(cd "$(dirname "$0")" && pwd):$PATH
t=/tmp/migrate_kvd.$$
mkdir -p $t
n=0
echo "TAP version 13"
echo "1..7"

prefix=migrate_kvd
. "$(dirname "$0")/kvd_test.lib"

cat > $t/kvd.conf <<CONF
[daemon]
socket = $t/engine.sock
metrics = off

[migration]
enabled = false
CONF
kvacceld --config $t/kvd.conf 2> $t/kvd.log &
dpid=$!
wait_for ready $t/kvd.log
export KVACCELD_SOCKET=$t/engine.sock

kvaccel-serve --kvacceld B --until-exit --check-alone --quiet > $t/b.out 2> $t/b.err &
bpid=$!
wait_for '' $t/b.err 10
kvaccel-serve --kvacceld A --max-tokens 400 --check-alone --quiet \
	--prompt "The quick brown fox jumps over the lazy dog." \
	--prompt "kvaccel: pinned host memory for KV caches, remapped without copying." \
	--prompt "Paged attention reads K and V through block tables." > $t/a.out 2> $t/a.err &
apid=$!
# Until both engines are registered and A decodes (its load lists candidates).
i=0
while [ $i -lt 300 ]; do
	kvaccelctl --socket $t/engine.sock engines > $t/engines 2>&1
	grep -q '^A ' $t/engines && grep -q '^B ' $t/engines && break
	sleep 0.1
	i=$((i + 1))
done
sleep 1
kvaccelctl --socket $t/engine.sock drain A > $t/drain 2>&1
ok $? drain_asked $t/drain $t/kvd.log

gone $apid 1200
st=$?
wait $apid
[ $st -eq 0 ] && [ "$(grep -c 'migrated to B' $t/a.out)" -eq 3 ]
ok $? source_drained_and_exited $t/a.out $t/a.err $t/kvd.log

kvaccelctl --socket $t/engine.sock drain B > $t/drain 2>&1
gone $bpid 1200
st=$?
wait $bpid
[ $st -eq 0 ]
ok $? destination_told_to_exit $t/b.err $t/kvd.log

[ "$(grep -c '^request [0-9]* of A, migrated here' $t/b.out)" -eq 3 ] &&
	grep -q 'migrated digests: identical to each request run alone (0 differ' $t/b.out
ok $? digests_as_alone $t/b.out $t/b.err

# Every arrival took its pages over; every departure copied no byte.
[ "$(grep -c ' [1-9][0-9]* pages taken over' $t/b.err)" -eq 3 ] &&
	[ "$(grep -c 'pages changed hands, 0 bytes copied' $t/a.err)" -eq 3 ]
ok $? no_kv_byte_copied $t/a.err $t/b.err

kvaccelctl --socket $t/engine.sock --json migrations > $t/migrations 2>&1
[ "$(grep -o '"state": *"done"' $t/migrations | wc -l)" -ge 3 ]
ok $? migrations_recorded $t/migrations

kill -TERM $dpid
wait $dpid
kvaccelctl --json status > $t/status 2>&1
grep -q '"regions": *0[,}]' $t/status
ok $? no_region_left $t/status
rm -rf $t
