# SPDX-License-Identifier: MIT
# cli-tap.sh - what the command-line tests share (sourced, with $prog set to
# the program under test): a scratch directory $tmp removed at exit, TAP
# lines (ok, not_ok; $failed counts the failures), and refused.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }

# refused WHAT STATUS MESSAGE ARGS...: $prog ARGS exits STATUS, says
# MESSAGE on stderr, prints nothing.
refused() {
	what=$1 want=$2 msg=$3
	shift 3
	"$prog" "$@" > "$tmp/out" 2> "$tmp/err"
	rc=$?
	if [ "$rc" = "$want" ] && grep -qF -- "$msg" "$tmp/err" && [ ! -s "$tmp/out" ]; then
		ok "$what"
	else
		not_ok "$what (status $rc, stderr: $(cat "$tmp/err"))"
	fi
}
