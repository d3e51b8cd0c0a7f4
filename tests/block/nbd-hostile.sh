#!/bin/sh
# Hostile NBD clients (nbd-hostile.py) against tapdisk's NBD export while a
# guest runs verified random I/O on the same disk and a well-behaved NBD
# client stays connected: bad magic, unknown client flags and options,
# oversized options and requests, out-of-range offsets, unknown commands
# and flags, clients that hang up mid-message or never collect replies,
# more clients than allowed.  Each gets the spec's answer (an error reply
# and a kept connection, or a disconnect of that client only); tapdisk
# logs and counts the refusals, stays up, and the guest and the good
# client see no difference.
. "$(dirname "$0")/lib.sh"
[ -n "${NBD_HOSTILE:-}" ] || { echo "SKIP: NBD_HOSTILE not set"; exit 77; }
MB=$((1024 * 1024))
W=$XENSIM_DIR
img=$W/disk.img
truncate -s $((48 * MB)) "$img"
head -c $((8 * MB)) /dev/urandom | dd of="$img" conv=notrunc status=none
dom=$("$XENSIM" domain create nbd-hostile --memory 64)
start_tapback
"$XENSIM" vbd attach "$dom" "$img" --vdev xvda >/dev/null || fail "attach"
guest "$dom" "$PVBLK" --vdev xvda info >/dev/null || fail "guest: pvblk info"
sock=$("$TAPCTL" --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["nbd"])')
[ -S "$sock" ] || fail "no NBD socket ($sock)"
pid=$(tapdisk_pids)

# the guest works on [16 MiB, 32 MiB) all along (verified reads of its writes)
guest "$dom" "$PVBLK" --vdev xvda verify --offset $((16 * MB)) --length $((16 * MB)) \
    --random 3000 --seed 21 > "$W/verify.out" 2>&1 &
vpid=$!
trap 'kill $vpid 2>/dev/null || true; cleanup' EXIT
python3 "$NBD_HOSTILE" "$sock" "$img" "$W/good.data" > "$W/hostile.out" 2>&1 ||
    { cat "$W/hostile.out" >&2; fail "hostile NBD clients: see above"; }
wait $vpid || { cat "$W/verify.out" >&2; fail "the guest's verified I/O failed during the NBD abuse"; }
cat "$W/hostile.out"

[ "$(tapdisk_pids)" = "$pid" ] || fail "tapdisk $pid did not survive ($(tapdisk_pids))"
guest "$dom" "$PVBLK" --vdev xvda read --offset $((40 * MB)) --length $((256 * 1024)) --out "$W/g" ||
    fail "guest read of the good client's write"
cmp "$W/g" "$W/good.data" || fail "the guest does not read what the good NBD client wrote"
guest "$dom" "$PVBLK" --vdev xvda verify --random 300 --seed 4 --offset $((16 * MB)) --length $((16 * MB)) ||
    fail "guest verify after the NBD abuse"
for msg in "disconnecting: unknown client flags" "disconnecting: bad option magic" \
    "disconnecting: bad request magic" "disconnecting: hung up in the middle of a message" \
    "disconnecting: asked for an unknown export name" "option 4660 refused: unsupported option" \
    "refusing read (type 0) of 67108864 bytes at 0: longer than the 32 MiB maximum" \
    "refusing unknown (type 99)" "refusing write (type 1) of 8192 bytes" \
    "clients connected already: refusing another"; do
    grep -q "$msg" "$W/tapback.log" || fail "tapdisk did not log '$msg'"
done
stats=$("$TAPCTL" stats "$dom" 51712)
python3 - "$stats" <<'PY' || fail "NBD counters: $stats"
import json, sys
n = json.loads(sys.argv[1])["nbd"]
assert n["refused"] >= 20 and n["dropped"] >= 5 and n["clients"] == 0, n
assert n["requests"]["write"] >= 1 and n["requests"]["flush"] >= 1, n
PY
"$XENSIM" vbd detach "$dom" xvda >/dev/null || fail "detach"
wait_pid_gone "$pid" 20 || fail "tapdisk $pid did not exit"
[ ! -e "$sock" ] || fail "the NBD socket outlived its tapdisk"
[ "$(dom_usage 0 maps_held)" = 0 ] || fail "dom0 still holds grant mappings"
echo PASS
