#!/bin/sh
# SPDX-License-Identifier: MIT
# cli.sh KVACCEL_SERVE - kvaccel-serve's command line (TAP): bad options are
# refused with a message and exit status 2; a run prints text and digests;
# saved weights load back to the same digests; the digests do not depend
# on the pool, the chunk, the preemption or the threads.
set -u
serve=$1
prog=$serve
# shellcheck source=tests/lib/cli-tap.sh
. "$(dirname "$0")/../lib/cli-tap.sh"

digests() { grep 'digests:' "$1"; }

echo "1..56"
refused "no prompt" 2 "no --prompt given"
refused "unknown option" 2 "unknown option '--bogus'" --memfd --prompt hi --bogus
refused "missing value" 2 "--max-tokens needs a value" --memfd --prompt hi --max-tokens
refused "not a number" 2 "--layers: 'two' is not a number" --memfd --prompt hi --layers two
refused "out of range" 2 "--layers: 0 is out of range" --memfd --prompt hi --layers 0
refused "negative" 2 "--blocks: '-3' is not a number" --memfd --prompt hi --blocks -3
refused "heads not dividing d_model" 2 "heads (3) must divide d_model (64)" --memfd --prompt hi \
	--heads 3
refused "top-k over experts" 2 "top_k must be 1 to experts" --memfd --prompt hi --experts 2 \
	--top-k 3
refused "bad preempt" 2 "--preempt: 'later' is none of swap, recompute, cost" --memfd \
	--prompt hi --preempt later
refused "bad policy" 2 "--policy: 'edf' is none of fcfs, priority, slo, fair, hybrid" --memfd \
	--prompt hi --policy edf
refused "bad victim" 2 "--victim: 'first' is neither last nor least-computed" --memfd \
	--prompt hi --victim first
refused "bad priority" 2 "--priority: 'high' is not a number" --memfd --priority high \
	--prompt hi
refused "chunk over budget" 2 "--chunk is over --budget" --memfd --prompt hi --budget 8 \
	--chunk 16
refused "table with listen" 2 "--table and --check-alone are for --prompt runs" --memfd \
	--listen 127.0.0.1:0 --table
refused "empty step log name" 2 "--step-log: an empty file name" --memfd --prompt hi \
	--step-log ""
refused "step log in no directory" 1 "--step-log $tmp/none/log: No such file or directory" \
	--memfd --prompt hi --step-log "$tmp/none/log"
refused "stray argument" 2 "unexpected argument 'extra'" --memfd --prompt hi extra
refused "memfd and device" 2 "--memfd and --device exclude each other" --memfd --device /dev/x \
	--prompt hi
refused "listen without a port" 2 "--listen: '127.0.0.1' is not ADDR:PORT" --memfd \
	--listen 127.0.0.1
refused "listen on a name" 2 "--listen: 'localhost' is not an IPv4 address" --memfd \
	--listen localhost:80
refused "listen port out of range" 2 "--listen: 70000 is out of range" --memfd \
	--listen 127.0.0.1:70000
refused "listen and prompt" 2 "--prompt and --listen exclude each other" --memfd --prompt hi \
	--listen 127.0.0.1:0
refused "listen on a foreign address" 1 "cannot listen on 192.0.2.1:1" --memfd \
	--listen 192.0.2.1:1
refused "moe store on memfd" 2 "--moe-store needs region tiers" --memfd --prompt hi \
	--experts 4 --moe-store 2
refused "moe store on a dense model" 2 "--moe-store needs an MoE model" --prompt hi \
	--moe-store 2
refused "moe store shape" 2 "experts + --moe-redundant must divide by the devices" --prompt hi \
	--experts 4 --moe-store 3
refused "bad moe policy" 2 "--moe-policy: 'greedy' is none of rotate, eplb, plan" --prompt hi \
	--experts 4 --moe-store 2 --moe-policy greedy
refused "moe policy without a store" 2 "--moe-policy and --moe-nodes need --moe-store" \
	--prompt hi --experts 4 --moe-policy eplb
refused "moe from without kvacceld" 2 "--moe-from needs --moe-store and --kvacceld" \
	--prompt hi --experts 4 --moe-store 2 --moe-from A
refused "moe from without a store" 2 "--moe-from needs --moe-store and --kvacceld" \
	--prompt hi --experts 4 --kvacceld B --moe-from A
refused "moe from a long name" 2 "is not an engine name" --prompt hi --experts 4 \
	--moe-store 2 --kvacceld B --moe-from AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
refused "moe from and save weights" 2 "not with --moe-from" --experts 4 --moe-store 2 \
	--kvacceld B --moe-from A --save-weights /tmp/never
refused "moe gpus without a store" 2 "--moe-gpus, --moe-policy and --moe-nodes need --moe-store" \
	--prompt hi --experts 4 --moe-gpus 2
refused "moe gpus zero" 2 "moe-gpus" --prompt hi --experts 4 --moe-store 2 --moe-gpus 0
refused "moe gpus and from" 2 "--moe-gpus and --moe-from exclude each other" --prompt hi \
	--experts 4 --moe-store 2 --kvacceld B --moe-from A --moe-gpus 2
refused "moe nodes for rotate" 2 "--moe-nodes is for --moe-policy eplb or plan" --prompt hi \
	--experts 4 --moe-store 2 --moe-nodes 2
refused "moe nodes not dividing" 2 "--moe-nodes must divide the --moe-store devices" --prompt hi \
	--experts 4 --moe-store 2 --moe-policy plan --moe-nodes 3
refused "moe options without the store" 2 "need --moe-store" --memfd --prompt hi \
	--moe-rebalance-every 4
refused "bad moe executor" 2 "--moe-executor: 'later' is neither thread nor step" --prompt hi \
	--experts 4 --moe-store 2 --moe-executor later
refused "missing weights" 1 "No such file or directory" --memfd --prompt hi --weights "$tmp/none"
refused "prompt too long for the pool" 1 "exceed the context or the compute tier" --memfd \
	--prompt "$(printf '%0100d' 0)" --max-tokens 40 --blocks 2
if [ -e /dev/accel/accel0 ] || ls /dev/dri/renderD* > /dev/null 2>&1; then
	ok "no device # SKIP a device node exists"
else
	refused "no device" 1 "no kvaccel device" --prompt hi
fi

if "$serve" --help > "$tmp/out" 2>&1 && grep -q -- "--prompt TEXT" "$tmp/out"; then
	ok "--help"
else
	not_ok "--help"
fi

# A run: every request's text and one digest per token.
if "$serve" --memfd --prompt "Hello" --prompt "world!" --max-tokens 12 > "$tmp/a" 2> "$tmp/err" &&
   [ "$(grep -c '^request ' "$tmp/a")" = 2 ] &&
   [ "$(digests "$tmp/a" | head -1 | wc -w)" = 13 ] && grep -q "tokens/s" "$tmp/err"; then
	ok "a run prints text and digests"
else
	not_ok "a run prints text and digests ($(cat "$tmp/err"))"
fi

# Same digests with a small pool (swap, then recompute), small chunks, threads.
"$serve" --memfd --prompt "Hello" --prompt "world!" --max-tokens 12 --blocks 3 --swap-blocks 3 \
	--block-tokens 8 --chunk 2 --threads 2 > "$tmp/b" 2> "$tmp/err"
if [ "$(digests "$tmp/a")" = "$(digests "$tmp/b")" ] && grep -q "swapped out [1-9]" "$tmp/b"; then
	ok "same digests with swap preemption and chunks"
else
	not_ok "same digests with swap preemption and chunks ($(cat "$tmp/err"))"
fi
"$serve" --memfd --prompt "Hello" --prompt "world!" --max-tokens 12 --blocks 3 --block-tokens 8 \
	--preempt recompute --chunk 3 > "$tmp/b" 2> "$tmp/err"
if [ "$(digests "$tmp/a")" = "$(digests "$tmp/b")" ] && grep -q "dropped [1-9]" "$tmp/b"; then
	ok "same digests with recompute preemption"
else
	not_ok "same digests with recompute preemption ($(cat "$tmp/err"))"
fi

# A budget under 256 tokens a step: no more requests run at once than it has tokens.
"$serve" --memfd --prompt "Hello" --prompt "world!" --max-tokens 12 --budget 8 > "$tmp/b" \
	2> "$tmp/err"
if [ "$(digests "$tmp/a")" = "$(digests "$tmp/b")" ]; then
	ok "same digests with --budget 8"
else
	not_ok "same digests with --budget 8 ($(cat "$tmp/err"))"
fi

# Every policy, and the cost model's choice: the same digests on a small pool.
for pol in "fcfs --preempt cost" "priority --victim least-computed" slo fair hybrid; do
	# shellcheck disable=SC2086
	"$serve" --memfd --prompt "Hello" --prompt "world!" --max-tokens 12 --blocks 3 \
		--swap-blocks 3 --block-tokens 8 --chunk 2 --policy $pol > "$tmp/b" 2> "$tmp/err"
	if [ "$(digests "$tmp/a")" = "$(digests "$tmp/b")" ]; then
		ok "same digests under --policy $pol"
	else
		not_ok "same digests under --policy $pol ($(cat "$tmp/err"))"
	fi
done

# A high-priority arrival preempts running requests by swap; --check-alone runs each
# request alone again and compares; --table shows the preemptions.
"$serve" --memfd --blocks 12 --swap-blocks 64 --max-tokens 24 --policy priority --quiet \
	--table --check-alone --prompt "first request, a long prompt of many tokens" \
	--prompt "second request, also long enough to need blocks" \
	--prompt "third request of the burst, long too" \
	--at-step 6 --priority -10 --prompt "urgent: high priority" > "$tmp/b" 2> "$tmp/err"
if grep -q "identical to each request run alone (0 of 4" "$tmp/b" &&
   grep -q "^req .*swaps .*swapped_B" "$tmp/b" &&
   awk '$1 ~ /^[1-3]$/ && $7 > 0 { s = 1 } END { exit !s }' "$tmp/b"; then
	ok "a high-priority arrival preempts by swap; digests as alone"
else
	not_ok "a high-priority arrival preempts by swap; digests as alone ($(cat "$tmp/b" "$tmp/err"))"
fi

# The step log: its header, a line per step that ran with the batch's shape, the swaps. Three
# prompts of 44, 47 and 36 bytes (distinct first bytes: no prefix shared), 24 tokens each,
# chunks of 16 on 8 blocks (it swaps), no yields: the prefill tokens and decode runs add up to
# the tokens computed (prompt and output less each request's last token, 3 x 23 decodes), the
# quadratic term to 44^2 + 47^2 + 36^2, the decodes' context to sum over requests of
# L + 1 + ... + L + 23.
"$serve" --memfd --blocks 8 --swap-blocks 64 --max-tokens 24 --budget 32 --chunk 16 --quiet \
	--no-yield --step-log "$tmp/steps.csv" --prompt "$(printf 'a%043d' 1)" \
	--prompt "$(printf 'b%046d' 2)" --prompt "$(printf 'c%035d' 3)" > "$tmp/b" 2> "$tmp/err"
want_c=$(( (44 * 23 + 276) + (47 * 23 + 276) + (36 * 23 + 276) ))
hdr="# kvaccel-serve step log v1 layers=2 kv_heads=4 head_dim=16 dtype_bytes=4 block_tokens=16"
hdr="$hdr block_bytes=16384 blocks=8 swap_blocks=64 budget=32 chunk=16 "
cols="kind,t_ns,runs,prefill_tokens,decode_runs,context_tokens,quad,yielded,computed"
cols="$cols,compute_ns,step_ns,after_idle"
if head -1 "$tmp/steps.csv" | grep -q "^$hdr" && [ "$(sed -n 2p "$tmp/steps.csv")" = "$cols" ] &&
   awk -F, -v c="$want_c" '
	$1 == "step" { n++; if (NF != 12 || $4 + $5 != $9 || $8 != 0 || $10 > $11 || $3 < 1 ||
			    $3 > $4 + $5) bad = 1; p += $4; d += $5; ctx += $6; q += $7 }
	$1 == "swap" { s++; if (NF != 7 || $4 < 1 || $5 != $4 * 16384 || $7 != 0) bad = 1 }
	END { exit !(!bad && n >= 10 && s >= 2 && p == 44 + 47 + 36 && d == 69 && ctx == c &&
		     q == 44 * 44 + 47 * 47 + 36 * 36) }' "$tmp/steps.csv" &&
   grep -q "swap-outs" "$tmp/err" && ! grep -q " 0 swap-outs" "$tmp/err"; then
	ok "--step-log: the header, the steps' shapes add up, the swaps"
else
	why="$(head -c 3000 "$tmp/steps.csv") $(cat "$tmp/err")"
	not_ok "--step-log: the header, the steps' shapes add up, the swaps ($why)"
fi

# Weights saved, then loaded: the same digests (dense and MoE).
for shape in "" "--experts 4 --top-k 2 --shared-expert --kv-heads 2"; do
	# shellcheck disable=SC2086
	"$serve" --memfd --prompt "Hi there" --max-tokens 8 --seed 9 $shape \
		--save-weights "$tmp/w.safetensors" > "$tmp/a" 2> "$tmp/err"
	"$serve" --memfd --prompt "Hi there" --max-tokens 8 --weights "$tmp/w.safetensors" \
		> "$tmp/b" 2>> "$tmp/err"
	if [ -s "$tmp/w.safetensors" ] && [ -n "$(digests "$tmp/a")" ] &&
	   [ "$(digests "$tmp/a")" = "$(digests "$tmp/b")" ]; then
		ok "saved weights give the same digests ${shape:-(dense)}"
	else
		not_ok "saved weights give the same digests ${shape:-(dense)} ($(cat "$tmp/err"))"
	fi
done
[ "$n" = 56 ] || { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - plan count"; }
[ "$failed" = 0 ]
