#!/bin/sh
# pvblk in a guest against the blkfront test backend in dom0: info, write
# and read back through files, pattern verify, random verify against a
# model, and a short bench -- each checked by its output or exit status.
# Needs: XENSIM, PVBLK, TESTBACK.
set -eu
XENSIM_DIR=$(mktemp -d /tmp/pvio-pvblk.XXXXXX)
export XENSIM_DIR
back=
cleanup() {
    [ -n "$back" ] && kill "$back" 2>/dev/null
    "$XENSIM" stop >/dev/null 2>&1
    rm -rf "$XENSIM_DIR"
}
trap cleanup EXIT
"$XENSIM" start >/dev/null
dom=$("$XENSIM" domain create pvblk-guest --memory 64)
mkfifo "$XENSIM_DIR/ready"
"$XENSIM" run 0 -- "$TESTBACK" --domain "$dom" --sectors 32768 --flush --connections 8 \
    > "$XENSIM_DIR/ready" 2> "$XENSIM_DIR/back.log" &
back=$!
read -r line < "$XENSIM_DIR/ready"
[ "$line" = ready ] || { echo "FAIL: backend not ready"; exit 1; }
run() { "$XENSIM" run "$dom" -- "$PVBLK" "$@"; }

"$PVBLK" --help | grep -q 'Usage: pvblk'
for c in info read write verify bench; do "$PVBLK" $c --help | grep -q Usage; done

run --vdev xvda info --json > "$XENSIM_DIR/info.json"
grep -q '"sectors": 32768,' "$XENSIM_DIR/info.json" || { cat "$XENSIM_DIR/info.json"; echo "FAIL: info"; exit 1; }
grep -q '"flush": true' "$XENSIM_DIR/info.json"

head -c 200704 /dev/urandom > "$XENSIM_DIR/in.bin"
run write --offset 1m --length 200704 --in "$XENSIM_DIR/in.bin"
run read --offset 1m --length 200704 --out "$XENSIM_DIR/out.bin"
cmp "$XENSIM_DIR/in.bin" "$XENSIM_DIR/out.bin" || { echo "FAIL: read back differs"; exit 1; }

run verify --offset 2m --length 3m --seed 7 --json | tee "$XENSIM_DIR/v.json"
grep -q '"ok": true' "$XENSIM_DIR/v.json"
run verify --offset 0 --length 8m --random 2000 --seed 3 --json | tee "$XENSIM_DIR/r.json"
grep -q '"ios": 2000, "mismatches": 0, "ok": true' "$XENSIM_DIR/r.json"
run bench --rw randwrite --bs 4k --qd 16 --count 3000 --json | tee "$XENSIM_DIR/b.json"
grep -q '"ios": 3000,' "$XENSIM_DIR/b.json"
# one queue: its per-queue counts are the totals (3000 4 KiB I/Os, one
# ring request each, each answered)
python3 -c '
import json, sys
b = json.load(open(sys.argv[1])); pq = b["per_queue"]
assert len(pq) == 1 and pq[0]["queue"] == 0, pq
assert pq[0]["ring_requests"] == pq[0]["ring_responses"] == b["ring_requests"] == 3000, b
assert pq[0]["notifies"] == b["notifies"] and 1 <= pq[0]["event_rounds"] <= 3000, b
' "$XENSIM_DIR/b.json" || { echo "FAIL: per-queue stats of one queue"; exit 1; }
run bench --rw read --bs 64k --qd 8 --count 500 | tee "$XENSIM_DIR/b.txt"
grep -q 'IOPS' "$XENSIM_DIR/b.txt"
# a write outside the disk is refused before any I/O
if run write --offset 16m --length 4096 --pattern 1 2>/dev/null; then echo "FAIL: write past end"; exit 1; fi
wait "$back" || { cat "$XENSIM_DIR/back.log"; echo "FAIL: backend saw invalid requests"; exit 1; }
back=
echo "PASS: pvblk info/read/write/verify/bench against the test backend"
