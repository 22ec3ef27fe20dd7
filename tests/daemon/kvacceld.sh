#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# kvacceld in the guest: --check-config on good and bad files, the
# configuration applied to the module at start, the view rebuilt from the
# kernel's dumps, events logged, a clean stop on SIGTERM. Leaves the module's
# settings as it found them (all off). kvacceld, kvaccelctl and kvt-client
# are on PATH.
t=/tmp/kvacceld.$$
mkdir -p $t
n=0
echo "TAP version 13"
echo "1..10"

ok() { # status name [diagnostic file]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n kvacceld.$2"
	else
		echo "not ok $n kvacceld.$2"
		[ -n "${3:-}" ] && sed 's/^/# /' "$3"
	fi
}

wait_for() { # pattern file
	i=0
	while ! grep -q "$1" "$2" 2>/dev/null && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q "$1" "$2"
}

cat > $t/good.conf <<CONF
[device]
limit = 512M
default_quota = 64M
high_watermark = 8M
low_watermark = 4M

[daemon]
socket = $t/engine.sock
metrics = off
CONF
printf '[device]\nlimit = 512M\nhigh_watermark = lots\n' > $t/bad.conf

kvacceld --config $t/good.conf --check-config > $t/out 2>&1
[ $? -eq 0 ] && grep -q 'configuration OK' $t/out
ok $? check_config_good $t/out

kvacceld --config $t/bad.conf --check-config > $t/out 2>&1
[ $? -eq 1 ] && grep -q "bad.conf:3: high_watermark: 'lots' is not a size" $t/out
ok $? check_config_bad_names_line $t/out

# A client holds regions before the daemon starts: the daemon must see it.
mkfifo $t/hold
kvt-client -w < $t/hold > $t/client.out &
cpid=$!
exec 3> $t/hold
wait_for holding $t/client.out

# Not holding the fifo open (fd 3), or the client never sees its end.
kvacceld --config $t/good.conf 2> $t/log 3>&- &
dpid=$!
wait_for 'ready' $t/log
grep -q 'ready: 1 clients, [1-9][0-9]* regions' $t/log
ok $? view_rebuilt_from_dumps $t/log

kvaccelctl --json status > $t/out 2>&1
grep -q '"limit":536870912' $t/out && grep -q '"default_quota":67108864' $t/out &&
	grep -q '"high_wm":8388608' $t/out && grep -q '"low_wm":4194304' $t/out
ok $? config_applied $t/out

exec 3>&-
wait $cpid
kvt-client
wait_for 'event region-destroy' $t/log
grep -q 'event client-open id=[0-9]* pid=[0-9]* comm=kvt-client' $t/log &&
	grep -q 'event region-create' $t/log && grep -q 'event client-close' $t/log
ok $? events_logged $t/log

# kvaccelctl asks the daemon: an engine (kvt-client holds none: an empty
# list), hand-offs, and a user without admin rights refused.
kvaccelctl --socket $t/engine.sock engines > $t/out 2>&1 &&
	grep -q '^NAME' $t/out && kvaccelctl --json --socket $t/engine.sock handoffs > $t/out2 2>&1 &&
	[ "$(tr -d ' \n' < $t/out2)" = "[]" ]
ok $? kvaccelctl_engines_handoffs $t/out
KVACCELD_SOCKET=$t/engine.sock kvt-client -u 65534 kvaccelctl engines > $t/out 2>&1
[ $? -eq 1 ] && grep -q 'permission denied: needs root or the daemon.s admin group' $t/out
ok $? kvaccelctl_engines_needs_admin $t/out

kill -TERM $dpid
wait $dpid
st=$?
[ $st -eq 0 ] && grep -q stopping $t/log
ok $? clean_stop $t/log

kvaccelctl --socket $t/engine.sock engines > $t/out 2>&1
[ $? -eq 1 ] && grep -q "kvacceld is not running (no socket at $t/engine.sock)" $t/out
ok $? kvaccelctl_daemon_not_running $t/out

# An override that breaks the checks is refused before anything is applied.
kvacceld --config $t/good.conf --low-watermark 16M > $t/out 2>&1
[ $? -eq 1 ] && grep -q 'low_watermark <= high_watermark' $t/out
ok $? override_checked $t/out

kvaccelctl limit set 0 && kvaccelctl default-quota set 0 && kvaccelctl watermarks off
rm -rf $t
