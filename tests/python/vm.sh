#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The Python bindings against the module, in the guest (tests/python/test_vm.py
# with what tests/python/stage.sh shipped; kvacceld and kvaccelctl on PATH).
if [ ! -x /usr/bin/python3 ] || [ ! -d /opt/kvaccel ]; then
	echo "TAP version 13"
	echo "1..1"
	echo "ok 1 python_vm # SKIP no python3 shipped (tests/python/stage.sh)"
	exit 0
fi
export KVACCEL_LIB=/opt/kvaccel/libaccel/python/kvaccel/libaccel.so.0
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 /opt/kvaccel/tests/python/test_vm.py
