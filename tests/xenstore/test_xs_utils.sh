#!/bin/sh
# SPDX-License-Identifier: MIT
# Debian's xenstore-utils against xensim-xenstored. Skips (77) without them.
set -eu

for t in xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-rm \
	 xenstore-chmod xenstore-watch; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not installed"; exit 77; }
done
: "${XENSTORED_BIN:?XENSTORED_BIN not set}"

D=$(mktemp -d "${TMPDIR:-/tmp}/pvio-xs-sh-XXXXXX")
PID=
cleanup() {
	if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$D"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; echo "--- daemon log:" >&2; cat "$D/log" >&2 || true; exit 1; }

# Wait for --ready-fd through a fifo: the open blocks until both ends exist,
# and EOF without a byte means the daemon died before it was ready.
mkfifo "$D/ready"
"$XENSTORED_BIN" --dir "$D" --ready-fd 3 --log "$D/log" 3>"$D/ready" &
PID=$!
r=$(head -c 1 "$D/ready")
[ -n "$r" ] || fail "daemon did not become ready"

XENSTORED_PATH="$D/xenstored/socket"
export XENSTORED_PATH

xenstore-write /vm/guest1/name alpha /vm/guest1/uuid 1234-abcd
[ "$(xenstore-read /vm/guest1/name)" = alpha ] || fail "read name"
[ "$(xenstore-read /vm/guest1/uuid)" = 1234-abcd ] || fail "read uuid"

ls_out=$(xenstore-ls /vm)
echo "$ls_out"
echo "$ls_out" | grep -q '^guest1 = ""' || fail "ls: guest1"
echo "$ls_out" | grep -q 'name = "alpha"' || fail "ls: name"
echo "$ls_out" | grep -q 'uuid = "1234-abcd"' || fail "ls: uuid"
xenstore-ls | grep -q '^local = ""' || fail "ls /: local"

[ "$(xenstore-list /vm/guest1 | sort | tr '\n' ' ')" = "name uuid " ] || fail "list"

xenstore-chmod /vm/guest1/name r5 w6
perms=$(xenstore-ls -p /vm/guest1 | grep '^name')
echo "$perms"
echo "$perms" | grep -q '(r5,w6)' || fail "chmod: $perms"

xenstore-rm /vm/guest1/uuid
if xenstore-read /vm/guest1/uuid 2>/dev/null; then fail "uuid still there"; fi
[ "$(xenstore-list /vm/guest1)" = name ] || fail "list after rm"

# xenstore-watch -n 2: the initial event, then our write. Read its first line
# before writing so the write cannot race the watch registration.
mkfifo "$D/watch"
xenstore-watch -n 2 /vm/guest1 >"$D/watch" &
WPID=$!
exec 4<"$D/watch"
read -r first <&4 || fail "no initial watch event"
[ "$first" = /vm/guest1 ] || fail "initial event '$first'"
xenstore-write /vm/guest1/state 4
read -r second <&4 || fail "no second watch event"
[ "$second" = /vm/guest1/state ] || fail "second event '$second'"
wait "$WPID" || fail "xenstore-watch exit status"
exec 4<&-

xenstore-rm /vm
if xenstore-read /vm/guest1/name 2>/dev/null; then fail "/vm still there"; fi

kill "$PID"
wait "$PID" || fail "daemon exit status $?"
PID=
[ ! -e "$D/xenstored/socket" ] || fail "socket left behind"
echo "PASS"
