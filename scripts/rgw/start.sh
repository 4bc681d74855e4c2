#!/usr/bin/env bash
# Brings up a throw-away single-node Ceph cluster (one mon, one memstore OSD, one RADOS Gateway)
# on 127.0.0.1 with every file under DIR, so that several can run side by side and nothing
# touches /etc/ceph, /var/lib/ceph, /var/log/ceph or /run/ceph.
#
#   scripts/rgw/start.sh DIR [PORT]
#
# On an empty (or missing) DIR it makes a new cluster; on a DIR made by an earlier run it starts
# whichever daemons are not running, with the kept data (a warm restart, e.g. after
# `stop.sh DIR --rgw-only`). The S3 port is PORT, else the one DIR used before, else a free one.
# The last line on stdout is machine-readable:
#   RGW_READY endpoint=http://127.0.0.1:PORT access_key=K secret_key=S pids=MON,OSD,RGW dir=DIR
#
# Environment:
#   RGW_READY_TIMEOUT  seconds to wait for S3 to answer, from the start of this script (60)
#   RGW_OWNER_PID      when set, a watchdog kills the cluster once that process is gone, so a
#                      test runner that dies without cleaning up leaves no daemons behind
#   RGW_OWNER_TEMP     when 1, that watchdog also removes DIR (a temporary folder)
set -euo pipefail

usage() {
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
port_arg=${2:-}
if [ -n "$port_arg" ] && ! [[ "$port_arg" =~ ^[0-9]+$ && "$port_arg" -ge 1 && "$port_arg" -le 65535 ]]; then
  usage
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

missing=()
for c in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl ss setsid; do
  command -v "$c" >/dev/null || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "start.sh: missing ${missing[*]}; run scripts/rgw/install.sh (as root) first" >&2
  exit 3
fi

mkdir -p "$1"
DIR=$(cd "$1" && pwd)
rgw_paths "$DIR"
# Unix sockets are limited to 107 bytes; the longest one Ceph makes here is the RGW's admin socket.
if [ ${#RUN} -gt 70 ]; then
  echo "start.sh: $DIR is too long a path for Ceph's admin sockets; use a shorter one" >&2
  exit 2
fi

# Fixed credentials: the cluster is private to one test run on loopback.
ACCESS_KEY=DOCKDTESTACCESSKEY01
SECRET_KEY=dockd-test-secret-key-0000000000000000000
UID_NAME=dockd-test

timeout_s=${RGW_READY_TIMEOUT:-60}
deadline=$((SECONDS + timeout_s))

# Daemons started by this run; if the run fails they are killed, so that nothing is left
# running whose PID nobody was told.
started=()
kill_started() {
  local name
  for name in "${started[@]}"; do
    kill_daemon "$name" KILL
  done
  started=()
}
on_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] || kill_started
}
trap on_exit EXIT
# Also when whoever reads our output goes away (SIGPIPE) or we are interrupted.
trap 'kill_started; exit 1' INT TERM HUP PIPE

fail() {
  kill_started
  echo "start.sh: $*" >&2
  for f in "$LOGS"/mon.a.log "$LOGS"/osd.0.log "$LOGS"/client.rgw.a.log "$LOGS"/*.out; do
    [ -s "$f" ] || continue
    echo "--- last lines of $f" >&2
    tail -n 15 "$f" >&2
  done
  exit 1
}

pick_port() {
  local used p i
  # All TCP sockets, not only listeners: a port held by a connection can also refuse a bind.
  used=" $(ss -Htan | awk '{ n = split($4, a, ":"); printf "%s ", a[n] }') $* "
  # Below the kernel's ephemeral range (32768+) so outgoing connections do not take it meanwhile.
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ "$used" == *" $p "* ]] || { echo "$p"; return; }
  done
  fail "no free TCP port found"
}

write_conf() {
  local tmp=$CONF.tmp
  cat >"$tmp" <<CONF
# Written by scripts/rgw/start.sh on every start; edits are lost.
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
# Without it the OSD's cluster and heartbeat listeners bind to 0.0.0.0.
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# An empty keyring in DIR keeps clients from reading /etc/ceph with auth off.
keyring = $DIR/keyring
run dir = $RUN
crash dir = $DIR/crash
log file = $LOGS/\$name.log
mon cluster log file = $LOGS/cluster.log
mon data = $DIR/mon/\$name
osd data = $DIR/osd/\$name
rgw data = $DIR/rgw/\$name
# One OSD: single replicas, and few placement groups, since RGW makes about 8 pools and 32 PGs
# each would exceed what a single OSD accepts.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
# Every pool RGW creates lazily costs a paxos round; the default 1 s interval makes that ~2 s.
paxos propose interval = 0.02
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
# memstore writes its data to osd data only on a full shutdown; that is what survives a restart.
osd fast shutdown = false
# Left on, with auth off, these make a warm start exit on "wrong fsid"; osd.0 is placed by hand.
osd crush update on start = false
osd class update on start = false

[mon]
pid file = $RUN/\$name.pid
[osd]
pid file = $RUN/\$name.pid
[client.rgw.a]
pid file = $RUN/\$name.pid
# Without tcp_nodelay every small GET waits ~45 ms for delayed ACKs.
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
# The lifecycle thread sleeps 5 s at a time (at every start, since the previous run's lock is
# still held) and SIGTERM waits for it; bucket lifecycle rules are not exercised here.
rgw enable lc threads = false
CONF
  mv "$tmp" "$CONF"
}

# Starts a daemon that forks into the background and writes its pid file; its own stdout and
# stderr go to a file so that whoever runs this script is not kept waiting on a pipe.
start_daemon() {
  local name=$1
  shift
  "$@" -c "$CONF" </dev/null >>"$LOGS/$name.out" 2>&1 || fail "$1 failed to start"
  started+=("$name")
  local i
  for ((i = 0; i < 100; i++)); do
    daemon_pid "$name" >/dev/null && return
    sleep 0.05
  done
  fail "$name did not write its pid file"
}

http_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$RGW_PORT/" || true
}

mkdir -p "$RUN" "$LOGS" "$DIR/crash" "$DIR/mon" "$DIR/osd" "$DIR/rgw"
: >>"$DIR/keyring"

if [ -f "$STATE" ]; then
  [ -f "$DIR/initialized" ] ||
    fail "$DIR holds a cluster whose first start did not finish; remove the folder and start again"
  # shellcheck source=/dev/null
  . "$STATE"
  cold=false
else
  [ -z "$(find "$DIR/mon" "$DIR/osd" -mindepth 1 -print -quit)" ] || fail "$DIR has Ceph data but no $STATE"
  read -r FSID </proc/sys/kernel/random/uuid
  read -r OSD_UUID </proc/sys/kernel/random/uuid
  MON_PORT=$(pick_port)
  RGW_PORT=${port_arg:-$(pick_port "$MON_PORT")}
  # memstore only takes memory for what is stored; this is the capacity it reports.
  MEMSTORE_BYTES=$((2 * 1024 * 1024 * 1024))
  printf 'FSID=%s\nOSD_UUID=%s\nMON_PORT=%s\nRGW_PORT=%s\nMEMSTORE_BYTES=%s\n' \
    "$FSID" "$OSD_UUID" "$MON_PORT" "$RGW_PORT" "$MEMSTORE_BYTES" >"$STATE"
  cold=true
fi
if [ -n "$port_arg" ] && [ "$port_arg" != "$RGW_PORT" ]; then
  daemon_pid client.rgw.a >/dev/null && fail "radosgw is already running on port $RGW_PORT"
  RGW_PORT=$port_arg
  sed -i "s/^RGW_PORT=.*/RGW_PORT=$RGW_PORT/" "$STATE"
fi
if ! $cold && ! daemon_pid osd.0 >/dev/null && [ ! -f "$OSD_SAVED" ]; then
  fail "the OSD of $DIR was killed or crashed, and its memstore data went with it; remove the" \
    "folder and start afresh (a warm start needs stop.sh without --kill, or --rgw-only)"
fi
write_conf

if $cold; then
  monmaptool -c "$CONF" --create --fsid "$FSID" --addv a "[v1:127.0.0.1:$MON_PORT]" "$DIR/monmap" \
    >>"$LOGS/setup.out" 2>&1 || fail "monmaptool failed"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >>"$LOGS/setup.out" 2>&1 ||
    fail "ceph-mon --mkfs failed"
fi

daemon_pid mon.a >/dev/null || start_daemon mon.a ceph-mon -i a

if $cold; then
  # Both commands in one CLI process (it reads them from stdin), since each start of the Python
  # CLI costs ~0.4 s. In this mode it exits 0 even when a command fails, hence the "Error" check.
  # It also waits for the new mon to answer.
  osd_cmds="osd new $OSD_UUID
osd crush add osd.0 1.0 root=default host=localhost"
  # timeout: the CLI can block for ever without a mgr or a quorum.
  until osd_id=$(timeout 20 ceph -c "$CONF" --connect-timeout 15 <<<"$osd_cmds" 2>"$LOGS/osd-new.err") &&
    ! grep -q '^Error' "$LOGS/osd-new.err"; do
    cat "$LOGS/osd-new.err" >>"$LOGS/setup.out"
    [ $SECONDS -lt $deadline ] || fail "could not add the OSD to the mon within ${timeout_s}s"
    sleep 0.1
  done
  [ "$osd_id" = 0 ] || fail "expected osd id 0, the mon gave '$osd_id'"
  mkdir -p "$DIR/osd/osd.0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$LOGS/setup.out" 2>&1 ||
    fail "ceph-osd --mkfs failed"
fi

if ! daemon_pid osd.0 >/dev/null; then
  rm -f "$OSD_SAVED"
  start_daemon osd.0 ceph-osd -i 0
fi
daemon_pid client.rgw.a >/dev/null || start_daemon client.rgw.a radosgw -n client.rgw.a

# The port opens only once RGW has its pools and zone. Connecting with bash's /dev/tcp forks
# nothing, so polling it often is cheap; then an anonymous ListBuckets must answer 200.
until { : <>"/dev/tcp/127.0.0.1/$RGW_PORT"; } 2>/dev/null && [ "$(http_status)" = 200 ]; do
  for name in mon.a osd.0 client.rgw.a; do
    daemon_pid "$name" >/dev/null || fail "$name exited during start-up"
  done
  [ $SECONDS -lt $deadline ] || fail "S3 on port $RGW_PORT did not answer within ${timeout_s}s"
  sleep 0.05
done

if $cold; then
  # Not while radosgw starts: on two cores running both at once was slower than one after the other.
  timeout 30 radosgw-admin -c "$CONF" user create --uid="$UID_NAME" --display-name="$UID_NAME" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>>"$LOGS/setup.out" ||
    fail "radosgw-admin user create failed"
  touch "$DIR/initialized"
fi

if [ -n "${RGW_OWNER_PID:-}" ] && ! watchdog_pid >/dev/null; then
  # Its own session, so stop.sh can end it together with its sleep by process group.
  # shellcheck disable=SC2016 # expanded by the watchdog's shell
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
    rm -f "$2/run/watchdog.pid"
    bash "$3" "$2" --kill
    if [ "$4" = 1 ]; then rm -rf "$2"; fi' rgw-watchdog "$RGW_OWNER_PID" "$DIR" "$here/stop.sh" "${RGW_OWNER_TEMP:-0}" \
    </dev/null >>"$LOGS/watchdog.out" 2>&1 &
  echo $! >"$RUN/watchdog.pid"
fi

trap - EXIT
pids="$(daemon_pid mon.a),$(daemon_pid osd.0),$(daemon_pid client.rgw.a)"
echo "access_key=$ACCESS_KEY"
echo "secret_key=$SECRET_KEY"
echo "RGW_READY endpoint=http://127.0.0.1:$RGW_PORT access_key=$ACCESS_KEY secret_key=$SECRET_KEY pids=$pids dir=$DIR"
