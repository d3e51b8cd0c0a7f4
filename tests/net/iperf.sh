#!/bin/sh
# TCP through pvio with iperf3: at least 1 GiB guest -> dom0 and 1 GiB
# dom0 -> guest (-R), each checked in iperf3's JSON (bytes received, no
# error), then netback's counters: no fatal error, nothing dropped on tx.
# iperf3's server stops counting at the end of the test, so what was still
# in flight (socket buffers) is missing from "received": the client sends
# 64 MiB more than the minimum, and the JSON must show the minimum received
# and at most 64 MiB in flight. PVNET_ARGS as in ping.sh; NET_IPERF_MB
# overrides the 1024 MiB minimum.
#
# iperf3 counts bytes, not their content, so after each iperf3 run the same
# direction carries a 1 GiB file of random bytes (from tmpfs) over one TCP
# connection (nc), hashed by the receiver and compared with the sender's
# sha256. With checksum offload and GSO on (the default), the kernels do
# not verify TCP checksums of frames pvio hands them (DATA_VALID /
# csum_blank), so this is what shows that no byte was changed, lost,
# repeated or reordered on the way; netback's counters must show frames
# bigger than the MTU both ways (GSO was used).
. "$(dirname "$0")/lib.sh"
command -v iperf3 >/dev/null || { echo "SKIP: iperf3 not installed"; exit 77; }
d=$("$XENSIM" domain create net-guest --memory 64)
v=$("$XENSIM" vif attach "$d" --mac 00:16:3e:00:03:02)
tap=nb$TAG
start_netback "$d" "$v" "$tap"
# shellcheck disable=SC2086
start_pvnet "$d" "$NS_G" eth0 ${PVNET_ARGS:-} > "$XENSIM_DIR/pvnet.line" || fail "pvnet"
if [ -z "${PVNET_ARGS:-}" ]; then
    grep -q "sg 1 csum 1 gso 1/1" "$XENSIM_DIR/pvnet.line" ||
        fail "offloads not negotiated: $(cat "$XENSIM_DIR/pvnet.line")"
fi
ip link set "$tap" netns "$NS_D"
ip -n "$NS_D" addr add 10.0.3.1/24 dev "$tap"; ip -n "$NS_D" link set "$tap" up
ip -n "$NS_G" addr add 10.0.3.2/24 dev eth0; ip -n "$NS_G" link set eth0 up

start_iperf_server "$NS_D" 10.0.3.1

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

# The verified stream: SRC (random, on tmpfs when there is one) through
# nc; the receiver says "ready" on a FIFO once it listens (no sleeping),
# then hashes what arrives until the sender closes.
SRC=$(mktemp -p /dev/shm pvio-net-src.XXXXXX 2>/dev/null || mktemp -p "$XENSIM_DIR")
tmpfiles="$tmpfiles $SRC"
head -c $((MB << 20)) /dev/urandom > "$SRC"
want=$(sha256sum < "$SRC" | cut -d' ' -f1)
verified_xfer() { # FROM_NS TO_NS TO_IP WHAT
    fifo=$XENSIM_DIR/ready.$3; rm -f "$fifo"; mkfifo "$fifo"
    ip netns exec "$2" python3 -c '
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5002)); s.listen(1)
open(sys.argv[2], "w").write("ready\n")
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    h.update(b); n += len(b)
open(sys.argv[3], "w").write("%s %d\n" % (h.hexdigest(), n))' "$3" "$fifo" "$XENSIM_DIR/got" &
    rp=$!
    read -r _ < "$fifo"
    ip netns exec "$1" nc -N "$3" 5002 < "$SRC" || fail "$4: nc to $3"
    wait $rp || fail "$4: receiver at $3"
    read -r got n < "$XENSIM_DIR/got"
    [ "$n" = $((MB << 20)) ] || fail "$4: $n bytes arrived, $((MB << 20)) sent"
    [ "$got" = "$want" ] || fail "$4: the $MB MiB arrived changed (sha256 $got, sent $want)"
    echo "# $4: $MB MiB of random bytes arrived intact (sha256 $want)"
}

ip netns exec "$NS_G" iperf3 -c 10.0.3.1 -n "$BYTES" -J > "$XENSIM_DIR/up.json" || fail "iperf3 guest -> dom0: $(head -c 2000 "$XENSIM_DIR/up.json")"
check_json "$XENSIM_DIR/up.json" "guest -> dom0"
verified_xfer "$NS_G" "$NS_D" 10.0.3.1 "guest -> dom0"
ip netns exec "$NS_G" iperf3 -c 10.0.3.1 -n "$BYTES" -R -J > "$XENSIM_DIR/down.json" || fail "iperf3 dom0 -> guest: $(head -c 2000 "$XENSIM_DIR/down.json")"
check_json "$XENSIM_DIR/down.json" "dom0 -> guest"
verified_xfer "$NS_D" "$NS_G" 10.0.3.2 "dom0 -> guest"
rm -f "$SRC"

"$XENSIM" vif detach "$d" "$v" >/dev/null || fail "detach"
for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
pids=""
for k in tx_fatal tx_drop_slots tx_drop_frag_size tx_drop_zero_frag tx_drop_hdr_split \
         tx_drop_page_cross tx_drop_runt tx_drop_extra tx_drop_offload tx_drop_copy rx_drop_copy; do
    [ "$(stat_of "$d" "$v" $k)" = 0 ] || fail "netback counted $k = $(stat_of "$d" "$v" $k)"
done
case " ${PVNET_ARGS:-} " in
*--no-gso*|*--no-sg*|*--no-csum*) ;;
*)
    # GSO in use both ways: average frames bigger than an MTU-sized one
    for dir in tx rx; do
        b=$(stat_of "$d" "$v" ${dir}_bytes); p=$(stat_of "$d" "$v" ${dir}_packets)
        [ "$p" -gt 0 ] && [ $((b / p)) -gt 1514 ] || fail "$dir: $p frames of $b bytes: no GSO frames"
        echo "# $dir: $p frames, $((b / p)) bytes on average"
    done ;;
esac
echo "PASS (${PVNET_ARGS:-offloads on})"
