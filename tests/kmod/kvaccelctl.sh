#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# kvaccelctl against the module: tables and --json, admin commands and
# their errors, watch, an unprivileged caller, the module not loaded.
# Runs in the guest (tests/kmod/run.sh); kvaccelctl and kvt-client are on
# PATH, the module is at /lib/modules/kvaccel.ko.
ko=/lib/modules/kvaccel.ko
t=/tmp/kvaccelctl.$$
mkdir -p $t
n=0
echo "TAP version 13"
echo "1..15"

ok() { # condition-status name [diagnostic file]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n kvaccelctl.$2"
	else
		echo "not ok $n kvaccelctl.$2"
		[ -n "${3:-}" ] && sed 's/^/# /' "$3"
	fi
}

# A client holding two regions, waiting on a fifo.
mkfifo $t/hold
kvt-client -w < $t/hold > $t/client.out &
cpid=$!
exec 3> $t/hold
i=0
while ! grep -q holding $t/client.out 2>/dev/null && [ $i -lt 200 ]; do
	sleep 0.1
	i=$((i + 1))
done

kvaccelctl status > $t/out 2>&1
grep -q '^limit ' $t/out && grep -q '^usage ' $t/out && grep -q '^clients  *1$' $t/out
ok $? status_table $t/out

kvaccelctl --json status > $t/out 2>&1
grep -q '"abi_version":' $t/out && grep -q '"clients":1,' $t/out &&
	grep -q '"usage":[1-9]' $t/out
ok $? status_json $t/out

kvaccelctl clients > $t/out 2>&1
grep -qE "^ +[0-9]+ +$cpid +0 +kvt-client " $t/out
ok $? clients_table $t/out

kvaccelctl --json regions > $t/out 2>&1
[ "$(grep -c "\"pid\":$cpid," $t/out)" -ge 2 ]
ok $? regions_json $t/out

kvaccelctl quota set $cpid 64M > $t/out 2>&1 &&
	kvaccelctl --json clients > $t/out 2>&1 && grep -q '"quota":67108864' $t/out
ok $? quota_set $t/out

kvaccelctl limit set 3000K > $t/out 2>&1
[ $? -eq 1 ] && grep -q 'limit set: Invalid argument: must be a multiple of 1 MiB' $t/out
ok $? limit_not_mib $t/out

kvaccelctl limit set 12Q > $t/out 2>&1
[ $? -eq 2 ] && grep -q "bad size '12Q'" $t/out
ok $? bad_size $t/out

kvaccelctl watermarks set 1M 2M > $t/out 2>&1
[ $? -eq 1 ] && grep -q 'low <= high' $t/out
ok $? watermarks_order $t/out

kvaccelctl quota set 1 1G > $t/out 2>&1
[ $? -eq 1 ] && grep -q 'No such process' $t/out
ok $? quota_no_client $t/out

# Another user sees none of root's clients (root's client is holding).
kvt-client -u 65534 kvaccelctl clients > $t/out 2>&1
[ $? -eq 0 ] && [ "$(wc -l < $t/out)" -eq 1 ] && grep -q '^ *ID ' $t/out
ok $? unprivileged_sees_own_only $t/out

exec 3>&-
wait $cpid

# watch_client ARGS...: run kvaccelctl ARGS (a watch) in the background, wait until it
# listens, run a short client, wait for watch to end; its status in $st.
watch_client() {
	rm -f $t/watch.err
	kvaccelctl "$@" > $t/watch 2> $t/watch.err &
	wpid=$!
	i=0
	while ! grep -q watching $t/watch.err 2>/dev/null && [ $i -lt 200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kvt-client
	wait $wpid
	st=$?
}

# A client opens and creates regions while we listen.
watch_client watch --count 2 --timeout 60
[ $st -eq 0 ] && grep -q '^client-open .*comm=kvt-client' $t/watch &&
	grep -q '^region-create .*size=' $t/watch
ok $? watch $t/watch

watch_client --json watch --count 1 --timeout 60
[ $st -eq 0 ] && grep -q '^{.*"event":"client-open"' $t/watch
ok $? watch_json $t/watch

# Another user, without capabilities: admin commands and watch are refused.
kvt-client -u 65534 kvaccelctl limit set 1G > $t/out 2>&1
[ $? -eq 1 ] && grep -q 'limit set: permission denied (needs CAP_NET_ADMIN)' $t/out
ok $? unprivileged_admin $t/out

kvt-client -u 65534 kvaccelctl watch --timeout 1 > $t/out 2>&1
[ $? -eq 1 ] && grep -q 'permission denied' $t/out
ok $? unprivileged_watch $t/out

rmmod kvaccel
kvaccelctl status > $t/out 2>&1
st=$?
insmod $ko
[ $st -eq 1 ] && grep -q 'the kvaccel module is not loaded' $t/out
ok $? module_not_loaded $t/out

rm -rf $t
