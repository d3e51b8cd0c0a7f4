#!/bin/sh
# A domU process and a dom0 process exchange 1,000,000 requests over a 1-page
# and a 16-page ring, every payload verified by both (each exits non-zero on
# the first wrong byte, id or sequence number); the xenstore handshake, grant
# maps and event channels are the real ones of xensim.
# Needs: XENSIM, RINGPING (paths to the built tools).
set -eu
COUNT=${COUNT:-1000000}
XENSIM_DIR=$(mktemp -d /tmp/pvio-e2e.XXXXXX)
export XENSIM_DIR
trap '"$XENSIM" stop >/dev/null 2>&1; rm -rf "$XENSIM_DIR"' EXIT
"$XENSIM" start >/dev/null
dom=$("$XENSIM" domain create e2e-guest --memory 32)
for order in 0 4; do
    "$XENSIM" run 0 -- "$RINGPING" back --domain "$dom" --json > "$XENSIM_DIR/back.json" &
    back=$!
    "$XENSIM" run "$dom" -- "$RINGPING" front --count "$COUNT" --order "$order" --json > "$XENSIM_DIR/front.json"
    wait "$back"
    cat "$XENSIM_DIR/front.json" "$XENSIM_DIR/back.json"
    grep -q "\"verified\": $COUNT," "$XENSIM_DIR/front.json" || { echo "FAIL: front did not verify $COUNT"; exit 1; }
    grep -q "\"handled\": $COUNT, \"bad\": 0," "$XENSIM_DIR/back.json" || { echo "FAIL: back did not handle $COUNT cleanly"; exit 1; }
    grep -q "\"order\": $order," "$XENSIM_DIR/front.json" || exit 1
done
# the guest's grants were all ended and its xenstore dir removed
"$XENSIM" domain destroy "$dom" >/dev/null
echo "PASS: $COUNT requests verified over 1-page and 16-page rings"
