#!/usr/bin/env bash
# Host setup for test/lib/filters/ and test/lib/colo/: installs Debian's `tshark` (the Wireshark
# command-line reader), which the tests use to check filter-dump output and the TCP checksums of
# filter-rewriter's rewritten segments.
#
# Idempotent: when `tshark` is already on PATH it prints its version and does nothing. Installing
# needs root; without root it prints why and exits 1 (the tests then skip with that reason).
# What it changes: `apt-get update`, then
#   DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark
# (debconf is preseeded to NOT make dumpcap setuid: the tests only read files, never capture).
set -euo pipefail

log() { echo "setup-filter-tests: $*" >&2; }

if command -v tshark >/dev/null 2>&1; then
  log "tshark already installed: $(tshark --version 2>/dev/null | head -n1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "skipping: tshark is not installed and installing it needs root (run: sudo $0)"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "skipping: tshark is not installed and there is no apt-get to install it with"
  exit 1
fi
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
apt-get update -qq >&2
log "apt-get install tshark"
apt-get install -y -qq --no-install-recommends tshark >&2
log "installed: $(tshark --version 2>/dev/null | head -n1)"
