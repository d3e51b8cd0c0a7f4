#!/bin/sh
# pvio demo: a simulated Xen host, a guest with a PV disk served by a
# user-space tapdisk in dom0 from a VHD chain (a base image and a snapshot of
# it, as XenServer stores a VDI), and a verified read/write workload from the
# guest — requests travel blkfront -> shared ring + grants + event channel ->
# tapdisk -> the chain's files, and back.
set -eu

usage() {
    cat <<USAGE
Usage: pvio-demo [--ios N] [--size MiB] [--engine io_uring|libaio] [--keep]
Start a private xensim, make a VHD chain (a dynamic base image, default 256
MiB, holding a greeting, and a snapshot of it), attach the snapshot to a new
guest as xvda (what 'xl block-attach' does), let pvio-tapback start a tapdisk
that serves the whole chain, read the base's greeting through the snapshot,
run N (default 4000) verified random reads and writes of 512 B .. 1 MiB from
the guest (they land in the snapshot; the base stays unchanged), then a 4 KiB
random-read benchmark, check the chain, and tear everything down (--keep
leaves xensim running).
USAGE
}

ios=4000 size=256 engine=io_uring keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --ios) ios=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --engine) engine=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --help|-h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
pick() { # binary name, path in a build tree
    if [ -x "$here/$2" ]; then echo "$here/$2"; elif command -v "$1" >/dev/null; then command -v "$1";
    else echo "pvio-demo: cannot find $1" >&2; exit 1; fi
}
xensim=$(pick xensim ../sim/xensim)
tapback=$(pick pvio-tapback ../tapdisk/tapback/pvio-tapback)
tapctl=$(pick tapctl tapctl/tapctl)
pvblk=$(pick pvblk pvblk/pvblk)
vhdtool=$(pick vhdtool vhdtool/vhdtool)

XENSIM_DIR=$(mktemp -d /tmp/pvio-demo.XXXXXX)
export XENSIM_DIR
tb=""
cleanup() {
    if [ "$keep" = 0 ]; then
        [ -n "$tb" ] && kill "$tb" 2>/dev/null && wait "$tb" 2>/dev/null
        "$xensim" stop >/dev/null 2>&1 || true
        rm -rf "$XENSIM_DIR"
    fi
}
trap cleanup EXIT INT TERM
step() { printf '\n== %s\n' "$*"; }

step "1. Start the simulated Xen host (hypervisor + xenstored) in $XENSIM_DIR"
"$xensim" start

step "2. Create a guest domain and a VHD chain: base.vhd (${size} MiB) <- snapshot.vhd"
dom=$("$xensim" domain create demo-guest --memory 128)
raw=$XENSIM_DIR/base.raw
truncate -s "${size}M" "$raw"
printf 'Hello from base.vhd, read through its snapshot.\n' | dd of="$raw" conv=notrunc status=none
"$vhdtool" convert --type dynamic "$raw" "$XENSIM_DIR/base.vhd" >/dev/null
rm -f "$raw"
"$vhdtool" snapshot "$XENSIM_DIR/base.vhd" "$XENSIM_DIR/snapshot.vhd" >/dev/null
img=$XENSIM_DIR/snapshot.vhd
base_sum=$(sha256sum < "$XENSIM_DIR/base.vhd")
"$vhdtool" info --chain "$img"
"$xensim" domain list

step "3. Start the dom0 supervisor (pvio-tapback), then attach the snapshot (the chain's leaf) as xvda"
"$xensim" run 0 -- "$tapback" --engine "$engine" --log "$XENSIM_DIR/tapback.log" &
tb=$!
devid=$("$xensim" vbd attach "$dom" "$img" --vdev xvda --mode w --format vhd)
echo "attached $img to domain $dom as xvda (device $devid); xenstore now says:"
XENSTORED_PATH=$XENSIM_DIR/xenstored/socket xenstore-ls "/local/domain/0/backend/vbd3/$dom/$devid" 2>/dev/null | sed 's/^/  /' || true

step "4. The guest opens its PV disk (blkfront handshake with the tapdisk) and reads the base's data"
"$xensim" run "$dom" -- "$pvblk" info
"$xensim" run "$dom" -- "$pvblk" read --offset 0 --length 512 | tr -d '\000'

step "5. The guest runs $ios verified random reads and writes (512 B .. 1 MiB, 16 in flight)"
"$xensim" run "$dom" -- "$pvblk" verify --random "$ios" --seed 1 --length "$((size < 128 ? size : 128))m"

step "6. A 4 KiB random-read benchmark at queue depth 32 (5 s)"
"$xensim" run "$dom" -- "$pvblk" bench --rw randread --bs 4k --qd 32 --time 5

step "7. What the tapdisk saw (tapctl)"
"$tapctl" list
"$tapctl" stats "$dom" "$devid" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("  requests: %(read)d reads, %(write)d writes, %(flush)d flushes" % s["requests"])
print("  bytes: %.1f MB read, %.1f MB written; errors: %s" % (s["bytes"]["read"] / 1e6,
      s["bytes"]["write"] / 1e6, s["errors"]))'

step "8. Detach the disk, check the chain: the guest's writes are in the snapshot, the base is unchanged"
"$xensim" vbd detach "$dom" xvda
"$vhdtool" check "$img"
"$vhdtool" info "$img" | grep -i -E "physical|allocated" || true
if [ "$(sha256sum < "$XENSIM_DIR/base.vhd")" = "$base_sum" ]; then echo "base.vhd unchanged"
else echo "pvio-demo: base.vhd changed (a parent must never be written)" >&2; exit 1; fi

step "9. Destroy the guest, stop"
"$xensim" domain destroy "$dom"
if [ "$keep" = 0 ]; then
    kill "$tb"; wait "$tb" 2>/dev/null || true; tb=""
    "$xensim" stop
else
    echo "xensim left running: export XENSIM_DIR=$XENSIM_DIR"
fi
printf '\npvio demo: every byte the guest read back was verified.\n'
