#!/bin/sh
# Installs QEMU (Debian's qemu-system-x86) so test/oracle/ can use it as a reference oracle for
# virtio-net control-queue behaviour. Idempotent: does nothing when qemu-system-x86_64 is present.
# Needs root (it runs apt-get); otherwise says why and exits non-zero.
set -eu

if command -v qemu-system-x86_64 >/dev/null 2>&1; then
  echo "setup-qemu: already installed: $(qemu-system-x86_64 --version | head -n 1)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-qemu: qemu-system-x86_64 is not installed and installing it needs root (apt-get);" >&2
  echo "setup-qemu: re-run as root, or install the Debian package qemu-system-x86 yourself." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends qemu-system-x86
echo "setup-qemu: installed: $(qemu-system-x86_64 --version | head -n 1)"
