#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/serve/xmigrate_netns_vm.sh [KVER] - build serve_xmigrate_vm and run
# tests/serve/xmigrate_netns.sh in a VM (tools/vmtest): the veth module,
# iproute2's ip (busybox's has no netns), libucp.so.0 (dlopen'd by
# libaccel; its libucs, libuct, libucm, libnuma come along through ldd)
# and the loader's cache shipped. Output in /tmp/vm-xmig.
set -eu
kver=${1:-6.12.117+deb12-amd64}
cd "$(dirname "$0")/../.."
make build/tests/serve_xmigrate_vm
lib=/usr/lib/x86_64-linux-gnu
exec tools/vmtest -k "$kver" -m "build/$kver/kmod/kvaccel.ko" -l vgem -l veth \
	-a build/tests/serve_xmigrate_vm:/tests/bin/serve_xmigrate_vm \
	-a tests/serve/xmigrate_netns.sh:/tests/xmig/xmigrate_netns.sh \
	-a "$(readlink -f "$(command -v ip)")":/tests/xmig/ip-iproute2 \
	-a "$(readlink -f $lib/libucp.so.0)":$lib/libucp.so.0 \
	-a /etc/ld.so.cache:/etc/ld.so.cache \
	-o /tmp/vm-xmig -t 600 -- /tests/bin/serve_xmigrate_vm
