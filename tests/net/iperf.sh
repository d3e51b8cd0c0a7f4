#!/bin/sh
# TCP through pvio with iperf3: at least 1 GiB guest -> dom0 and 1 GiB
# dom0 -> guest (-R), each checked in iperf3's JSON (bytes received, no
# error), then netback's counters: no fatal error, nothing dropped on tx.
# iperf3's server stops counting at the end of the test, so what was still
# in flight (socket buffers) is missing from "received": the client sends
# 64 MiB more than the minimum, and the JSON must show the minimum received
# and at most 64 MiB in flight. PVNET_ARGS as in ping.sh; NET_IPERF_MB
# overrides the 1024 MiB minimum.
. "$(dirname "$0")/lib.sh"
command -v iperf3 >/dev/null || { echo "SKIP: iperf3 not installed"; exit 77; }
d=$("$XENSIM" domain create net-guest --memory 64)
v=$("$XENSIM" vif attach "$d" --mac 00:16:3e:00:03:02)
tap=nb$TAG
start_netback "$d" "$v" "$tap"
# shellcheck disable=SC2086
start_pvnet "$d" "$NS_G" eth0 ${PVNET_ARGS:-} >/dev/null || fail "pvnet"
ip link set "$tap" netns "$NS_D"
ip -n "$NS_D" addr add 10.0.3.1/24 dev "$tap"; ip -n "$NS_D" link set "$tap" up
ip -n "$NS_G" addr add 10.0.3.2/24 dev eth0; ip -n "$NS_G" link set eth0 up

# The server says "Server listening" once it listens; a reader passes that
# on through a second FIFO (no sleeping) and keeps draining its output.
out=$XENSIM_DIR/iperf-s; mkfifo "$out.fifo" "$out.ready"
ip netns exec "$NS_D" iperf3 -s -B 10.0.3.1 --forceflush > "$out.fifo" 2>&1 &
pids="$pids $!"
{
    while read -r line; do
        echo "$line" >> "$out.log"
        case $line in *"Server listening"*) echo ready > "$out.ready"; break ;; esac
    done
    cat >> "$out.log"
} < "$out.fifo" &
pids="$pids $!"
read -r _ < "$out.ready" || fail "iperf3 server did not start"

MB=${NET_IPERF_MB:-1024}
BYTES=$((MB + 64))M
check_json() { # FILE WHAT
    python3 - "$1" "$2" "$MB" <<'PY' || fail "$2: $(head -c 2000 "$1")"
import json, sys
d = json.load(open(sys.argv[1]))
want = int(sys.argv[3]) << 20
assert "error" not in d, d.get("error")
got = d["end"]["sum_received"]["bytes"]
sent = d["end"]["sum_sent"]["bytes"]
assert sent >= want + (64 << 20), "sent %d bytes, want %d" % (sent, want + (64 << 20))
assert got >= want, "received %d bytes, want >= %d" % (got, want)
assert sent - got <= 64 << 20, "sent %d, received %d: more than 64 MiB lost" % (sent, got)
print("# %s: %.2f GiB in %.1f s, %.2f Gbit/s, %d retransmits" % (sys.argv[2], got / 2**30,
      d["end"]["sum_received"]["seconds"], d["end"]["sum_received"]["bits_per_second"] / 1e9,
      d["end"]["sum_sent"].get("retransmits", 0)))
PY
}
ip netns exec "$NS_G" iperf3 -c 10.0.3.1 -n "$BYTES" -J > "$XENSIM_DIR/up.json" || fail "iperf3 guest -> dom0: $(head -c 2000 "$XENSIM_DIR/up.json")"
check_json "$XENSIM_DIR/up.json" "guest -> dom0"
ip netns exec "$NS_G" iperf3 -c 10.0.3.1 -n "$BYTES" -R -J > "$XENSIM_DIR/down.json" || fail "iperf3 dom0 -> guest: $(head -c 2000 "$XENSIM_DIR/down.json")"
check_json "$XENSIM_DIR/down.json" "dom0 -> guest"

"$XENSIM" vif detach "$d" "$v" >/dev/null || fail "detach"
for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
pids=""
for k in tx_fatal tx_drop_slots tx_drop_frag_size tx_drop_zero_frag tx_drop_hdr_split \
         tx_drop_page_cross tx_drop_runt tx_drop_extra tx_drop_offload tx_drop_copy rx_drop_copy; do
    [ "$(stat_of "$d" "$v" $k)" = 0 ] || fail "netback counted $k = $(stat_of "$d" "$v" $k)"
done
echo "PASS (${PVNET_ARGS:-offloads on})"
