#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# kvacceld's cluster part in the guest, with the module loaded: one etcd
# member on loopback and three kvacceld (nodes n1, n2, n3, each with its own
# socket, metrics off, lease TTL 3 s) publishing into it. Checked from
# kvaccelctl cluster --json on each: every daemon sees the three nodes,
# published and in sync; a client's regions show in its node's usage; a
# daemon killed with SIGKILL vanishes from the others' view within its TTL;
# etcd killed: the survivors keep serving, their view marked stale; etcd
# back (the same data dir): in sync again, published under new leases; a
# clean stop revokes (the node leaves the others' view at once).
#
# kvacceld, kvaccelctl and kvt-client on PATH; etcd at $ETCD
# (/tests/etcd/etcd, shipped by tools/check; Debian's etcd links only libc).
# The kvaccel module's netlink family is not netns-aware (netnsok false),
# so the daemons share the root network namespace (see the report).
set -u
ETCD=${ETCD:-/tests/etcd/etcd}
t=/tmp/kvcluster.$$
n=0
echo "TAP version 13"
if [ ! -x "$ETCD" ]; then
	echo "1..0 # SKIP no etcd in the guest ($ETCD)"
	exit 0
fi
# The guest's loopback starts down; a kernel without IPv4 (the debug one) cannot serve etcd.
ip link set lo up 2> /dev/null || ifconfig lo 127.0.0.1 up 2> /dev/null
if ! ip addr show lo 2> /dev/null | grep -q 'inet 127.0.0.1'; then
	echo "1..0 # SKIP no IPv4 loopback in this kernel"
	exit 0
fi
echo "1..8"
mkdir -p $t

ok() { # status name [diagnostic file...]
	n=$((n + 1))
	st=$1 name=$2
	shift 2
	if [ "$st" -eq 0 ]; then
		echo "ok $n cluster.$name"
	else
		echo "not ok $n cluster.$name"
		for f in "$@"; do
			echo "# --- $f"
			tail -n 30 "$f" | sed 's/^/# /'
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

URL=http://127.0.0.1:23790
start_etcd() {
	# Timings for a guest under software emulation: a slow heartbeat, a long election.
	"$ETCD" --data-dir $t/etcd --name m1 --listen-client-urls $URL \
		--advertise-client-urls $URL --listen-peer-urls http://127.0.0.1:23800 \
		--initial-advertise-peer-urls http://127.0.0.1:23800 \
		--initial-cluster m1=http://127.0.0.1:23800 --heartbeat-interval 300 \
		--election-timeout 3000 --log-level warn >> $t/etcd.log 2>&1 &
	epid=$!
}

healthy() {
	wget -q -O - $URL/health 2>/dev/null | grep -q '"health":"true"'
}

view() { # N: node nI's view as JSON into $t/view.nI
	kvaccelctl --json --socket $t/n$1.sock cluster > $t/view.n$1 2>&1
}

# has N NODES: nI's view lists NODES nodes, is in sync and published.
has() {
	view $1 || return 1
	[ "$(grep -c '"ucx_address":"10.0.0.' $t/view.n$1)" -eq "$2" ] &&
		grep -q '"stale":false' $t/view.n$1 && grep -q '"published":true' $t/view.n$1
}

stale() {
	view $1 && grep -q '"stale":true' $t/view.n$1
}

start_etcd
until_ok 60 healthy
ok $? etcd_started $t/etcd.log

for i in 1 2 3; do
	cat > $t/n$i.conf <<CONF
[daemon]
socket = $t/n$i.sock
metrics = off

[cluster]
enabled = true
endpoints = $URL
name = vm
node = n$i
lease_ttl = 3
update_interval_ms = 200
change_threshold = 0
timeout_ms = 2000
ucx_address = 10.0.0.$i:13337
CONF
	kvacceld --config $t/n$i.conf 2> $t/n$i.log &
	eval pid$i=\$!
done
r=0
for i in 1 2 3; do
	until_ok 60 has $i 3 || r=1
done
ok $r three_nodes_see_each_other $t/view.n1 $t/view.n2 $t/view.n3 $t/n1.log

# A client's regions: n1's usage as its view shows it (all three share the
# module, so each node publishes the same usage; n1's own entry is enough).
mkfifo $t/hold
kvt-client -w < $t/hold > $t/client.out &
cpid=$!
exec 3> $t/hold
until_ok 30 grep -q holding $t/client.out
until_ok 30 sh -c "kvaccelctl --json --socket $t/n2.sock cluster | grep -q '\"usage\":[1-9]'"
ok $? usage_published $t/client.out $t/n2.log
exec 3>&-
wait $cpid

# n3 killed: gone from n1's and n2's views within its TTL (3 s, +2 s here).
kill -KILL $pid3
wait $pid3 2> /dev/null
until_ok 8 has 1 2 && until_ok 2 has 2 2
ok $? killed_node_expires $t/view.n1 $t/view.n2

# etcd killed: the daemons serve on, their views stale.
kill -KILL $epid
wait $epid 2> /dev/null
until_ok 20 stale 1 && until_ok 20 stale 2 && kvaccelctl --socket $t/n1.sock engines > $t/out 2>&1
ok $? etcd_lost_view_stale $t/view.n1 $t/out $t/n1.log

# Longer than a TTL without etcd: the leases are given up; etcd back: new ones.
sleep 4
start_etcd
until_ok 60 healthy && until_ok 60 has 1 2 && until_ok 20 has 2 2 &&
	grep -q 'publishing again under a new lease' $t/n1.log
ok $? etcd_back_republished $t/view.n1 $t/n1.log $t/etcd.log

# A clean stop revokes the lease: n1 leaves n2's view at once (well within the TTL).
kill -TERM $pid1
wait $pid1
s=$?
until_ok 2 has 2 1
r=$?
[ $s -eq 0 ] && [ $r -eq 0 ]
ok $? clean_stop_revokes $t/view.n2 $t/n1.log

kill -TERM $pid2
wait $pid2
s=$?
kill -TERM $epid
wait $epid 2> /dev/null
[ $s -eq 0 ] && grep -q stopping $t/n2.log
ok $? stopped $t/n2.log
rm -rf $t
