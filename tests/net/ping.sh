#!/bin/sh
# One guest and dom0 over pvio: ping of 56 and 1472 bytes; MTU 9000 with sg
# and an 8972-byte ping; a fragmented 20000-byte ping; a TCP transfer whose
# bytes are checked end to end; with PVNET_ARGS (e.g. --no-csum --no-gso)
# the same with offloads off, and ethtool toggles on the TAPs.
. "$(dirname "$0")/lib.sh"
d=$("$XENSIM" domain create net-guest --memory 64)
v=$("$XENSIM" vif attach "$d" --mac 00:16:3e:00:01:02)
tap=nb$TAG
start_netback "$d" "$v" "$tap"
# shellcheck disable=SC2086
start_pvnet "$d" "$NS_G" eth0 ${PVNET_ARGS:-} || fail "pvnet"
ip link set "$tap" netns "$NS_D"
ip -n "$NS_D" addr add 10.0.0.1/24 dev "$tap"; ip -n "$NS_D" link set "$tap" up
ip -n "$NS_G" addr add 10.0.0.2/24 dev eth0; ip -n "$NS_G" link set eth0 up
gping() { ip netns exec "$NS_G" ping -q -c 3 -i 0.2 -W 3 "$@" 10.0.0.1 >/dev/null; }
gping -s 56 || fail "ping 56"
gping -s 1472 -M do || fail "ping 1472"
case " ${PVNET_ARGS:-} " in
*--no-sg*) ;;
*)
    ip -n "$NS_G" link set eth0 mtu 9000; ip -n "$NS_D" link set "$tap" mtu 9000
    gping -s 8972 -M do || fail "ping 8972 with MTU 9000"
    ip -n "$NS_G" link set eth0 mtu 1500; ip -n "$NS_D" link set "$tap" mtu 1500 ;;
esac
gping -s 20000 || fail "fragmented 20000-byte ping"
if command -v ethtool >/dev/null; then
    # dom0's TAP without offloads: the guest still gets whole checksums
    ip netns exec "$NS_D" ethtool -K "$tap" tx off tso off gso off >/dev/null 2>&1 || true
    gping -s 1472 || fail "ping with dom0 offloads off"
    ip netns exec "$NS_D" ethtool -K "$tap" tx on tso on gso on >/dev/null 2>&1 || true
fi

# TCP: a file through nc both ways, checked by sha256 on the far side.
# The receiver says "ready" on a FIFO once it listens (no sleeping).
tcp_xfer() { # FROM_NS TO_NS TO_IP
    fifo=$XENSIM_DIR/ready.$3; rm -f "$fifo"; mkfifo "$fifo"
    ip netns exec "$2" python3 -c '
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1)
open(sys.argv[2], "w").write("ready\n")
c, _ = s.accept(); h = hashlib.sha256()
while True:
    b = c.recv(1 << 20)
    if not b: break
    h.update(b)
open(sys.argv[3], "w").write(h.hexdigest())' "$3" "$fifo" "$XENSIM_DIR/got" &
    rp=$!
    read -r _ < "$fifo"
    ip netns exec "$1" nc -N "$3" 5001 < "$XENSIM_DIR/data" || fail "nc to $3"
    wait $rp || fail "receiver at $3"
    [ "$(cat "$XENSIM_DIR/got")" = "$want" ] || fail "TCP data to $3 differs"
}
if command -v nc >/dev/null; then
    MB=${NET_TCP_MB:-64}
    head -c $((MB * 1024 * 1024)) /dev/urandom > "$XENSIM_DIR/data"
    want=$(sha256sum < "$XENSIM_DIR/data" | cut -d' ' -f1)
    tcp_xfer "$NS_G" "$NS_D" 10.0.0.1
    tcp_xfer "$NS_D" "$NS_G" 10.0.0.2
fi
"$XENSIM" vif detach "$d" "$v" >/dev/null || fail "detach"
for p in $pids; do wait "$p" 2>/dev/null || true; done
pids=""
[ "$(stat_of "$d" "$v" tx_fatal)" = 0 ] || fail "netback saw fatal errors"
[ "$(stat_of "$d" "$v" tx_packets)" -gt 0 ] || fail "no tx counted"
echo "PASS (${PVNET_ARGS:-offloads on})"
