#!/bin/sh
# pvio-tapback against a stand-in tapdisk (tests/tapback/standin.c): one
# tapdisk per device with online=1, across domains and both backend kinds;
# restart after kill -9 with the same --backend; no restart after a clean
# exit; bounded restarts, then give up with B/hotplug-error; no restart once
# the device is detached; a vdev detached and attached again while its old
# tapdisk exits gets a new one; SIGTERM stops every tapdisk and exits 0.
# Every wait is on a xenstore watch or inotify (the stand-in's wait commands).
# Needs: XENSIM, TAPBACK, STANDIN.
set -u
fail() { echo "FAIL: $*"; [ -f "$LOG" ] && sed 's/^/  log: /' "$LOG"; exit 1; }
XENSIM_DIR=$(mktemp -d /tmp/pvio-tapback.XXXXXX)
export XENSIM_DIR
LOG=$XENSIM_DIR/tapback.log
REC=$XENSIM_DIR/record
export STANDIN_RECORD=$REC
tb=
cleanup() {
    [ -n "$tb" ] && kill "$tb" 2>/dev/null && wait "$tb" 2>/dev/null
    "$XENSIM" stop >/dev/null 2>&1
    rm -rf "$XENSIM_DIR"
}
trap cleanup EXIT
X=$XENSIM
S=$STANDIN
"$TAPBACK" --help | grep -q "Usage: pvio-tapback" || fail "--help"
"$TAPBACK" --engine nope --tapdisk "$S" 2>/dev/null && fail "bad --engine accepted"
"$TAPBACK" --tapdisk /nonexistent 2>/dev/null && fail "missing --tapdisk accepted"
$X start >/dev/null || fail start
XENSTORED_PATH=$XENSIM_DIR/xenstored/socket
export XENSTORED_PATH
d1=$($X domain create tb1 --memory 8) || fail create
d2=$($X domain create tb2 --memory 8) || fail create
img=$XENSIM_DIR/disk.img
truncate -s 1M "$img"
: > "$LOG"
: > "$REC"
starts() { grep -c -- "--backend $1\( \|\$\)" "$REC"; }
pid_of() { xenstore-read "$1/standin-pid"; }

# a device attached before the supervisor starts is picked up at startup
$X vbd attach "$d1" "$img" >/dev/null || fail attach
A=/local/domain/0/backend/vbd3/$d1/51712
$X run 0 -- "$TAPBACK" --tapdisk "$S" --engine libaio --ctl-dir "$XENSIM_DIR/ctl" --log "$LOG" &
tb=$!
"$S" wait "$A/state" 4 >/dev/null || fail "no tapdisk started for $A"
grep -q -- "--backend $A --engine libaio --ctl $XENSIM_DIR/ctl/tapdisk-$d1-51712.sock --nbd auto\$" "$REC" \
    || fail "tapdisk argv: $(cat "$REC")"

# more devices, in two domains, one under the classic backend/vbd path
$X vbd attach "$d1" "$img" --vdev xvdb >/dev/null || fail attach
$X vbd attach "$d2" "$img" >/dev/null || fail attach
Bb=/local/domain/0/backend/vbd3/$d1/51728
C=/local/domain/0/backend/vbd3/$d2/51712
V=/local/domain/0/backend/vbd/$d2/51728
xenstore-write "$V/online" 1 "$V/state" 1 "$V/params" "$img" || fail "classic vbd dir"
for b in "$Bb" "$C" "$V"; do
    "$S" wait "$b/state" 4 >/dev/null || fail "no tapdisk for $b"
    [ "$(starts "$b")" = 1 ] || fail "$b started $(starts "$b") times"
done
[ "$(wc -l < "$REC")" = 4 ] || fail "4 devices should give 4 tapdisks: $(cat "$REC")"

# a device that is not online gets no tapdisk (checked after a later event
# that the supervisor handles in order: the next device's start)
N=/local/domain/0/backend/vbd3/$d2/51744
xenstore-write "$N/online" 0 "$N/state" 1 || fail "offline dir"
$X vbd attach "$d2" "$img" --vdev xvdd >/dev/null || fail attach
D=/local/domain/0/backend/vbd3/$d2/51760
"$S" wait "$D/state" 4 >/dev/null || fail "no tapdisk for $D"
[ "$(starts "$N")" = 0 ] || fail "a tapdisk was started for an offline device"

# kill -9: restarted, with the same --backend
p1=$(pid_of "$A")
kill -9 "$p1" || fail "kill"
p2=$("$S" wait-change "$A/standin-pid" "$p1") || fail "not restarted after kill -9"
[ "$(starts "$A")" = 2 ] || fail "restart count for $A"
grep "pid=$p2 " "$REC" | grep -q -- "--backend $A " || fail "restarted tapdisk has another --backend"
"$S" wait-log "$LOG" "$A: tapdisk pid $p1 was killed by signal 9 while attached; restarting" 1 \
    || fail "restart not logged"

# a crash on command (SIGABRT): restarted too
xenstore-write "$A/standin-cmd" "$p2 crash"
p3=$("$S" wait-change "$A/standin-pid" "$p2") || fail "not restarted after abort"

# clean exit (0) while attached: not restarted. The barrier is a later
# device's start, which the supervisor handles after the reap.
xenstore-write "$Bb/standin-cmd" "$(pid_of "$Bb") exit 0"
"$S" wait-log "$LOG" "exited with status 0 (detached); not restarting" 1 || fail "clean exit not logged"
$X vbd attach "$d1" "$img" --vdev xvde >/dev/null || fail attach
"$S" wait /local/domain/0/backend/vbd3/$d1/51776/state 4 >/dev/null || fail "no tapdisk for xvde"
[ "$(starts "$Bb")" = 1 ] || fail "a tapdisk that exited 0 was restarted"

# bounded restarts: 5 restarts in 60 s are allowed, the 6th death gives up
p=$(pid_of "$C")
i=0
while [ $i -lt 5 ]; do
    kill -9 "$p"
    p=$("$S" wait-change "$C/standin-pid" "$p") || fail "restart $((i + 1)) of $C missing"
    i=$((i + 1))
done
kill -9 "$p"
"$S" wait-change "$C/hotplug-error" "" >/dev/null || fail "no hotplug-error after too many crashes"
"$S" wait-log "$LOG" "$C: tapdisk died 6 times within 60 s" 1 || fail "give-up not logged"
[ "$(starts "$C")" = 6 ] || fail "$C should have 6 starts, has $(starts "$C")"
# still given up after another event on that device
xenstore-write "$C/poke" 1
$X vbd attach "$d2" "$img" --vdev xvdf >/dev/null || fail attach
"$S" wait /local/domain/0/backend/vbd3/$d2/51792/state 4 >/dev/null || fail "no tapdisk for xvdf"
[ "$(starts "$C")" = 6 ] || fail "a given-up device was restarted"

# detach: the tapdisk exits 0 on online=0 and is not restarted; then the
# dirs go and the supervisor forgets the device
pa=$(pid_of "$A")
$X vbd detach "$d1" xvda >/dev/null 2>&1 || fail "detach"
"$S" wait-log "$LOG" "$A: tapdisk pid $pa exited with status 0 (detached); not restarting" 1 \
    || fail "clean detach not logged"
# a crash after the device was removed is not restarted either
pd=$(pid_of "$D")
xenstore-write "$D/standin-cmd" "$pd linger"
"$S" wait "$D/standin-lingering" 1 >/dev/null || fail "stand-in did not take the linger command"
xenstore-rm "$D" || fail "rm"
"$S" wait-log "$LOG" "$D: device removed; tapdisk pid $pd finishes its own detach" 1 \
    || fail "removal while running not logged"
kill -9 "$pd"
"$S" wait-log "$LOG" "$D: tapdisk pid $pd was killed by signal 9; device removed, not restarting" 1 \
    || fail "no-restart of a removed device not logged"
# re-attaching the same vdev is a new device: a new tapdisk
$X vbd attach "$d1" "$img" >/dev/null || fail "re-attach"
"$S" wait-change "$A/standin-pid" "$pa" >/dev/null || fail "no tapdisk for the re-attached device"

# detach and attach the same vdev again before the old tapdisk has exited
# (it lingers past its dir's removal, then exits 0 — a finished detach —
# while the new dir already waits): the new device gets a tapdisk
$X vbd attach "$d2" "$img" --vdev xvdg >/dev/null || fail attach
G=/local/domain/0/backend/vbd3/$d2/51808
"$S" wait "$G/state" 4 >/dev/null || fail "no tapdisk for xvdg"
pg=$(pid_of "$G")
xenstore-write "$G/standin-cmd" "$pg linger"
"$S" wait "$G/standin-lingering" 1 >/dev/null || fail "stand-in did not take the linger command"
xenstore-rm "$G" || fail "rm xvdg"
xenstore-rm "/local/domain/$d2/device/vbd/51808" "/libxl/$d2/device/vbd/51808" || fail "rm xvdg's other records"
"$S" wait-log "$LOG" "$G: device removed; tapdisk pid $pg finishes its own detach" 1 ||
    fail "removal of xvdg not logged"
$X vbd attach "$d2" "$img" --vdev xvdg >/dev/null || fail "re-attach xvdg"
xenstore-write "$G/standin-cmd" "$pg exit 0"
pg2=$("$S" wait-change "$G/standin-pid" "$pg") || fail "no tapdisk for xvdg attached again during its old tapdisk's exit"
"$S" wait-log "$LOG" "$G: attached again after its detach; starting a tapdisk for the new device" 1 ||
    fail "re-attach during exit not logged"
[ "$(starts "$G")" = 2 ] || fail "xvdg should have 2 starts, has $(starts "$G")"

# SIGTERM: every tapdisk stopped and reaped, exit 0
running=$(grep -o "started tapdisk pid [0-9]*" "$LOG" | awk '{print $4}')
kill -TERM "$tb"
wait "$tb"; rc=$?
tb=
[ "$rc" = 0 ] || fail "pvio-tapback exited $rc on SIGTERM"
grep -q "all tapdisks stopped; exiting" "$LOG" || fail "shutdown not logged"
for p in $running; do
    kill -0 "$p" 2>/dev/null && fail "tapdisk $p survived the supervisor"
done
echo PASS
