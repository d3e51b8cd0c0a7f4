#!/bin/sh
# EIO injected by the faulty engine (every 2nd read/write fails, 5 times):
# the guest gets error responses for exactly those requests, nothing hangs,
# tapdisk stays up, and once the faults stop all I/O works and verifies.
. "$(dirname "$0")/lib.sh"
MB=$((1024 * 1024))
img=$XENSIM_DIR/disk.img
truncate -s $((16 * MB)) "$img"
dom=$("$XENSIM" domain create eio-guest --memory 64)
start_faulty_tapback "every=2,count=5"
"$XENSIM" vbd attach "$dom" "$img" --vdev xvda >/dev/null || fail "attach"
g "$dom" "$PVBLK" info >/dev/null || fail "pvblk info"
pid=$(tapdisk_pids)
[ -n "$pid" ] || fail "no tapdisk"

# ten one-request reads: operations 2, 4, 6, 8, 10 fail
pattern=""
for i in 1 2 3 4 5 6 7 8 9 10; do
    if g "$dom" "$PVBLK" read --offset $((i * 4096)) --length 4096 --out /dev/null 2>/dev/null; then
        pattern="${pattern}o"
    else
        pattern="${pattern}E"
    fi
done
[ "$pattern" = "oEoEoEoEoE" ] || fail "expected every 2nd read to fail, got $pattern"
[ "$(grep -c "faulty engine: failing op" "$XENSIM_DIR/tapdisk.log")" = 5 ] ||
    fail "tapdisk did not log exactly 5 injected faults"

# the faults are over: mixed verified I/O works, on the same tapdisk
g "$dom" "$PVBLK" verify --random 300 --seed 11 --length $((8 * MB)) >/dev/null ||
    fail "I/O after the faults"
[ "$(tapdisk_pids)" = "$pid" ] || fail "tapdisk restarted or died (was $pid, now $(tapdisk_pids))"
echo PASS
