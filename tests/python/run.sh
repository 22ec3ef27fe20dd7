#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# run.sh TOP BUILD [TEST...] - the Python bindings' tests (tests/python/test_*.py,
# unittest, printing TAP) against BUILD/libaccel/libaccel.so.0, with the C
# layout programs BUILD/native-bin/py_bm_layout and py_layout. The
# interpreter: $PYTHON, else Debian's /usr/bin/python3 (the one with
# python3-numpy and python3-torch), else python3 on PATH; without one: a SKIP.
set -u
top=$1 b=$2
shift 2
py=${PYTHON:-}
[ -n "$py" ] || { [ -x /usr/bin/python3 ] && py=/usr/bin/python3; }
[ -n "$py" ] || py=$(command -v python3 || true)
if [ -z "$py" ]; then
	echo "TAP version 13"
	echo "1..1"
	echo "ok 1 python # SKIP no python3"
	exit 0
fi
export KVACCEL_LIB="$b/libaccel/libaccel.so.0"
export KVACCEL_BM_LAYOUT="$b/native-bin/py_bm_layout"
export KVACCEL_LAYOUT="$b/native-bin/py_layout"
export PYTHONDONTWRITEBYTECODE=1
[ $# -gt 0 ] || set -- "$top/tests/python/test_bm.py"
exec "$py" "$@"
