#!/bin/sh
# pvio demo: a simulated Xen host, one guest, and requests that travel from the
# guest's frontend to a dom0 backend over a shared ring in granted pages,
# signalled by an event channel, after a xenstore handshake — every payload
# verified at both ends.
set -eu

usage() {
    cat <<USAGE
Usage: pvio-demo [--count N] [--keep]
Start a private xensim, create a domU, exchange N verified requests (default
200000) between a frontend in the domU and a backend in dom0 over a 1-page
and then a 16-page shared ring, show the xenstore the handshake used, then
destroy the domain and stop xensim (--keep leaves it running).
USAGE
}

count=200000 keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --count) count=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --help|-h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
pick() { # binary name, path in a build tree
    if [ -x "$here/$2" ]; then echo "$here/$2"; elif command -v "$1" >/dev/null; then command -v "$1";
    else echo "pvio-demo: cannot find $1" >&2; exit 1; fi
}
xensim=$(pick xensim ../sim/xensim)
ringping=$(pick pvio-ringping pvio-ringping)

XENSIM_DIR=$(mktemp -d /tmp/pvio-demo.XXXXXX)
export XENSIM_DIR
cleanup() {
    if [ "$keep" = 0 ]; then
        "$xensim" stop >/dev/null 2>&1 || true
        rm -rf "$XENSIM_DIR"
    fi
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }

step "1. Start the simulated Xen host (hypervisor + xenstored) in $XENSIM_DIR"
"$xensim" start

step "2. Create a guest domain (what 'xl create' does: memory, grant table, xenstore home)"
dom=$("$xensim" domain create demo-guest --memory 64)
"$xensim" domain list
echo "(its xenstore home, as dom0 sees it:)"
XENSTORED_PATH=$XENSIM_DIR/xenstored/socket xenstore-ls -p "/local/domain/$dom" 2>/dev/null || \
    echo "(xenstore-ls not installed)"

for order in 0 4; do
    pages=$((1 << order))
    step "3. A $pages-page ring: dom0 backend waits; the guest's frontend grants the ring, offers an event channel, publishes them in xenstore and sends $count requests"
    "$xensim" run 0 -- "$ringping" back --domain "$dom" > "$XENSIM_DIR/back.out" 2>&1 &
    back=$!
    "$xensim" run "$dom" -- "$ringping" front --count "$count" --order "$order"
    wait "$back" || { cat "$XENSIM_DIR/back.out"; echo "pvio-demo: the backend failed" >&2; exit 1; }
    cat "$XENSIM_DIR/back.out"
done

step "4. Destroy the guest (its event channels close, its grants can no longer be mapped) and stop"
"$xensim" domain destroy "$dom"
if [ "$keep" = 0 ]; then "$xensim" stop; else echo "xensim left running: export XENSIM_DIR=$XENSIM_DIR"; fi
printf '\npvio demo: every request and response was verified.\n'
