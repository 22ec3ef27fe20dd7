#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# install.sh TOP BUILD - `make install` of libaccel into a scratch DESTDIR,
# then a program built against the installed tree through pkg-config,
# linked both ways; the soname, the exported symbols and the man pages.
# Prints TAP.
set -u
top=$1 b=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
n=0
echo "TAP version 13"
echo "1..6"
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n libaccel_install.$2"; else echo "not ok $n libaccel_install.$2"; fi; }

make -s -C "$top" B="$b" install DESTDIR="$d" PREFIX=/usr > "$d/install.log" 2>&1
ok $? make_install
[ $? -eq 0 ] || sed 's/^/# /' "$d/install.log"

readelf -d "$d/usr/lib/libaccel.so.0" | grep -q 'SONAME.*\[libaccel.so.0\]'
ok $? soname

# Only accel_* symbols, all versioned LIBACCEL_0.x (0.1 entry points kept for old binaries: @).
bad=$(nm -D --defined-only "$d/usr/lib/libaccel.so.0" | awk '$3 !~ /^LIBACCEL_0\.[0-9]+$/ && $3 !~ /^accel_[a-z0-9_]*@@?LIBACCEL_0\.[0-9]+$/' | wc -l)
[ "$bad" -eq 0 ]
ok $? exports_only_accel_symbols

cat > "$d/prog.c" <<'C'
#include <accel.h>
#include <kvaccel.h>
int main(void)
{
	return accel_device_list(NULL, 0) < 0 && KVACCEL_CAP_COPY ? 1 : 0;
}
C
# The .pc says prefix=/usr; a copy of it points at the scratch tree.
mkdir -p "$d/pc"
grep -q '^prefix=/usr$' "$d/usr/lib/pkgconfig/libaccel.pc" &&
	sed "s|^prefix=/usr$|prefix=$d/usr|" "$d/usr/lib/pkgconfig/libaccel.pc" > "$d/pc/libaccel.pc"
pc=pkg-config
export PKG_CONFIG_PATH="$d/pc"
cflags=$($pc --cflags libaccel) && libs=$($pc --libs libaccel) &&
	cc $cflags -o "$d/prog" "$d/prog.c" $libs -Wl,-rpath,"$d/usr/lib" &&
	"$d/prog" &&
	cc $cflags -o "$d/prog_static" "$d/prog.c" \
		"$d/usr/lib/libaccel.a" $($pc --static --libs-only-l libaccel | sed 's/-laccel//') &&
	"$d/prog_static"
ok $? build_against_installed_tree

[ -f "$d/usr/share/man/man3/accel_copy.3" ] && man -l "$d/usr/share/man/man3/accel_copy.3" > /dev/null 2>&1 ||
	[ -f "$d/usr/share/man/man3/accel_copy.3" ]
ok $? man_pages

# A page per function: every exported accel_* symbol has one (a link page
# where it is not the page's own name), and the links resolve.
m="$d/usr/share/man/man3"
missing=0
for s in $(nm -D --defined-only "$d/usr/lib/libaccel.so.0" | awk '{print $3}' | sed 's/@.*//' |
	   grep '^accel_' | sort -u); do
	[ -f "$m/$s.3" ] || { echo "# no man page for $s"; missing=1; }
done
[ $missing -eq 0 ] && grep -qx '.so man3/accel_mover_create.3' "$m/accel_mover_submit.3" &&
	[ -f "$m/$(sed 's/^\.so man3\///' "$m/accel_mover_submit.3")" ]
ok $? a_page_per_function
