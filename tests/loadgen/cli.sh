#!/bin/sh
# SPDX-License-Identifier: MIT
# cli.sh KVACCEL_LOADGEN - kvaccel-loadgen's command line (TAP): bad options exit 2 with a
# message; a bad trace exits 2 with FILE:LINE; --dump-workload is the same for the same seed
# and reads back as a trace; a refused connection is counted in the report (as a transport
# failure of its class), not fatal.
set -u
lg=$1
prog=$lg
# shellcheck source=tests/lib/cli-tap.sh
. "$(dirname "$0")/../lib/cli-tap.sh"

echo "1..17"
refused "no workload" 2 "give one of --trace FILE and --synthetic"
refused "both workloads" 2 "give one of --trace FILE and --synthetic" --synthetic --trace x
refused "unknown option" 2 "unrecognized option '--bogus'" --synthetic --bogus
refused "bad rate" 2 "--rate fast: not a number" --synthetic --rate fast
refused "zero requests" 2 "--requests 0: not in 1.." --synthetic --requests 0
refused "bad arrival" 2 "--arrival uniform: not poisson, gamma or burst" --synthetic \
	--arrival uniform
refused "bad dist" 2 "--input normal:3: not fixed:N" --synthetic --input normal:3
refused "bad class" 2 "--class hi:1:2: not NAME:WEIGHT" --synthetic --class hi:1:2
refused "timeout too long" 2 "--timeout 1e12: more than a day" --synthetic --timeout 1e12
refused "bad url" 2 "--url https://x: not http://HOST" --synthetic --url https://x
refused "missing trace" 2 "$tmp/none.jsonl: No such file or directory" --trace "$tmp/none.jsonl"
printf '{"timestamp": 0, "input_length": 4, "output_length": 2}\n{"timestamp": 5}\n' \
	> "$tmp/bad.jsonl"
refused "bad trace line" 2 "$tmp/bad.jsonl:2: no \"output_length\"" --trace "$tmp/bad.jsonl"

if "$lg" --help | grep -q "usage: kvaccel-loadgen"; then ok "--help"; else not_ok "--help"; fi

gen="--synthetic --requests 50 --rate 20 --arrival gamma --cv 3 --seed 9
     --class online:1:2:250:50 --class offline:3:0:0:0 --max-input 300 --max-output 40"
# shellcheck disable=SC2086
"$lg" $gen --dump-workload > "$tmp/a.jsonl" && "$lg" $gen --dump-workload > "$tmp/b.jsonl"
if [ "$(wc -l < "$tmp/a.jsonl")" = 50 ] && cmp -s "$tmp/a.jsonl" "$tmp/b.jsonl"; then
	ok "--dump-workload: the same seed, the same workload"
else
	not_ok "--dump-workload: the same seed, the same workload"
fi
# The dump reads back as a trace and dumps the same.
if "$lg" --trace "$tmp/a.jsonl" --dump-workload > "$tmp/c.jsonl" &&
   cmp -s "$tmp/a.jsonl" "$tmp/c.jsonl"; then
	ok "a dumped workload is a trace"
else
	not_ok "a dumped workload is a trace ($(diff "$tmp/a.jsonl" "$tmp/c.jsonl" | head -3))"
fi

# A port nothing listens on: port 1 on the loopback, refused at once.
"$lg" --synthetic --requests 3 --rate 100 --url http://127.0.0.1:1 > "$tmp/out" 2> "$tmp/err"
rc=$?
want="connect errors: 3 requests (connect to 127.0.0.1:1: Connection refused)"
if [ $rc = 0 ] && grep -qF "$want" "$tmp/out" &&
   grep -q "^all  *3  *0  *3  *0  *0  *0$" "$tmp/out"; then
	ok "a refused connection is counted"
else
	not_ok "a refused connection is counted (status $rc: $(cat "$tmp/out" "$tmp/err"))"
fi
"$lg" --synthetic --requests 2 --rate 100 --url http://127.0.0.1:1 --json > "$tmp/out"
if python3 -c 'import json,sys; o=json.load(open(sys.argv[1]));
assert o["transport_errors"]["connect"] == 2 and o["overall"]["requests"] == 2
a = o["overall"]; f = a["failures"]
assert f == {"http_error": 0, "transport": 2, "protocol": 0, "incomplete": 0, "short": 0}
assert o["classes"]["online"]["failures"]["transport"] == 2
assert a["itl_gaps"] == 0 and a["itl_ms"] == {"p50": None, "p90": None, "p99": None, "max": None}
' "$tmp/out"; then
	ok "--json is one JSON object"
else
	not_ok "--json is one JSON object ($(cat "$tmp/out"))"
fi
[ $failed = 0 ]
