#!/usr/bin/env bash
# Installs what the real-kernel netdev tests (test/lib/netdev, test/lib/netlink) use besides Node:
# iproute2 (ip, bridge), ethtool (checksum offload off on a veth), tshark (checks the checksums of
# offloaded frames), python3 (sends raw frames inside a namespace). Idempotent: installs only what
# is missing. Without root it installs nothing and says why (the tests then skip, saying why too).
set -euo pipefail

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v bridge >/dev/null 2>&1 || need+=(iproute2)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v python3 >/dev/null 2>&1 || need+=(python3)

if [ ${#need[@]} -eq 0 ]; then
  echo "setup-netdev-tests: everything is installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-netdev-tests: not root, cannot install: ${need[*]} (the host tests will skip)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-netdev-tests: no apt-get here; install by hand: ${need[*]}"
  exit 0
fi
# tshark asks whether non-root users may capture: answer no, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
echo "setup-netdev-tests: installed ${need[*]}"
