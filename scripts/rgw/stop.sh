#!/usr/bin/env bash
# Stops a cluster started by start.sh DIR, by the PIDs in DIR/run.
#
#   scripts/rgw/stop.sh DIR [--rgw-only] [--kill]
#
# Order is radosgw, then the OSD, then the mon, each waited for, since the OSD reports its
# shutdown to the mon. With SIGTERM (the default) the memstore OSD saves its data under DIR and
# `start.sh DIR` brings the same objects back; --kill (SIGKILL) loses the OSD's data, so after a
# full `--kill` the folder can only be removed. --rgw-only stops radosgw alone: the store goes
# away under a client and `start.sh DIR` brings it back.
set -euo pipefail

usage() {
  echo "usage: $0 DIR [--rgw-only] [--kill]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
dir_arg=$1
shift
sig=TERM
rgw_only=false
for a in "$@"; do
  case $a in
    --kill) sig=KILL ;;
    --rgw-only) rgw_only=true ;;
    *) usage ;;
  esac
done

# A folder that was never started (or is already gone) has nothing to stop.
[ -d "$dir_arg" ] || exit 0
DIR=$(cd "$dir_arg" && pwd)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
rgw_paths "$DIR"

if ! $rgw_only; then
  # First, so it does not race this script to stop the daemons.
  if wpid=$(watchdog_pid); then
    kill -s TERM -- "-$wpid" 2>/dev/null || true
  fi
  rm -f "$RUN/watchdog.pid"
fi

kill_daemon client.rgw.a "$sig"
$rgw_only && exit 0
kill_daemon osd.0 "$sig"
if $STOPPED_CLEANLY; then touch "$OSD_SAVED"; fi
kill_daemon mon.a "$sig"
