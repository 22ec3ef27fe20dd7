#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Three nodes in the guest: network namespaces n1, n2, n3, each joined to
# the root namespace by a veth pair (10.78.I.2 in nI, routed through the
# root one), each with an etcd member of one three-member cluster, a
# kvacceld publishing into it and kvaccel-serve engines (the module is
# shared: its netlink family answers in every namespace). Checked:
#
#  - every daemon's view (kvaccelctl cluster --json) holds the three nodes
#    and the engines' transfer addresses;
#  - manual migrations to another node refused with a clear error (no such
#    engine in the view, this node's own, no such request);
#  - `kvaccelctl drain A` on n1, whose node has no other engine: A's
#    decoding requests go to the engine of another node the view shows
#    least loaded (B on n2; C on n3 is busier), moved by the engines over
#    UCX across the namespaces, and B finishes them with the digests of each
#    request run alone (--check-alone); A exits once drained;
#  - n1's kvacceld killed (SIGKILL) as soon as engine D has started its
#    migration of a request to n2/B, and started again: the engines move
#    the request on their own over UCX, D registers again with the new
#    daemon, and the request ends on exactly one node (D's or B, digests
#    as alone) or failed to its client, never on both, never lost;
#  - n3 partitioned (its veth down): its keys expire from n1's view, n3's
#    own view goes stale; healed: n3 is back in n1's view, n3 in sync;
#  - the etcd member n1's daemon talks to killed: it carries on through the
#    other members, in sync;
#  - that member back, then the leader killed: after the election every
#    view is in sync again with the three nodes, none lost or twice;
#  - a second member killed (quorum lost): every daemon keeps running, every
#    view goes stale; both members back: all in sync again.
#
# Needs iproute2's ip at $IP, the veth module, etcd at $ETCD, libucp (UCX)
# and kvacceld, kvaccelctl, kvaccel-serve next to it or on PATH.
PATH=$(cd "$(dirname "$0")" && pwd):$PATH
IP=${IP:-/tests/xmig/ip-iproute2}
ETCD=${ETCD:-/tests/etcd/etcd}
export UCX_TLS=tcp UCX_MEM_MALLOC_HOOKS=no UCX_MEM_MMAP_HOOK_MODE=none
export UCX_WARN_UNUSED_ENV_VARS=n
t=/tmp/kvcluster3.$$
n=0
echo "TAP version 13"
if [ ! -x "$ETCD" ] || [ ! -x "$IP" ]; then
	echo "1..0 # SKIP no etcd ($ETCD) or no iproute2 ($IP) in the guest"
	exit 0
fi
mkdir -p $t /run/netns /var/run/netns /dev/shm
grep -q ' /dev/shm ' /proc/mounts || mount -t tmpfs tmpfs /dev/shm
ip_ok=0
$IP link set lo up 2>/dev/null
for i in 1 2 3; do
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
echo "1..14"

ok() { # status name [diagnostic file...]
	n=$((n + 1))
	st=$1 name=$2
	shift 2
	if [ "$st" -eq 0 ]; then
		echo "ok $n cluster3.$name"
	else
		echo "not ok $n cluster3.$name"
		for f in "$@"; do
			echo "# --- $f"
			tail -n 40 "$f" | sed 's/^/# /'
		done
	fi
}

# until SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds.
until_ok() {
	lim=$(($1 * 5))
	shift
	i=0
	while ! "$@" > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge $lim ] && return 1
		sleep 0.2
	done
	return 0
}

gone() { # pid seconds
	until_ok "$2" sh -c "! kill -0 $1"
}

# Programs start in a node's namespace as simple commands ("$IP netns exec
# nI PROG ... &"), never through a shell function: a function put in the
# background is a subshell, and $! (what the faults below kill) would be
# that shell, not the program.

ctl() { # I ARGS...: kvaccelctl against node I's daemon
	ns=$1
	shift
	kvaccelctl --socket $t/n$ns.sock "$@"
}

view() { # I: node I's view as JSON into $t/view.nI
	ctl $1 --json cluster > $t/view.n$1 2>&1
}

# has I NODES: node I's view holds NODES nodes (its status says so) and is in sync.
has() {
	view $1 || return 1
	tr -d ' \n' < $t/view.n$1 | grep -q "\"stale\":false,.*\"nodes\":$2,"
}

# lists I NODE: node I's view lists node NODE (a node entry: "self" follows its name).
lists() {
	view $1 && grep -A1 "\"node\": *\"$2\"" $t/view.n$1 | grep -q '"self"'
}

lacks() {
	view $1 && ! (grep -A1 "\"node\": *\"$2\"" $t/view.n$1 | grep -q '"self"')
}

stale() {
	view $1 && grep -q '"stale": *true' $t/view.n$1
}

# Three members; timings for a guest under software emulation.
CL=m1=http://10.78.1.2:2380,m2=http://10.78.2.2:2380,m3=http://10.78.3.2:2380
member() { # I [existing]
	$IP netns exec n$1 "$ETCD" --name m$1 --data-dir $t/etcd$1 \
		--listen-client-urls http://10.78.$1.2:2379 \
		--advertise-client-urls http://10.78.$1.2:2379 \
		--listen-peer-urls http://10.78.$1.2:2380 \
		--initial-advertise-peer-urls http://10.78.$1.2:2380 \
		--initial-cluster $CL --initial-cluster-state ${2:-new} \
		--heartbeat-interval 300 --election-timeout 3000 --log-level warn \
		>> $t/etcd$1.log 2>&1 &
	eval epid$1=\$!
}
for i in 1 2 3; do
	member $i
done
healthy() {
	wget -q -O - http://10.78.$1.2:2379/health 2>/dev/null | grep -q '"health":"true"'
}
until_ok 90 healthy 1 && until_ok 30 healthy 2 && until_ok 30 healthy 3
ok $? three_members_healthy $t/etcd1.log $t/etcd2.log $t/etcd3.log

# A daemon per node: its own member first, the others after it.
for i in 1 2 3; do
	eps=http://10.78.$i.2:2379
	for j in 1 2 3; do
		[ $j -eq $i ] || eps="$eps,http://10.78.$j.2:2379"
	done
	cat > $t/n$i.conf <<CONF
[daemon]
socket = $t/n$i.sock
metrics = off

[migration]
enabled = false
drain_to_other_nodes = true
migration_timeout_ms = 60000

[cluster]
enabled = true
endpoints = $eps
name = vm
node = n$i
lease_ttl = 10
update_interval_ms = 200
change_threshold = 0
timeout_ms = 2000
ucx_address = 10.78.$i.2:7700
CONF
	$IP netns exec n$i kvacceld --config $t/n$i.conf 2> $t/n$i.log &
	eval dpid$i=\$!
done

# Engines: B on n2 and C on n3 take migrations in (C is busy with a
# request of its own, and has fewer blocks: B is the least loaded, and
# has the most to spare once C is done); A on n1 decodes two requests.
engine() { # I NAME PORT ARGS...
	ns=$1 name=$2 port=$3
	shift 3
	KVACCELD_SOCKET=$t/n$ns.sock UCX_NET_DEVICES=e$ns $IP netns exec n$ns kvaccel-serve \
		--kvacceld $name --xfer 10.78.$ns.2:$port --check-alone --quiet "$@" \
		> $t/$name.out 2> $t/$name.err &
}
until_ok 30 test -S $t/n2.sock && until_ok 30 test -S $t/n3.sock && until_ok 30 test -S $t/n1.sock
engine 2 B 7802 --until-exit --blocks 256
bpid=$!
engine 3 C 7803 --until-exit --blocks 200 --max-tokens 1900 \
	--prompt "C keeps itself busy for a while."
cpid=$!

# shows I PATTERN: node I's view (one line) matches PATTERN.
shows() {
	ctl $1 --json cluster 2>/dev/null | tr -d ' \n' | grep -q "$2"
}
r=0
for i in 1 2 3; do
	until_ok 180 has $i 3 || r=1
done
until_ok 120 shows 1 '"xfer":"10.78.2.2:7802"' && until_ok 60 shows 1 '"xfer":"10.78.3.2:7803"' ||
	r=1
view 1
ok $r views_hold_three_nodes_and_transfer_addresses $t/view.n1 $t/view.n2 $t/view.n3 $t/n1.log \
	$t/B.err $t/C.err

# A starts now: it must still decode when the drain comes.
engine 1 A 7801 --blocks 256 --max-tokens 1500 \
	--prompt "The quick brown fox jumps over the lazy dog." \
	--prompt "Paged attention reads K and V through block tables."
apid=$!
r=0
# Until A decodes both (running 2 in its load; they are its candidates then).
until_ok 120 shows 1 '"name":"A","priority":0,"block_bytes":16384,"blocks_total":256,"blocks_free":[0-9]*,"running":2' ||
	r=1
ctl 1 migrate A 1 n9/B > $t/m2 2>&1 && r=1
grep -q 'no engine n9/B in the cluster view' $t/m2 || r=1
ctl 1 migrate A 1 n1/A > $t/m3 2>&1 && r=1
grep -q 'of this node' $t/m3 || r=1
ctl 1 migrate A 999999 n2/B > $t/m1 2>&1 && r=1
grep -q 'no candidate request 999999' $t/m1 || r=1
ok $r bad_remote_migrations_refused $t/m1 $t/m2 $t/m3 $t/A.err

ctl 1 drain A > $t/drain 2>&1
gone $apid 240
st=$?
wait $apid
a=$?
[ $st -eq 0 ] && [ $a -eq 0 ] && [ "$(grep -c 'migrated to n2/B' $t/A.out)" -eq 2 ]
ok $? drained_to_the_least_loaded_node $t/drain $t/A.out $t/A.err $t/n1.log

# n1's daemon recorded A's two migrations with their node (checked before
# that daemon is killed below: a new daemon starts with no records).
recorded() {
	ctl 1 --json migrations > $t/n1.mig 2>&1 &&
		[ "$(grep -o '"to_node": *"n2"' $t/n1.mig | wc -l)" -ge 2 ] &&
		[ "$(grep -o '"state": *"done"' $t/n1.mig | wc -l)" -ge 2 ]
}
until_ok 30 recorded
ok $? migrations_recorded_with_their_node $t/n1.mig

# n1's daemon killed once D has started a migration of its request to n2/B.
# (D serves until told to exit, so it is there when the daemon is back.)
engine 1 D 7804 --until-exit --blocks 256 --max-tokens 1500 --prompt "D's request moves while its daemon dies." \
	--prompt "D's second request stays on D."
Dpid=$!
r=0
until_ok 120 shows 1 '"name":"D","priority":0,"block_bytes":16384,"blocks_total":256,"blocks_free":[0-9]*,"running":2' ||
	r=1
ctl 1 migrate D 1 n2/B > $t/m4 2>&1 || r=1
# Killed once D has the order (the engines carry the transfer on their own).
until_ok 30 grep -q 'migration [0-9]* of request 1 to n2/B at .*: started' $t/D.err || r=1
kill -KILL $dpid1
wait $dpid1 2>/dev/null
rm -f $t/n1.sock
$IP netns exec n1 kvacceld --config $t/n1.conf 2> $t/n1b.log &
dpid1=$!
until_ok 60 grep -q 'registered again' $t/D.err || r=1
# The new daemon lists D (its own table: the old daemon's keys in etcd may
# outlive it by a TTL). SIGTERM ends D once its own requests are done.
until_ok 60 sh -c "kvaccelctl --socket $t/n1.sock engines 2>/dev/null | grep -qw D" || r=1
kill -TERM $Dpid
gone $Dpid 240 || r=1
wait $Dpid
d=$?
d_left=$(grep -c 'request 1: migrated to n2/B' $t/D.out)
d_here=$(grep -c '^request 1: [0-9]* prompt tokens' $t/D.out)
d_failed=$(grep -c '^request 1: failed ' $t/D.out)
echo "# D (exit $d): request 1 migrated $d_left, finished here $d_here, failed $d_failed"
[ $((d_left + d_here + d_failed)) -eq 1 ] || r=1
grep -q '^request 2: [0-9]* prompt tokens' $t/D.out || r=1
grep -q 'digests: identical to each request run alone (0 of' $t/D.out || r=1
until_ok 60 has 1 3 || r=1
ok $r daemon_killed_mid_migration_one_side $t/m4 $t/D.out $t/D.err $t/n1b.log

# B finishes A's two (and D's, if it came) with the digests of each alone;
# then drains of B and C end them.
ctl 2 drain B > /dev/null 2>&1
gone $bpid 300
wait $bpid
b=$?
[ $b -eq 0 ] && [ "$(grep -c 'migrated here after' $t/B.out)" -eq $((2 + d_left)) ] &&
	grep -q 'migrated digests: identical to each request run alone (0 differ' $t/B.out
ok $? digests_as_alone_across_nodes $t/B.out $t/B.err
ctl 3 drain C > /dev/null 2>&1
gone $cpid 300
wait $cpid

# n3 cut off: its keys expire from n1's view (TTL 10 s and an election); its own view goes stale.
$IP link set r3 down
until_ok 60 lacks 1 n3 && until_ok 60 stale 3
ok $? partitioned_node_expires $t/view.n1 $t/view.n3 $t/n3.log
$IP link set r3 up
until_ok 60 lists 1 n3 && until_ok 60 has 3 3
ok $? healed_node_back $t/view.n1 $t/view.n3 $t/n3.log

# The member n1's daemon talks to first, killed: on through the others.
kill -KILL $epid1
wait $epid1 2>/dev/null
sleep 4
until_ok 60 has 1 3 && until_ok 30 has 2 3
ok $? member_lost_publishing_resumes $t/view.n1 $t/n1.log $t/etcd2.log

# is_leader I: member I says it is the leader (its own id is the leader's).
is_leader() {
	wget -q -O - --header 'Content-Type: application/json' --post-data '{}' \
		http://10.78.$1.2:2379/v3/maintenance/status > $t/status.m$1 2>/dev/null || return 1
	self=$(grep -o '"member_id":"[0-9]*"' $t/status.m$1 | cut -d'"' -f4)
	[ -n "$self" ] && grep -q "\"leader\":\"$self\"" $t/status.m$1
}
leader() {
	for i in 1 2 3; do
		is_leader $i && { echo $i; return 0; }
	done
	return 1
}
all_have_three() {
	has 1 3 && has 2 3 && has 3 3
}

# The killed member back (its data kept): three members, and the leader
# killed: an election, then every node's view in sync again with three
# nodes (none lost, none twice).
member 1 existing
until_ok 60 healthy 1 && until_ok 60 leader > /dev/null && until_ok 60 all_have_three
r=$?
l=$(leader)
echo "# leader: m$l"
[ -n "$l" ] || r=1
eval kill -KILL \$epid$l
eval wait \$epid$l 2>/dev/null
until_ok 60 all_have_three || r=1
ok $r leader_lost_publishing_resumes $t/view.n1 $t/view.n2 $t/view.n3 $t/n1.log $t/n2.log $t/n3.log

# A second member killed (one of three left, no quorum): every daemon keeps
# running and its view goes stale; both back: all in sync, three nodes.
for i in 1 2 3; do
	[ $i -ne $l ] && { k=$i; break; }
done
eval kill -KILL \$epid$k
eval wait \$epid$k 2>/dev/null
r=0
until_ok 60 stale 1 && until_ok 30 stale 2 && until_ok 30 stale 3 || r=1
for i in 1 2 3; do
	eval kill -0 \$dpid$i || r=1
done
ok $r quorum_lost_views_stale $t/view.n1 $t/view.n2 $t/view.n3 $t/n1.log
member $l existing
member $k existing
until_ok 90 healthy $l && until_ok 60 healthy $k && until_ok 90 all_have_three
ok $? quorum_back_in_sync $t/view.n1 $t/view.n2 $t/view.n3 $t/n1.log

for i in 1 2 3; do
	eval kill -TERM \$dpid$i
	eval wait \$dpid$i
done
kill -TERM $epid1 $epid2 $epid3 2>/dev/null
wait
kvaccelctl --json status > $t/status 2>&1
grep -q '"regions": *0[,}]' $t/status
ok $? no_region_left $t/status
rm -rf $t
