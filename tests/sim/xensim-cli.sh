#!/bin/sh
# The xensim CLI: lifecycle, domains, run, xenstore side effects, errors.
set -u
fail() { echo "FAIL: $*"; exit 1; }
XENSIM_DIR=$(mktemp -d /tmp/pvio-cli.XXXXXX)
export XENSIM_DIR
trap '"$XENSIM" stop >/dev/null 2>&1; rm -rf "$XENSIM_DIR"' EXIT
X=$XENSIM

for c in "" start stop status "domain" "domain create" "domain destroy" "domain list" run; do
    # shellcheck disable=SC2086
    $X $c --help >/dev/null || fail "'xensim $c --help' failed"
done
$X status >/dev/null && fail "status says running before start"
out=$($X start) || fail "start"
echo "$out" | grep -q "^XENSTORED_PATH=$XENSIM_DIR/xenstored/socket$" || fail "start did not print XENSTORED_PATH"
$X status | grep -q '^XENSTORED_PATH=' || fail "status did not print XENSTORED_PATH"
$X start >/dev/null 2>&1 || fail "a second start should say it is running and succeed"
XENSTORED_PATH=$XENSIM_DIR/xenstored/socket
export XENSTORED_PATH
[ "$(xenstore-read /local/domain/0/name)" = Domain-0 ] || fail "dom0 name"

d1=$($X domain create alpha --memory 8) || fail "create alpha"
d2=$($X domain create beta) || fail "create beta"
[ "$d1" != "$d2" ] || fail "domain ids must differ"
$X domain create alpha >/dev/null 2>&1 && fail "a duplicate name must be refused"
$X domain create gamma --memory 0 >/dev/null 2>&1 && fail "--memory 0 must be refused"
$X domain list | grep -q "^$d1 *alpha *8 " || fail "list shows alpha with 8 MiB"
$X domain list --json | grep -q "\"name\": \"beta\"" || fail "list --json"
[ "$(xenstore-read /local/domain/$d1/name)" = alpha ] || fail "xenstore name of alpha"

# run: the process sees its domain, and its xenstore connection is that domain's
[ "$($X run "$d1" -- sh -c 'echo $XENSIM_DOMID')" = "$d1" ] || fail "run sets XENSIM_DOMID"
$X run "$d1" -- xenstore-write data/hello world || fail "domU writes its own data dir (relative path)"
[ "$(xenstore-read /local/domain/$d1/data/hello)" = world ] || fail "dom0 reads what the domU wrote"
$X run "$d2" -- xenstore-read /local/domain/$d1/data/hello >/dev/null 2>&1 && fail "beta must not read alpha's data"
$X run "$d2" -- xenstore-write /local/domain/$d1/data/x y >/dev/null 2>&1 && fail "beta must not write alpha's data"
$X run 4242 -- true >/dev/null 2>&1 && fail "run in a missing domain must fail"
$X run "$d1" >/dev/null 2>&1 && fail "run without a command must fail"

$X domain destroy "$d1" | grep -q destroyed || fail "destroy"
xenstore-read /local/domain/$d1/name >/dev/null 2>&1 && fail "destroy must remove the xenstore tree"
$X domain list | grep -q alpha && fail "alpha still listed"
$X domain destroy "$d1" >/dev/null 2>&1 && fail "destroying twice must fail"
$X domain destroy 0 >/dev/null 2>&1 && fail "dom0 cannot be destroyed"
$X stop | grep -q stopped || fail "stop"
$X status >/dev/null && fail "status says running after stop"
[ -e "$XENSIM_DIR/xensimd.sock" ] && fail "socket left behind"
echo PASS
