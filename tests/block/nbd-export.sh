#!/bin/sh
# dom0 access over NBD (engine $ENGINE): pvio-tapback gives each tapdisk an
# NBD socket beside its control socket, and real NBD clients use it while
# the guest is attached.
#  VHD chain (base with data <- snapshot leaf the guest writes):
#   - qemu-img convert over NBD == vhdtool convert of the chain == what the
#     guest reads;
#   - qemu-img map and nbdinfo --map report exactly the chain's allocated
#     extents (vhdtool map --json);
#   - nbdcopy writes a file over NBD and the guest reads it back; a guest
#     write is read back over NBD; flush reaches tapdisk;
#  raw image: the same, against the file's SEEK_DATA layout, and a trim
#   reads back zeros (over NBD and in the guest);
#  read-only VBD: NBD says read-only and refuses writes; nothing changes.
. "$(dirname "$0")/lib.sh"
T=$(cd "$(dirname "$0")" && pwd)  # nbdraw.py, the bare NBD client
[ -n "${VHDTOOL:-}" ] || { echo "SKIP: VHDTOOL not set"; exit 77; }
for t in qemu-img qemu-io nbdinfo nbdcopy; do
    command -v "$t" >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
MB=$((1024 * 1024))
W=$XENSIM_DIR
uri() { echo "nbd+unix:///?socket=$1"; }
# nbd_of DOMID DEVID: the NBD socket `tapctl list` reports for a tapdisk
nbd_of() { "$TAPCTL" list | awk -v d="$1" -v n="$2" '$1 == d && $2 == n && $(NF-1) == "nbd" { print $NF }'; }
# nbd_stat DOMID DEVID KEY: a request counter of the tapdisk's NBD export
# (the "nbd" object comes last in `tapctl stats`)
nbd_stat() { "$TAPCTL" stats "$1" "$2" | grep -o "\"$3\":[0-9]*" | tail -1 | cut -d: -f2; }
# has_sock PATH: tapdisk opens its NBD socket before it offers the device
# to the guest, so once the guest has the disk the socket is there
has_sock() { [ -S "$1" ]; }
# extents_nbdinfo URI / extents_qemu URI / extents_vhd FILE / extents_raw FILE:
# "start length data|zero" lines, adjacent ranges of one kind merged
MERGE='
def emit(ranges):
    out = []
    for s, l, k in ranges:
        if l == 0: continue
        if out and out[-1][2] == k and out[-1][0] + out[-1][1] == s:
            out[-1][1] += l
        else:
            out.append([s, l, k])
    for s, l, k in out: print(s, l, k)
'
extents_nbdinfo() { nbdinfo --map --json "$1" | python3 -c "$MERGE"'
import json, sys
emit([(e["offset"], e["length"], "zero" if e["type"] & 1 else "data") for e in json.load(sys.stdin)])'; }
extents_qemu() { qemu-img map -f raw --output=json "$1" | python3 -c "$MERGE"'
import json, sys
emit([(e["start"], e["length"], "data" if e["data"] else "zero") for e in json.load(sys.stdin)])'; }
extents_vhd() { "$VHDTOOL" map --json "$1" | python3 -c "$MERGE"'
import json, sys
emit([(e["start"], e["length"], "zero" if e["zero"] else "data") for e in json.load(sys.stdin)["extents"]])'; }
extents_raw() { python3 -c "$MERGE"'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); size = os.fstat(fd).st_size; pos = 0; r = []
while pos < size:
    try: d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError: d = size
    if d > pos: r.append((pos, d - pos, "zero"))
    if d >= size: break
    h = min(os.lseek(fd, d, os.SEEK_HOLE), size)
    r.append((d, h - d, "data")); pos = h
emit(r)' "$1"; }

dom=$("$XENSIM" domain create nbd-export --memory 64)
start_tapback

# ---- a VHD chain: base (data at some places) <- leaf -----------------------
truncate -s $((32 * MB)) "$W/base.raw"
for off in 1 6 7 20; do
    head -c $MB /dev/urandom | dd of="$W/base.raw" bs=$MB seek=$off conv=notrunc status=none
done
head -c 3000 /dev/urandom | dd of="$W/base.raw" bs=1 seek=$((12 * MB + 512)) conv=notrunc status=none
"$VHDTOOL" convert --type dynamic --block-size 64K "$W/base.raw" "$W/base.vhd" >/dev/null ||
    fail "vhdtool convert raw -> vhd"
"$VHDTOOL" snapshot "$W/base.vhd" "$W/leaf.vhd" >/dev/null || fail "snapshot"
base_sum=$(sha256sum "$W/base.vhd")
"$XENSIM" vbd attach "$dom" "$W/leaf.vhd" --vdev xvda --format vhd >/dev/null || fail "attach leaf"
guest "$dom" "$PVBLK" --vdev xvda info >/dev/null || fail "guest: pvblk info"
S=$(nbd_of "$dom" 51712)
[ "$S" = "$XENSIM_DIR/tapdisk/tapdisk-$dom-51712.nbd" ] || fail "tapctl list: NBD socket '$S'"
"$TAPCTL" --json list | grep -q "\"nbd\":\"$S\"" || fail "tapctl --json list: $("$TAPCTL" --json list)"
has_sock "$S" || fail "no NBD socket $S"
[ "$(stat -c %a "$S")" = 600 ] || fail "NBD socket mode $(stat -c %a "$S"), want 600"
U=$(uri "$S")
nbdinfo "$U" > "$W/info" || fail "nbdinfo"
grep -q "export-size: $((32 * MB))" "$W/info" || fail "nbdinfo size: $(cat "$W/info")"
grep -q "base:allocation" "$W/info" || fail "no base:allocation context"
grep -q "can_flush: true" "$W/info" || fail "flush not offered"
grep -q "is_read_only: false" "$W/info" || fail "read-write disk offered read-only"

# the guest writes into the leaf while we look (a partial block and a whole one)
head -c $((96 * 1024)) /dev/urandom > "$W/g1"
guest "$dom" "$PVBLK" --vdev xvda write --offset $((9 * MB + 4096)) --length $((96 * 1024)) --in "$W/g1" ||
    fail "guest write"
qemu-img convert -f raw -O raw "$U" "$W/nbd.raw" || fail "qemu-img convert over NBD"
"$VHDTOOL" convert "$W/leaf.vhd" "$W/chain.raw" >/dev/null || fail "vhdtool convert chain -> raw"
guest "$dom" "$PVBLK" --vdev xvda read --offset 0 --length $((32 * MB)) --out "$W/guest.raw" ||
    fail "guest read"
cmp "$W/nbd.raw" "$W/chain.raw" || fail "NBD view != vhdtool convert of the chain"
cmp "$W/nbd.raw" "$W/guest.raw" || fail "NBD view != what the guest reads"
dd if="$W/nbd.raw" bs=4096 skip=$(((9 * MB + 4096) / 4096)) count=24 status=none | cmp - "$W/g1" ||
    fail "the guest's write does not read back over NBD"

extents_vhd "$W/leaf.vhd" > "$W/map.vhd"
extents_nbdinfo "$U" > "$W/map.nbdinfo" || fail "nbdinfo --map"
extents_qemu "$U" > "$W/map.qemu" || fail "qemu-img map"
[ "$(grep -c zero "$W/map.vhd")" -ge 3 ] || fail "the chain should have holes: $(cat "$W/map.vhd")"
diff "$W/map.vhd" "$W/map.nbdinfo" >&2 || fail "nbdinfo --map differs from vhdtool map"
diff "$W/map.vhd" "$W/map.qemu" >&2 || fail "qemu-img map differs from vhdtool map"

# the guest does mixed I/O of its own while NBD clients come and go
guest "$dom" "$PVBLK" --vdev xvda verify --random 200 --seed 5 --length $((32 * MB)) ||
    fail "guest verify"
# nbdcopy writes a file over NBD (the guest runs); the guest reads it back
head -c $((5 * MB + 512)) /dev/urandom > "$W/src"
flushes=$(nbd_stat "$dom" 51712 flush)
nbdcopy --flush "$W/src" "$U" || fail "nbdcopy into the disk"
[ "$(nbd_stat "$dom" 51712 flush)" -gt "$flushes" ] || fail "nbdcopy --flush: no flush reached tapdisk"
guest "$dom" "$PVBLK" --vdev xvda read --offset 0 --length $((5 * MB + 512)) --out "$W/back" ||
    fail "guest read after nbdcopy"
cmp "$W/back" "$W/src" || fail "the guest does not read what nbdcopy wrote"
qemu-io -f raw "$U" -c "flush" >/dev/null || fail "qemu-io flush"
nbdcopy "$U" "$W/nbd2.raw" || fail "nbdcopy out of the disk"
"$XENSIM" vbd detach "$dom" xvda >/dev/null || fail "detach"
for p in $(tapdisk_pids); do wait_pid_gone "$p" 20 || fail "tapdisk $p did not exit"; done
"$VHDTOOL" check "$W/leaf.vhd" >"$W/check.out" 2>&1 || { cat "$W/check.out" >&2; fail "vhdtool check after NBD writes"; }
"$VHDTOOL" convert "$W/leaf.vhd" "$W/chain2.raw" >/dev/null || fail "vhdtool convert (2)"
cmp "$W/nbd2.raw" "$W/chain2.raw" || fail "what NBD read is not what the chain holds"
cmp -n $((5 * MB + 512)) "$W/chain2.raw" "$W/src" || fail "nbdcopy's data is not in the chain"
[ "$(sha256sum "$W/base.vhd")" = "$base_sum" ] || fail "NBD writes reached the parent"
[ ! -e "$S" ] || fail "the NBD socket outlived its tapdisk"

# ---- a raw image -------------------------------------------------------------
truncate -s $((24 * MB)) "$W/disk.img"
for off in 2 3 11; do
    head -c $MB /dev/urandom | dd of="$W/disk.img" bs=$MB seek=$off conv=notrunc status=none
done
"$XENSIM" vbd attach "$dom" "$W/disk.img" --vdev xvdb >/dev/null || fail "attach raw"
guest "$dom" "$PVBLK" --vdev xvdb info >/dev/null || fail "guest: pvblk info (raw)"
S=$(nbd_of "$dom" 51728); U=$(uri "$S")
has_sock "$S" || fail "no NBD socket for the raw disk"
grep -q "can_trim: true" <<EOF || fail "trim not offered on a raw file"
$(nbdinfo "$U")
EOF
extents_raw "$W/disk.img" > "$W/map.raw"
[ "$(grep -c data "$W/map.raw")" -ge 2 ] || fail "raw layout: $(cat "$W/map.raw")"
extents_nbdinfo "$U" > "$W/map.nbdinfo" || fail "nbdinfo --map (raw)"
extents_qemu "$U" > "$W/map.qemu" || fail "qemu-img map (raw)"
diff "$W/map.raw" "$W/map.nbdinfo" >&2 || fail "nbdinfo --map differs from SEEK_DATA"
diff "$W/map.raw" "$W/map.qemu" >&2 || fail "qemu-img map differs from SEEK_DATA"
qemu-img convert -f raw -O raw "$U" "$W/nbd.raw" || fail "qemu-img convert (raw)"
cmp "$W/nbd.raw" "$W/disk.img" || fail "NBD view of the raw disk differs from the file"
# a guest write, read back over NBD
head -c $((64 * 1024)) /dev/urandom > "$W/g2"
guest "$dom" "$PVBLK" --vdev xvdb write --offset $((7 * MB)) --length $((64 * 1024)) --in "$W/g2" ||
    fail "guest write (raw)"
nbdcopy "$U" "$W/nbd3.raw" || fail "nbdcopy out of the raw disk"
dd if="$W/nbd3.raw" bs=65536 skip=$((7 * 16)) count=1 status=none | cmp - "$W/g2" ||
    fail "the guest's write does not read back over NBD (raw)"
# trim: punched, reads back zeros over NBD and in the guest, and maps as a hole
trims=$(nbd_stat "$dom" 51728 trim)
qemu-io -f raw "$U" -c "discard $((2 * MB)) $((2 * MB))" -c flush >/dev/null || fail "qemu-io discard"
[ "$(nbd_stat "$dom" 51728 trim)" -gt "$trims" ] || fail "the trim did not reach tapdisk"
qemu-io -f raw "$U" -c "read -P 0 $((2 * MB)) $((2 * MB))" > "$W/qio" || fail "trimmed range is not zeros over NBD"
grep -q "read $((2 * MB))/$((2 * MB)) bytes" "$W/qio" || fail "qemu-io read -P 0: $(cat "$W/qio")"
guest "$dom" "$PVBLK" --vdev xvdb read --offset $((2 * MB)) --length $((2 * MB)) --out "$W/trimmed" ||
    fail "guest read of the trimmed range"
cmp "$W/trimmed" /dev/zero 2>&1 | grep -q EOF || fail "the guest does not read zeros after an NBD trim"
extents_raw "$W/disk.img" | awk -v a=$((2 * MB)) -v b=$((4 * MB)) '
    $3 == "zero" && $1 <= a && $1 + $2 >= b { ok = 1 } END { exit !ok }' || fail "the trim punched no hole"
# write-zeroes: written when the client forbids holes (qemu-io write -z:
# NO_HOLE), punched when it allows them (-u); both read back zeros
nbdinfo "$U" > "$W/info" || fail "nbdinfo (raw)"
for k in can_zero can_fast_zero can_cache; do
    grep -q "$k: true" "$W/info" || fail "$k not offered on a raw file: $(cat "$W/info")"
done
zs=$(nbd_stat "$dom" 51728 write_zeroes)
qemu-io -f raw "$U" -c "write -P 0xab $((9 * MB)) $MB" -c "write -z $((9 * MB)) $((MB / 2))" \
    -c "write -z -u $((9 * MB + MB / 2)) $((MB / 2))" -c flush >/dev/null || fail "qemu-io write -z"
[ "$(nbd_stat "$dom" 51728 write_zeroes)" = $((zs + 2)) ] || fail "tapdisk did not count 2 write-zeroes"
qemu-io -f raw "$U" -c "read -P 0 $((9 * MB)) $MB" > "$W/qio" || fail "write-zeroes range is not zeros over NBD"
grep -q "read $MB/$MB bytes" "$W/qio" || fail "qemu-io read -P 0 after write -z: $(cat "$W/qio")"
guest "$dom" "$PVBLK" --vdev xvdb read --offset $((9 * MB)) --length $MB --out "$W/zeroed" ||
    fail "guest read of the zeroed range"
cmp -n $MB "$W/zeroed" /dev/zero || fail "the guest does not read zeros after NBD write-zeroes"
extents_raw "$W/disk.img" > "$W/map.z"
awk -v a=$((9 * MB)) -v b=$((9 * MB + MB / 2)) '$3 == "data" && $1 <= a && $1 + $2 >= b { ok = 1 }
    END { exit !ok }' "$W/map.z" || fail "NO_HOLE write-zeroes punched a hole: $(cat "$W/map.z")"
awk -v a=$((9 * MB + MB / 2)) -v b=$((10 * MB)) '$3 == "zero" && $1 <= a && $1 + $2 >= b { ok = 1 }
    END { exit !ok }' "$W/map.z" || fail "write-zeroes allowed to unmap punched no hole: $(cat "$W/map.z")"
# FAST_ZERO with NO_HOLE cannot be fast: refused with NBD_ENOTSUP (95);
# CACHE is answered OK
PYTHONPATH=$T python3 - "$S" <<'PY' || fail "FAST_ZERO/CACHE answers"
import sys, nbdraw as n
c = n.Client(sys.argv[1])
want = n.TX_SEND_WRITE_ZEROES | n.TX_SEND_CACHE | n.TX_SEND_FAST_ZERO
if c.flags & want != want:
    raise SystemExit("flags 0x%x lack WRITE_ZEROES/CACHE/FAST_ZERO" % c.flags)
c.send(n.CMD_WRITE_ZEROES, 7, 0, 4096, n.FLAG_FAST_ZERO | n.FLAG_NO_HOLE)
if c.reply() != (n.SIMPLE_REPLY, 95, 7):
    raise SystemExit("fast zero with NO_HOLE was not refused with ENOTSUP")
c.send(n.CMD_CACHE, 8, 0, 1 << 20)
if c.reply() != (n.SIMPLE_REPLY, 0, 8):
    raise SystemExit("cache was not answered OK")
PY
# tapctl pause covers NBD clients too: a write sent while paused gets no
# answer and does not reach the image; after unpause it completes
"$TAPCTL" pause "$dom" 51728 >/dev/null || fail "tapctl pause"
PYTHONPATH=$T python3 - "$S" "$W/disk.img" "$TAPCTL" "$dom" <<'PY' || fail "NBD I/O while paused"
import subprocess, sys, nbdraw as n
sock, img, tapctl, dom = sys.argv[1:]
def at(off):
    with open(img, "rb") as f:
        f.seek(off); return f.read(4096)
c = n.Client(sock)
off = 20 << 20
c.send(n.CMD_WRITE, 9, off, 4096, payload=b"\x5a" * 4096)
# a negative check: it can only pass wrongly (a slow server), never fail wrongly
if c.replied_within(1.0):
    raise SystemExit("a write was answered while paused")
if at(off) == b"\x5a" * 4096:
    raise SystemExit("a write reached the image while paused")
subprocess.run([tapctl, "unpause", dom, "51728"], check=True, stdout=subprocess.DEVNULL)
if not c.replied_within(30):
    raise SystemExit("no answer after unpause")
if c.reply() != (n.SIMPLE_REPLY, 0, 9):
    raise SystemExit("the write failed after unpause")
if at(off) != b"\x5a" * 4096:
    raise SystemExit("the write is not in the image after unpause")
PY
"$XENSIM" vbd detach "$dom" xvdb >/dev/null || fail "detach raw"
for p in $(tapdisk_pids); do wait_pid_gone "$p" 20 || fail "tapdisk $p did not exit"; done

# ---- a read-only VBD: NBD refuses writes -----------------------------------
sum=$(sha256sum "$W/disk.img")
"$XENSIM" vbd attach "$dom" "$W/disk.img" --vdev xvdc --mode r >/dev/null || fail "attach ro"
guest "$dom" "$PVBLK" --vdev xvdc info >/dev/null || fail "guest: pvblk info (ro)"
S=$(nbd_of "$dom" 51744); U=$(uri "$S")
has_sock "$S" || fail "no NBD socket for the read-only disk"
nbdinfo "$U" | grep -q "is_read_only: true" || fail "a read-only VBD is not read-only over NBD"
head -c $MB /dev/urandom > "$W/w"
nbdcopy "$W/w" "$U" 2>/dev/null && fail "nbdcopy wrote to a read-only VBD"
# a client that ignores the flag: a raw WRITE request is refused with EPERM
PYTHONPATH=$T python3 - "$S" <<'PY' || fail "raw NBD write to a read-only VBD was not refused with EPERM"
import sys, nbdraw as n
c = n.Client(sys.argv[1])
c.send(n.CMD_WRITE, 7, 0, 4096, payload=b"\x55" * 4096)
sys.exit(0 if c.reply() == (n.SIMPLE_REPLY, 1, 7) else 1)
PY
qemu-img convert -f raw -O raw "$U" "$W/ro.raw" || fail "qemu-img convert (ro)"
cmp "$W/ro.raw" "$W/disk.img" || fail "read-only NBD view differs"
guest "$dom" "$PVBLK" --vdev xvdc read --offset 0 --length $((24 * MB)) --out "$W/ro-guest" || fail "guest read (ro)"
cmp "$W/ro-guest" "$W/disk.img" || fail "read-only guest view differs"
"$XENSIM" vbd detach "$dom" xvdc >/dev/null || fail "detach ro"
for p in $(tapdisk_pids); do wait_pid_gone "$p" 20 || fail "tapdisk $p did not exit"; done
[ "$(sha256sum "$W/disk.img")" = "$sum" ] || fail "a read-only VBD changed"
grep -q "refusing write .*: the disk is read-only" "$W/tapback.log" || fail "the refusal was not logged"
[ "$(dom_usage 0 maps_held)" = 0 ] || fail "dom0 still holds grant mappings"
echo "PASS ($ENGINE)"
