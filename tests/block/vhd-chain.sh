#!/bin/sh
# tapdisk serves a VHD chain (engine $ENGINE): base (dynamic, 64 KiB blocks,
# made from a raw file) <- mid (written through a first attach) <- leaf.
# A guest runs random mixed I/O on the leaf against a model that starts as
# what the chain holds; what it reads through tapdisk equals what
# `vhdtool convert` makes of the chain; a file written at an offset lands
# there; the chain passes `vhdtool check`; the parents are not changed;
# a read-only attach serves the same data and refuses writes; discard on a
# chain and on a single dynamic disk reads back zeros (hiding the parents'
# data) and gives the leaf's space back.
. "$(dirname "$0")/lib.sh"
[ -n "${VHDTOOL:-}" ] || { echo "SKIP: VHDTOOL not set"; exit 77; }
MB=$((1024 * 1024))
W=$XENSIM_DIR  # (not d: lib.sh's guest() sets d)
sum() { sha256sum "$1" | cut -d' ' -f1; }

# base: data in some places, holes (unallocated blocks) elsewhere
truncate -s $((16 * MB)) "$W/base.raw"
for off in 0 3 7 12; do
    head -c $MB /dev/urandom | dd of="$W/base.raw" bs=$MB seek=$off conv=notrunc status=none
done
head -c 5000 /dev/urandom | dd of="$W/base.raw" bs=1 seek=$((9 * MB + 700)) conv=notrunc status=none
"$VHDTOOL" convert --type dynamic --block-size 64K "$W/base.raw" "$W/base.vhd" >/dev/null ||
    fail "vhdtool convert raw -> vhd"
"$VHDTOOL" snapshot "$W/base.vhd" "$W/mid.vhd" >/dev/null || fail "snapshot mid"

dom=$("$XENSIM" domain create vhd-guest --memory 64)
start_tapback
detach_wait() { # VDEV: detach and wait for its tapdisk to exit
    pids=$(tapdisk_pids)
    "$XENSIM" vbd detach "$dom" "$1" >/dev/null || fail "detach $1"
    for p in $pids; do wait_pid_gone "$p" 20 || fail "tapdisk $p did not exit"; done
}

# mid: a first attach writes scattered data over the base (sector-sized
# pieces land in 2 MiB blocks of a differencing disk: partial bitmaps)
"$XENSIM" vbd attach "$dom" "$W/mid.vhd" --vdev xvda --format vhd >/dev/null || fail "attach mid"
info=$(guest "$dom" "$PVBLK" --vdev xvda info --json) || fail "pvblk info (mid)"
[ "$(json_field "$info" sectors)" = $((16 * MB / 512)) ] || fail "size: $info"
guest "$dom" "$PVBLK" --vdev xvda read --offset 0 --length $((16 * MB)) --out "$W/mid-before" ||
    fail "read mid"
cmp "$W/mid-before" "$W/base.raw" || fail "a fresh child does not read as its parent"
guest "$dom" "$PVBLK" --vdev xvda verify --random 200 --seed 11 --length $((16 * MB)) ||
    fail "random verify on mid"
grep -q "vhd chain $W/mid.vhd: $((16 * MB)) bytes, 2 file(s)" "$W/tapback.log" ||
    fail "tapdisk did not log the chain it serves"
detach_wait xvda

"$VHDTOOL" snapshot "$W/mid.vhd" "$W/leaf.vhd" >/dev/null || fail "snapshot leaf"
base_sum=$(sum "$W/base.vhd"); mid_sum=$(sum "$W/mid.vhd")

"$XENSIM" vbd attach "$dom" "$W/leaf.vhd" --vdev xvdb --format vhd >/dev/null || fail "attach leaf"
guest "$dom" "$PVBLK" --vdev xvdb verify --random 500 --seed 3 --length $((16 * MB)) ||
    fail "random verify on leaf"
head -c $((200 * 1024 + 512)) /dev/urandom > "$W/data"
data_off=$((5 * MB + 3 * 512))
guest "$dom" "$PVBLK" --vdev xvdb write --offset $data_off --length $((200 * 1024 + 512)) --in "$W/data" ||
    fail "write data"
# discard: over the base's data (leaf blocks not allocated: the parents
# must be hidden), unaligned inside 64 KiB blocks, and over a range the
# leaf holds completely (its space must come back)
info=$(guest "$dom" "$PVBLK" --vdev xvdb info --json) || fail "pvblk info (leaf)"
[ "$(json_field "$info" discard)" = True ] || fail "no discard offered on a VHD chain: $info"
grep -q "vhd chain $W/leaf.vhd: .*discard by punching holes" "$W/tapback.log" || fail "tapdisk did not log discard"
head -c $((2 * MB)) /dev/urandom > "$W/full"
guest "$dom" "$PVBLK" --vdev xvdb write --offset $((13 * MB)) --length $((2 * MB)) --in "$W/full" ||
    fail "write 2 MiB for the discard"
blocks_before=$(stat -c %b "$W/leaf.vhd")
for r in "$((3 * MB + 4096)) $((MB + 512))" "$((12 * MB - 1536)) 3072" "$((13 * MB)) $((2 * MB))"; do
    set -- $r
    guest "$dom" "$PVBLK" --vdev xvdb discard --offset "$1" --length "$2" || fail "discard $1+$2"
    guest "$dom" "$PVBLK" --vdev xvdb read --offset "$1" --length "$2" --out "$W/zeros" || fail "read $1+$2"
    cmp -n "$2" "$W/zeros" /dev/zero || fail "discarded range $1+$2 does not read back zeros"
done
blocks_after=$(stat -c %b "$W/leaf.vhd")
[ $(( (blocks_before - blocks_after) * 512 )) -ge $MB ] ||
    fail "discarding 2 MiB the leaf held gave back less than 1 MiB ($blocks_before -> $blocks_after blocks)"
guest "$dom" "$PVBLK" --vdev xvdb read --offset 0 --length $((16 * MB)) --out "$W/guest.raw" ||
    fail "read leaf"
detach_wait xvdb

"$VHDTOOL" convert "$W/leaf.vhd" "$W/out.raw" >/dev/null || fail "vhdtool convert vhd -> raw"
cmp "$W/guest.raw" "$W/out.raw" || fail "the guest's view differs from vhdtool convert of the chain"
dd if="$W/out.raw" bs=512 skip=$((data_off / 512)) count=$(((200 * 1024 + 512) / 512)) status=none |
    cmp - "$W/data" || fail "the written data is not at its offset in the chain"
"$VHDTOOL" check "$W/leaf.vhd" >"$W/check.out" 2>&1 || { cat "$W/check.out" >&2; fail "vhdtool check"; }
# read-only: the chain is served as it is, writes are refused, nothing changes
leaf_sum=$(sum "$W/leaf.vhd")
"$XENSIM" vbd attach "$dom" "$W/leaf.vhd" --vdev xvdc --format vhd --mode r >/dev/null || fail "attach ro"
guest "$dom" "$PVBLK" --vdev xvdc read --offset 0 --length $((16 * MB)) --out "$W/ro.raw" || fail "read ro"
cmp "$W/ro.raw" "$W/out.raw" || fail "read-only view differs"
guest "$dom" "$PVBLK" --vdev xvdc write --offset 0 --length 4096 --pattern 1 2>/dev/null &&
    fail "a write to a read-only VHD must fail"
detach_wait xvdc
[ "$(sum "$W/leaf.vhd")" = "$leaf_sum" ] || fail "read-only leaf changed"

# discard on a single dynamic disk (no parents): punched, reads zeros
"$VHDTOOL" convert --type dynamic --block-size 64K "$W/base.raw" "$W/solo.vhd" >/dev/null || fail "convert solo"
"$XENSIM" vbd attach "$dom" "$W/solo.vhd" --vdev xvdd --format vhd >/dev/null || fail "attach solo"
solo_before=$(stat -c %b "$W/solo.vhd")
guest "$dom" "$PVBLK" --vdev xvdd discard --offset $((MB / 2)) --length $((4 * MB)) || fail "discard solo"
guest "$dom" "$PVBLK" --vdev xvdd read --offset 0 --length $((16 * MB)) --out "$W/solo.raw" || fail "read solo"
detach_wait xvdd
cp "$W/base.raw" "$W/solo.model"
dd if=/dev/zero of="$W/solo.model" bs=$((MB / 2)) seek=1 count=8 conv=notrunc status=none
cmp "$W/solo.raw" "$W/solo.model" || fail "solo disk after discard differs from its model"
"$VHDTOOL" convert "$W/solo.vhd" "$W/solo.out" >/dev/null || fail "convert solo back"
cmp "$W/solo.out" "$W/solo.model" || fail "vhdtool convert of solo differs from its model"
"$VHDTOOL" check "$W/solo.vhd" >"$W/check.out" 2>&1 || { cat "$W/check.out" >&2; fail "vhdtool check solo"; }
[ $(( (solo_before - $(stat -c %b "$W/solo.vhd")) * 512 )) -ge $MB ] ||
    fail "discard on a dynamic disk gave no space back"
[ "$(sum "$W/base.vhd")" = "$base_sum" ] || fail "base changed"
[ "$(sum "$W/mid.vhd")" = "$mid_sum" ] || fail "mid (a parent) changed"
[ "$(dom_usage 0 maps_held)" = 0 ] || fail "dom0 still holds grant mappings"
echo "PASS ($ENGINE)"
