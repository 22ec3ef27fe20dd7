#!/bin/sh
# SPDX-License-Identifier: MIT
# vm-bench-moe-scale.sh - elastic MoE scale-up on a node (in the VM, with
# kvacceld, kvaccelctl and kvaccel-serve on PATH): how long a new engine
# takes from its start to serving when its experts come from a running
# engine's expert store (--moe-from A: dma-bufs through kvacceld, no byte
# copied) against reading them from the safetensors file, and the running
# engine's step times while it hands its experts over.
# Documentation/moe.rst, "Scaling from peers". Options through the
# environment: SHAPE (the model), RUNS (scale-ups of each kind), DEVICES.
set -u
t=$(mktemp -d)
trap 'kill -KILL $apid 2> /dev/null; kill $dpid 2> /dev/null; rm -rf "$t"' EXIT
SHAPE=${SHAPE:---layers 4 --d-model 256 --heads 4 --kv-heads 4 --ff 1024 --experts 16 --top-k 2}
RUNS=${RUNS:-5}
DEVICES=${DEVICES:-2}
apid= dpid=

# Milliseconds on the clock of A's step log (CLOCK_MONOTONIC: /proc/uptime, no suspend here).
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# shellcheck disable=SC2086
kvaccel-serve $SHAPE --save-weights $t/w.st || exit 1
echo "model: $SHAPE: $(($(stat -c %s $t/w.st) >> 20)) MiB of weights in $t/w.st (tmpfs)"
cat > $t/kvd.conf <<CONF
[daemon]
socket = $t/engine.sock
metrics = off

[migration]
enabled = false
CONF
kvacceld --config $t/kvd.conf 2> $t/kvd.log &
dpid=$!
export KVACCELD_SOCKET=$t/engine.sock
i=0
while ! grep -q ready $t/kvd.log 2> /dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done

# A: serving (decoding four requests) for the whole benchmark; its step log's t0 is about a0.
# shellcheck disable=SC2086
kvaccel-serve --kvacceld A --weights $t/w.st --moe-store $DEVICES --until-exit --quiet \
	--step-log $t/a.csv --max-tokens 1500 --blocks 512 \
	--prompt "one" --prompt "two" --prompt "three" --prompt "four" > $t/a.out 2> $t/a.err &
apid=$!
a0=$(now_ms)
i=0
while ! grep -q 'ready to serve' $t/a.err 2> /dev/null && [ $i -lt 1200 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 2
echo "A serving: $(grep 'ready to serve' $t/a.err | sed 's/^kvaccel-serve: //')"

# Alternating scale-ups: a new engine from A's memory, then one from the file.
: > $t/windows
r=1
while [ $r -le $RUNS ]; do
	for how in peer file; do
		if [ $how = peer ]; then
			from="--moe-from A"
		else
			from=
		fi
		s=$(now_ms)
		# shellcheck disable=SC2086
		timeout 120 kvaccel-serve --kvacceld N$r$how --weights $t/w.st --moe-store $DEVICES $from \
			--prompt x --max-tokens 1 --quiet > /dev/null 2> $t/n.err || {
			cat $t/n.err $t/a.err
			exit 1
		}
		e=$(now_ms)
		echo "  scale-up $r from the $how: $((e - s)) ms to the first token and exit"
		echo "$((s - a0)) $((e - a0))" >> $t/windows
		sed -n "s/^kvaccel-serve: ready to serve \([0-9.]*\) ms after start (weights \([0-9.]*\) ms, expert store \([0-9.]*\) ms.*/$how \1 \2 \3/p" \
			$t/n.err >> $t/ready
		sed -n "s/^kvaccel-serve: experts from A: .* in \([0-9.]*\) ms/fetch \1/p" $t/n.err >> $t/ready
		sleep 1
	done
	r=$((r + 1))
done
kill -KILL $apid	# it decodes on: its step log has every line so far
wait $apid 2> /dev/null

med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
echo "scale-up, $RUNS runs each (median, ms): from start to ready to serve; of it, the"
echo "weights loaded (the file's non-expert tensors only with --moe-from), the store made"
echo "and filled; and the hand-off from A (WANT to the last copy received):"
for how in file peer; do
	printf '  %-5s ready %8s   weights %8s   expert store %8s' $how \
		"$(awk -v h=$how '$1 == h { print $2 }' $t/ready | med)" \
		"$(awk -v h=$how '$1 == h { print $3 }' $t/ready | med)" \
		"$(awk -v h=$how '$1 == h { print $4 }' $t/ready | med)"
	[ $how = peer ] && printf '   hand-off %8s' "$(awk '$1 == "fetch" { print $2 }' $t/ready | med)"
	echo
done
f=$(awk '$1 == "file" { print $2 }' $t/ready | med)
p=$(awk '$1 == "peer" { print $2 }' $t/ready | med)
awk -v f="$f" -v p="$p" 'BEGIN { if (p > 0) printf "  ready, file / peer: %.1fx\n", f / p }'
# A's decode steps inside the scale-up windows against those outside them.
awk -F, 'FNR == NR { split($0, w, " "); ws[++nw] = w[1] * 1000000; we[nw] = w[2] * 1000000; next }
	$1 == "step" && $5 > 0 {
		inside = 0
		for (i = 1; i <= nw; i++) if ($2 >= ws[i] && $2 <= we[i]) inside = 1
		print (inside ? "in " : "out ") $11 / 1e3 > "'"$t"'/steps"
	}' $t/windows $t/a.csv
for w in out in; do
	awk -v w=$w '$1 == w { print $2 }' $t/steps | sort -n > $t/s.$w
	printf "A's decode steps %-3s the scale-ups: %5d, median %7.0f us, max %7.0f us\n" \
		"$([ $w = in ] && echo during || echo outside)" "$(wc -l < $t/s.$w)" \
		"$(med < $t/s.$w)" "$(tail -1 $t/s.$w | grep . || echo 0)"
done
grep 'experts asked for by' $t/a.err | sort | uniq -c | sed 's/^/  /' | head -3
