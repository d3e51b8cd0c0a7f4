#!/bin/sh
# Interop with qemu-img and libvhdi:
#  - images qemu-img makes (create -f vpc, convert -O vpc; subformat dynamic
#    and fixed; force_size off and on) read through vhd/ (vhdtool convert)
#    equal what `qemu-img convert -O raw` reads;
#  - images vhdtool makes (fixed, dynamic, a snapshot chain) pass qemu-img
#    check (or it says vpc has no checks), equal their source under
#    qemu-img compare, and vhdiinfo reads them.
set -eu
: "${VHDTOOL:?}"
for t in qemu-img vhdiinfo; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
d=$(mktemp -d "${TMPDIR:-/tmp}/vhd-interop.XXXXXX")
trap 'rm -rf "$d"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# source data: random pieces in an otherwise sparse 20 MiB (+ an odd tail)
src=$d/src.raw
truncate -s 20M "$src"
for off in 0 3 7 13 19; do
    dd if=/dev/urandom of="$src" bs=512K seek=$((off * 2)) count=1 conv=notrunc status=none
done
truncate -s $((20 * 1024 * 1024 + 3 * 512)) "$src"

# qemu's view of a vpc image, cut to the size vhd/ reports: qemu shows a
# fixed image's footer sector as data, one sector past the disk.
cmp_qemu() { # IMAGE
    rm -f "$d/ours.raw" "$d/qemu.raw"
    "$VHDTOOL" convert "$1" "$d/ours.raw" || { bad "vhdtool convert $1"; return; }
    qemu-img convert -f vpc -O raw "$1" "$d/qemu.raw"
    n=$(stat -c %s "$d/ours.raw")
    q=$(stat -c %s "$d/qemu.raw")
    [ "$n" -le "$q" ] || { bad "$1: vhd/ size $n > qemu's $q"; return; }
    cmp -n "$n" "$d/ours.raw" "$d/qemu.raw" || bad "$1: data differs from qemu's reading"
    "$VHDTOOL" check "$1" >/dev/null || bad "$1: vhdtool check"
}

for sub in dynamic fixed; do
    for force in off on; do
        img=$d/q-$sub-$force.vhd
        qemu-img convert -f raw -O vpc -o subformat=$sub,force_size=$force "$src" "$img"
        cmp_qemu "$img"
        img=$d/c-$sub-$force.vhd
        qemu-img create -q -f vpc -o subformat=$sub,force_size=$force "$img" 37M
        qemu-io -f vpc -c "write -P 0xab 1M 300K" -c "write -P 0xcd 33M 5K" "$img" >/dev/null 2>&1 ||
            true   # qemu-io may be missing: the empty image is still a test
        cmp_qemu "$img"
    done
done
# sizes agree with qemu's (CHS-rounded for creator "qemu", exact for "qem2")
for f in off on; do
    img=$d/q-dynamic-$f.vhd
    qs=$(qemu-img info --output=json "$img" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
    vs=$("$VHDTOOL" info --json "$img" | sed 's/.*"virtual_size":\([0-9]*\).*/\1/')
    [ "$qs" = "$vs" ] || bad "force_size=$f: qemu says $qs bytes, vhdtool $vs"
done

# vhdtool's images, read by qemu-img and vhdiinfo
qcheck() {
    out=$(qemu-img check -f vpc "$1" 2>&1) && return 0
    case $out in *"does not support checks"*) return 0 ;; esac
    bad "qemu-img check $1: $out"
}
for type in dynamic fixed; do
    img=$d/v-$type.vhd
    "$VHDTOOL" convert --type $type "$src" "$img"
    qcheck "$img"
    qemu-img compare -f raw -F vpc "$src" "$img" >/dev/null || bad "qemu-img compare $type"
    vhdiinfo "$img" > "$d/vi.txt" 2>&1 || bad "vhdiinfo $img: $(cat "$d/vi.txt")"
    want=$(stat -c %s "$src")
    grep -q "($want bytes)" "$d/vi.txt" || bad "vhdiinfo size for $type: $(cat "$d/vi.txt")"
done
# a chain: vhdiinfo sees the differencing disk and its parent's UUID
"$VHDTOOL" snapshot "$d/v-dynamic.vhd" "$d/snap.vhd"
vhdiinfo "$d/snap.vhd" > "$d/vi.txt" 2>&1 || bad "vhdiinfo snapshot"
grep -q "Differential" "$d/vi.txt" || bad "vhdiinfo: not differential: $(cat "$d/vi.txt")"
puuid=$("$VHDTOOL" info --json "$d/v-dynamic.vhd" | sed 's/.*"uuid":"\([^"]*\)".*/\1/')
grep -q "Parent identifier.*$puuid" "$d/vi.txt" || bad "vhdiinfo parent uuid"
qemu-img compare -f raw -F vpc "$src" "$d/v-dynamic.vhd" >/dev/null || bad "compare after snapshot"

# create sizes round-trip exactly in qemu's eyes (creator "tap")
for size in 1M 1000K 3G; do
    "$VHDTOOL" create dynamic --size $size "$d/s.vhd"
    qs=$(qemu-img info --output=json "$d/s.vhd" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
    vs=$("$VHDTOOL" info --json "$d/s.vhd" | sed 's/.*"virtual_size":\([0-9]*\).*/\1/')
    [ "$qs" = "$vs" ] || bad "size $size: qemu $qs, vhdtool $vs"
    rm -f "$d/s.vhd"
done
[ $fail = 0 ] && echo "interop with qemu-img and vhdiinfo: ok"
exit $fail
