#!/bin/sh
# Indirect descriptors and 4 KiB logical sectors end to end, with engine
# $ENGINE: pvio-tapback starts tapdisk (through a wrapper that adds this
# test's tapdisk options), a guest drives it with pvblk. Every combination
# of indirect on/off at each end and different limits on each side; the
# negotiated value in `pvblk info --json`; a 1 MiB write taking exactly the
# ring requests the limit implies (tapdisk's counters); data verified with
# pvblk verify (random 512 B .. 1 MiB I/O against a model, and sequential
# 1 MiB I/O); indirect with and without persistent grants; a disk of
# 4096-byte sectors.
. "$(dirname "$0")/lib.sh"
MB=$((1024 * 1024))
img=$XENSIM_DIR/disk.img
truncate -s $((64 * MB)) "$img"
dom=$("$XENSIM" domain create ind-guest --memory 64)
start_tapback_args

# Each case attaches the image under its own vdev (xvda, xvdb, ...), so
# no case waits on the previous one's tapdisk to be gone.
n=0

seed=1
# case NAME TAPDISK-OPTIONS PVBLK-OPTIONS WANT: negotiated WANT segments
case_() {
    name=$1 targs=$2 pargs=$3 want=$4
    seed=$((seed + 1))
    echo "$targs" > "$args"
    next_vdev
    [ "$("$XENSIM" vbd attach "$dom" "$img" --vdev $vdev)" = $devid ] || fail "$name: attach $vdev"
    # shellcheck disable=SC2086
    info=$(guest "$dom" "$PVBLK" --vdev $vdev $pargs info --json) || fail "$name: pvblk info"
    [ "$(jf "$info" max_indirect_segments)" = "$want" ] ||
        fail "$name: negotiated $(jf "$info" max_indirect_segments) segments, want $want"
    # shellcheck disable=SC2086
    guest "$dom" "$PVBLK" --vdev $vdev $pargs write --offset $((8 * MB)) --length $MB --pattern $seed ||
        fail "$name: 1 MiB write"
    if [ "$want" = 0 ]; then per=11; else per=$want; fi
    reqs=$(( (256 + per - 1) / per ))
    [ "$(tstat requests write)" = $reqs ] || fail "$name: a 1 MiB write took $(tstat requests write) requests, want $reqs"
    if [ "$want" = 0 ]; then ind=0; else ind=$reqs; fi
    [ "$(tstat indirect requests)" = $ind ] || fail "$name: $(tstat indirect requests) indirect requests, want $ind"
    # shellcheck disable=SC2086
    guest "$dom" "$PVBLK" --vdev $vdev $pargs verify --offset $((8 * MB)) --length $MB --seed $seed >/dev/null ||
        fail "$name: the 1 MiB pattern does not read back"
    # shellcheck disable=SC2086
    guest "$dom" "$PVBLK" --vdev $vdev $pargs verify --random 200 --seed $seed --length $((16 * MB)) >/dev/null ||
        fail "$name: random verify"
    # shellcheck disable=SC2086
    guest "$dom" "$PVBLK" --vdev $vdev $pargs verify --offset $((40 * MB)) --length $((4 * MB)) --seed $seed >/dev/null ||
        fail "$name: sequential 1 MiB verify"
    [ "$(tstat errors invalid)" = 0 ] || fail "$name: tapdisk refused requests of a correct frontend"
    "$XENSIM" vbd detach "$dom" $vdev >/dev/null || fail "$name: detach"
    echo "ok: $name ($want segments)"
}

case_ "both on" "" "" 256
[ "$(jf "$info" persistent)" = true ] || fail "persistent grants not on with indirect: $info"
case_ "frontend without" "" "--no-indirect" 0
case_ "backend without" "--max-indirect-segments 0" "" 0
case_ "backend limit 32" "--max-indirect-segments 32" "" 32
case_ "frontend limit 64" "" "--max-indirect 64" 64
case_ "both lower, backend 100 frontend 48" "--max-indirect-segments 100" "--max-indirect 48" 48
case_ "indirect without persistent grants" "--no-persistent" "" 256
[ "$(jf "$info" persistent)" = false ] || fail "persistent grants not off: $info"
case_ "indirect on a 1-page ring" "--max-ring-order 0" "" 256

# a disk of 4096-byte logical sectors
echo "--sector-size 4096" > "$args"
next_vdev
[ "$("$XENSIM" vbd attach "$dom" "$img" --vdev $vdev)" = $devid ] || fail "4k: attach"
info=$(guest "$dom" "$PVBLK" --vdev $vdev info --json) || fail "4k: pvblk info"
[ "$(jf "$info" sector_size)" = 4096 ] && [ "$(jf "$info" physical_sector_size)" = 4096 ] ||
    fail "4k: sector sizes: $info"
[ "$(jf "$info" sectors)" = $((64 * MB / 512)) ] || fail "4k: sectors are not 512-byte units: $info"
guest "$dom" "$PVBLK" --vdev $vdev verify --random 300 --seed 77 --length $((32 * MB)) >/dev/null ||
    fail "4k: random verify"
guest "$dom" "$PVBLK" --vdev $vdev --no-indirect verify --random 200 --seed 78 --length $((32 * MB)) >/dev/null ||
    fail "4k: random verify without indirect"
guest "$dom" "$PVBLK" --vdev $vdev verify --offset $((40 * MB)) --length $((8 * MB)) --seed 79 >/dev/null ||
    fail "4k: sequential verify"
guest "$dom" "$PVBLK" --vdev $vdev read --offset 512 --length 4096 --out /dev/null 2>/dev/null &&
    fail "4k: a read at byte 512 must be refused"
guest "$dom" "$PVBLK" --vdev $vdev write --offset 0 --length 512 --pattern 1 2>/dev/null &&
    fail "4k: a 512-byte write must be refused"
[ "$(tstat sector_size)" = 4096 ] || fail "4k: tapdisk does not say 4096"
[ "$(tstat misaligned)" = 0 ] && [ "$(tstat errors invalid)" = 0 ] ||
    fail "4k: tapdisk saw misaligned requests from blkfront"
"$XENSIM" vbd detach "$dom" $vdev >/dev/null || fail "4k: detach"
grep -q "sector size 4096 (physical 4096)" "$XENSIM_DIR/tapback.log" || fail "4k: connect line does not say 4096"
echo "ok: 4096-byte sectors"
echo "PASS ($ENGINE)"
