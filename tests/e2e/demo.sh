#!/bin/sh
# The README's demo runs to the end and says everything was verified.
set -eu
out=$("$DEMO" --count 20000)
echo "$out"
echo "$out" | grep -q "pvio demo: every request and response was verified."
[ "$(echo "$out" | grep -c '20000 responses verified')" = 2 ]
