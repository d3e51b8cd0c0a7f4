#!/bin/sh
# kill -9 of tapdisk at random points while a guest writes to a VHD chain
# (base with data <- leaf), ROUNDS times (default 20).  Each round a guest
# runs `pvblk journal` (every write to its own range, every ack and flush
# reported as it happens) against a tapdisk started by hand, and once the
# writer has seen K completions (K random) tapdisk and the writer are
# killed with SIGKILL.  Then, on the chain exactly as the crash left it:
#   - `vhdtool check` passes;
#   - `vhdtool convert` of the chain holds every write acknowledged before
#     a completed flush, no sector of an unfinished write holds anything but
#     its old or its new contents, and nothing else changed
#     (journal-check.py);
#   - a fresh tapdisk on the same chain serves a new guest process the same
#     bytes; after its detach `vhdtool check` passes again.
# Every other round starts a new leaf (its 2 MiB blocks get allocated: the
# crash-safe allocation order of vhd/write.c is what is tested), and half
# of those also arm PVIO_VHD_FAULT in the tapdisk (the vhd library "dies"
# at a chosen step of a chosen allocation: data, bitmap, BAT entry,
# footer; later writes fail) before the kill; the rounds between go on
# with the same leaf (allocated blocks, partial bitmaps).  The random
# choices come from one seed, printed first: PVIO_FAULT_SEED=S reruns them.
. "$(dirname "$0")/lib.sh"
[ -n "${VHDTOOL:-}" ] || { echo "SKIP: VHDTOOL not set"; exit 77; }
fail() { echo "FAIL: $*" >&2; tail -n 30 "$XENSIM_DIR/tapdisk.log" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
MB=$((1024 * 1024))
SIZE=$((16 * MB))
ROUNDS=${ROUNDS:-20}
SEED=${PVIO_FAULT_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "seed $SEED (rerun the same choices with PVIO_FAULT_SEED=$SEED)"
W=$XENSIM_DIR

# one round's choices, from the seed: new-leaf wseed count qd every kill_at fault
plan() { python3 - "$SEED" "$1" <<'PY'
import random, sys
seed, r = int(sys.argv[1]), int(sys.argv[2])
g = random.Random(seed * 1000 + r)
new = r % 2 == 0
count = g.randint(60, 200)
# a fresh leaf allocates its 8 blocks (2 MiB each): a fault at allocation
# 1..8, step 1 data, 2 bitmap, 3 BAT entry, 4 footer
fault = "%d:%d" % (g.randint(1, 8), g.randint(1, 4)) if new and g.random() < 0.5 else "-"
print(1 if new else 0, g.getrandbits(31), count, g.choice([1, 4, 8, 16]),
      g.randint(1, 12), g.randint(1, count - 1), fault)
PY
}

# the base: random data (from the seed) with holes, a dynamic VHD of 256 KiB blocks
python3 - "$SEED" "$W/base.raw" "$SIZE" <<'PY'
import random, sys
g = random.Random(int(sys.argv[1]))
size = int(sys.argv[3])
with open(sys.argv[2], "wb") as f:
    f.truncate(size)
    for mb in range(0, size >> 20):
        if g.random() < 0.6:
            f.seek(mb << 20)
            f.write(g.randbytes(1 << 20))
PY
"$VHDTOOL" convert --type dynamic --block-size 256K "$W/base.raw" "$W/base.vhd" >/dev/null ||
    fail "vhdtool convert raw -> vhd"
be=""
td_pid=""
# a tapdisk started here is ours to stop (lib.sh's cleanup stops xensim)
trap '[ -n "$td_pid" ] && kill "$td_pid" 2>/dev/null; cleanup' EXIT
td_start() { # tapdisk for the VBD in $be, with PVIO_VHD_FAULT=$1 unless "-"
    if [ "$1" = - ]; then
        "$XENSIM" run 0 -- "$TAPDISK" --backend "$be" --engine "$ENGINE" --log "$W/tapdisk.log" &
    else
        PVIO_VHD_FAULT=$1 "$XENSIM" run 0 -- "$TAPDISK" --backend "$be" --engine "$ENGINE" \
            --log "$W/tapdisk.log" &
    fi
    td_pid=$!
}
check_chain() { # WHEN: vhdtool check of the leaf must pass
    "$VHDTOOL" check "$W/leaf.vhd" >"$W/check.out" 2>&1 ||
        { cat "$W/check.out" >&2; fail "round $r: vhdtool check $1"; }
}

r=0
flushed=0
while [ $r -lt "$ROUNDS" ]; do
    set -- $(plan $r)
    newleaf=$1 wseed=$2 count=$3 qd=$4 every=$5 kill_at=$6 fault=$7
    if [ "$newleaf" = 1 ]; then
        rm -f "$W/leaf.vhd"
        "$VHDTOOL" snapshot "$W/base.vhd" "$W/leaf.vhd" >/dev/null || fail "snapshot"
        cp "$W/base.raw" "$W/ref.raw"
    fi
    # a fresh guest each round: the writer killed in the last one still
    # holds the pages it had (a domain's memory is freed when it dies)
    dom=$("$XENSIM" domain create crash-guest --memory 64)
    devid=$("$XENSIM" vbd attach "$dom" "$W/leaf.vhd" --vdev xvda --format vhd) || fail "attach"
    be=/local/domain/0/backend/vbd3/$dom/$devid
    td_start "$fault"
    # the writer; killed (with tapdisk, first) after its kill_at-th completion
    python3 - "$W/journal.log" "$kill_at" "$td_pid" "$XENSIM" "$dom" "$PVBLK" \
        journal --seed "$wseed" --count "$count" --qd "$qd" --flush-every "$every" \
        --length $SIZE <<'PY' || fail "round $r: the writer"
import os, signal, subprocess, sys, threading
log, kill_at, td = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
w = subprocess.Popen([sys.argv[4], "run", sys.argv[5], "--"] + sys.argv[6:], stdout=subprocess.PIPE)
seen, killed = 0, False
def hung():  # a deadline that only turns a hang into a failure
    print("the writer made no progress for 60 s", file=sys.stderr)
    os.kill(td, signal.SIGKILL)
    os.kill(w.pid, signal.SIGKILL)
deadline = threading.Timer(60, hung)
deadline.start()
with open(log, "wb") as out:
    for line in w.stdout:           # blocks until the writer says something
        out.write(line)
        if line.startswith((b"ack ", b"err ")):
            seen += 1
        if seen >= kill_at and not killed:
            os.kill(td, signal.SIGKILL)
            os.kill(w.pid, signal.SIGKILL)
            killed = True            # what is still in the pipe was said before: keep it
deadline.cancel()
w.wait()
if not killed:
    print("the writer finished (or hung) before its %d-th completion" % kill_at, file=sys.stderr)
    sys.exit(1)
PY
    wait "$td_pid" 2>/dev/null || true  # killed: 137
    td_pid=""
    echo "round $r: killed after $kill_at completions ($(grep -c '^ack' "$W/journal.log") acked," \
        "$(grep -c '^err' "$W/journal.log") failed, $(grep -c '^fack' "$W/journal.log") flushes done;" \
        "count $count qd $qd flush every $every, fault $fault, new leaf $newleaf)"
    flushed=$((flushed + $(grep -c '^fack' "$W/journal.log" || true)))
    # the chain exactly as the crash left it
    check_chain "after the crash"
    "$VHDTOOL" convert "$W/leaf.vhd" "$W/crash.raw" >/dev/null || fail "round $r: vhdtool convert"
    python3 "$HERE/journal-check.py" "$W/journal.log" "$wseed" "$W/crash.raw" "$W/ref.raw" ||
        fail "round $r: the converted chain lost acknowledged data (seed $SEED)"
    # a fresh tapdisk on the same chain, a new guest process reads it all
    td_start -
    g "$dom" "$PVBLK" --vdev xvda read --offset 0 --length $SIZE --out "$W/fresh.raw" ||
        fail "round $r: read through a fresh tapdisk"
    cmp -s "$W/fresh.raw" "$W/crash.raw" || fail "round $r: a fresh tapdisk reads other data than vhdtool"
    "$XENSIM" vbd detach "$dom" xvda >/dev/null || fail "round $r: detach"
    wait "$td_pid" || fail "round $r: the fresh tapdisk did not exit cleanly"
    td_pid=""
    "$XENSIM" domain destroy "$dom" >/dev/null 2>&1 || fail "round $r: domain destroy"
    check_chain "after a fresh attach"
    mv "$W/crash.raw" "$W/ref.raw"
    r=$((r + 1))
done
[ "$(dom_usage 0 maps_held)" = 0 ] || fail "dom0 still holds grant mappings"
# durable data must have been at stake in some round, or nothing was shown
[ "$flushed" -gt 0 ] || fail "no flush completed before any kill (seed $SEED): nothing durable was checked"
echo "allocation faults that fired: $(grep -c 'fault injected' "$W/tapdisk.log")"
echo "PASS: $ROUNDS kills (seed $SEED)"
