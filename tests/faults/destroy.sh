#!/bin/sh
# A domain destroyed with requests in flight.  tapdisk runs the faulty
# engine holding every read and write completion for 5 s (a slow disk:
# count=0 fails nothing, delay=5000); a guest queues 32 writes on one VBD
# and 16 reads on another, and once both tapdisks report them in flight
# (with the guest's pages mapped in dom0) the domain is destroyed.  Each
# tapdisk must keep those pages mapped until the engine is done with them,
# then release every mapping (dom0's maps_held and grant_pins back to 0 in
# `xensim domain list --json`) and exit 0; its log says why it exits;
# pvio-tapback does not restart it.
. "$(dirname "$0")/lib.sh"
fail() { echo "FAIL: $*" >&2; tail -n 40 "$XENSIM_DIR/tapdisk.log" "$XENSIM_DIR/tapback.log" >&2; exit 1; }
MB=$((1024 * 1024))
truncate -s $((16 * MB)) "$XENSIM_DIR/a.img" "$XENSIM_DIR/b.img"
dom=$("$XENSIM" domain create destroy-guest --memory 64)
start_faulty_tapback "count=0,delay=5000"
"$XENSIM" vbd attach "$dom" "$XENSIM_DIR/a.img" --vdev xvda >/dev/null || fail "attach xvda"
"$XENSIM" vbd attach "$dom" "$XENSIM_DIR/b.img" --vdev xvdb >/dev/null || fail "attach xvdb"
g "$dom" "$PVBLK" --vdev xvdb info >/dev/null || fail "pvblk info xvdb"
pids=$(tapdisk_pids)
[ "$(echo $pids | wc -w)" = 2 ] || fail "expected 2 tapdisks, got '$pids'"

# the guest's I/O, 4 KiB each, all at once (each waits 5 s in the engine)
"$XENSIM" run "$dom" -- "$PVBLK" --vdev xvda bench --rw randwrite --bs 4k --qd 32 --count 32 \
    >/dev/null 2>&1 &
w1=$!
"$XENSIM" run "$dom" -- "$PVBLK" --vdev xvdb bench --rw randread --bs 4k --qd 16 --count 16 \
    >/dev/null 2>&1 &
w2=$!
# until the tapdisks hold them all (polled: the condition, not a time, decides)
python3 - "$TAPCTL" "$dom" <<'PY' || fail "the requests never were in flight together"
import json, subprocess, sys, time
deadline = time.monotonic() + 30
def inflight(devid):
    r = subprocess.run([sys.argv[1], "stats", sys.argv[2], devid], capture_output=True, text=True)
    return json.loads(r.stdout)["in_flight"] if r.returncode == 0 else -1
while time.monotonic() < deadline:
    if inflight("51712") == 32 and inflight("51728") == 16:
        sys.exit(0)
    time.sleep(0.02)  # pacing of a condition poll, not a synchronisation
sys.exit(1)
PY
maps=$(dom_usage 0 maps_held)
[ "$maps" -gt 0 ] || fail "nothing mapped in dom0 with 48 requests in flight"
echo "48 requests in flight, dom0 holds $maps mappings; destroying the domain"
"$XENSIM" domain destroy "$dom" >/dev/null || fail "domain destroy"
for p in $pids; do
    wait_pid_gone "$p" 30 || fail "tapdisk $p did not exit after the destroy"
done
wait "$w1" 2>/dev/null || true  # the guest's processes died with it
wait "$w2" 2>/dev/null || true
log=$XENSIM_DIR/tapdisk.log
# the destroy removes the VBDs (online 0, then the backend dir): either is
# the reason tapdisk gives, whichever its watch sees first
for v in xvda xvdb; do
    grep -Eq "$v: info: toolstack detach \((online is 0|backend dir removed)\): closing down" "$log" ||
        fail "$v's tapdisk does not say why it leaves"
done
grep -q "xvda: info: disconnecting after 32 requests in flight complete" "$log" ||
    fail "xvda's tapdisk did not wait for its 32 requests in flight"
grep -q "xvdb: info: disconnecting after 16 requests in flight complete" "$log" ||
    fail "xvdb's tapdisk did not wait for its 16 requests in flight"
grep -q "xvda: info: detached" "$log" || fail "xvda's tapdisk did not finish the detach"
grep -q "xvdb: info: detached" "$log" || fail "xvdb's tapdisk did not finish the detach"
for p in $pids; do
    grep -q "tapdisk pid $p exited with status 0 (detached); not restarting" "$XENSIM_DIR/tapback.log" ||
        fail "tapdisk $p did not exit 0, or was restarted"
done
! grep -q "completions still held" "$log" || fail "the engine was closed with I/O still in it"
[ "$(dom_usage 0 maps_held)" = 0 ] || fail "dom0 still holds $(dom_usage 0 maps_held) grant mappings"
[ "$(dom_usage 0 grant_pins)" = 0 ] || fail "dom0 still holds $(dom_usage 0 grant_pins) grant pins"
[ -z "$(tapdisk_pids)" ] || fail "tapdisks left: $(tapdisk_pids)"
echo PASS
