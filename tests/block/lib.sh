# Shared setup for the block-path end-to-end tests (sourced).
# Needs XENSIM, TAPBACK, TAPCTL, PVBLK (paths to the built programs).
set -eu
fail() { echo "FAIL: $*" >&2; [ -f "$XENSIM_DIR/tapback.log" ] && tail -20 "$XENSIM_DIR/tapback.log" >&2; exit 1; }
XENSIM_DIR=$(mktemp -d /tmp/pvio-blk.XXXXXX)
export XENSIM_DIR
ENGINE=${ENGINE:-io_uring}
tapback_pid=""
cleanup() {
    [ -n "$tapback_pid" ] && kill "$tapback_pid" 2>/dev/null && wait "$tapback_pid" 2>/dev/null
    "$XENSIM" stop >/dev/null 2>&1 || true
    rm -rf "$XENSIM_DIR"
}
trap cleanup EXIT
"$XENSIM" start >/dev/null
XENSTORED_PATH=$XENSIM_DIR/xenstored/socket
export XENSTORED_PATH

start_tapback() {
    "$XENSIM" run 0 -- "$TAPBACK" --engine "$ENGINE" --log "$XENSIM_DIR/tapback.log" &
    tapback_pid=$!
}
# start_tapback_args: pvio-tapback (engine $ENGINE, no NBD) that starts, in
# tapdisk's place, a wrapper adding the options written to $args (read at
# each tapdisk start, so a test changes them between attaches). Needs TAPDISK.
start_tapback_args() {
    args=$XENSIM_DIR/tapdisk-args
    : > "$args"
    wrap=$XENSIM_DIR/tapdisk-wrap
    cat > "$wrap" <<WRAP
#!/bin/sh
exec "$TAPDISK" "\$@" \$(cat "$args")
WRAP
    chmod +x "$wrap"
    "$XENSIM" run 0 -- "$TAPBACK" --engine "$ENGINE" --tapdisk "$wrap" --no-nbd \
        --log "$XENSIM_DIR/tapback.log" &
    tapback_pid=$!
}
# Flat JSON read with grep (python3 starts too slowly on a busy machine to
# be called dozens of times):
# jf JSON KEY: a top-level scalar of pvblk's one-line JSON
jf() { printf '%s\n' "$1" | grep -o "\"$2\": [^,}]*" | head -n 1 | sed 's/^[^:]*: //'; }
# tstat [OBJECT] KEY: a number from tapctl stats of device $devid of $dom
tstat() {
    if [ $# = 2 ]; then
        "$TAPCTL" stats "$dom" "$devid" | grep -o "\"$1\":{[^}]*}" | head -n 1 | grep -o "\"$2\":[0-9]*" | cut -d: -f2
    else
        "$TAPCTL" stats "$dom" "$devid" | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2
    fi
}
# next_vdev: the next of xvda, xvdb, ... (counter $n, start it at 0) in
# $vdev and its devid in $devid, so each case of a test gets a fresh device
next_vdev() {
    vdev=xvd$(printf "\\$(printf %o $((97 + n)))")
    devid=$((51712 + 16 * n))
    n=$((n + 1))
}
# guest DOMID CMD...: run a command as a process of DOMID
guest() { d=$1; shift; "$XENSIM" run "$d" -- "$@"; }
# json_field JSON KEY: a top-level number from a JSON object
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# dom_usage DOMID FIELD: grant_pins / maps_held / ports_bound of a domain
dom_usage() {
    "$XENSIM" domain list --json | python3 -c '
import json,sys
for d in json.load(sys.stdin):
    if d["id"] == int(sys.argv[1]): print(d[sys.argv[2]])' "$1" "$2"
}
# tapdisk_pids: pids of running tapdisks of this host
tapdisk_pids() { "$TAPCTL" --json list 2>/dev/null | python3 -c '
import json,sys
try: print(" ".join(str(t["pid"]) for t in json.load(sys.stdin)))
except Exception: pass'; }
# wait_pid_gone PID SECONDS: wait (on a pidfd) until PID has exited.
wait_pid_gone() { python3 - "$1" "$2" <<'PY'
import os, select, sys
try:
    fd = os.pidfd_open(int(sys.argv[1]))
except ProcessLookupError:
    sys.exit(0)
r, _, _ = select.select([fd], [], [], float(sys.argv[2]))
sys.exit(0 if r else 1)
PY
}
