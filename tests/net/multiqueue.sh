#!/bin/sh
# Multi-queue (io/netif.h multi-queue-max-queues / -num-queues):
#  1. netback offers 4 queues, pvnet asks for 2: the vif gets 2 (the
#     frontend's limit), with queue-0/ and queue-1/ keys in xenstore and a
#     ring pair and event channels each; ping (56, 1472 bytes) works and
#     iperf3 -P 4 moves data both ways; netback's per-queue counters show
#     both queues carried traffic each way. The kernel hashes each flow to
#     a TAP queue (and the reply direction follows it), so 4 short runs of 8
#     flows follow: the chance that all 4 + 4 + 32 flows land on one queue
#     is 2^-39.
#  2. A frontend without multi-queue (pvnet default) against the same
#     offer: one queue, keys at the top, ping and TCP work.
#  3. pvnet asks for 4 from a netback offering 1: one queue.
. "$(dirname "$0")/lib.sh"
command -v iperf3 >/dev/null || { echo "SKIP: iperf3 not installed"; exit 77; }
command -v xenstore-read >/dev/null || { echo "SKIP: xenstore-utils not installed"; exit 77; }

be_dir() { echo "/local/domain/0/backend/vif/$1/$2"; }
fe_dir() { xenstore-read "$(be_dir "$1" "$2")/frontend"; }
# a number from pvnet's --json line (no python start for this)
json_key() { echo "$1" | sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p"; }
iperf_ok() { # FILE WHAT: iperf3 -J output with no error and data received
    python3 - "$1" "$2" <<'PY' || fail "$2: $(head -c 2000 "$1")"
import json, sys
d = json.load(open(sys.argv[1]))
assert "error" not in d, d.get("error")
got = d["end"]["sum_received"]["bytes"]
assert got > 0, "nothing received"
print("# %s: %.1f MiB, %.2f Gbit/s" % (sys.argv[2], got / 2**20, d["end"]["sum_received"]["bits_per_second"] / 1e9))
PY
}
# netback's stats as KEY=VALUE lines (lists space-separated), one python
# start for all of them; stat KEY reads one from that
load_stats() { # DOMID DEVID
    python3 -c '
import json, sys
for k, v in json.load(open(sys.argv[1])).items():
    print("%s=%s" % (k, " ".join(map(str, v)) if isinstance(v, list) else v))' "$XENSIM_DIR/nb$1.$2.json" \
        > "$XENSIM_DIR/stats" || fail "no stats from netback"
}
stat() { sed -n "s/^$1=//p" "$XENSIM_DIR/stats"; }

# --- 1: 2 of 4 queues --------------------------------------------------------
d=$("$XENSIM" domain create net-mq --memory 64)
v=$("$XENSIM" vif attach "$d" --mac 00:16:3e:00:05:02)
tap=nb$TAG
start_netback "$d" "$v" "$tap" --max-queues 4
# (not in $(...): start_pvnet records pvnet's pid for the cleanup)
start_pvnet "$d" "$NS_G" eth0 --queues 2 --json > "$XENSIM_DIR/line" || fail "pvnet"
line=$(cat "$XENSIM_DIR/line")
[ "$(json_key "$line" queues)" = 2 ] || fail "pvnet got $(json_key "$line" queues) queues, want 2: $line"
B=$(be_dir "$d" "$v"); F=$(fe_dir "$d" "$v")
[ "$(xenstore-read "$B/multi-queue-max-queues")" = 4 ] || fail "backend does not offer 4 queues"
[ "$(xenstore-read "$F/multi-queue-num-queues")" = 2 ] || fail "frontend did not write multi-queue-num-queues=2"
for q in 0 1; do
    for k in tx-ring-ref rx-ring-ref event-channel-tx event-channel-rx; do
        xenstore-read "$F/queue-$q/$k" >/dev/null 2>&1 || fail "no $F/queue-$q/$k"
    done
done
! xenstore-read "$F/queue-2/tx-ring-ref" >/dev/null 2>&1 || fail "a third queue was published"
! xenstore-read "$F/tx-ring-ref" >/dev/null 2>&1 || fail "multi-queue frontend also wrote top-level ring refs"
ip link set "$tap" netns "$NS_D"
ip -n "$NS_D" addr add 10.0.5.1/24 dev "$tap"; ip -n "$NS_D" link set "$tap" up
ip -n "$NS_G" addr add 10.0.5.2/24 dev eth0; ip -n "$NS_G" link set eth0 up
load_stats "$d" "$v"
[ "$(stat queues)" = 2 ] || fail "netback connected $(stat queues) queues, want 2"
ip netns exec "$NS_G" ping -q -c 3 -i 0.2 -W 3 10.0.5.1 >/dev/null || fail "ping over 2 queues"
ip netns exec "$NS_G" ping -q -c 3 -i 0.2 -W 3 -s 1472 -M do 10.0.5.1 >/dev/null || fail "ping 1472 over 2 queues"
start_iperf_server "$NS_D" 10.0.5.1 5401
ip netns exec "$NS_G" iperf3 -c 10.0.5.1 -p 5401 -P 4 -n 256M -J > "$XENSIM_DIR/up.json" || true
iperf_ok "$XENSIM_DIR/up.json" "iperf3 -P 4 guest -> dom0 over 2 queues"
ip netns exec "$NS_G" iperf3 -c 10.0.5.1 -p 5401 -P 4 -n 256M -R -J > "$XENSIM_DIR/down.json" || true
iperf_ok "$XENSIM_DIR/down.json" "iperf3 -P 4 dom0 -> guest over 2 queues"
for n in 1 2 3 4; do
    ip netns exec "$NS_G" iperf3 -c 10.0.5.1 -p 5401 -P 8 -n 8M -R -J > "$XENSIM_DIR/more.json" || true
    iperf_ok "$XENSIM_DIR/more.json" "8 more flows, round $n"
done
"$XENSIM" vif detach "$d" "$v" >/dev/null || fail "detach"
for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
pids=""
load_stats "$d" "$v"
for key in queue_tx_packets queue_rx_packets; do
    c=$(stat $key)
    echo "# $key per queue: $c"
    set -- $c
    [ $# = 4 ] && [ "$1" -gt 0 ] && [ "$2" -gt 0 ] && [ "$3" = 0 ] && [ "$4" = 0 ] ||
        fail "$key per queue is $c: want traffic on queues 0 and 1 only"
done
for k in tx_fatal tx_drop_copy rx_drop_copy tx_drop_offload rx_drop_too_big; do
    [ "$(stat $k)" = 0 ] || fail "netback counted $k = $(stat $k)"
done
rm -f "$XENSIM_DIR"/iperf-s.*

# --- 2: a single-queue frontend against a multi-queue offer ------------------
new_ns "g2$TAG"; new_ns "d2$TAG"
d=$("$XENSIM" domain create net-sq --memory 64)
v=$("$XENSIM" vif attach "$d" --mac 00:16:3e:00:05:03)
tap=nc$TAG
start_netback "$d" "$v" "$tap" --max-queues 4
start_pvnet "$d" "g2$TAG" eth0 --json > "$XENSIM_DIR/line" || fail "pvnet (single queue)"
line=$(cat "$XENSIM_DIR/line")
[ "$(json_key "$line" queues)" = 1 ] || fail "single-queue pvnet got $(json_key "$line" queues) queues"
F=$(fe_dir "$d" "$v")
xenstore-read "$F/tx-ring-ref" >/dev/null 2>&1 || fail "single-queue frontend has no top-level tx-ring-ref"
! xenstore-read "$F/multi-queue-num-queues" >/dev/null 2>&1 || fail "single-queue frontend wrote num-queues"
ip link set "$tap" netns "d2$TAG"
ip -n "d2$TAG" addr add 10.0.6.1/24 dev "$tap"; ip -n "d2$TAG" link set "$tap" up
ip -n "g2$TAG" addr add 10.0.6.2/24 dev eth0; ip -n "g2$TAG" link set eth0 up
ip netns exec "g2$TAG" ping -q -c 3 -i 0.2 -W 3 -s 1472 10.0.6.1 >/dev/null || fail "ping, single-queue frontend"
load_stats "$d" "$v"
[ "$(stat queues)" = 1 ] || fail "netback connected $(stat queues) queues, want 1"
start_iperf_server "d2$TAG" 10.0.6.1 5402
ip netns exec "g2$TAG" iperf3 -c 10.0.6.1 -p 5402 -P 2 -n 64M -R -J > "$XENSIM_DIR/sq.json" || true
iperf_ok "$XENSIM_DIR/sq.json" "iperf3 dom0 -> single-queue guest"
"$XENSIM" vif detach "$d" "$v" >/dev/null || fail "detach"
for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
pids=""

# --- 3: pvnet wants 4, netback offers 1 ---------------------------------------
new_ns "g3$TAG"
d=$("$XENSIM" domain create net-q1 --memory 64)
v=$("$XENSIM" vif attach "$d" --mac 00:16:3e:00:05:04)
tap=nd$TAG
start_netback "$d" "$v" "$tap"
start_pvnet "$d" "g3$TAG" eth0 --queues 4 --json > "$XENSIM_DIR/line" || fail "pvnet (wants 4)"
line=$(cat "$XENSIM_DIR/line")
[ "$(json_key "$line" queues)" = 1 ] || fail "pvnet got $(json_key "$line" queues) queues from a 1-queue backend"
[ "$(xenstore-read "$(be_dir "$d" "$v")/multi-queue-max-queues")" = 1 ] || fail "default offer is not 1"
ip link set "$tap" netns "$NS_D"
ip -n "$NS_D" addr add 10.0.7.1/24 dev "$tap"; ip -n "$NS_D" link set "$tap" up
ip -n "g3$TAG" addr add 10.0.7.2/24 dev eth0; ip -n "g3$TAG" link set eth0 up
ip netns exec "g3$TAG" ping -q -c 3 -i 0.2 -W 3 10.0.7.1 >/dev/null || fail "ping, 1-queue backend"
"$XENSIM" vif detach "$d" "$v" >/dev/null || fail "detach"
echo PASS
