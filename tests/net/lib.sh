# Shared setup for the network-path tests (sourced). Needs XENSIM, NETBACK,
# PVNET. Every namespace, TAP and bridge is named with this shell's pid so
# tests can run in parallel, and removed on exit, also on failure.
set -eu
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, TAP devices)"; exit 77; }
for t in ip ping; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
TAG=$(( $$ % 100000 ))
NS_G=guest$TAG; NS_D=dom0$TAG
ip netns add "$NS_D" 2>/dev/null || { echo "SKIP: cannot create network namespaces here"; exit 77; }
XENSIM_DIR=$(mktemp -d /tmp/pvio-net.XXXXXX)
export XENSIM_DIR
pids=""; nss="$NS_D"; links=""; tmpfiles=""
fail() {
    echo "FAIL: $*" >&2
    for f in "$XENSIM_DIR"/nb*.log; do [ -f "$f" ] && tail -20 "$f" >&2; done
    exit 1
}
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    for l in $links; do ip link del "$l" 2>/dev/null || true; done
    for n in $nss; do ip netns del "$n" 2>/dev/null || true; done
    "$XENSIM" stop >/dev/null 2>&1 || true
    for f in $tmpfiles; do rm -f "$f"; done
    rm -rf "$XENSIM_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
"$XENSIM" start >/dev/null
XENSTORED_PATH=$XENSIM_DIR/xenstored/socket
export XENSTORED_PATH

# new_ns NAME: a namespace cleaned up on exit, with lo up
new_ns() { ip netns add "$1"; nss="$nss $1"; ip -n "$1" link set lo up; }
new_ns "$NS_G"; ip -n "$NS_D" link set lo up

# start_netback DOMID DEVID TAP [ARGS]: netback for a vif, TAP in the root ns
start_netback() {
    d=$1; v=$2; t=$3; shift 3
    "$XENSIM" run 0 -- "$NETBACK" --backend "/local/domain/0/backend/vif/$d/$v" --tap "$t" \
        --log "$XENSIM_DIR/nb$d.$v.log" --stats "$XENSIM_DIR/nb$d.$v.json" "$@" &
    pids="$pids $!"; links="$links $t"
}
# start_pvnet DOMID NS TAP [ARGS]: pvnet in NS; returns once it is connected
# (it prints one line then; we read it from a FIFO, no sleeping).
start_pvnet() {
    d=$1; ns=$2; t=$3; shift 3
    fifo=$XENSIM_DIR/pvnet.$d.$t
    mkfifo "$fifo"
    "$XENSIM" run "$d" -- ip netns exec "$ns" "$PVNET" --tap "$t" "$@" > "$fifo" &
    pids="$pids $!"
    exec 9< "$fifo"
    read -r line <&9 || fail "pvnet in domain $d did not connect"
    exec 9<&-
    echo "$line"
}
# start_iperf_server NS IP [PORT]: an iperf3 server in NS on IP:PORT (default
# 5201); returns once it listens. It prints "Server listening" then; a reader
# passes that on through a second FIFO (no sleeping) and keeps draining its
# output into $XENSIM_DIR/iperf-s.PORT.log.
start_iperf_server() {
    _f=$XENSIM_DIR/iperf-s.${3:-5201}; mkfifo "$_f.fifo" "$_f.ready"
    ip netns exec "$1" iperf3 -s -B "$2" -p "${3:-5201}" --forceflush > "$_f.fifo" 2>&1 &
    pids="$pids $!"
    {
        while read -r line; do
            echo "$line" >> "$_f.log"
            case $line in *"Server listening"*) echo ready > "$_f.ready"; break ;; esac
        done
        cat >> "$_f.log"
    } < "$_f.fifo" &
    pids="$pids $!"
    read -r _ < "$_f.ready" || fail "iperf3 server did not start"
}
# stat_of DOMID DEVID KEY: a number from netback's stats file (final after
# exit); netback writes it as one line of "key": value pairs, so sed reads
# it (a python start per counter cost seconds)
stat_of() { sed -n "s/.*\"$3\": \([0-9]*\).*/\1/p" "$XENSIM_DIR/nb$1.$2.json"; }
