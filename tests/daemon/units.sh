#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# units.sh TOP KVACCELD - kvacceld's systemd units, offline: `systemd-analyze
# verify` of the service and the socket (ExecStart pointed at the built
# daemon), the sysusers snippet (systemd-sysusers --dry-run in a scratch
# root), the socket the units agree on, and the service's exposure score
# (`systemd-analyze security --offline=yes`) at most systemd-networkd's on
# this system. Prints TAP; SKIP lines where systemd's tools are missing.
set -u
top=$1 kvacceld=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
n=0
echo "TAP version 13"
echo "1..5"
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n kvacceld_units.$2${3:+ # $3}"; else echo "not ok $n kvacceld_units.$2${3:+ # $3}"; fi; }
skip() { n=$((n + 1)); echo "ok $n kvacceld_units.$1 # SKIP $2"; }

svc=$top/daemon/kvacceld.service sock=$top/daemon/kvacceld.socket

if ! command -v systemd-analyze > /dev/null 2>&1; then
	skip verify "no systemd-analyze"
	skip security_score "no systemd-analyze"
else
	sed "s|/usr/sbin/kvacceld|$kvacceld|" "$svc" > "$d/kvacceld.service"
	cp "$sock" "$d/kvacceld.socket"
	SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$d/kvacceld.service" \
		"$d/kvacceld.socket" > "$d/verify.log" 2>&1
	r=$?
	[ -s "$d/verify.log" ] && r=1
	ok $r verify
	[ $r -eq 0 ] || sed 's/^/# /' "$d/verify.log"

	score() { systemd-analyze security --offline=yes "$1" 2>/dev/null |
		  sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p'; }
	ours=$(score "$svc")
	nd=/lib/systemd/system/systemd-networkd.service
	if [ -z "$ours" ]; then
		ok 1 security_score "no score from systemd-analyze security --offline"
	elif [ ! -f "$nd" ]; then
		# No networkd here: its score on Debian 12 (systemd 252).
		awk -v a="$ours" 'BEGIN { exit !(a <= 2.8) }'
		ok $? security_score "kvacceld $ours, networkd absent (2.8 on Debian 12)"
	else
		theirs=$(score "$nd")
		awk -v a="$ours" -v b="$theirs" 'BEGIN { exit !(a <= b) }'
		ok $? security_score "kvacceld $ours, systemd-networkd $theirs"
	fi
fi

if ! command -v systemd-sysusers > /dev/null 2>&1; then
	skip sysusers "no systemd-sysusers"
else
	mkdir -p "$d/root/etc"
	systemd-sysusers --root="$d/root" --dry-run "$top/daemon/kvacceld.sysusers" \
		> "$d/sysusers.log" 2>&1
	r=$?
	grep -q "Creating user 'kvacceld'.*GID" "$d/sysusers.log" || r=1
	ok $r sysusers
	[ $r -eq 0 ] || sed 's/^/# /' "$d/sysusers.log"
fi

# The socket unit's path is the daemon's default, and the service is its user.
grep -qx 'ListenSequentialPacket=/run/kvacceld/engine.sock' "$sock" &&
	grep -q '"/run/kvacceld/engine.sock"' "$top/daemon/config.c"
ok $? socket_path
grep -qx 'User=kvacceld' "$svc" && grep -qx 'Requires=kvacceld.socket' "$svc" &&
	grep -q '^FileDescriptorStoreMax=[1-9]' "$svc" && grep -q '^WatchdogSec=' "$svc"
ok $? service_settings
