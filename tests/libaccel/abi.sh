#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# abi.sh TOP BUILD - libaccel's library ABI (Documentation/libaccel.rst, "ABI"):
# the exports of libaccel.so.0 are exactly the version script's symbols, each
# in its node; the frozen LIBACCEL_0.1 is unchanged against its committed
# abidw dump (libaccel/abi/libaccel-0.1.abi: symbols, and the types they
# reach, public headers only); libaccel.a defines no global symbol that is
# not in the version script. Prints TAP.
#
# abi.sh --dump LIBACCEL.SO HEADERS_DIR prints the dump the check compares
# against (how libaccel-0.1.abi was made, from 0d0df37's build).
set -u

dump() {
	abidw --exported-interfaces-only --no-corpus-path --no-comp-dir-path --no-show-locs \
		--type-id-style hash --headers-dir "$2" --drop-private-types "$1"
}
if [ "${1:-}" = --dump ]; then
	dump "$2" "$3"
	exit
fi

top=$1 b=$2
map=$top/libaccel/libaccel.map
so=$b/libaccel/libaccel.so.0
ar=$b/libaccel/libaccel.a
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
n=0
echo "TAP version 13"
echo "1..8"
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n libaccel_abi.$2"; else echo "not ok $n libaccel_abi.$2"; fi
}
diag() { sed 's/^/# /' "$@"; }

# "NAME VERSION" for each symbol the version script exports (a symbol kept
# for an old binary is listed in each node that has an entry point for it).
perl -0pe 's|/\*.*?\*/||gs; s|#[^\n]*||g' "$map" | tr -s ' \t\n' ' ' | tr ';' '\n' | awk '
	{ line = $0 }
	line ~ /{/ { split(line, p, "{"); split(p[1], w, " "); node = w[length(w)]; line = p[2] }
	line ~ /}/ { next }
	{
		gsub(/^ +| +$/, "", line)
		if (line ~ /^global: */) sub(/^global: */, "", line)
		if (line ~ /^local:/) { local = 1; next }
		if (line == "" ) next
		if (local && line == "*") { local = 0; next }
		print line, node
	}' | sort -u > "$d/map"

# "NAME VERSION" for each default-visibility symbol libaccel.so.0 defines.
nm -D --defined-only "$so" | awk '$2 != "A" {
	s = $3; v = s; sub(/@.*/, "", s); sub(/^[^@]*@@?/, "", v)
	if (v == $3) v = "(none)"
	print s, v }' | sort -u > "$d/so"

if [ -s "$d/map" ] && [ -s "$d/so" ]; then
	comm -13 "$d/map" "$d/so" > "$d/unlisted"
	[ ! -s "$d/unlisted" ]
	ok $? every_export_is_in_the_version_script
	diag "$d/unlisted"
	comm -23 "$d/map" "$d/so" > "$d/missing"
	[ ! -s "$d/missing" ]
	ok $? every_version_script_symbol_is_exported
	diag "$d/missing"
else
	ok 1 every_export_is_in_the_version_script
	ok 1 every_version_script_symbol_is_exported
	echo "# no symbols read from $map or $so"
fi

# LIBACCEL_0.1 against its dump: a removed symbol, a changed signature or a
# changed type it reaches fails; symbols added in later nodes do not. Both
# sides read with --exported-interfaces-only: without it libabigail 2.2
# binds no symbol to a function that an earlier CU (by path) only declares
# (kv_cache.c calls accel_space_bind), and changes of its types go unseen.
# No --hd2: uint64_t & co. are not in libaccel/include; the dump's private
# types (struct accel_device...) are declarations only, which match.
if command -v abidiff > /dev/null 2>&1; then
	abidiff --exported-interfaces-only --no-added-syms \
		"$top/libaccel/abi/libaccel-0.1.abi" "$so" > "$d/abidiff" 2>&1
	rc=$?
	ok $rc libaccel_0_1_unchanged
	[ $rc -eq 0 ] || diag "$d/abidiff"
else
	ok 1 libaccel_0_1_unchanged
	echo "# abidiff not found (abigail-tools: tools/install-deps)"
fi

# The 0.1 entry points kept for old binaries (compat.c: non-default
# versions, which abidiff does not compare) against the dump: built alone
# under their plain names (compat-0.1.so), none may differ; all the other
# 0.1 functions are missing from that object, so only "Changed" counts.
compat=$b/libaccel/compat-0.1.so
if command -v abidiff > /dev/null 2>&1 && [ -f "$compat" ]; then
	abidiff --exported-interfaces-only "$top/libaccel/abi/libaccel-0.1.abi" "$compat" \
		> "$d/compat" 2>&1
	kept=$(nm -D --defined-only "$compat" | grep -c ' T accel_')
	grep -q "^Functions changes summary: [0-9]* Removed, 0 Changed" "$d/compat" && [ "$kept" -gt 0 ]
	rc=$?
	ok $rc libaccel_0_1_kept_entry_points_unchanged
	[ $rc -eq 0 ] && echo "# $kept kept 0.1 entry points compared" || diag "$d/compat"
else
	ok 1 libaccel_0_1_kept_entry_points_unchanged
	echo "# abidiff or $compat not found"
fi
# Every 0.1 symbol has its declaration (its types) in the dump.
grep -o "elf-symbol-id='[^']*@@*LIBACCEL_0.1'" "$top/libaccel/abi/libaccel-0.1.abi" |
	sed "s/elf-symbol-id='//; s/@.*//" | sort -u > "$d/bound01"
sed -n "s/.*elf-symbol name='\([^']*\)' version='LIBACCEL_0.1'.*/\1/p" \
	"$top/libaccel/abi/libaccel-0.1.abi" | sort -u | comm -23 - "$d/bound01" > "$d/unbound"
[ -s "$d/bound01" ] && [ ! -s "$d/unbound" ]
ok $? libaccel_0_1_dump_has_every_declaration
diag "$d/unbound"

# The .so's 0.1 entry points all exist, with 0.1 as their version.
grep ' LIBACCEL_0\.1$' "$d/map" | sort > "$d/map01"
sed -n "s/.*elf-symbol name='\([^']*\)' version='LIBACCEL_0.1'.*/\1 LIBACCEL_0.1/p" \
	"$top/libaccel/abi/libaccel-0.1.abi" | sort > "$d/dump01"
[ -s "$d/dump01" ] && cmp -s "$d/map01" "$d/dump01"
ok $? libaccel_0_1_node_is_the_released_one
diff "$d/dump01" "$d/map01" | diag

# A node that has landed is never added to: 0.2 is the list frozen in
# libaccel/abi/libaccel-0.2.symbols (new symbols go into a newer node).
grep ' LIBACCEL_0\.2$' "$d/map" | sort > "$d/map02"
[ -s "$d/map02" ] && cmp -s "$d/map02" "$top/libaccel/abi/libaccel-0.2.symbols"
ok $? libaccel_0_2_node_is_the_landed_one
diff "$top/libaccel/abi/libaccel-0.2.symbols" "$d/map02" | diag

# The static archive: internal functions are local, so a program that links
# libaccel.a can have its own kv_pool_init or accel_log.
awk '{print $1}' "$d/map" | sort -u > "$d/names"
nm -g --defined-only "$ar" 2>/dev/null | awk 'NF == 3 { s = $3; sub(/@.*/, "", s); print s }' |
	sort -u > "$d/ar"
comm -23 "$d/ar" "$d/names" > "$d/ar_extra"
[ -s "$d/ar" ] && [ ! -s "$d/ar_extra" ]
ok $? static_archive_has_no_internal_globals
diag "$d/ar_extra"
