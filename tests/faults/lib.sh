# Shared setup for the fault tests (sourced): the block-path test host from
# tests/block/lib.sh, plus a tapback whose tapdisks run the faulty engine.
# Needs XENSIM, TAPBACK, TAPCTL, PVBLK, TAPDISK.
. "$(dirname "$0")/../block/lib.sh"
# python3 is the one meson runs with ($PYTHON, from meson.build) when
# given: the first python3 on PATH may be a slow wrapper (pyenv's shims take
# a second or more to start), and these tests call it many times.
if [ -n "${PYTHON:-}" ] && [ -x "$PYTHON" ]; then
    mkdir -p "$XENSIM_DIR/bin"
    ln -sf "$PYTHON" "$XENSIM_DIR/bin/python3"
    PATH=$XENSIM_DIR/bin:$PATH
    export PATH
fi

# start_faulty_tapback SPEC: tapdisks run --engine faulty:io_uring:SPEC
# (tapback only passes io_uring/libaio, so a wrapper adds the engine).
start_faulty_tapback() {
    w=$XENSIM_DIR/tapdisk-faulty
    printf '#!/bin/sh\nexec "%s" --engine "faulty:io_uring:%s" --log "%s" "$@"\n' \
        "$TAPDISK" "$1" "$XENSIM_DIR/tapdisk.log" > "$w"
    chmod +x "$w"
    "$XENSIM" run 0 -- "$TAPBACK" --tapdisk "$w" --log "$XENSIM_DIR/tapback.log" &
    tapback_pid=$!
}
# g DOMID CMD...: a guest command that must finish within 60 s (a hang fails)
g() {
    d=$1; shift
    timeout 60 "$XENSIM" run "$d" -- "$@"
    rc=$?
    [ $rc = 124 ] && fail "guest command hung: $*"
    return $rc
}
