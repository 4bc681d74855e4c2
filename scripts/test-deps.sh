#!/usr/bin/env bash
# Installs, from Debian's packages, everything `npm test` drives for real besides Node.js:
# age (interop), systemd-analyze (the unit), Chromium (the report), QEMU and the guest's tools
# (real-kernel USB tests) and a single-node Ceph RGW (replication). Run it once as root on a
# fresh machine; .ci/run runs it on every CI run. It does nothing when all of it is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test-deps.sh: run as root (it installs Debian packages with apt-get)" >&2
  exit 1
fi

need=()
command -v age >/dev/null || need+=(age)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v chromium >/dev/null || need+=(chromium)
command -v sha256sum >/dev/null || need+=(coreutils)
# The guest's kernel and udev are downloaded as .debs by scripts/vm/build-guest.sh, not installed.
# e2fsprogs: mkfs.ext4 makes the power-cut test's data disk.
for p in qemu-system-x86 busybox-static kmod xz-utils mtools dosfstools fdisk e2fsprogs; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "scripts/test-deps.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash scripts/rgw/install.sh
