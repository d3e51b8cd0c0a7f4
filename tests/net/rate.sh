#!/bin/sh
# The backend's "rate" key (libxl writes rate = "BYTES,USECS"): netback's
# credit scheduler on guest transmit.
#
# The bound it enforces: over any T seconds at most BYTES * (T / USECS + 1)
# frame bytes leave the guest (credit is refilled once per interval, never
# above max(BYTES, 64 KiB)). iperf3 measures TCP payload received over its
# own test time, which is less than the frame bytes and not shorter than
# the sending time; with T = 4 s and 50 ms intervals the bound is the limit
# plus 1/80. The test asserts measured <= limit * 1.10 (MARGIN: that 1.3%
# plus room for timer and clock granularity) and >= limit * 0.5 (a limiter
# that throttles far below what it was given is broken too).
#
#  1. A rate key netback cannot parse when it starts: logged, no limit.
#  2. A valid key written while the vif runs: applied (log, stats JSON),
#     iperf3 guest -> dom0 within the bounds.
#  3. Bad values written at run time (no comma, zero bytes, zero or too
#     long an interval, a sign, trailing junk, overflow, empty): each
#     logged and ignored; the limit in force stays (iperf3 again).
#  4. A new, 3x higher limit is applied (iperf3 within its bounds, which
#     exclude the old limit); removing the key lifts the limit (logged).
. "$(dirname "$0")/lib.sh"
command -v iperf3 >/dev/null || { echo "SKIP: iperf3 not installed"; exit 77; }
command -v xenstore-write >/dev/null || { echo "SKIP: xenstore-utils not installed"; exit 77; }
HERE=$(dirname "$0")
WAITFOR="python3 $HERE/waitfor.py"
SECS=${NET_RATE_SECS:-4}
MARGIN=1.10

d=$("$XENSIM" domain create net-rate --memory 64)
v=$("$XENSIM" vif attach "$d" --mac 00:16:3e:00:04:02)
B=/local/domain/0/backend/vif/$d/$v
LOG=$XENSIM_DIR/nb$d.$v.log
tap=nb$TAG
# 1: garbage at start (as if a toolstack wrote bytes per second only)
xenstore-write -- "$B/rate" "4000000"
start_netback "$d" "$v" "$tap"
start_pvnet "$d" "$NS_G" eth0 >/dev/null || fail "pvnet"
$WAITFOR "$LOG" "ignoring rate '4000000'" || fail "a bad rate at start was not logged"
[ "$(stat_of "$d" "$v" rate_bytes)" = 0 ] || fail "a bad rate at start set a limit"
ip link set "$tap" netns "$NS_D"
ip -n "$NS_D" addr add 10.0.4.1/24 dev "$tap"; ip -n "$NS_D" link set "$tap" up
ip -n "$NS_G" addr add 10.0.4.2/24 dev eth0; ip -n "$NS_G" link set eth0 up

start_iperf_server "$NS_D" 10.0.4.1

# set_rate VALUE TEXT: write the key, wait for netback's log line TEXT
set_rate() {
    from=$(stat -c %s "$LOG")
    xenstore-write -- "$B/rate" "$1"
    $WAITFOR "$LOG" "$2" --from "$from" || fail "rate '$1': no '$2' in netback's log"
}
# measure BYTES USECS WHAT: iperf3 guest -> dom0 within the limit's bounds
measure() {
    ip netns exec "$NS_G" iperf3 -c 10.0.4.1 -t "$SECS" -J > "$XENSIM_DIR/rate.json" ||
        fail "iperf3: $(head -c 2000 "$XENSIM_DIR/rate.json")"
    python3 - "$XENSIM_DIR/rate.json" "$1" "$2" "$MARGIN" "$3" <<'PY' || fail "$3: throughput out of bounds"
import json, sys
d = json.load(open(sys.argv[1]))
limit = int(sys.argv[2]) * 1e6 / int(sys.argv[3])      # bytes per second
margin = float(sys.argv[4])
r = d["end"]["sum_received"]
got = r["bytes"] / r["seconds"]
ratio = got / limit
print("# %s: %.0f bytes/s received, limit %.0f bytes/s: ratio %.3f (bounds 0.5 .. %.2f)"
      % (sys.argv[5], got, limit, ratio, margin))
sys.exit(0 if 0.5 <= ratio <= margin else 1)
PY
}

# 2: a valid limit, 4 MB/s
set_rate 200000,50000 "rate limit: 200000 bytes per 50000 us"
measure 200000 50000 "rate 200000,50000"
[ "$(stat_of "$d" "$v" rate_waits)" -gt 0 ] || fail "the limit never held tx back"
[ "$(stat_of "$d" "$v" rate_bytes)" = 200000 ] && [ "$(stat_of "$d" "$v" rate_usec)" = 50000 ] ||
    fail "stats do not show the limit"

# 3: bad values, each logged, none applied (one after the other: netback
# reads the key when its watch fires, so values written at once could
# pass unseen; one python for the lot, as each start costs)
python3 - "$HERE" "$LOG" "$B/rate" <<'PY' || fail "a bad rate value was not refused with a log line"
import os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from waitfor import wait_for
log, key = sys.argv[2], sys.argv[3]
for bad in ["abc", "0,50000", "1000,0", "1000,20000000", "-5,50000", "1000,50000,7", "1000;50000",
            "99999999999999999999999,50000", "1099511627777,50000", " 1000,50000", "1000, 50000", ""]:
    start = os.path.getsize(log)
    subprocess.run(["xenstore-write", "--", key, bad], check=True)
    if not wait_for(log, "ignoring rate '%s'" % bad, start):
        sys.exit("rate %r: no log line" % bad)
print("# 12 bad rate values refused, each with a log line")
PY
measure 200000 50000 "after 12 bad values"

# 4: a new limit (3x), then none
set_rate 600000,50000 "rate limit: 600000 bytes per 50000 us"
measure 600000 50000 "rate 600000,50000"
from=$(stat -c %s "$LOG")
xenstore-rm "$B/rate"
$WAITFOR "$LOG" "rate limit: none" --from "$from" || fail "removing the rate key was not logged"

"$XENSIM" vif detach "$d" "$v" >/dev/null || fail "detach"
for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
pids=""
[ "$(stat_of "$d" "$v" tx_fatal)" = 0 ] || fail "netback saw fatal errors"
[ "$(stat_of "$d" "$v" tx_drop_tap)" = 0 ] || fail "the limit made the TAP drop"
echo PASS
