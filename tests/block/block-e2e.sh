#!/bin/sh
# The block path end to end with one engine ($ENGINE): pvio-tapback starts a
# tapdisk for a VBD that `xensim vbd attach` wrote, and a guest drives it
# with pvblk. Random mixed I/O (512 B .. 1 MiB) against a model, never-written
# areas reading as zeros, flush, the disk end, data landing in the image,
# a read-only VBD, and nothing left behind after detach and destroy.
. "$(dirname "$0")/lib.sh"
MB=$((1024 * 1024))
img=$XENSIM_DIR/disk.img; ro=$XENSIM_DIR/ro.img
truncate -s $((64 * MB)) "$img"
head -c $((4 * MB)) /dev/urandom > "$ro"
dom=$("$XENSIM" domain create blk-guest --memory 64)
start_tapback
[ "$("$XENSIM" vbd attach "$dom" "$img" --vdev xvda)" = 51712 ] || fail "attach xvda"
"$XENSIM" vbd attach "$dom" "$ro" --vdev xvdb --mode r >/dev/null || fail "attach xvdb"

info=$(guest "$dom" "$PVBLK" --vdev xvda info --json) || fail "pvblk info"
[ "$(json_field "$info" sectors)" = $((64 * MB / 512)) ] || fail "size: $info"

# random mixed I/O on a fresh disk: unwritten areas read as zeros
guest "$dom" "$PVBLK" --vdev xvda verify --random 1500 --fresh --seed 7 --length $((32 * MB)) ||
    fail "random verify"
# the page-aligned ones among them went from zero-copy buffers (the
# default), so through the guest's own granted pages; --bounce: none did
out=$(guest "$dom" "$PVBLK" --vdev xvda verify --random 300 --seed 8 --length $((16 * MB)) --json) ||
    fail "zero-copy verify: $out"
[ "$(json_field "$out" zero_copy_requests)" -gt 0 ] || fail "no zero-copy request: $out"
out=$(guest "$dom" "$PVBLK" --vdev xvda --bounce verify --random 100 --seed 9 --length $((16 * MB)) --json) ||
    fail "bounce verify: $out"
[ "$(json_field "$out" zero_copy_requests)" = 0 ] || fail "--bounce still used zero-copy: $out"
# the last MiB of the disk and the very last sector
guest "$dom" "$PVBLK" --vdev xvda verify --offset $((63 * MB)) --length $MB --seed 9 || fail "disk end"
guest "$dom" "$PVBLK" --vdev xvda read --offset $((64 * MB - 512)) --length 512 --out /dev/null ||
    fail "last sector"
guest "$dom" "$PVBLK" --vdev xvda read --offset $((64 * MB)) --length 512 --out /dev/null 2>/dev/null &&
    fail "a read past the end must fail"

# what the guest writes is in the image file, at the right place
head -c $((256 * 1024)) /dev/urandom > "$XENSIM_DIR/data"
guest "$dom" "$PVBLK" --vdev xvda write --offset $((40 * MB)) --length $((256 * 1024)) --in "$XENSIM_DIR/data" ||
    fail "write"
dd if="$img" bs=1024 skip=$((40 * 1024)) count=256 status=none | cmp - "$XENSIM_DIR/data" ||
    fail "image content differs from what the guest wrote"

# discard: the range reads back as zeros, the data around it stays, and the
# image gives the space back (tapdisk punches a hole)
[ "$(json_field "$info" discard)" = True ] || fail "feature-discard not offered: $info"
guest "$dom" "$PVBLK" --vdev xvda write --offset $((16 * MB)) --length $((4 * MB)) --pattern 21 || fail "write before discard"
sync "$img"
blocks_before=$(stat -c %b "$img")
guest "$dom" "$PVBLK" --vdev xvda discard --offset $((17 * MB)) --length $((2 * MB)) || fail "discard"
guest "$dom" "$PVBLK" --vdev xvda read --offset $((16 * MB)) --length $((4 * MB)) --out "$XENSIM_DIR/after" ||
    fail "read after discard"
python3 - "$XENSIM_DIR/after" <<'PY' || fail "discarded range not zero, or data around it lost"
import sys
b = open(sys.argv[1], 'rb').read()
MB = 1 << 20
assert b[MB:3 * MB] == bytes(2 * MB), "discarded range not zero"
assert b[:MB].count(0) < MB // 2 and b[3 * MB:].count(0) < MB // 2, "pattern around the range lost"
PY
blocks_after=$(stat -c %b "$img")
[ "$blocks_after" -lt "$blocks_before" ] || fail "image did not shrink ($blocks_before -> $blocks_after blocks)"
guest "$dom" "$PVBLK" --vdev xvdb discard --offset 0 --length 4096 2>/dev/null && fail "discard on a read-only VBD must fail"

# read-only VBD: reads see the image, writes are refused
guest "$dom" "$PVBLK" --vdev xvdb read --offset 0 --length $MB --out "$XENSIM_DIR/ro.out" || fail "ro read"
head -c $MB "$ro" | cmp - "$XENSIM_DIR/ro.out" || fail "ro data"
guest "$dom" "$PVBLK" --vdev xvdb write --offset 0 --length 4096 --pattern 1 2>/dev/null &&
    fail "a write to a read-only VBD must fail"
dd if="$ro" bs=$MB count=1 status=none | cmp - "$XENSIM_DIR/ro.out" ||
    fail "read-only image changed"

# the engine asked for is the one serving
grep -q "xvda: info: engine $ENGINE\$" "$XENSIM_DIR/tapback.log" || fail "tapdisk did not report engine $ENGINE"
# io_uring serves the image as a registered file; io_uring:nofixed does not
case $ENGINE in
io_uring) grep -q "xvda: info: io_uring: 1 fixed file(s) registered" "$XENSIM_DIR/tapback.log" ||
        fail "io_uring did not register the image as a fixed file" ;;
io_uring:nofixed) grep -q "fixed file(s) registered" "$XENSIM_DIR/tapback.log" &&
        fail "io_uring:nofixed registered a fixed file" ;;
esac
# 1 MiB I/Os from zero-copy buffers reach the engine as one iovec each: the
# persistent cache maps a request's new pages side by side and the segments
# merge (the kernel then pins them with one call, not 256)
devid=51712
seg0=$(tstat iovecs segments); ent0=$(tstat iovecs entries)
guest "$dom" "$PVBLK" --vdev xvda bench --rw write --bs 1m --qd 4 --count 64 --length $((16 * MB)) >/dev/null ||
    fail "1 MiB zero-copy writes"
guest "$dom" "$PVBLK" --vdev xvda bench --rw read --bs 1m --qd 4 --count 64 --length $((16 * MB)) >/dev/null ||
    fail "1 MiB zero-copy reads"
seg=$(($(tstat iovecs segments) - seg0)); ent=$(($(tstat iovecs entries) - ent0))
[ "$seg" = $((128 * 256)) ] && [ "$ent" = 128 ] ||
    fail "128 zero-copy 1 MiB I/Os: $seg segments in $ent iovec entries (want 32768 in 128)"
# stats count what was done
stats=$("$TAPCTL" stats "$dom" 51712) || fail "tapctl stats"
python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["requests"]["write"] > 0 and s["requests"]["read"] > 0 and s["requests"]["flush"] > 0 and s["requests"]["discard"] == 1, s' "$stats" ||
    fail "stats: $stats"
# persistent grants were negotiated and used (blkfront's bounce pool is reused)
[ "$(json_field "$info" persistent)" = True ] || fail "persistent grants not negotiated: $info"
python3 -c 'import json,sys; p=json.loads(sys.argv[1])["persistent_grants"]; assert 0 < p["maps"] < p["hits"], p' "$stats" ||
    fail "persistent grant cache not used: $stats"
# and the path without them still works
info2=$(guest "$dom" "$PVBLK" --vdev xvda --no-persistent info --json) || fail "pvblk --no-persistent"
[ "$(json_field "$info2" persistent)" = False ] || fail "--no-persistent ignored: $info2"
guest "$dom" "$PVBLK" --vdev xvda --no-persistent --ring-order 0 verify --random 300 --seed 5 --length $((8 * MB)) ||
    fail "verify without persistent grants on a 1-page ring"

# detach: its tapdisk exits, the guest's grants are no longer mapped
pids_before=$(tapdisk_pids)
"$XENSIM" vbd detach "$dom" xvda >/dev/null || fail "detach"
[ "$("$TAPCTL" list | grep -c ' 51712 ')" = 0 ] || fail "tapdisk of xvda still listed"
# destroy: the read-only VBD's tapdisk goes too
"$XENSIM" domain destroy "$dom" >/dev/null || fail "destroy"
for p in $pids_before; do
    wait_pid_gone "$p" 20 || fail "tapdisk $p did not exit"
done
[ "$(dom_usage 0 maps_held)" = 0 ] || fail "dom0 still holds grant mappings"
[ "$(dom_usage 0 ports_bound)" = 0 ] || fail "dom0 still has event channels bound"
echo "PASS ($ENGINE)"
