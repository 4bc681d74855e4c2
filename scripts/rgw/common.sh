# shellcheck shell=bash
# Shared by start.sh and stop.sh (sourced, not run).

# Every path of a cluster lives under its folder.
# shellcheck disable=SC2034 # used by the scripts that source this
rgw_paths() {
  CONF=$1/ceph.conf
  # Present while the OSD's memstore data on disk is current: memstore writes it only when the
  # OSD exits on SIGTERM, and a killed OSD comes back empty (so RGW would wait for ever).
  OSD_SAVED=$1/osd/saved
  RUN=$1/run
  LOGS=$1/log
  STATE=$1/cluster.env
}

# live_pid_of PID ARG: prints PID if that process is alive and has ARG as a whole argument (this
# cluster's ceph.conf or folder): a stale pid file whose number the kernel has since given to
# another process must never lead to killing that one. Zombies count as gone, since nothing may
# reap a daemon that was re-parented to init.
live_pid_of() {
  # Only builtins: a fork costs tens of milliseconds on small VMs and this runs in polling loops.
  local pid=$1 arg=$2 stat args
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
  # The state follows the command name, which is in parentheses and may hold spaces.
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  mapfile -d "" args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  # Spaces around it so that /a/x does not match /b/a/x or /a/xy.
  [[ " ${args[*]} " == *" $arg "* ]] || return 1
  echo "$pid"
}

# daemon_pid NAME: the PID of the running daemon NAME (mon.a, osd.0, client.rgw.a), or fails.
daemon_pid() {
  local pid
  read -r pid 2>/dev/null <"$RUN/$1.pid" || return 1
  live_pid_of "$pid" "$CONF"
}

watchdog_pid() {
  local pid
  read -r pid 2>/dev/null <"$RUN/watchdog.pid" || return 1
  live_pid_of "$pid" "${RUN%/run}"
}

# kill_daemon NAME SIGNAL [SECONDS]: signals the daemon and waits for it to exit; if it has not
# exited after SECONDS (30), it is killed. Sets STOPPED_CLEANLY to whether it was running and
# exited on SIGTERM.
kill_daemon() {
  local name=$1 sig=$2 wait_s=${3:-30} pid i
  # shellcheck disable=SC2034 # read by stop.sh
  STOPPED_CLEANLY=false
  pid=$(daemon_pid "$name") || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < wait_s * 20; i++)); do
    live_pid_of "$pid" "$CONF" >/dev/null || break
    sleep 0.05
  done
  if live_pid_of "$pid" "$CONF" >/dev/null; then
    echo "rgw: $name (pid $pid) did not exit on SIG$sig within ${wait_s}s; killing it" >&2
    kill -s KILL "$pid" 2>/dev/null || true
    while live_pid_of "$pid" "$CONF" >/dev/null; do sleep 0.05; done
  elif [ "$sig" = TERM ]; then
    STOPPED_CLEANLY=true
  fi
  # A killed daemon leaves its pid file behind.
  rm -f "$RUN/$name.pid"
}
