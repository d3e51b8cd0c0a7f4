#!/bin/sh
# Adaptive ring polling (tapdisk --poll-us), engine $ENGINE: with polling
# on, a busy ring is served by polling (tapdisk's stats count polling
# periods and requests found without an event), data written is verified,
# and once the ring has been quiet the device is back on events: a request
# issued after an idle moment is answered.  Without the option tapdisk
# never polls.  (Its CPU cost and gain are figures: bench/blkbench.py's
# pvio-poll column.)
. "$(dirname "$0")/lib.sh"
MB=$((1024 * 1024))
img=$XENSIM_DIR/disk.img
truncate -s $((32 * MB)) "$img"
dom=$("$XENSIM" domain create poll-guest --memory 64)
start_tapback_args
echo "--poll-us 2000" > "$args"
# pstat KEY: a number from tapdisk's "polling" stats
pstat() {
    "$TAPCTL" stats "$dom" "$1" | grep -o '"polling":{[^}]*}' | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}

"$XENSIM" vbd attach "$dom" "$img" --vdev xvda >/dev/null || fail "attach"
guest "$dom" "$PVBLK" --vdev xvda info >/dev/null || fail "pvblk info"
[ "$(pstat 51712 us)" = 2000 ] || fail "polling window not in stats: $("$TAPCTL" stats "$dom" 51712)"
guest "$dom" "$PVBLK" --vdev xvda verify --random 400 --seed 5 --length $((32 * MB)) ||
    fail "random verify with polling"
guest "$dom" "$PVBLK" --vdev xvda bench --rw randread --qd 16 --count 20000 >/dev/null ||
    fail "bench with polling"
periods=$(pstat 51712 periods); found=$(pstat 51712 requests)
[ "${periods:-0}" -gt 0 ] || fail "tapdisk never polled a busy ring"
[ "${found:-0}" -gt 0 ] || fail "polling found no request"
echo "polling: $periods periods, $found requests found without an event"
# quiet now: polling ends and events take over; a new request is answered
guest "$dom" "$PVBLK" --vdev xvda verify --offset $((2 * MB)) --length $MB --seed 9 ||
    fail "sequential verify after the ring went quiet"
# without the option: never polls
: > "$args"
"$XENSIM" vbd attach "$dom" "$img" --vdev xvdb --mode r >/dev/null || fail "attach without polling"
guest "$dom" "$PVBLK" --vdev xvdb bench --rw randread --qd 16 --count 2000 >/dev/null || fail "bench without polling"
[ "$(pstat 51728 us)" = 0 ] && [ "$(pstat 51728 periods)" = 0 ] || fail "tapdisk polled without --poll-us"
echo "PASS ($ENGINE)"
