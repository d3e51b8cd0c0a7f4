#!/bin/sh
# Registered in -Dxen=system builds in place of tests that need xensim.
echo "SKIP: $* (this build links the real Xen libraries; run the sim build for it)"
exit 77
