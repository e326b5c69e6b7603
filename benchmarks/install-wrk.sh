#!/usr/bin/env bash
# wrk (Debian's package) generates the HTTP load for the proxy benchmarks.
# Quiet and quick when it is already there; installs it when running as root.
set -euo pipefail

command -v wrk >/dev/null && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-wrk: wrk is missing; install it as root: apt-get install -y wrk" >&2
  exit 1
fi
echo "install-wrk: installing wrk"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends wrk >/dev/null
