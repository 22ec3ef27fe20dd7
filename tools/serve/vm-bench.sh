#!/bin/sh
# SPDX-License-Identifier: MIT
# vm-bench.sh [KVACCEL_SERVE] - kvaccel-serve's throughput figure (in a VM
# with the module loaded, or natively with --memfd only): a burst of 16
# requests of 63-64 prompt bytes and 64 generated tokens each, on region
# tiers and on memfd tiers, whose outputs and digests must be identical.
# Documentation/serve.rst, "Throughput".
set -u
serve=${1:-/bin/kvaccel-serve}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
set --
i=1
while [ $i -le 16 ]; do
	set -- "$@" --prompt "Request number $i: the quick brown fox jumps over the lazy dog."
	i=$((i + 1))
done
rc=0
echo "== memfd tiers"
"$serve" --memfd "$@" --max-tokens 64 > "$tmp/memfd" || rc=1
if [ -e /dev/accel/accel0 ] || ls /dev/dri/renderD* > /dev/null 2>&1; then
	echo "== region tiers (swaps on the copy engine)"
	"$serve" "$@" --max-tokens 64 > "$tmp/region" || rc=1
	if cmp -s "$tmp/region" "$tmp/memfd"; then
		echo "same output and digests"
	else
		echo "region and memfd outputs differ"
		rc=1
	fi
	echo "== region tiers, --blocks 24 --chunk 32"
	"$serve" "$@" --max-tokens 64 --blocks 24 --chunk 32 --quiet > /dev/null || rc=1
fi
exit $rc
