#!/bin/sh
# tapdisk serves a VHD chain (engine $ENGINE): base (dynamic, 64 KiB blocks,
# made from a raw file) <- mid (written through a first attach) <- leaf.
# A guest runs random mixed I/O on the leaf against a model that starts as
# what the chain holds; what it reads through tapdisk equals what
# `vhdtool convert` makes of the chain; a file written at an offset lands
# there; the chain passes `vhdtool check`; the parents are not changed;
# a read-only attach serves the same data and refuses writes.
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
[ "$(sum "$W/base.vhd")" = "$base_sum" ] || fail "base changed"
[ "$(sum "$W/mid.vhd")" = "$mid_sum" ] || fail "mid (a parent) changed"
[ "$(dom_usage 0 maps_held)" = 0 ] || fail "dom0 still holds grant mappings"
echo "PASS ($ENGINE)"
