#!/bin/sh
# Two guests, each vif's dom0 TAP on one Linux bridge in the dom0
# namespace: the guests reach each other (ping both ways, 56 and 1472 bytes).
. "$(dirname "$0")/lib.sh"
new_ns "g2$TAG"
br=br$TAG
ip -n "$NS_D" link add "$br" type bridge
ip -n "$NS_D" link set "$br" up
n=1
for ns in "$NS_G" "g2$TAG"; do
    d=$("$XENSIM" domain create "net-guest$n" --memory 64)
    v=$("$XENSIM" vif attach "$d" --mac "00:16:3e:00:02:0$n" --bridge "$br")
    start_netback "$d" "$v" "nb$n$TAG"
    start_pvnet "$d" "$ns" eth0 >/dev/null || fail "pvnet $n"
    ip link set "nb$n$TAG" netns "$NS_D"
    ip -n "$NS_D" link set "nb$n$TAG" master "$br" up
    ip -n "$ns" addr add "10.0.1.$n/24" dev eth0; ip -n "$ns" link set eth0 up
    n=$((n + 1))
done
ip netns exec "$NS_G" ping -q -c 3 -i 0.2 -W 3 10.0.1.2 >/dev/null || fail "guest1 -> guest2"
ip netns exec "g2$TAG" ping -q -c 3 -i 0.2 -W 3 -s 1472 10.0.1.1 >/dev/null || fail "guest2 -> guest1"
echo PASS
