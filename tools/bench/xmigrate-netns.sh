#!/bin/sh
# SPDX-License-Identifier: MIT
# In the VM (make bench-xmigrate): two "nodes" as network namespaces xa and
# xb joined by a veth pair, then kvaccel-bench-xmigrate with its source in xa
# and its destination in xb, so every put crosses the veth pair (UCX tcp).
# Arguments: the sequence lengths (default the benchmark's).
set -eu
IP=${IP:-/bin/ip-iproute2}
mkdir -p /run/netns /dev/shm
grep -q ' /dev/shm ' /proc/mounts || mount -t tmpfs tmpfs /dev/shm
$IP netns add xa
$IP netns add xb
$IP link add veth0 type veth peer name veth1
$IP link set veth0 netns xa
$IP link set veth1 netns xb
$IP -n xa addr add 10.77.0.1/24 dev veth0
$IP -n xb addr add 10.77.0.2/24 dev veth1
for ns in xa xb; do
	$IP -n $ns link set lo up
done
$IP -n xa link set veth0 up
$IP -n xb link set veth1 up
$IP netns exec xa ping -c 1 -W 5 10.77.0.2 > /dev/null

kvaccel-bench-xmigrate --netns xa:xb --addr 10.77.0.2 --devs veth0:veth1 "$@"
