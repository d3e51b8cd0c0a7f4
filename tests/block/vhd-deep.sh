#!/bin/sh
# Chains of depth 1, 2, 3, 30 and 64 served by tapdisk (engine $ENGINE):
# mkchain builds each with random writes at every level and an overlay
# model of what the leaf's view holds.  The guest reads the whole disk
# through tapdisk: it equals the model.  The guest then writes at random
# (pvblk verify checks each write reads back); its final view equals what
# `vhdtool convert` makes of the chain, the chain passes `vhdtool check`,
# and no parent changed.  VHD_DEPTHS overrides the depths.
. "$(dirname "$0")/lib.sh"
[ -n "${VHDTOOL:-}" ] && [ -n "${MKCHAIN:-}" ] || { echo "SKIP: VHDTOOL/MKCHAIN not set"; exit 77; }
W=$XENSIM_DIR
MB=$((1024 * 1024))
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "# seed $SEED (SEED=$SEED reproduces)"
dom=$("$XENSIM" domain create deep-guest --memory 64)
start_tapback
n=0
for depth in ${VHD_DEPTHS:-1 2 3 30 64}; do
    n=$((n + 1))
    cd_=$W/d$depth; mkdir "$cd_"
    leaf=$("$MKCHAIN" "$cd_" "$depth" $((SEED + depth)) 8) || fail "mkchain depth $depth"
    sums=$(for f in "$cd_"/l*.vhd; do [ "$f" = "$leaf" ] || sha256sum "$f"; done)
    vdev=xvd$(printf "\\$(printf %o $((97 + n)))")
    "$XENSIM" vbd attach "$dom" "$leaf" --vdev "$vdev" >/dev/null || fail "attach depth $depth"
    guest "$dom" "$PVBLK" --vdev "$vdev" read --offset 0 --length $((8 * MB)) --out "$cd_/got" ||
        fail "read depth $depth"
    cmp "$cd_/got" "$cd_/model.raw" || fail "depth $depth: the guest's view differs from the model"
    guest "$dom" "$PVBLK" --vdev "$vdev" verify --random 100 --seed "$SEED" --length $((8 * MB)) ||
        fail "random verify at depth $depth"
    guest "$dom" "$PVBLK" --vdev "$vdev" read --offset 0 --length $((8 * MB)) --out "$cd_/got2" ||
        fail "read back depth $depth"
    pids=$(tapdisk_pids)
    "$XENSIM" vbd detach "$dom" "$vdev" >/dev/null || fail "detach depth $depth"
    for p in $pids; do wait_pid_gone "$p" 20 || fail "tapdisk $p did not exit"; done
    "$VHDTOOL" convert "$leaf" "$cd_/conv" >/dev/null || fail "vhdtool convert depth $depth"
    cmp "$cd_/got2" "$cd_/conv" || fail "depth $depth: guest's view after writes differs from vhdtool convert"
    "$VHDTOOL" check "$leaf" >"$cd_/check" 2>&1 || { cat "$cd_/check" >&2; fail "vhdtool check depth $depth"; }
    now=$(for f in "$cd_"/l*.vhd; do [ "$f" = "$leaf" ] || sha256sum "$f"; done)
    [ "$now" = "$sums" ] || fail "depth $depth: a parent changed"
    grep -q "vhd chain $leaf: $((8 * MB)) bytes, $depth file(s)" "$W/tapback.log" ||
        fail "tapdisk did not log a $depth-file chain"
    echo "# depth $depth: ok"
    rm -rf "$cd_"
done
[ "$(dom_usage 0 maps_held)" = 0 ] || fail "dom0 still holds grant mappings"
echo "PASS ($ENGINE)"
