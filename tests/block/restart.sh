#!/bin/sh
# kill -9 of a tapdisk in the middle of a write workload: pvio-tapback
# restarts it, blkfront reconnects and resubmits what was in flight, the
# workload completes, and every acknowledged write reads back (pvblk checks
# each read against its model, then flushes and reads the whole range back).
# With QUEUES=N the guest uses N rings (tapdisk offers one per online CPU):
# every queue's in-flight requests are resubmitted on the new connection.
. "$(dirname "$0")/lib.sh"
MB=$((1024 * 1024))
truncate -s $((32 * MB)) "$XENSIM_DIR/disk.img"
dom=$("$XENSIM" domain create restart-guest --memory 64)
start_tapback
"$XENSIM" vbd attach "$dom" "$XENSIM_DIR/disk.img" >/dev/null || fail "attach"
qargs=""
[ -n "${QUEUES:-}" ] && qargs="--queues $QUEUES"
# shellcheck disable=SC2086
guest "$dom" "$PVBLK" $qargs verify --random 30000 --fresh --seed 11 --length $((16 * MB)) > "$XENSIM_DIR/verify.out" 2>&1 &
work=$!
# wait until the workload is well under way (the tapdisk has served 300
# requests), then kill it
python3 - "$TAPCTL" "$dom" <<'PY' || fail "workload never got going"
import json, subprocess, sys, time
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    r = subprocess.run([sys.argv[1], "stats", sys.argv[2], "51712"], capture_output=True, text=True)
    if r.returncode == 0:
        s = json.loads(r.stdout)
        if s["requests"]["write"] + s["requests"]["read"] >= 300:
            sys.exit(0)
    time.sleep(0.02)  # pacing of a condition poll, not a synchronisation
sys.exit(1)
PY
old=$(tapdisk_pids)
[ -n "$old" ] || fail "no tapdisk"
kill -0 "$work" 2>/dev/null || fail "the workload ended before the kill: make it longer"
kill -9 $old
wait "$work" || { cat "$XENSIM_DIR/verify.out"; fail "the workload did not survive the restart"; }
cat "$XENSIM_DIR/verify.out"
grep -q "all data verified" "$XENSIM_DIR/verify.out" || fail "verify did not finish clean"
new=$(tapdisk_pids)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "tapdisk was not restarted (old $old, new $new)"
grep -q "reconnect\|InitWait" "$XENSIM_DIR/tapback.log" || fail "no reconnect logged"
grep -q "restart" "$XENSIM_DIR/tapback.log" || fail "tapback did not log the restart"
if [ -n "${QUEUES:-}" ]; then
    want=$(nproc); [ "$want" -gt "$QUEUES" ] && want=$QUEUES; [ "$want" -gt 16 ] && want=16
    got=$("$TAPCTL" stats "$dom" 51712 | python3 -c 'import json,sys; print(json.load(sys.stdin)["queues"]["count"])')
    [ "$got" = "$want" ] || fail "the new tapdisk served $got queues, want $want"
fi
echo "PASS: tapdisk $old killed, $new took over${QUEUES:+ ($QUEUES queues asked)}"
