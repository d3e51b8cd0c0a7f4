#!/bin/sh
# tapdisk's numeric options (--max-ring-order, --max-indirect-segments,
# --max-queues, --poll-us): a bad value — garbage, negative, signed,
# spaced, empty, too large — is refused before tapdisk does anything, with
# exit code 1 and a message naming the option and the value; the largest
# value the message names is taken (the --help that follows it runs and
# exits 0) and one more is refused.  Needs no xenstore: options are read
# first.
set -u
: "${TAPDISK:?}"
be=/local/domain/0/backend/vbd3/1/51712
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# refused OPT VALUE: tapdisk exits 1 naming --OPT and 'VALUE' on stderr
refused() {
    "$TAPDISK" --backend "$be" "--$1" "$2" --help >/dev/null 2>"$out"
    rc=$?
    [ "$rc" -eq 1 ] || fail "--$1 '$2': exit code $rc, not 1"
    grep -q -- "--$1: '$2' is not a number in 0\.\." "$out" ||
        fail "--$1 '$2': no message naming the option: $(cat "$out")"
}

for opt in max-ring-order max-indirect-segments max-queues poll-us; do
    for bad in abc -1 +1 " 1" 1x 0x10 "" 99999999999999999999999 4294967296; do
        refused "$opt" "$bad"
    done
    # the range as the message states it
    "$TAPDISK" --backend "$be" "--$opt" x 2>"$out"
    max=$(sed -n "s/.*is not a number in 0\.\.\([0-9][0-9]*\)\$/\1/p" "$out")
    [ -n "$max" ] || fail "--$opt: no range in the message: $(cat "$out")"
    refused "$opt" $((max + 1))
    for good in 0 "$max"; do
        "$TAPDISK" --backend "$be" "--$opt" "$good" --help >"$out" 2>&1 ||
            fail "--$opt $good refused: $(cat "$out")"
        grep -q "^Usage: tapdisk" "$out" || fail "--$opt $good: --help did not run"
    done
    echo "--$opt: 0..$max, bad values refused"
done
# the documented limits are the ones enforced
"$TAPDISK" --help | grep -q "largest ring-page-order offered, 0\.\.4 " ||
    fail "--help does not give --max-ring-order 0..4"
"$TAPDISK" --backend "$be" --max-ring-order 5 2>&1 | grep -q "0\.\.4\$" ||
    fail "--max-ring-order 5 not refused as outside 0..4"
echo PASS
