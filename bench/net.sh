#!/bin/sh
# Benchmark (not a test): iperf3 TCP throughput guest -> dom0 and dom0 ->
# guest through pvio (pvnet <-> pvio-netback), beside a veth pair between
# the same two namespaces, and the ratio. Needs root, iperf3 and a build:
#   BUILD=build bench/net.sh [SECONDS]
set -eu
BUILD=${BUILD:-build}
SECS=${1:-5}
XENSIM=$BUILD/sim/xensim NETBACK=$BUILD/netback/pvio-netback PVNET=$BUILD/tools/pvnet/pvnet
export XENSIM NETBACK PVNET
command -v iperf3 >/dev/null || { echo "iperf3 not installed"; exit 1; }
. "$(dirname "$0")/../tests/net/lib.sh"
d=$("$XENSIM" domain create bench --memory 64)
v=$("$XENSIM" vif attach "$d")
start_netback "$d" "$v" "nb$TAG"
start_pvnet "$d" "$NS_G" eth0 >/dev/null
ip link set "nb$TAG" netns "$NS_D"
ip -n "$NS_D" addr add 10.0.0.1/24 dev "nb$TAG"; ip -n "$NS_D" link set "nb$TAG" up
ip -n "$NS_G" addr add 10.0.0.2/24 dev eth0; ip -n "$NS_G" link set eth0 up
ip link add "vg$TAG" netns "$NS_G" type veth peer name "vd$TAG" netns "$NS_D"
ip -n "$NS_G" addr add 10.9.0.2/24 dev "vg$TAG"; ip -n "$NS_G" link set "vg$TAG" up
ip -n "$NS_D" addr add 10.9.0.1/24 dev "vd$TAG"; ip -n "$NS_D" link set "vd$TAG" up
bps() { python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'; }
run() { # NS_CLIENT SERVER_NS SERVER_IP [-R]
    ip netns exec "$2" iperf3 -s -1 -B "$3" -p 5301 >/dev/null &
    sp=$!
    # wait until the server listens (ss), then measure
    until ip netns exec "$2" ss -ltn | grep -q ":5301 "; do :; done
    out=$(ip netns exec "$1" timeout $((SECS + 20)) iperf3 -c "$3" -p 5301 -t "$SECS" -J $4) || true
    wait $sp 2>/dev/null || true
    echo "$out" | bps
}
pv_up=$(run "$NS_G" "$NS_D" 10.0.0.1 "")
pv_dn=$(run "$NS_G" "$NS_D" 10.0.0.1 -R)
ve_up=$(run "$NS_G" "$NS_D" 10.9.0.1 "")
ve_dn=$(run "$NS_G" "$NS_D" 10.9.0.1 -R)
python3 - "$pv_up" "$pv_dn" "$ve_up" "$ve_dn" <<'PY'
import sys
pu, pd, vu, vd = map(float, sys.argv[1:])
g = lambda x: x / 1e9
print(f"guest->dom0: pvio {g(pu):.2f} Gbit/s, veth {g(vu):.2f} Gbit/s, ratio {pu / vu:.2f}")
print(f"dom0->guest: pvio {g(pd):.2f} Gbit/s, veth {g(vd):.2f} Gbit/s, ratio {pd / vd:.2f}")
PY
