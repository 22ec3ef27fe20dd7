#!/bin/sh
# SPDX-License-Identifier: MIT
# cli.sh KVACCEL_LOADGEN - kvaccel-loadgen's command line (TAP): bad options exit 2 with a
# message; a bad trace exits 2 with FILE:LINE; --dump-workload is the same for the same seed
# and reads back as a trace; a refused connection is counted in the report (as a transport
# failure of its class), not fatal; --server-metrics against no server is a warning and
# "server": null, never a failed run, and against a static /metrics page (python3's
# http.server) gives its counters' deltas (0) and gauges.
set -u
lg=$1
prog=$lg
# shellcheck source=tests/lib/cli-tap.sh
. "$(dirname "$0")/../lib/cli-tap.sh"

echo "1..22"
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
if "$lg" --help | grep -q "^  --server-metrics "; then
	ok "--help names --server-metrics"
else
	not_ok "--help names --server-metrics"
fi

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

# --server-metrics with no server: a warning, "server": null, exit 0.
"$lg" --synthetic --requests 2 --rate 100 --url http://127.0.0.1:1 --server-metrics --json \
	> "$tmp/out" 2> "$tmp/err"
rc=$?
want="kvaccel-loadgen: warning: --server-metrics: GET http://127.0.0.1:1/metrics: connect to"
if [ $rc = 0 ] && grep -qF "$want" "$tmp/err" && python3 -c 'import json,sys
o = json.load(open(sys.argv[1])); assert "server" in o and o["server"] is None
assert o["transport_errors"]["connect"] == 2' "$tmp/out"; then
	ok "--server-metrics without a server: a warning and server null"
else
	not_ok "--server-metrics without a server (status $rc: $(cat "$tmp/out" "$tmp/err"))"
fi
"$lg" --synthetic --requests 2 --rate 100 --url http://127.0.0.1:1 --server-metrics \
	> "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc = 0 ] && grep -qF "$want" "$tmp/err" && ! grep -q "^server" "$tmp/out"; then
	ok "--server-metrics without a server: no section in the table"
else
	not_ok "--server-metrics without a server: the table (status $rc: $(cat "$tmp/out"))"
fi

# A static /metrics page (GET answered, the POSTs 501): the counters did not move.
mkdir "$tmp/www"
printf '# TYPE kvaccel_serve_recomputed_tokens_total counter\n%s\n%s\n%s\n%s\n' \
	"kvaccel_serve_recomputed_tokens_total 3" "kvaccel_serve_computed_tokens_total 12" \
	'kvaccel_serve_requests_total{status="200"} 7' "kvaccel_serve_swap_bandwidth_bytes 5" \
	> "$tmp/www/metrics"
python3 -c 'import functools, http.server, os, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
s = http.server.HTTPServer(("127.0.0.1", 0), h)
with open(sys.argv[2] + ".new", "w") as f:
	f.write(str(s.server_address[1]))
os.rename(sys.argv[2] + ".new", sys.argv[2])
s.serve_forever()' "$tmp/www" "$tmp/port" 2> /dev/null &
srv=$!
trap 'kill $srv 2> /dev/null; rm -rf "$tmp"' EXIT
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
url="http://127.0.0.1:$(cat "$tmp/port" 2> /dev/null)"
"$lg" --synthetic --requests 2 --rate 100 --url "$url" --server-metrics --json \
	> "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc = 0 ] && [ ! -s "$tmp/err" ] && python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))["server"]
assert s == {"counters": {"kvaccel_serve_computed_tokens_total": 0,
                          "kvaccel_serve_recomputed_tokens_total": 0,
                          "kvaccel_serve_requests_total{status=\"200\"}": 0},
             "gauges": {"kvaccel_serve_swap_bandwidth_bytes": 5},
             "recompute_tax": None, "swap_bytes_per_s": None}, s' "$tmp/out"; then
	ok "--server-metrics --json against a static page"
else
	not_ok "--server-metrics --json against a static page (status $rc: $(cat "$tmp/out" \
		"$tmp/err"))"
fi
"$lg" --synthetic --requests 2 --rate 100 --url "$url" --server-metrics > "$tmp/out" 2>&1
if grep -qx "  recompute tax: 0 recomputed tokens of 0 computed (-)" "$tmp/out" &&
   grep -qx "  swap bandwidth: 5 bytes/s" "$tmp/out"; then
	ok "--server-metrics: the table's section"
else
	not_ok "--server-metrics: the table's section ($(cat "$tmp/out"))"
fi
kill $srv 2> /dev/null
wait $srv 2> /dev/null
[ $failed = 0 ]
