#!/bin/sh
# The cluster part of make demo: three nodes as network namespaces of the
# guest (n1, n2, n3, routed through the root one), an etcd member and a
# kvacceld on each, engine A decoding on n1, B idle on n2, C busy on n3.
# `kvaccelctl cluster` on n1 shows the view; `kvaccelctl drain A` moves A's
# request to the least loaded engine of another node the view shows (B),
# over UCX in stages while it decodes; B's digests equal the request alone.
# The same as tests/daemon/cluster_netns_vm.sh checks, shown.
set -u
IP=/bin/ip-iproute2
t=/tmp/cluster-demo
export UCX_TLS=tcp UCX_MEM_MALLOC_HOOKS=no UCX_MEM_MMAP_HOOK_MODE=none
export UCX_WARN_UNUSED_ENV_VARS=n
mkdir -p $t /run/netns /dev/shm
grep -q ' /dev/shm ' /proc/mounts || mount -t tmpfs tmpfs /dev/shm
echo 1 > /proc/sys/net/ipv4/ip_forward
$IP link set lo up
CL= EPS=
for i in 1 2 3; do
	$IP netns add n$i
	$IP link add r$i type veth peer name e$i
	$IP link set e$i netns n$i
	$IP addr add 10.78.$i.1/24 dev r$i
	$IP link set r$i up
	$IP -n n$i addr add 10.78.$i.2/24 dev e$i
	$IP -n n$i link set e$i up
	$IP -n n$i link set lo up
	$IP -n n$i route add default via 10.78.$i.1
	CL=$CL${CL:+,}m$i=http://10.78.$i.2:2380
	EPS=$EPS${EPS:+,}http://10.78.$i.2:2379
done

wait_for() { # SECONDS COMMAND...
	lim=$(($1 * 5)) i=0
	shift
	until "$@" > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge $lim ] && return 1
		sleep 0.2
	done
}
in_sync() { # I: node I's view holds three nodes (its status says so), in sync
	kvaccelctl --socket $t/n$1.sock --json cluster 2>/dev/null | tr -d ' \n' |
		grep -q '"stale":false,.*"nodes":3,'
}

for i in 1 2 3; do
	$IP netns exec n$i etcd --name m$i --data-dir $t/etcd$i \
		--listen-client-urls http://10.78.$i.2:2379 \
		--advertise-client-urls http://10.78.$i.2:2379 \
		--listen-peer-urls http://10.78.$i.2:2380 \
		--initial-advertise-peer-urls http://10.78.$i.2:2380 --initial-cluster $CL \
		--heartbeat-interval 300 --election-timeout 3000 --log-level warn \
		> $t/etcd$i.log 2>&1 &
done
healthy() {
	wget -q -O - http://10.78.$1.2:2379/health 2>/dev/null | grep -q '"health":"true"'
}
wait_for 120 healthy 1 && wait_for 60 healthy 2 && wait_for 60 healthy 3 ||
	{ echo "etcd did not start"; tail $t/etcd*.log; exit 1; }
for i in 1 2 3; do
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
endpoints = $EPS
name = demo
node = n$i
lease_ttl = 10
update_interval_ms = 200
change_threshold = 0
timeout_ms = 2000
CONF
	$IP netns exec n$i kvacceld --config $t/n$i.conf 2> $t/n$i.log &
done
engine() { # I NAME ARGS...
	ns=$1 name=$2
	shift 2
	KVACCELD_SOCKET=$t/n$ns.sock UCX_NET_DEVICES=e$ns $IP netns exec n$ns kvaccel-serve \
		--kvacceld $name --xfer 10.78.$ns.2:780$ns --blocks 256 --check-alone "$@" \
		> $t/$name.out 2> $t/$name.err &
}
wait_for 60 test -S $t/n1.sock && wait_for 60 test -S $t/n2.sock && wait_for 60 test -S $t/n3.sock
engine 2 B --until-exit
b=$!
engine 3 C --until-exit --quiet --max-tokens 1900 --prompt "C is busy with a request of its own."
c=$!
wait_for 180 in_sync 1 && wait_for 60 in_sync 2 && wait_for 60 in_sync 3 &&
	wait_for 120 sh -c "kvaccelctl --socket $t/n1.sock --json cluster | tr -d ' \n' | grep -q '\"xfer\":\"10.78.2.2:7802\"'" &&
	engine 1 A --max-tokens 1200 --prompt "Migrate me across nodes: the quick brown fox." &&
	a=$! &&
	wait_for 120 sh -c "kvaccelctl --socket $t/n1.sock --json cluster | tr -d ' \n' | grep -q '\"name\":\"A\",[^}]*\"running\":1'" ||
	{ echo "the three nodes did not see each other"; kvaccelctl --socket $t/n1.sock cluster
	  tail $t/n*.log $t/*.err; exit 1; }
echo "-- kvaccelctl cluster (n1's view)"
kvaccelctl --socket $t/n1.sock cluster
echo "-- kvaccelctl drain A (on n1: no other engine there)"
kvaccelctl --socket $t/n1.sock drain A
wait $a || { echo "engine A failed"; cat $t/A.err; exit 1; }
echo "-- engine A's output"
grep '^request' $t/A.out
grep 'migration' $t/A.err
echo "-- kvaccelctl migrations (n1)"
kvaccelctl --socket $t/n1.sock migrations
# C stops (SIGTERM: a drain would send its request to B too); B, drained, exits.
kill -TERM $c
wait $c || true
kvaccelctl --socket $t/n2.sock drain B > /dev/null
wait $b || { echo "engine B failed"; cat $t/B.err; exit 1; }
echo "-- engine B's output (on n2: the request's first tokens were A's)"
sed -e 's/^\(  digests:\( [0-9a-f]*\)\{6\}\).*/\1 .../' \
	-e 's/^\(  text: .\{60\}\).*/\1.../' $t/B.out
for p in $(jobs -p); do kill $p 2>/dev/null; done
wait
grep -q 'migrated digests: identical' $t/B.out
