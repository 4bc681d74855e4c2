#!/usr/bin/env bash
# Installs the Debian packages that scripts/rgw/start.sh needs (a single-node Ceph RADOS Gateway).
# Safe to run on every CI run: it does nothing, and prints nothing, when they are already there.
set -euo pipefail

packages=(ceph-mon ceph-osd radosgw ceph-common)

# "install ok installed" only for a fully configured package: a half-installed one, or one
# removed with its configuration kept, must be installed again.
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "scripts/rgw/install.sh: ${missing[*]} not installed; run this script as root" >&2
  exit 1
fi

echo "scripts/rgw/install.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# apt's chatter (and debconf's) is shown only if something goes wrong.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Install the whole set, not only the missing ones, so that their versions stay in step.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "scripts/rgw/install.sh: installing ${packages[*]} failed" >&2
  exit 1
fi
