#!/bin/sh
# SPDX-License-Identifier: MIT
# report_cli.sh KVACCEL_SIM - kvaccel-sim's systems, goodput, metrics and time series from the
# command line (TAP), run from the repository root: --system's errors (no such system, FILE:LINE),
# its options before the command line's, where systems are found; --goodput's table and JSON;
# Jain's index and token throughput in the report; --csv and --requests-csv against the JSON
# report of the same run; tools/sim/report.py --quick writes its report (plots only with
# gnuplot, a note without).
set -u
prog=$1
# shellcheck source=tests/lib/cli-tap.sh
. "$(dirname "$0")/../lib/cli-tap.sh"
prof=tools/sim/profiles/llama3-8b-h100.profile
wl="--synthetic --requests 300 --rate 6 --arrival gamma --cv 3 --seed 3
    --class hi:1:0:1000:100 --class lo:4:2:10000:200 --clients 4"

echo "1..18"
refused "per class without --goodput" 2 "--goodput-per-class: only with --goodput" \
	--profile "$prof" --synthetic --goodput-per-class
refused "unknown system" 2 "kvaccel-sim: --system x: no such system (tools/sim/systems/x.system)" \
	--system x --profile "$prof" --synthetic
printf -- '# a comment\n--policy slo   # the order\n--budget 512 1024\n' > "$tmp/bad.system"
refused "a value without its option" 2 "$tmp/bad.system:3: \"1024\": not an option" \
	--system "$tmp/bad.system" --profile "$prof" --synthetic
refused "no value" 2 "kvaccel-sim: --system: give a value" --profile "$prof" --synthetic --system
printf -- '--bogus 3\n' > "$tmp/b.system"
refused "an option of the file unknown" 2 "unrecognized option '--bogus'" \
	--system "$tmp/b.system" --profile "$prof" --synthetic
refused "bad goodput target" 2 "--goodput-target 1.5: above 1" --profile "$prof" --synthetic \
	--goodput --goodput-target 1.5
refused "csv with goodput" 2 "--csv $tmp/x.csv: not with --goodput" --profile "$prof" \
	--synthetic --goodput --csv "$tmp/x.csv"

# The system's options come first: the command line's own override them.
"$prog" --system flowprefill --profile "$prof" --synthetic --requests 5 > "$tmp/s.txt"
"$prog" --system flowprefill --policy fair --profile "$prof" --synthetic --requests 5 > "$tmp/o.txt"
if grep -q "policy slo, preempt cost" "$tmp/s.txt" && grep -q "policy fair," "$tmp/o.txt"; then
	ok "--system's options, then the command line's"
else
	not_ok "--system's options, then the command line's ($(head -1 "$tmp/s.txt"))"
fi
# Found through KVACCEL_SIM_SYSTEMS and --systems-dir, from another directory.
mkdir "$tmp/sys" && printf -- '--policy priority\n' > "$tmp/sys/mine.system"
abs=$(pwd)/$prof
if (cd "$tmp" && KVACCEL_SIM_SYSTEMS="$tmp/sys" "$prog" --system mine --profile "$abs" \
	--synthetic --requests 5 | grep -q "policy priority,") &&
   (cd "$tmp" && "$prog" --systems-dir "$tmp/sys" --system mine --profile "$abs" \
	--synthetic --requests 5 | grep -q "policy priority,") &&
   (cd "$tmp" && "$prog" --system sarathi --profile "$abs" --synthetic --requests 5 \
	2>&1 | grep -q "policy fcfs\|unrecognized option '--no-yield'"); then
	ok "systems found by KVACCEL_SIM_SYSTEMS, --systems-dir and beside the binary"
else
	not_ok "systems found by KVACCEL_SIM_SYSTEMS, --systems-dir and beside the binary"
fi
# Every shipped system reads: it runs, or stops only at an option this binary lacks.
bad=
for f in tools/sim/systems/*.system; do
	s=$(basename "$f" .system)
	if ! "$prog" --system "$s" --profile "$prof" --synthetic --requests 5 > /dev/null \
		2> "$tmp/e"; then
		grep -q "unrecognized option '--\(no-yield\|instances\|dispatch\|pd\)'" "$tmp/e" ||
			bad="$bad $s: $(head -1 "$tmp/e")"
	fi
done
if [ -z "$bad" ]; then ok "every shipped system reads"; else not_ok "shipped systems:$bad"; fi

# --goodput: the bracket and the bisection; the JSON's tries agree with its goodput.
# shellcheck disable=SC2086
"$prog" --profile "$prof" $wl --policy fcfs --goodput --json > "$tmp/g.json" 2> "$tmp/g.err"
if /usr/bin/python3 -c '
import json, sys
g = json.load(open(sys.argv[1]))
t = g["tries"]
met = [x["rate"] for x in t if x["attainment"] >= 0.9]
miss = [x["rate"] for x in t if x["attainment"] < 0.9]
ok = g["bracketed"] and g["goodput_rps"] == max(r for r in met if r < min(miss)) and \
     g["upper_rps"] == min(miss) and g["upper_rps"] / g["goodput_rps"] <= 1.01 and \
     t[0]["rate"] == 6 and g["target"] == 0.9
sys.exit(0 if ok else 1)' "$tmp/g.json" && [ "$(grep -c "^goodput: " "$tmp/g.err")" -ge 5 ]; then
	ok "--goodput --json: bracketed to 1 %, progress on stderr"
else
	not_ok "--goodput --json ($(head -c 300 "$tmp/g.json"))"
fi
# shellcheck disable=SC2086
"$prog" --profile "$prof" $wl --policy fcfs --goodput --goodput-target 0.5 2> /dev/null \
	> "$tmp/g.txt"
g90=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["goodput_rps"])' \
	"$tmp/g.json")
g50=$(sed -n 's/^goodput: \([0-9.e+]*\) requests\/s.*/\1/p' "$tmp/g.txt")
if [ -n "$g50" ] && /usr/bin/python3 -c "import sys; sys.exit(0 if $g50 >= $g90 else 1)" &&
   grep -q "^   1       6.0000     1.0000 " "$tmp/g.txt"; then
	ok "--goodput table: a lower target, a goodput as high ($g50 >= $g90)"
else
	not_ok "--goodput table ($(head -3 "$tmp/g.txt"))"
fi

# One run: the JSON report, the time series and the requests, checked against each other.
# shellcheck disable=SC2086
"$prog" --profile "$prof" $wl --policy fair --json --csv "$tmp/ts.csv" --csv-interval 500 \
	--requests-csv "$tmp/rq.csv" > "$tmp/r.json"
check() {
	/usr/bin/python3 -c '
import csv, json, math, sys
r = json.load(open(sys.argv[1]))
ts = list(csv.DictReader(open(sys.argv[2])))
rq = list(csv.DictReader(open(sys.argv[3])))
o, e = r["overall"], r["engine"]
what = sys.argv[4]
if what == "jain":
    ok = 0.5 < e["jain_fairness"] <= 1 and e["fairness_clients"] == 4 and \
         abs(e["output_tokens_per_s"] * r["duration_s"] - e["decode_tokens"] - o["completed"]) < 1
elif what == "csv":
    ok = sum(int(x["arrivals"]) for x in ts) == 300 and \
         sum(int(x["completions"]) for x in ts) == o["completed"] and \
         sum(int(x["first_tokens"]) for x in ts) == o["completed"] and \
         int(ts[-1]["in_flight"]) == 0 and max(int(x["in_flight"]) for x in ts) > 0 and \
         len(ts) == math.floor(r["duration_s"] / 0.5 + 1e-9) + 1 and \
         abs(sum(float(x["output_tokens_per_s"]) * 0.5 for x in ts) -
             e["decode_tokens"] - o["completed"]) < 1
else:
    t = sorted(float(x["ttft_ms"]) for x in rq)
    ok = len(rq) == 300 and sum(int(x["slo_met"]) for x in rq) == o["slo_met"] and \
         abs(t[len(t) // 2 - 1] + (t[len(t) // 2] - t[len(t) // 2 - 1]) * 0.5 -
             o["ttft_ms"]["p50"]) < 0.01
sys.exit(0 if ok else 1)' "$tmp/r.json" "$tmp/ts.csv" "$tmp/rq.csv" "$1"
}
if check jain; then ok "Jain's index over 4 clients, output tokens/s"; else not_ok "jain"; fi
if check csv; then ok "--csv: the rows add up to the report"; else not_ok "--csv"; fi
if check requests; then ok "--requests-csv: SLOs met and TTFT p50 as the report's"; else
	not_ok "--requests-csv"; fi
# The table has the fairness line.
# shellcheck disable=SC2086
if "$prog" --profile "$prof" $wl | grep -q "^fairness: Jain's index 0\.[0-9]* over 4 clients"; then
	ok "the table's fairness line"
else
	not_ok "the table's fairness line"
fi

# The report script, quick: its document; plots with gnuplot, a note without.
if /usr/bin/python3 tools/sim/report.py --quick --bin "$prog" --out "$tmp/rep" \
	2> "$tmp/rep.err" && grep -q "^| llama3-8b-h100 | " "$tmp/rep/report.md" &&
   grep -q "^| vllm-v1 | " "$tmp/rep/report.md" && grep -q "^## (c) " "$tmp/rep/report.md"; then
	ok "report.py --quick writes report.md"
else
	not_ok "report.py --quick ($(tail -3 "$tmp/rep.err"))"
fi
if command -v gnuplot > /dev/null; then
	if [ -s "$tmp/rep/ttft-cdf-llama3-8b-h100.svg" ] &&
	   [ -s "$tmp/rep/attainment-llama3-8b-h100.png" ]; then
		ok "plots (gnuplot)"
	else
		not_ok "plots (gnuplot)"
	fi
else
	if grep -q "gnuplot is not installed" "$tmp/rep/report.md"; then
		ok "no gnuplot: no plots, a note # SKIP gnuplot not installed"
	else
		not_ok "no gnuplot: no note"
	fi
fi
[ "$failed" = 0 ]
