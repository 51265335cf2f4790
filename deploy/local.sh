#!/usr/bin/env bash
# deploy/local.sh — the ifp cluster on this machine: one ifp-router per
# router of the config (deploy/local.ini has two, r1 and r2: every group
# serves both) and one mpirun job per [group NAME] section (P = its
# `stages`), all in the background under a supervisor that restarts
# whatever dies, and any group the routers do not see alive.  It is
# deploy/cluster.sh with deploy/local.ini by default (every host of which is
# localhost); see there for the environment it reads.
#
# usage: deploy/local.sh start|stop|status|restart [CONFIG]   (default deploy/local.ini)
# start makes the CURVE keys that are missing (ifp keygen --config), then runs
# `ifp-router --check-config CONFIG` and launches nothing if the config or its
# model files are wrong.  status exits 0 only when every process runs, every
# router answers, and the first that answers sees every group alive.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
-h | --help | help | "") sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ -n "${1:-}" ]] || exit 2; exit 0 ;;
esac
IFP_LAUNCHER=deploy/local.sh exec "$here/cluster.sh" "$1" "${2:-$here/local.ini}"
