#!/bin/sh
# Block multi-queue and barriers end to end (engine $ENGINE, io_uring default):
# pvio-tapback starts tapdisk (through a wrapper adding this test's tapdisk
# options), a guest drives it with pvblk.  Multi-queue negotiated in every
# combination (both ends multi-queue, a 1-queue frontend against a
# multi-queue backend, a multi-queue frontend against a backend that does
# not publish multi-queue-max-queues, different limits on each side), the
# negotiated count in `pvblk info --json` and tapdisk's stats, every queue
# used (its own request counter), data verified (random pvblk verify
# against its model, a journal of writes and flushes checked against the
# image by journal-check.py); a 1-queue frontend after a multi-queue one on the same device (stale queue-N keys dropped);
# flushes through WRITE_BARRIER when the backend has no flush-cache.
# PART=1: the combinations with 4 queues; PART=2: other limits, barriers.
. "$(dirname "$0")/lib.sh"
MB=$((1024 * 1024))
img=$XENSIM_DIR/disk.img
truncate -s $((64 * MB)) "$img"
dom=$("$XENSIM" domain create mq-guest --memory 96)
start_tapback_args

# queue_requests: each queue's request counter, space separated
queue_requests() {
    "$TAPCTL" stats "$dom" "$devid" | python3 -c '
import json,sys
print(" ".join(str(q["requests"]) for q in json.load(sys.stdin)["queues"]["per_queue"]))'
}

n=0

seed=1
# case NAME TAPDISK-OPTIONS PVBLK-OPTIONS WANT-QUEUES WANT-OFFERED
case_() {
    name=$1 targs=$2 pargs=$3 want=$4 offered=$5
    seed=$((seed + 1))
    echo "$targs" > "$args"
    next_vdev
    [ "$("$XENSIM" vbd attach "$dom" "$img" --vdev $vdev)" = $devid ] || fail "$name: attach $vdev"
    # shellcheck disable=SC2086
    info=$(guest "$dom" "$PVBLK" --vdev $vdev $pargs info --json) || fail "$name: pvblk info"
    [ "$(jf "$info" queues)" = "$want" ] || fail "$name: $(jf "$info" queues) queues, want $want: $info"
    [ "$(jf "$info" max_queues_offered)" = "$offered" ] ||
        fail "$name: backend offers $(jf "$info" max_queues_offered), want $offered"
    # shellcheck disable=SC2086
    guest "$dom" "$PVBLK" --vdev $vdev $pargs verify --random 200 --seed $seed --length $((16 * MB)) >/dev/null ||
        fail "$name: random verify"
    [ "$(tstat queues count)" = "$want" ] || fail "$name: tapdisk serves $(tstat queues count) queues, want $want"
    # every queue carried requests (round-robin: none idle)
    qr=$(queue_requests)
    [ "$(echo $qr | wc -w)" = "$want" ] || fail "$name: per-queue stats '$qr' for $want queues"
    for r in $qr; do [ "$r" -gt 0 ] || fail "$name: an idle queue: $qr"; done
    # a journal of acknowledged writes with flushes: every acked write is
    # in the image, nothing else changed (journal-check.py against a copy
    # taken before)
    cp "$img" "$XENSIM_DIR/ref.raw"
    # shellcheck disable=SC2086
    guest "$dom" "$PVBLK" --vdev $vdev $pargs journal --seed $seed --count 100 --qd 16 --flush-every 10 \
        --offset $((20 * MB)) --length $((16 * MB)) > "$XENSIM_DIR/journal.$n" || fail "$name: journal"
    grep -q '^fack' "$XENSIM_DIR/journal.$n" || fail "$name: journal made no flush"
    python3 "$(dirname "$0")/../faults/journal-check.py" "$XENSIM_DIR/journal.$n" $seed "$img" \
        "$XENSIM_DIR/ref.raw" --offset $((20 * MB)) --length $((16 * MB)) >/dev/null ||
        fail "$name: the journal's acknowledged writes are not what the image holds"
    [ "$(tstat errors invalid)" = 0 ] || fail "$name: tapdisk refused requests of a correct frontend"
    echo "ok: $name ($want queues; per queue: $qr)"
}

# PART 1 or 2 (two meson tests, each short): which half of the cases
PART=${PART:-1}
if [ "$PART" = 1 ]; then
case_ "both multi-queue" "--max-queues 4" "--queues 4" 4 4
# blkfront's per-queue stats (pvblk bench --json, per_queue): a 4 KiB I/O
# is one ring request and pvio_blkfront_submit spreads I/Os round-robin,
# so 2000 I/Os are 500 ring requests on each of the 4 queues, each
# answered; the queues' notifications add up to the total; responses were
# found on at least one event per queue and at most one per response; and
# each queue's requests are exactly those tapdisk took off that ring (its
# per-queue counters are those of the last connection: this bench's).
out=$(guest "$dom" "$PVBLK" --vdev $vdev --queues 4 bench --rw randwrite --bs 4k --qd 16 --count 2000 --json) ||
    fail "per-queue stats: bench"
backend=$(queue_requests)
python3 - "$out" "$backend" <<'PY' || fail "per-queue stats do not add up: $out (tapdisk per queue: $backend)"
import json, sys
b = json.loads(sys.argv[1])
backend = [int(x) for x in sys.argv[2].split()]
pq = b["per_queue"]
assert [q["queue"] for q in pq] == [0, 1, 2, 3], pq
assert b["ios"] == 2000 and b["ring_requests"] == 2000, b
for q in pq:
    assert q["ring_requests"] == 500 and q["ring_responses"] == 500, q
    assert 1 <= q["event_rounds"] <= q["ring_responses"], q
    assert 1 <= q["notifies"] <= q["ring_requests"], q
assert sum(q["notifies"] for q in pq) == b["notifies"], b
assert backend == [q["ring_requests"] for q in pq], backend
print("ok: per-queue stats: (requests, notifications, event rounds)",
      [(q["ring_requests"], q["notifies"], q["event_rounds"]) for q in pq])
PY
# the same device, now a 1-queue frontend: its stale queue-N keys are gone,
# the flat layout is used and accepted
info=$(guest "$dom" "$PVBLK" --vdev $vdev info --json) || fail "1 queue after 4: pvblk info"
[ "$(jf "$info" queues)" = 1 ] || fail "1 queue after 4: $info"
guest "$dom" "$PVBLK" --vdev $vdev verify --random 100 --seed 9 --length $((16 * MB)) >/dev/null ||
    fail "1 queue after 4: verify"
"$XENSIM" vbd detach "$dom" $vdev >/dev/null || fail "detach"
echo "ok: a 1-queue frontend after a 4-queue one on the same device"

case_ "frontend 1 queue, backend multi-queue" "--max-queues 4" "" 1 4
"$XENSIM" vbd detach "$dom" $vdev >/dev/null || fail "detach"
case_ "frontend multi-queue, backend without multi-queue-max-queues" "--max-queues 0" "--queues 4" 1 0
"$XENSIM" vbd detach "$dom" $vdev >/dev/null || fail "detach"
grep -q "connected to domain $dom: 4 queue(s)" "$XENSIM_DIR/tapback.log" || fail "connect line does not say 4 queues"
else
case_ "backend 2, frontend 8" "--max-queues 2" "--queues 8" 2 2
"$XENSIM" vbd detach "$dom" $vdev >/dev/null || fail "detach"
case_ "backend 16, frontend 3, 1-page rings, no persistent grants" "--max-queues 16 --max-ring-order 0 --no-persistent" \
    "--queues 3" 3 16
"$XENSIM" vbd detach "$dom" $vdev >/dev/null || fail "detach"

# Flushes as barriers: a backend without feature-flush-cache; blkfront
# sends WRITE_BARRIER for every flush, on each of 2 queues' turn.
case_ "barriers for flushes (no flush-cache), 2 queues" "--max-queues 2 --no-flush-cache" "--queues 2" 2 2
[ "$(jf "$info" flush)" = false ] && [ "$(jf "$info" barrier)" = true ] || fail "barrier: features $info"
# every acknowledged flush of the journal was a barrier (verify adds its own)
b=$(tstat barriers) fl=$(grep -c '^fack' "$XENSIM_DIR/journal.$n")
[ "$b" -ge "$fl" ] && [ "$fl" -ge 1 ] || fail "barrier: tapdisk counted $b barriers for the journal's $fl flushes"
[ "$(tstat errors unsupported)" = 0 ] || fail "barrier: flushes refused"
"$XENSIM" vbd detach "$dom" $vdev >/dev/null || fail "detach"
fi
echo "PASS ($ENGINE, part $PART)"
