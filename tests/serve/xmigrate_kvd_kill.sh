#!/bin/sh
# SPDX-License-Identifier: MIT
# Either node's kvacceld killed (SIGKILL) at each stage of a migration
# across nodes. Two nodes in the guest: network namespaces n1 and n2, each
# joined to the root namespace by a veth pair (10.78.I.2 in nI), one etcd
# member in the root namespace, a daemon per node. Each scenario starts a
# source engine on n1 (two requests) and a destination on n2; the
# source's daemon orders the migration of its first request (kvaccelctl
# migrate); the engine named
# stops itself when the migration reaches the point named
# (SERVE_XMIG_STOP_AT, tools/serve/migrate_net.c): on the source its
# first stage sent ("stage"), the request stopped and its last blocks
# flushed ("final"), FINAL or COMMIT sent ("commit"); on the destination
# its first stage's BLOCKS sent ("dst-stage"), the request committed there
# with COMMITTED not yet sent ("dst-commit"). Then the daemon of the node
# named dies, a new one starts, and the engine goes on. Each time the
# request ends on exactly one node with the digests of the request run
# alone, or fails to its client with a clear error, never on both, never
# lost; the engine on the dead daemon's node registers again; and once
# both engines are gone the device holds no region (the module is shared
# by the two nodes: nothing leaked on either side).
#
# Needs iproute2's ip at $IP, the veth module, etcd at $ETCD, libucp (UCX)
# and kvacceld, kvaccelctl, kvaccel-serve next to it or on PATH.
PATH=$(cd "$(dirname "$0")" && pwd):$PATH
IP=${IP:-/tests/xmig/ip-iproute2}
ETCD=${ETCD:-/tests/etcd/etcd}
export UCX_TLS=tcp UCX_MEM_MALLOC_HOOKS=no UCX_MEM_MMAP_HOOK_MODE=none
export UCX_WARN_UNUSED_ENV_VARS=n
t=/tmp/xmigrate_kvd_kill.$$
n=0
prefix=xmigrate_kvd_kill
echo "TAP version 13"
if [ ! -x "$ETCD" ] || [ ! -x "$IP" ]; then
	echo "1..0 # SKIP no etcd ($ETCD) or no iproute2 ($IP) in the guest"
	exit 0
fi
mkdir -p $t /run/netns /var/run/netns /dev/shm
grep -q ' /dev/shm ' /proc/mounts || mount -t tmpfs tmpfs /dev/shm
ip_ok=0
$IP link set lo up 2>/dev/null
for i in 1 2; do
	$IP netns add n$i 2>/dev/null &&
	$IP link add r$i type veth peer name e$i 2>/dev/null &&
	$IP link set e$i netns n$i && $IP addr add 10.78.$i.1/24 dev r$i &&
	$IP link set r$i up && $IP -n n$i addr add 10.78.$i.2/24 dev e$i &&
	$IP -n n$i link set e$i up && $IP -n n$i link set lo up &&
	$IP -n n$i route add default via 10.78.$i.1 || ip_ok=1
done
if [ $ip_ok -ne 0 ] || ! echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null; then
	echo "1..0 # SKIP no network namespaces, veth or IPv4 in this kernel"
	exit 0
fi
echo "1..11"
. "$(dirname "$0")/kvd_test.lib"

# until_ok TENTHS COMMAND...: run COMMAND every 0.1 s until it succeeds.
until_ok() {
	lim=$1
	shift
	i=0
	while ! "$@" > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge $lim ] && return 1
		sleep 0.1
	done
	return 0
}

ctl() { # I ARGS...: kvaccelctl against node I's daemon
	ns=$1
	shift
	kvaccelctl --socket $t/n$ns.sock "$@"
}

# shows I PATTERN: node I's view of the cluster (one line) matches PATTERN.
shows() {
	ctl $1 --json cluster 2>/dev/null | tr -d ' \n' | grep -q "$2"
}

$ETCD --name m1 --data-dir $t/etcd --listen-client-urls http://10.78.1.1:2379 \
	--advertise-client-urls http://10.78.1.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
	--initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster m1=http://127.0.0.1:2380 --log-level warn > $t/etcd.log 2>&1 &
epid=$!
healthy() {
	wget -q -O - http://10.78.1.1:2379/health 2>/dev/null | grep -q '"health":"true"'
}
until_ok 900 healthy
ok $? etcd_healthy $t/etcd.log

for i in 1 2; do
	cat > $t/n$i.conf <<CONF
[daemon]
socket = $t/n$i.sock
metrics = off

[migration]
enabled = false
migration_timeout_ms = 60000

[cluster]
enabled = true
endpoints = http://10.78.1.1:2379
name = vm
node = n$i
lease_ttl = 10
update_interval_ms = 200
change_threshold = 0
timeout_ms = 2000
ucx_address = 10.78.$i.2:7700
CONF
done

daemon_up() { # I LOG: node I's daemon, started (again), until it is ready
	# LOG goes first: an earlier scenario's, still saying "ready", would
	# end the wait before the new daemon's shell truncates it.
	rm -f $t/n$1.sock "$2"
	$IP netns exec n$1 kvacceld --config $t/n$1.conf 2> "$2" &
	eval dpid$1=\$!
	t0=$(date +%s)
	wait_for 'kvacceld: ready' "$2" 1200 && return 0
	echo "# node $1's daemon not ready after $(($(date +%s) - t0)) s:"
	eval "ls -l $t/n$1.sock /proc/\$dpid$1/stat 2>&1 | sed 's/^/#   /'"
	sed 's/^/#   /' "$2"
	return 1
}
daemon_up 1 $t/n1.log
daemon_up 2 $t/n2.log

# engine I NAME PORT STOP ARGS...: an engine on node I (in the background:
# $! is its pid), stopping itself at migration point STOP ("-": nowhere).
engine() {
	ns=$1 name=$2 port=$3 stop=$4
	shift 4
	KVACCELD_SOCKET=$t/n$ns.sock UCX_NET_DEVICES=e$ns SERVE_XMIG_STOP_AT=$stop \
		$IP netns exec n$ns kvaccel-serve --kvacceld $name --xfer 10.78.$ns.2:$port \
		--check-alone --quiet "$@" > $t/$name.out 2> $t/$name.err &
}

# 425 tokens (27 blocks): more than the 16 the last stage takes, so that
# the migration pre-copies in stages first.
prompt="The quick brown fox jumps over the lazy dog, and then some more of it."
prompt="$prompt $prompt $prompt $prompt $prompt $prompt"

fail() { # WHY: this scenario failed, and why
	r=1
	echo "# $sname: $1"
}

# scenario NAME POINT WHO NODE: A's request migrates from n1 to B on n2;
# WHO (A or B) stops at POINT, node NODE's daemon is killed and started again.
k=0
scenario() {
	sname=$1 point=$2 who=$3 node=$4
	k=$((k + 1))
	a=A$k b=B$k r=0
	[ "$who" = B ] && bstop=$point || bstop=-
	[ "$who" = A ] && astop=$point || astop=-
	engine 2 $b $((7820 + k)) $bstop --until-exit --blocks 256
	bpid=$!
	until_ok 1200 shows 1 "\"xfer\":\"10.78.2.2:$((7820 + k))\"" || fail "B not in n1's view"
	# A serves until told to exit (and a second request stays there): it
	# reports on, so it registers again with a new daemon of its node.
	engine 1 $a $((7800 + k)) $astop --until-exit --blocks 256 --max-tokens 200 \
		--prompt "$prompt" --prompt "A's second request stays on A."
	apid=$!
	# Asked once the request decodes (a candidate then), long before its end.
	until_ok 1200 sh -c "kvaccelctl --socket $t/n1.sock migrate $a 1 n2/$b > $t/migrate 2>&1" ||
		fail "the migration was not asked"
	[ "$who" = A ] && spid=$apid || spid=$bpid
	if wait_for "stopped at $point" $t/$who$k.err 1200 && stopped $spid 100; then
		eval kill -KILL \$dpid$node
		eval wait \$dpid$node 2>/dev/null
		daemon_up $node $t/n$node.again.log || fail "the daemon did not start again"
		kill -CONT $spid
	else
		fail "never stopped at the point"
		kill -CONT $spid 2>/dev/null
	fi
	# The engine on that node registers with the new daemon.
	[ "$node" = 1 ] && on=$a || on=$b
	wait_for 'registered again' $t/$on.err 600 || fail "no 'registered again'"
	# SIGTERM: A exits once its own requests are done.
	kill -TERM $apid
	gone $apid 3000 || { kill -KILL $apid; fail "A did not exit"; }
	wait $apid
	ast=$?
	kill -TERM $bpid 2>/dev/null
	gone $bpid 3000 || { kill -KILL $bpid; fail "B did not exit"; }
	wait $bpid
	a_left=$(grep -c "^request 1: migrated to n2/$b" $t/$a.out)
	a_here=$(grep -c '^request 1: [0-9]* prompt tokens' $t/$a.out)
	a_failed=$(grep -c '^request 1: failed .*never confirmed' $t/$a.out)
	b_in=$(grep -c "^request [0-9]* of .*, migrated here" $t/$b.out)	# B$k takes only this one
	grep -q '^request 2: [0-9]* prompt tokens' $t/$a.out || fail "A's second request did not finish there"
	if [ "$a_here" -eq 1 ]; then
		[ "$a_left" -eq 0 ] && [ "$b_in" -eq 0 ] && [ $ast -eq 0 ] &&
			grep -q 'digests: identical to each request run alone (0 of 2' $t/$a.out ||
			fail "the source's outcome"
		where=source
	elif [ "$a_left" -eq 1 ]; then
		[ "$b_in" -eq 1 ] && [ $ast -eq 0 ] &&
			grep -q 'digests: identical to each request run alone (0 of 1' $t/$a.out &&
			grep -q 'migrated digests: identical' $t/$b.out || fail "the destination's outcome"
		where=destination
	elif [ "$a_failed" -eq 1 ]; then
		# Failed to its client; B either never had it or finished it with its digests.
		[ "$b_in" -eq 0 ] || grep -q 'migrated digests: identical' $t/$b.out ||
			fail "failed to its client; the destination's outcome"
		where="source as failed to its client (the destination finished it: $b_in)"
	else
		where=nowhere
		fail "nowhere"
	fi
	echo "# $sname: the request ended on the $where"
	# Nothing leaked: with both engines gone, the device holds no region.
	until_ok 300 sh -c "kvaccelctl --json status 2>&1 | grep -q '\"regions\": *0[,}]'" || fail "a region left"
	ok $r "$sname" $t/migrate $t/$a.out $t/$a.err $t/$b.out $t/$b.err $t/n$node.again.log
}

scenario source_daemon_killed_at_the_first_stage stage A 1
scenario destination_daemon_killed_at_the_first_stage stage A 2
scenario source_daemon_killed_with_the_destinations_first_blocks dst-stage B 1
scenario destination_daemon_killed_with_the_destinations_first_blocks dst-stage B 2
scenario source_daemon_killed_at_the_last_stage final A 1
scenario destination_daemon_killed_at_the_last_stage final A 2
scenario source_daemon_killed_at_the_commit commit A 1
scenario destination_daemon_killed_at_the_commit commit A 2
scenario source_daemon_killed_once_committed_there dst-commit B 1
scenario destination_daemon_killed_once_committed_there dst-commit B 2

kill -TERM $dpid1 $dpid2 $epid 2>/dev/null
wait
rm -rf $t
