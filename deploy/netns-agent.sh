#!/bin/sh
# deploy/netns-agent.sh HOST COMMAND... — the launch agent for "hosts" that
# are network namespaces on this machine (deploy/netns.sh): runs COMMAND in
# namespace HOST, as `ssh HOST COMMAND...` would on a real host: through a
# shell (mpirun passes its remote daemon's command line as words of one
# shell command), with a hostname of its own (a UTS namespace named HOST, so
# that MPI sees distinct nodes).  Use it as `[deploy] agent`.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 HOST COMMAND..." >&2; exit 2; }
host="$1"
shift
case "$host" in
*[!A-Za-z0-9_.-]* | "") echo "$0: bad namespace name '$host'" >&2; exit 2 ;;
esac
ip netns list | grep -qw -- "$host" || { echo "$0: no network namespace '$host' (deploy/netns.sh up)" >&2; exit 255; }
# what a real remote shell would not inherit from this one: the launcher's
# wildcard-bind shim is set for this host's address, not the namespace's
unset LD_PRELOAD IFP_BIND_IPV4 IFP_BIND_IPV6
exec ip netns exec "$host" unshare --uts sh -c 'hostname "$0" && eval "$*"' "$host" "$@"
