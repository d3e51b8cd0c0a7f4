#!/bin/sh
# Benchmark (not a test): iperf3 TCP throughput guest -> dom0 and dom0 ->
# guest through pvio (pvnet <-> pvio-netback), beside a veth pair between
# the same two namespaces, and the ratio. Needs root, iperf3 and a build:
#   BUILD=build bench/net.sh [SECONDS] [ROUNDS]
# Each round measures pvio and then veth in each direction, back to back,
# so a pair sees the same machine; the figure is the median over ROUNDS
# (default 3) of each pair's ratio, beside the median throughputs. On a
# busy machine the pairs spread; every pair is printed.
# PVNET_ARGS / NETBACK_ARGS pass options (e.g. --queues 2 / --max-queues 2
# with IPERF_ARGS=-P4).
set -eu
BUILD=${BUILD:-build}
SECS=${1:-5}
ROUNDS=${2:-3}
XENSIM=$BUILD/sim/xensim NETBACK=$BUILD/netback/pvio-netback PVNET=$BUILD/tools/pvnet/pvnet
export XENSIM NETBACK PVNET
command -v iperf3 >/dev/null || { echo "iperf3 not installed"; exit 1; }
. "$(dirname "$0")/../tests/net/lib.sh"
d=$("$XENSIM" domain create bench --memory 64)
v=$("$XENSIM" vif attach "$d")
# shellcheck disable=SC2086
start_netback "$d" "$v" "nb$TAG" ${NETBACK_ARGS:-}
# shellcheck disable=SC2086
start_pvnet "$d" "$NS_G" eth0 ${PVNET_ARGS:-} >/dev/null
ip link set "nb$TAG" netns "$NS_D"
ip -n "$NS_D" addr add 10.0.0.1/24 dev "nb$TAG"; ip -n "$NS_D" link set "nb$TAG" up
ip -n "$NS_G" addr add 10.0.0.2/24 dev eth0; ip -n "$NS_G" link set eth0 up
ip link add "vg$TAG" netns "$NS_G" type veth peer name "vd$TAG" netns "$NS_D"
ip -n "$NS_G" addr add 10.9.0.2/24 dev "vg$TAG"; ip -n "$NS_G" link set "vg$TAG" up
ip -n "$NS_D" addr add 10.9.0.1/24 dev "vd$TAG"; ip -n "$NS_D" link set "vd$TAG" up
run() { # NS_CLIENT SERVER_NS SERVER_IP [-R]: bits per second received
    ip netns exec "$2" iperf3 -s -1 -B "$3" -p 5301 >/dev/null &
    sp=$!
    # wait until the server listens (ss), then measure
    until ip netns exec "$2" ss -ltn | grep -q ":5301 "; do :; done
    # shellcheck disable=SC2086
    ip netns exec "$1" timeout $((SECS + 20)) iperf3 -c "$3" -p 5301 -t "$SECS" -J ${IPERF_ARGS:-} $4 \
        > "$XENSIM_DIR/run.json" || true
    wait $sp 2>/dev/null || true
    sed -n '/"sum_received"/,/}/s/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' "$XENSIM_DIR/run.json" | head -1
}
: > "$XENSIM_DIR/pairs"
for r in $(seq "$ROUNDS"); do
    for dir in up down; do
        f=""; [ $dir = down ] && f=-R
        pv=$(run "$NS_G" "$NS_D" 10.0.0.1 "$f")
        ve=$(run "$NS_G" "$NS_D" 10.9.0.1 "$f")
        echo "$dir ${pv:-0} ${ve:-0}" >> "$XENSIM_DIR/pairs"
    done
done
python3 - "$XENSIM_DIR/pairs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for d, name in (("up", "guest->dom0"), ("down", "dom0->guest")):
    pairs = [(float(p), float(v)) for k, p, v in rows if k == d]
    ratios = [p / v if v else 0 for p, v in pairs]
    print(f"{name}: pvio {statistics.median(p for p, _ in pairs) / 1e9:.2f} Gbit/s, "
          f"veth {statistics.median(v for _, v in pairs) / 1e9:.2f} Gbit/s, "
          f"ratio {statistics.median(ratios):.2f} (median of {len(pairs)}; pairs: "
          + ", ".join(f"{p / 1e9:.2f}/{v / 1e9:.2f}" for p, v in pairs) + ")")
PY
"$XENSIM" vif detach "$d" "$v" >/dev/null 2>&1 || true
