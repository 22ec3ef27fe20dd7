#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# stage.sh TOP BUILD OUT - what the VM needs to run the Python tests
# (tests/python/test_vm.py) staged under OUT, and OUT/vmtest-args, the
# tools/vmtest -a options that ship it (run-selftests passes them): Debian's
# /usr/bin/python3 and its standard library (no tests, IDLE, Tk, lib2to3,
# build configuration), numpy without its tests, f2py and distutils (no
# torch: torch.frombuffer is tested natively), and the package with
# libaccel.so.0 beside it, the tests and the connector example in
# /opt/kvaccel. vmtest brings the shared libraries of the programs and .so
# files shipped. Without /usr/bin/python3: an empty vmtest-args.
set -eu
top=$1 b=$2 out=$3
rm -rf "$out"
mkdir -p "$out"
: > "$out/vmtest-args"
[ -x /usr/bin/python3 ] || exit 0
real=$(readlink -f /usr/bin/python3)
ver=$(basename "$real")
mkdir -p "$out/usr/bin" "$out/usr/lib/python3/dist-packages" "$out/opt/kvaccel"
cp "$real" "$out/usr/bin/python3"
tar -C /usr/lib -cf - --exclude=test --exclude=tests --exclude=idle_test --exclude=idlelib \
	--exclude=tkinter --exclude=turtledemo --exclude=lib2to3 --exclude=pydoc_data \
	--exclude=ensurepip --exclude=distutils --exclude='config-3*' --exclude=site-packages \
	--exclude=dist-packages \
	"$ver" | tar -C "$out/usr/lib" -xf -
args="-a $out/usr/bin/python3:/usr/bin/python3 -a $out/usr/lib/$ver:/usr/lib/$ver"
np=/usr/lib/python3/dist-packages/numpy
if [ -d "$np" ]; then
	tar -C "$(dirname "$np")" -cf - --exclude=tests --exclude=f2py --exclude=distutils \
		--exclude='*.pyi' --exclude=doc --exclude=include --exclude='*.a' \
		--exclude='_simd.*' numpy | tar -C "$out/usr/lib/python3/dist-packages" -xf -
	args="$args -a $out/usr/lib/python3/dist-packages/numpy:$np"
fi
k=$out/opt/kvaccel
mkdir -p "$k/libaccel/python/kvaccel" "$k/tests/python" "$k/Documentation/examples"
cp "$top"/libaccel/python/kvaccel/*.py "$k/libaccel/python/kvaccel/"
cp "$b/libaccel/libaccel.so.0" "$k/libaccel/python/kvaccel/"
cp "$top"/tests/python/*.py "$k/tests/python/"
cp "$top/Documentation/examples/connector.py" "$k/Documentation/examples/"
args="$args -a $k:/opt/kvaccel"
echo "$args" > "$out/vmtest-args"
