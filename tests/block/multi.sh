#!/bin/sh
# Two domains with two VBDs each, all driven at once: every disk ends up with
# exactly its own guest's data (no cross-talk between rings, grants, event
# channels or images), and every I/O verifies against its own model.
. "$(dirname "$0")/lib.sh"
MB=$((1024 * 1024))
start_tapback
pids=""
for g in 1 2; do
    eval "dom$g=\$(\"\$XENSIM\" domain create multi-$g --memory 64)"
done
for g in 1 2; do
    eval "dom=\$dom$g"
    for v in a b; do
        truncate -s $((32 * MB)) "$XENSIM_DIR/$g$v.img"
        head -c $MB /dev/urandom > "$XENSIM_DIR/$g$v.data"
        "$XENSIM" vbd attach "$dom" "$XENSIM_DIR/$g$v.img" --vdev "xvd$v" >/dev/null || fail "attach $g$v"
    done
done
# all four at once: random verified I/O, then each writes its own data at 8 MiB
for g in 1 2; do
    eval "dom=\$dom$g"
    for v in a b; do
        (
            guest "$dom" "$PVBLK" --vdev "xvd$v" verify --random 600 --fresh --seed "$g$(printf %d "'$v")" --length $((8 * MB)) >/dev/null &&
            guest "$dom" "$PVBLK" --vdev "xvd$v" write --offset $((8 * MB)) --length $MB --in "$XENSIM_DIR/$g$v.data"
        ) &
        pids="$pids $!"
    done
done
for p in $pids; do wait "$p" || fail "a guest workload failed"; done
for g in 1 2; do
    for v in a b; do
        dd if="$XENSIM_DIR/$g$v.img" bs=$MB skip=8 count=1 status=none | cmp - "$XENSIM_DIR/$g$v.data" ||
            fail "image $g$v does not hold its own guest's data"
    done
done
echo PASS
