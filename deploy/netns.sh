#!/usr/bin/env bash
# deploy/netns.sh up|down|status [N] — N "hosts" on this machine, for trying
# and testing multi-host deployments without more machines: network
# namespaces ifp-h1..ifp-hN (N default 4), each with its own address
# 10.77.0.(10+i)/24 on a veth pair joined to the bridge ifp-br0, which has
# 10.77.0.1 in the default namespace (so mpirun, clients and tests here reach
# every host).  Nothing is routed beyond the bridge: traffic stays between
# these namespaces.  Processes run in a host with deploy/netns-agent.sh
# (`[deploy] agent`), as ssh would run them on a real one.  Needs root and
# iproute2.  `down` kills what still runs in the namespaces and removes them.
#
#   deploy/netns.sh up 4      # ifp-h1..ifp-h4 = 10.77.0.11..14
#   deploy/netns.sh status    # the hosts, their addresses and links
#   deploy/netns.sh down
# Environment: IFP_NETNS_PREFIX (default ifp-h), IFP_NETNS_BRIDGE (ifp-br0),
# IFP_NETNS_SUBNET (first three octets, default 10.77.0).
set -euo pipefail

prefix="${IFP_NETNS_PREFIX:-ifp-h}"
bridge="${IFP_NETNS_BRIDGE:-ifp-br0}"
subnet="${IFP_NETNS_SUBNET:-10.77.0}"

die() { printf 'deploy/netns.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

hosts() { ip netns list 2>/dev/null | awk -v p="$prefix" 'index($1, p) == 1 { print $1 }' | sort -V; }

# can_run: root, iproute2, and the kernel lets us make a namespace
can_run() {
    ((EUID == 0)) || { echo "needs root (network namespaces)"; return 1; }
    command -v ip >/dev/null || { echo "ip (iproute2) not found"; return 1; }
    command -v unshare >/dev/null || { echo "unshare (util-linux) not found"; return 1; }
    local probe="${prefix}probe$$"
    if ! ip netns add "$probe" 2>/dev/null; then echo "cannot create network namespaces here"; return 1; fi
    ip netns del "$probe"
    if ! ip link add "${bridge}p$$" type bridge 2>/dev/null; then echo "cannot create a bridge here"; return 1; fi
    ip link del "${bridge}p$$"
}

up() {
    local n="$1" i ns veth why
    why="$(can_run)" || die "$why"
    down >/dev/null
    ip link add "$bridge" type bridge
    ip addr add "$subnet.1/24" dev "$bridge"
    ip link set "$bridge" up
    for ((i = 1; i <= n; i++)); do
        ns="$prefix$i" veth="${prefix}v$i"
        ip netns add "$ns"
        ip link add "$veth" type veth peer name eth0 netns "$ns"
        ip link set "$veth" master "$bridge" up
        ip -n "$ns" addr add "$subnet.$((10 + i))/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
    done
    status
}

down() {
    local ns pids i
    for ns in $(hosts); do
        for i in 1 2 3; do
            pids="$(ip netns pids "$ns" 2>/dev/null || true)"
            [[ -z "$pids" ]] && break
            # shellcheck disable=SC2086 # one pid per word
            kill -KILL $pids 2>/dev/null || true
            sleep 0.2
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    for veth in $(ip -o link show 2>/dev/null | awk -F': ' -v p="${prefix}v" 'index($2, p) == 1 { sub(/@.*/, "", $2); print $2 }'); do
        ip link del "$veth" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
    echo "netns: removed"
}

status() {
    local ns addr state
    if ! ip link show "$bridge" >/dev/null 2>&1; then echo "netns: down (no bridge $bridge)"; return 1; fi
    printf '%-12s %-16s %s\n' "host" "address" "link"
    printf '%-12s %-16s %s\n' "(default)" "$subnet.1" "$(ip -br link show "$bridge" | awk '{ print $2 }')"
    for ns in $(hosts); do
        addr="$(ip -n "$ns" -4 -br addr show eth0 2>/dev/null | awk '{ print $3 }')"
        state="$(ip -br link show "${prefix}v${ns#"$prefix"}" 2>/dev/null | awk '{ print $2 }')"
        printf '%-12s %-16s %s\n' "$ns" "${addr%/*}" "${state:-?}"
    done
}

case "${1:-}" in
up) n="${2:-4}"; [[ "$n" =~ ^[1-9][0-9]?$ ]] && ((n <= 200)) || die "N: 1..200, got '$n'"; up "$n" ;;
down) down ;;
status) status ;;
check) if why="$(can_run)"; then echo "ok"; else echo "$why"; exit 1; fi ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
