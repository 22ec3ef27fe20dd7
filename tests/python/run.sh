#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# run.sh TOP BUILD [TEST...] - the Python bindings' tests (tests/python/test_*.py,
# unittest, printing TAP) against BUILD/libaccel/libaccel.so.0, with the C
# layout program BUILD/native-bin/py_bm_layout. Without python3: one SKIP.
set -u
top=$1 b=$2
shift 2
py=$(command -v python3 || true)
if [ -z "$py" ]; then
	echo "TAP version 13"
	echo "1..1"
	echo "ok 1 python_bm # SKIP no python3"
	exit 0
fi
export KVACCEL_LIB="$b/libaccel/libaccel.so.0"
export KVACCEL_BM_LAYOUT="$b/native-bin/py_bm_layout"
export PYTHONDONTWRITEBYTECODE=1
[ $# -gt 0 ] || set -- "$top/tests/python/test_bm.py"
exec "$py" "$@"
