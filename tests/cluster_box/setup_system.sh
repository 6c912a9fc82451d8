#!/usr/bin/env bash
# System tools the cluster in a box needs (tests/cluster_box): ip (iproute2), iptables, unshare and
# setpriv (util-linux), wget (KubeRay's exec probes). Installs Debian/Ubuntu packages only if missing.
set -euo pipefail
if [ "$(uname -s)" != Linux ]; then
    echo "cluster box: needs Linux network namespaces; skipped on $(uname -s) (its tests are marked serving)"
    exit 0
fi
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
command -v setpriv >/dev/null && command -v unshare >/dev/null || need+=(util-linux)
command -v wget >/dev/null || need+=(wget)
if [ ${#need[@]} -eq 0 ]; then
    echo "cluster box: system tools present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    # Not fatal here: the box's tests fail with this same instruction, the rest of the suite still runs.
    echo "cluster box: missing ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
    exit 0
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
