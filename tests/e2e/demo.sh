#!/bin/sh
# The README's demo runs to the end, verifies its workload and reports IOPS.
set -eu
out=$("$DEMO" --ios 500 --size 64)
echo "$out"
echo "$out" | grep -q "pvio demo: every byte the guest read back was verified."
echo "$out" | grep -q "verify: 500 I/Os over .*: all data verified (.* IOPS"
echo "$out" | grep -Eq "randread bs=4096 qd=32: [0-9]+ I/Os in .* IOPS"
