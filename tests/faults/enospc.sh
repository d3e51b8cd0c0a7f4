#!/bin/sh
# ENOSPC: a 32 MiB sparse image on an 8 MiB tmpfs.  Data written while there
# is room reads back; a write past the space fails with an error response
# (no hang, tapdisk stays up); the earlier data is intact; once space is
# freed (a filler file removed, the failed range discarded) writing resumes
# and verifies.
. "$(dirname "$0")/lib.sh"
MB=$((1024 * 1024))
small=$XENSIM_DIR/small
mkdir "$small"
if ! mount -t tmpfs -o size=8m pvio-enospc "$small" 2>/dev/null; then
    echo "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)"
    exit 77
fi
# stop tapback (and its tapdisks, which hold the image) before umount, and
# umount before XENSIM_DIR is removed
cleanup_enospc() {
    [ -n "$tapback_pid" ] && kill "$tapback_pid" 2>/dev/null && wait "$tapback_pid" 2>/dev/null
    tapback_pid=""
    "$XENSIM" stop >/dev/null 2>&1 || true
    umount "$small" 2>/dev/null || umount -l "$small" 2>/dev/null || true
    rm -rf "$XENSIM_DIR"
}
trap cleanup_enospc EXIT
img=$small/disk.img
truncate -s $((32 * MB)) "$img"
head -c $((2 * MB)) /dev/zero > "$small/filler"
head -c $((2 * MB)) /dev/urandom > "$XENSIM_DIR/data"
dom=$("$XENSIM" domain create enospc-guest --memory 64)
start_tapback
"$XENSIM" vbd attach "$dom" "$img" --vdev xvda >/dev/null || fail "attach"
g "$dom" "$PVBLK" write --offset 0 --length $((2 * MB)) --in "$XENSIM_DIR/data" ||
    fail "write while there is room"
pid=$(tapdisk_pids)

# 8 MiB more cannot fit in the ~4 MiB left
if g "$dom" "$PVBLK" write --offset $((16 * MB)) --length $((8 * MB)) --pattern 5 2>"$XENSIM_DIR/err"; then
    fail "a write past the filesystem's space succeeded"
fi
[ "$(tapdisk_pids)" = "$pid" ] || fail "tapdisk died on ENOSPC"
grep -qi "No space left" "$XENSIM_DIR/tapback.log" "$XENSIM_DIR"/*.log 2>/dev/null ||
    echo "note: ENOSPC not named in the logs"

# the image is still valid: what was acknowledged reads back
g "$dom" "$PVBLK" read --offset 0 --length $((2 * MB)) --out "$XENSIM_DIR/back" || fail "read back"
cmp -s "$XENSIM_DIR/data" "$XENSIM_DIR/back" || fail "acknowledged data changed after ENOSPC"

# free space: the filler goes, the failed range is discarded; writing resumes
rm -f "$small/filler"
g "$dom" "$PVBLK" discard --offset $((16 * MB)) --length $((8 * MB)) || fail "discard"
g "$dom" "$PVBLK" verify --offset $((16 * MB)) --length $((2 * MB)) --seed 3 >/dev/null ||
    fail "writing did not resume once space was freed"
g "$dom" "$PVBLK" read --offset 0 --length $((2 * MB)) --out "$XENSIM_DIR/back" || fail "read back"
cmp -s "$XENSIM_DIR/data" "$XENSIM_DIR/back" || fail "old data changed"
[ "$(tapdisk_pids)" = "$pid" ] || fail "tapdisk restarted"
echo PASS
