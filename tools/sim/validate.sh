#!/bin/sh
# SPDX-License-Identifier: MIT
# validate.sh BUILD_DIR KVER [--native] - `make sim-validate`: kvaccel-sim against kvaccel-serve.
# In ONE VM boot (tools/vmtest, KVER with the module), tools/sim/vm-validate.sh runs
# kvaccel-serve with its step log on under (a) a calibration workload (two halves, before and
# after (b)) and (b) the validation workload, all through kvaccel-loadgen --json. Back here:
# `kvaccel-sim calibrate` fits a profile from (a)'s step logs only, kvaccel-sim runs (b) (the
# same workload options and seed, the same pool and scheduler settings) on it, and the table
# compares TTFT and TPOT p50 and p90, measured and simulated: PASS within 15 %. --native runs
# the guest script here on memfd tiers instead (no VM: for trying the pipeline, not for the
# figures). SIM_VALIDATE_CPUS sets the guest's CPUs (default 1: the engine, the HTTP threads
# and kvaccel-loadgen share one, so that a token's delivery adds to its step's time rather
# than to a second CPU's until that one is full). Outputs in BUILD_DIR/sim-validate.
# Exit status: 0 all within 15 %, 1 a miss or a failed run, 2 bad usage.
set -u
[ $# -ge 2 ] || { echo "usage: validate.sh BUILD_DIR KVER [--native]" >&2; exit 2; }
b=$1
kver=$2
mode=${3:-vm}
out=$b/sim-validate
sim=$b/tools/kvaccel-sim
mkdir -p "$out"
rm -f "$out"/calibration* "$out"/validation.* "$out"/serve.profile "$out"/table.txt

if [ "$mode" = --native ]; then
	SIM_VALIDATE_SERVE=--memfd sh tools/sim/vm-validate.sh "$b/tools/kvaccel-serve" \
		"$b/tools/kvaccel-loadgen" > "$out/output.log" 2>&1
	vrc=$?
	gpu="native, memfd tiers"
else
	tools/vmtest -k "$kver" -M 3G -s "${SIM_VALIDATE_CPUS:-1}" -m "$b/$kver/kmod/kvaccel.ko" \
		-a "$b/tools/kvaccel-serve:/bin/kvaccel-serve" \
		-a "$b/tools/kvaccel-loadgen:/bin/kvaccel-loadgen" \
		-a tools/sim/vm-validate.sh:/bin/vm-validate.sh \
		-o "$out" -t 1800 -- vm-validate.sh
	vrc=$?
	gpu="QEMU TCG, ${SIM_VALIDATE_CPUS:-1} vCPU(s), $kver"
fi
tr -d '\r' < "$out/output.log" > "$out/guest.log"
# The guest's sections, each to its file.
awk -v dir="$out" '
	/^=== (steplog|report) / { f = dir "/" $3 ($2 == "steplog" ? ".csv" : ".json"); next }
	/^=== end$/ { if (f) close(f); f = ""; next }
	f { print > f }
	/^=== workload / { w = dir "/" $3 ".workload"; sub(/^=== workload [a-z0-9-]* /, "");
			   print > w; close(w) }
	/^=== options / { o = dir "/options"; sub(/^=== options /, ""); print > o; close(o) }
	/^=== speed / { print }' "$out/guest.log"
for f in calibration-1.csv calibration-2.csv validation.json validation.workload options; do
	if [ ! -s "$out/$f" ]; then
		echo "sim-validate: the guest gave no $f (exit status $vrc); its output:" >&2
		tail -n 40 "$out/guest.log" >&2
		exit 1
	fi
done
[ "$vrc" = 0 ] || echo "sim-validate: the guest's run exited $vrc (going on with its output)" >&2

# The profile, from the calibration workload's steps only (its two halves).
"$sim" calibrate --name kvaccel-serve-validate --gpu "$gpu" --out "$out/serve.profile" \
	"$out/calibration-1.csv" "$out/calibration-2.csv" || exit 1
# (b)'s steps fitted on their own, to compare with (a)'s fit (not used), and the host's speed
# in each run: the mean period of the steps of one decode and nothing else.
"$sim" calibrate "$out/validation.csv" 2> /dev/null | sed -n '2,3s/^/  (b) alone: /p'
for f in calibration-1 validation calibration-2; do
	awk -F, -v f=$f '$1 == "step" && $4 == 0 && $5 == 1 && !$12 { n++; s += $11 }
		END { if (n) printf "  %s: %d steps of one decode, %.2f ms a step on average\n",
			  f, n, s / n / 1e6 }' "$out/$f.csv"
done

# The same workload and settings in the simulator.
wl=$(cat "$out/validation.workload")
# The engine's options as the simulator's (budget, chunk, running requests, policy, preemption,
# no yields).
eng=$(awk '{ for (i = 1; i < NF; i++) {
	if ($i == "--budget" || $i == "--chunk" || $i == "--policy" || $i == "--preempt")
		printf "%s %s ", $i, $(i + 1);
	if ($i == "--max-running") printf "--max-seqs %s ", $(i + 1)
	if ($i == "--no-yield") printf "--no-yield " } }' "$out/options")
echo "sim-validate: kvaccel-sim --profile $out/serve.profile $wl $eng"
# shellcheck disable=SC2086
"$sim" --profile "$out/serve.profile" $wl $eng --json > "$out/validation.sim.json" || exit 1

/usr/bin/python3 - "$out" > "$out/table.txt" <<'EOF'
import json, sys
d = sys.argv[1]
meas = json.load(open(d + "/validation.json"))["overall"]
sim = json.load(open(d + "/validation.sim.json"))["overall"]
print("measured: %d requests, %d completed; simulated: %d completed"
      % (meas["requests"], meas["completed"], sim["completed"]))
print("%-10s %12s %12s %8s  %s" % ("metric", "measured ms", "simulated ms", "error", "within 15 %"))
bad = 0
for m, name in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT")):
    for p in ("p50", "p90"):
        a, b = meas[m][p], sim[m][p]
        err = (b - a) / a if a else float("inf")
        ok = abs(err) <= 0.15
        bad += not ok
        print("%-10s %12.1f %12.1f %+7.1f%%  %s" % (name + " " + p, a, b, 100 * err,
              "PASS" if ok else "FAIL"))
print("sim-validate: %s" % ("PASS" if not bad else "FAIL (%d of 4 outside 15 %%)" % bad))
sys.exit(1 if bad or meas["completed"] != meas["requests"] else 0)
EOF
rc=$?
cat "$out/table.txt"
exit $rc
