#!/bin/sh
# xensim vbd attach/detach/list and domain destroy: every key libxl writes,
# with its permissions as dom0, the guest and another guest see them; the
# attach errors; detach against a backend that answers (state 6) and against
# none (the timeout path); list and --json; destroy removes the VBD dirs.
# Needs: XENSIM, STANDIN (tests/tapback/standin.c).
set -u
fail() { echo "FAIL: $*"; exit 1; }
XENSIM_DIR=$(mktemp -d /tmp/pvio-vbd.XXXXXX)
export XENSIM_DIR
trap '"$XENSIM" stop >/dev/null 2>&1; rm -rf "$XENSIM_DIR"' EXIT
X=$XENSIM
for c in "vbd" "vbd attach" "vbd detach" "vbd list"; do
    # shellcheck disable=SC2086
    $X $c --help >/dev/null || fail "'xensim $c --help' failed"
done
$X --help | grep -q "vbd attach DOMID IMAGE" || fail "usage does not mention vbd attach"
$X start >/dev/null || fail start
XENSTORED_PATH=$XENSIM_DIR/xenstored/socket
export XENSTORED_PATH
d=$($X domain create vbdguest --memory 8) || fail "create"
o=$($X domain create other --memory 8) || fail "create other"
img=$XENSIM_DIR/disk.img
truncate -s 4M "$img"

# --- attach writes every key, with libxl's permissions
devid=$($X vbd attach "$d" "$img") || fail "attach"
[ "$devid" = 51712 ] || fail "xvda must be devid 51712, got $devid"
B=/local/domain/0/backend/vbd3/$d/51712
F=/local/domain/$d/device/vbd/51712
ls_b=$(xenstore-ls -p "$B") || fail "backend dir missing"
check() { # dir-listing key value perms
    echo "$1" | grep -q "^$2 = \"$3\" .*($4)\$" || fail "$2 should be \"$3\" with perms ($4); got: $(echo "$1" | grep "^$2 ")"
}
P="n0,r$d"
check "$ls_b" frontend "$F" "$P"
check "$ls_b" frontend-id "$d" "$P"
check "$ls_b" online 1 "$P"
check "$ls_b" state 1 "$P"
check "$ls_b" params "aio:$img" "$P"
check "$ls_b" mode w "$P"
check "$ls_b" dev xvda "$P"
check "$ls_b" type vbd3 "$P"
check "$ls_b" device-type disk "$P"
check "$ls_b" removable 0 "$P"
check "$ls_b" bootable 1 "$P"
check "$ls_b" discard-enable 1 "$P"   # writable disk: libxl turns discard on
check "$ls_b" specification xen "$P"
xenstore-ls -p "/local/domain/0/backend/vbd3/$d" | grep -q "^51712 = \"\" .*(n0,r$d)\$" || fail "backend dir perms"
ls_f=$(xenstore-ls -p "$F") || fail "frontend dir missing"
P="n$d,r0"
check "$ls_f" backend "$B" "$P"
check "$ls_f" backend-id 0 "$P"
check "$ls_f" state 1 "$P"
check "$ls_f" virtual-device 51712 "$P"
check "$ls_f" device-type disk "$P"
check "$ls_f" trusted 1 "$P"
xenstore-ls -p "/local/domain/$d/device/vbd" | grep -q "^51712 = \"\" .*(n$d,r0)\$" || fail "frontend dir perms"
[ "$(xenstore-read /libxl/$d/device/vbd/51712/backend)" = "$B" ] || fail "libxl record"
# the guest reads its frontend (relative path) and its backend, and owns F
[ "$($X run "$d" -- xenstore-read device/vbd/51712/backend)" = "$B" ] || fail "guest cannot read its frontend"
[ "$($X run "$d" -- xenstore-read "$B/params")" = "aio:$img" ] || fail "guest cannot read its backend"
$X run "$d" -- xenstore-write device/vbd/51712/state 2 || fail "guest cannot write its frontend"
$X run "$d" -- xenstore-write "$B/state" 4 2>/dev/null && fail "guest must not write its backend"
# another guest sees neither
$X run "$o" -- xenstore-read "$F/backend" >/dev/null 2>&1 && fail "another domU read the frontend"
$X run "$o" -- xenstore-read "$B/params" >/dev/null 2>&1 && fail "another domU read the backend"

# --- read-only vhd on another vdev; extended numbering
[ "$($X vbd attach "$d" "$img" --vdev xvdb --mode r --format vhd)" = 51728 ] || fail "xvdb = 51728"
[ "$(xenstore-read /local/domain/0/backend/vbd3/$d/51728/params)" = "vhd:$img" ] || fail "vhd params"
[ "$(xenstore-read /local/domain/0/backend/vbd3/$d/51728/mode)" = r ] || fail "mode r"
[ "$(xenstore-read /local/domain/0/backend/vbd3/$d/51728/discard-enable)" = 0 ] || fail "discard-enable 0 for a read-only disk"
[ "$($X vbd attach "$d" "$img" --vdev xvdq)" = $(( (1 << 28) | (16 << 8) )) ] || fail "xvdq uses the extended encoding"

# --- attach errors, each leaves nothing behind
before=$(xenstore-ls /local/domain/0/backend | wc -l)
$X vbd attach "$d" "$XENSIM_DIR/missing.img" 2>/dev/null && fail "missing image accepted"
$X vbd attach "$d" "$XENSIM_DIR" 2>/dev/null && fail "a directory accepted as image"
$X vbd attach "$d" "$img" --vdev hda1x 2>/dev/null && fail "bad vdev accepted"
$X vbd attach "$d" "$img" --vdev xvd 2>/dev/null && fail "bare xvd accepted"
$X vbd attach "$d" "$img" --mode x 2>/dev/null && fail "bad mode accepted"
$X vbd attach "$d" "$img" --format qcow2 2>/dev/null && fail "bad format accepted"
$X vbd attach 4242 "$img" --vdev xvdc 2>/dev/null && fail "missing domain accepted"
err=$($X vbd attach "$d" "$img" 2>&1) && fail "duplicate xvda accepted"
echo "$err" | grep -q "already has a device 51712" || fail "duplicate error message: $err"
[ "$(xenstore-read "$B/params")" = "aio:$img" ] || fail "a refused duplicate changed the first device"
[ "$(xenstore-ls /local/domain/0/backend | wc -l)" = "$before" ] || fail "a refused attach left keys behind"

# --- list
$X vbd list | grep -q "^$d  *51712  *xvda  *vbd3  *1  *2  *1  *w  *aio:$img\$" || fail "list: $($X vbd list)"
[ "$($X vbd list "$d" | wc -l)" = 4 ] || fail "list DOMID shows 3 devices + header"
[ "$($X vbd list "$o" | wc -l)" = 1 ] || fail "list of a domain without devices"
$X vbd list --json | grep -q "{\"domid\": $d, \"devid\": 51712, \"vdev\": \"xvda\", \"kind\": \"vbd3\", \"backend_state\": 1, \"frontend_state\": 2, \"online\": 1, \"mode\": \"w\", \"params\": \"aio:$img\"" || fail "list --json: $($X vbd list --json)"
[ "$($X vbd list "$o" --json)" = "[]" ] || fail "empty --json list"

# --- detach with a backend that answers: the stand-in writes state 4,
# and on online=0 writes state 6 and exits 0
$X run 0 -- "$STANDIN" --backend "$B" &
sp=$!
"$STANDIN" wait "$B/state" 4 >/dev/null || fail "stand-in backend did not connect"
out=$($X vbd detach "$d" xvda --timeout 10 2>&1) || fail "detach: $out"
echo "$out" | grep -q "removing it anyway" && fail "detach timed out although the backend answered"
wait "$sp" || fail "the backend did not exit 0 after detach"
xenstore-read "$B/online" >/dev/null 2>&1 && fail "backend dir left after detach"
xenstore-read "$F/backend" >/dev/null 2>&1 && fail "frontend dir left after detach"
xenstore-read "/libxl/$d/device/vbd/51712/backend" >/dev/null 2>&1 && fail "libxl record left after detach"

# --- detach with no backend: the timeout path, then removed anyway
B2=/local/domain/0/backend/vbd3/$d/51728
out=$($X vbd detach "$d" xvdb --timeout 0.3 2>&1) || fail "detach (timeout): $out"
echo "$out" | grep -q "no backend closed $B2 within 0.3 s; removing it anyway" || fail "timeout not reported: $out"
xenstore-read "$B2/online" >/dev/null 2>&1 && fail "backend dir left after a timed-out detach"
$X vbd detach "$d" xvdb 2>/dev/null && fail "detaching a missing device must fail"
# --force does not wait
$X vbd attach "$d" "$img" --vdev xvdc >/dev/null || fail "attach xvdc"
out=$($X vbd detach "$d" xvdc --force 2>&1) || fail "detach --force"
echo "$out" | grep -q "removing it anyway" && fail "--force must not wait"
xenstore-read /local/domain/0/backend/vbd3/$d/51744/online >/dev/null 2>&1 && fail "--force left the backend"

# --- domain destroy force-removes the domain's VBDs (a running backend sees
# online=0 before its dir goes) and leaves the other domain's alone
$X vbd attach "$d" "$img" >/dev/null || fail "re-attach xvda"
$X vbd attach "$o" "$img" >/dev/null || fail "attach to other"
$X domain destroy "$d" >/dev/null 2>&1 || fail "destroy"
xenstore-ls "/local/domain/0/backend/vbd3/$d" >/dev/null 2>&1 && fail "destroy left backend/vbd3/$d"
xenstore-ls "/libxl/$d" >/dev/null 2>&1 && fail "destroy left /libxl/$d"
[ "$(xenstore-read /local/domain/0/backend/vbd3/$o/51712/online)" = 1 ] || fail "destroy touched another domain's VBD"
$X vbd list | grep -q "^$d " && fail "list still shows the destroyed domain's VBDs"
echo PASS
