#!/bin/sh
# Real NBD clients on a guest's PV disk through the nbdkit plugin:
# qemu-img convert of the disk equals the image tapdisk serves, nbdinfo and
# nbdcopy work, and mkfs.ext4 + fsck.ext4 through nbdfuse is clean.
. "$(dirname "$0")/lib.sh"
for t in nbdkit qemu-img nbdinfo nbdcopy nbdfuse mkfs.ext4 fsck.ext4; do
    command -v "$t" >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
MB=$((1024 * 1024))
img=$XENSIM_DIR/disk.img
truncate -s $((64 * MB)) "$img"
dom=$("$XENSIM" domain create nbd-guest --memory 64)
start_tapback
"$XENSIM" vbd attach "$dom" "$img" >/dev/null || fail "attach"
sock=$XENSIM_DIR/nbd.sock
"$XENSIM" run "$dom" -- env ${NBDKIT_PRELOAD:+LD_PRELOAD=$NBDKIT_PRELOAD ASAN_OPTIONS=detect_leaks=0} nbdkit --foreground --exit-with-parent --unix "$sock" "$NBDKIT_PLUGIN" vdev=xvda \
    2> "$XENSIM_DIR/nbdkit.log" &
nbdkit_pid=$!
trap 'kill $nbdkit_pid 2>/dev/null; wait $nbdkit_pid 2>/dev/null; cleanup' EXIT
uri="nbd+unix:///?socket=$sock"
# nbdinfo retries nothing: wait for the socket with a bounded poll
python3 -c '
import os, sys, time
d = time.monotonic() + 30
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > d: sys.exit(1)
    time.sleep(0.02)' "$sock" || { cat "$XENSIM_DIR/nbdkit.log"; fail "nbdkit did not start"; }
nbdinfo "$uri" | grep -q "export-size: $((64 * MB))" || fail "nbdinfo size"

# write through NBD with nbdcopy, unaligned pieces with qemu-io, then compare
head -c $((8 * MB)) /dev/urandom > "$XENSIM_DIR/src"
nbdcopy "$XENSIM_DIR/src" "$uri" || fail "nbdcopy to the disk"
if command -v qemu-io >/dev/null; then
    qemu-io -f raw -c "write -P 0xa5 1000 3000" -c "flush" "$uri" >/dev/null || fail "qemu-io unaligned write"
    python3 - "$XENSIM_DIR/src" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[1000:4000] = b'\xa5' * 3000
open(sys.argv[1], 'wb').write(b)
PY
fi
# trim over NBD reaches the image as a hole (reads back zeros)
if command -v qemu-io >/dev/null; then
    qemu-io -f raw -c "discard 6M 1M" "$uri" >/dev/null || fail "qemu-io discard"
    python3 - "$XENSIM_DIR/src" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[6 << 20:7 << 20] = bytes(1 << 20)
open(sys.argv[1], 'wb').write(b)
PY
fi
qemu-img convert -f raw -O raw "$uri" "$XENSIM_DIR/copy.raw" || fail "qemu-img convert"
qemu-img compare -f raw -F raw "$XENSIM_DIR/copy.raw" "$img" || fail "convert output differs from the image"
head -c $((8 * MB)) "$img" | cmp - "$XENSIM_DIR/src" || fail "image differs from what was written over NBD"

# the plugin serves requests in parallel: 40 adjacent unaligned writes in
# flight at once (qemu-io aio_write), each sharing its edge sectors with its
# neighbours; the plugin's read-modify-writes must not undo one another
if command -v qemu-io >/dev/null; then
    set --; i=0
    while [ $i -lt 40 ]; do
        set -- "$@" -c "aio_write -P $((i + 1)) $((20 * MB + i * 300)) 300"; i=$((i + 1))
    done
    qemu-io -f raw "$@" -c aio_flush "$uri" > "$XENSIM_DIR/qio.out" 2>&1 ||
        { cat "$XENSIM_DIR/qio.out"; fail "qemu-io parallel unaligned writes"; }
    set --; i=0
    while [ $i -lt 40 ]; do
        set -- "$@" -c "read -P $((i + 1)) $((20 * MB + i * 300)) 300"; i=$((i + 1))
    done
    qemu-io -f raw "$@" "$uri" > "$XENSIM_DIR/qio.out" 2>&1 || fail "qemu-io read-back"
    ! grep -i "verification failed" "$XENSIM_DIR/qio.out" || fail "a parallel unaligned write was undone"
    [ "$(grep -c "^read 300/300" "$XENSIM_DIR/qio.out")" = 40 ] || { cat "$XENSIM_DIR/qio.out"; fail "read-back"; }
fi

# fio's nbd engine: a verified random workload over the last 16 MiB
if command -v fio >/dev/null && fio --enghelp 2>&1 | grep -qw nbd; then
    fio --name=pvio-nbd --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=8 \
        --offset=$((48 * MB)) --size=$((16 * MB)) --verify=crc32c --do_verify=1 \
        --output-format=terse > "$XENSIM_DIR/fio.out" 2>&1 || { cat "$XENSIM_DIR/fio.out"; fail "fio nbd engine"; }
    echo "fio nbd: verified random writes over 16 MiB"
fi

# a filesystem through nbdfuse
mnt=$XENSIM_DIR/mnt; mkdir "$mnt"
nbdfuse "$mnt" --unix "$sock" &
fuse=$!
python3 -c '
import os, sys, time
d = time.monotonic() + 30
while not os.path.exists(os.path.join(sys.argv[1], "nbd")):
    if time.monotonic() > d: sys.exit(1)
    time.sleep(0.02)' "$mnt" || fail "nbdfuse did not mount"
mkfs.ext4 -q -F "$mnt/nbd" || fail "mkfs.ext4"
fsck.ext4 -f -n "$mnt/nbd" || fail "fsck.ext4 found problems"
fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
wait $fuse
fsck.ext4 -f -n "$img" >/dev/null || fail "the image itself is not a clean ext4"
echo PASS
