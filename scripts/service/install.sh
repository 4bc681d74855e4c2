#!/bin/sh
# Installs dockd on a dock PC as a systemd service, or upgrades it in place; --uninstall removes
# it again. Safe to run any number of times: a run that finds everything as wanted changes
# nothing and says so.
#
#   /opt/dockd/                         the built app (bin/, dist/, production node_modules)
#   /etc/dockd/dockd.json               config, written only when absent (root:dockd 0640)
#   /var/lib/dockd/                     data dir: dockd.db, archive/, keys/ (dockd:dockd 0750)
#   /etc/systemd/system/dockd.service   the unit (from scripts/service/dockd.service)
#   /etc/udev/rules.d/70-dockd.rules    USB access for group dockd
#
# Run it from a clone where `npm install` has built the app. --root DIR stages everything
# below DIR instead (like DESTDIR): no user is created, nothing is chowned, and neither
# systemctl nor udevadm is called; the paths inside the files stay the runtime ones.
#
# POSIX sh, with the GNU coreutils and findutils of a Debian system (stat -c, find -printf).
set -eu

usage() {
  cat <<'EOF'
usage: install.sh [--root DIR] [--prefix DIR] [--node PATH] [--uninstall]

  --root DIR     stage into DIR instead of / (no users, ownership, systemctl or udevadm)
  --prefix DIR   where the app lives at run time (default /opt/dockd)
  --node PATH    node binary for the unit's ExecStart (default /usr/bin/node, else `command -v node`)
  --uninstall    stop and remove the service, the udev rule and the app; keeps config and data
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
SRC=$(CDPATH='' cd -- "$SCRIPT_DIR/../.." && pwd)
ROOT=''
PREFIX=/opt/dockd
NODE=''
ACTION=install

while [ $# -gt 0 ]; do
  case $1 in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#--root=}; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --node) [ $# -ge 2 ] || die "--node needs a path"; NODE=$2; shift 2 ;;
    --node=*) NODE=${1#--node=}; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

# Paths end up unquoted in ExecStart= and in sed replacements; keep them plain.
plain_path() {
  case $1 in
    /*) ;;
    *) die "$2 must be an absolute path, got '$1'" ;;
  esac
  if printf '%s' "$1" | grep -q '[^A-Za-z0-9._/+-]'; then
    die "$2 may hold only letters, digits and . _ / + -, got '$1'"
  fi
}

plain_path "$PREFIX" --prefix
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "--prefix must not be /"

if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT"
  ROOT=$(CDPATH='' cd -- "$ROOT" && pwd)
  [ "$ROOT" = / ] && ROOT=''
fi

APP=$ROOT$PREFIX
CONF_DIR=$ROOT/etc/dockd
CONF=$CONF_DIR/dockd.json
DATA=$ROOT/var/lib/dockd
UNIT=$ROOT/etc/systemd/system/dockd.service
RULES=$ROOT/etc/udev/rules.d/70-dockd.rules
MARKER=.dockd-app

changes=0
CHANGED=0
changed() {
  changes=$((changes + 1))
  CHANGED=1
  echo "  changed: $*"
}
note() {
  echo "  $*"
}

staging() { [ -n "$ROOT" ]; }
systemd_running() { ! staging && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
udev_running() { ! staging && [ -e /run/udev/control ] && command -v udevadm >/dev/null 2>&1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dockd-install.XXXXXX")
STAGE=''
cleanup() {
  rm -rf "$WORK"
  if [ -n "$STAGE" ]; then rm -rf "$STAGE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# An --prefix that already holds something else (/usr/local, say) must never be replaced.
check_app_dir() {
  if [ -e "$APP" ] && [ ! -f "$APP/$MARKER" ]; then
    die "$APP exists and is not a dockd install (no $MARKER); refusing to touch it"
  fi
}

file_mode() { stat -c %a "$1"; }
file_owner() { stat -c %U:%G "$1"; }

ensure_dir() { # dir mode [owner:group]
  if [ ! -d "$1" ]; then
    mkdir -p "$1"
    chmod "$2" "$1"
    changed "created $1 (mode $2)"
  elif [ "$(file_mode "$1")" != "$2" ]; then
    chmod "$2" "$1"
    changed "mode of $1 set to $2"
  fi
  if [ -n "${3-}" ] && ! staging && [ "$(file_owner "$1")" != "$3" ]; then
    chown "$3" "$1"
    changed "owner of $1 set to $3"
  fi
}

install_file() { # source dest mode; sets CHANGED
  CHANGED=0
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    if [ "$(file_mode "$2")" != "$3" ]; then
      chmod "$3" "$2"
      changed "mode of $2 set to $3"
    fi
    return 0
  fi
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.new.$$"
  chmod "$3" "$2.new.$$"
  mv -f "$2.new.$$" "$2"
  changed "installed $2"
}

remove_path() { # path; sets CHANGED
  CHANGED=0
  if [ -e "$1" ] || [ -L "$1" ]; then
    rm -rf "$1"
    changed "removed $1"
  fi
}

ensure_user() {
  if ! getent group dockd >/dev/null; then
    groupadd --system dockd
    changed "created group dockd"
  fi
  if ! getent passwd dockd >/dev/null; then
    useradd --system --gid dockd --home-dir /var/lib/dockd --no-create-home \
      --shell /usr/sbin/nologin --comment 'dockd camera dock daemon' dockd
    changed "created user dockd"
  fi
}

# The app's parts, as paths relative to the source tree and to the app dir alike: the built
# code, the native ChaCha20-Poly1305 binding where it built, package.json (it makes dist/ ES
# modules), the battery logs `dockd demo` gives its cameras, and production dependencies only,
# since the dock PC needs no compiler, linter or test runner.
app_parts() {
  for p in bin dist/src dist/drivers build/Release/dockd_aead.node fixtures/battery package.json package-lock.json README.md; do
    if [ -e "$SRC/$p" ]; then echo "$p"; fi
  done
  if ! command -v npm >/dev/null 2>&1; then
    echo "install.sh: npm not found: taking all of node_modules, development packages included" >&2
    echo node_modules
    return 0
  fi
  if ! (cd "$SRC" && npm ls --omit=dev --all --parseable >"$WORK/modules" 2>"$WORK/npm-ls.err"); then
    cat "$WORK/npm-ls.err" >&2
    die "node_modules in $SRC does not match package.json; run npm ci there first"
  fi
  # A nested package comes along with the folder of the package it sits in.
  sed -n "s|^$SRC/node_modules/|node_modules/|p" "$WORK/modules" | LC_ALL=C sort -u |
    awk '{ for (k in kept) if (index($0, k "/") == 1) next; kept[$0] = 1; print }'
}

# One line per entry of a tree: type, mode, size and whole-second mtime (files), link target
# (links); like rsync's quick check, a file counts as unchanged when size and mtime agree.
# With source=1, modes are what install_app's chmod makes of them and the folders holding each
# part are added, so that a source tree and an installed one compare equal.
describe_tree() { # source  (reads find -printf lines on stdin)
  awk -v source="$1" 'BEGIN { FS = "\t" }
    {
      path = $5
      if (source == 1) {
        n = split(path, seg, "/")
        dir = ""
        for (i = 1; i < n; i++) { dir = (i == 1 ? seg[1] : dir "/" seg[i]); print "d 755 " dir }
      }
      if ($1 == "l") { print "l " path " -> " $6; next }
      mode = $2
      if (source == 1) {
        x = 0
        for (i = length(mode) - 2; i <= length(mode); i++) if (substr(mode, i, 1) % 2 == 1) x = 1
        mode = ($1 == "d" || x) ? "755" : "644"
      }
      if ($1 == "d") print "d " mode " " path
      else print $1 " " mode " " $3 " " int($4) " " path
    }' | LC_ALL=C sort -u
}

# Runs a command with the app's parts appended as arguments, from the source tree. Part names
# are package folders and fixed paths: no spaces, no glob characters.
with_parts() {
  set -f
  old_ifs=$IFS
  IFS='
'
  # shellcheck disable=SC2046
  set -- "$@" $(cat "$WORK/parts")
  IFS=$old_ifs
  set +f
  (cd "$SRC" && "$@")
}

find_parts() {
  find "$@" -printf '%y\t%m\t%s\t%T@\t%p\t%l\n'
}

install_app() {
  [ -f "$SRC/dist/src/cli/main.js" ] || die "$SRC is not built (no dist/src/cli/main.js); run npm install there first"
  [ -d "$SRC/node_modules" ] || die "$SRC has no node_modules; run npm install there first"
  check_app_dir
  app_parts >"$WORK/parts"
  APP_CHANGED=1
  if [ -d "$APP" ]; then
    with_parts find_parts | describe_tree 1 >"$WORK/new.manifest"
    (cd "$APP" && find . -mindepth 1 ! -path "./$MARKER" -printf '%y\t%m\t%s\t%T@\t%P\t%l\n') | describe_tree 0 >"$WORK/old.manifest"
    if cmp -s "$WORK/new.manifest" "$WORK/old.manifest"; then
      APP_CHANGED=0
      note "app in $PREFIX is up to date"
      return 0
    fi
  fi
  mkdir -p "$(dirname "$APP")"
  STAGE=$(mktemp -d "$APP.new.XXXXXX")
  # Timestamps travel along: the next run compares sizes and mtimes, not contents.
  with_parts cp -RP --parents --preserve=timestamps --target-directory="$STAGE"
  echo "dockd app; this directory is replaced as a whole on upgrade and removed by install.sh --uninstall" >"$STAGE/$MARKER"
  # Root owns the code and only root may change it: the daemon's user cannot rewrite itself.
  chmod -R u+rwX,go+rX,go-w "$STAGE"
  if [ -d "$APP" ]; then
    mv "$APP" "$APP.old.$$"
    mv "$STAGE" "$APP"
    STAGE=''
    rm -rf "$APP.old.$$"
  else
    mv "$STAGE" "$APP"
    STAGE=''
  fi
  changed "installed the app in $APP"
}

pick_node() {
  if [ -z "$NODE" ]; then
    if [ -x /usr/bin/node ]; then NODE=/usr/bin/node; else NODE=$(command -v node || true); fi
    [ -n "$NODE" ] || die "no node binary found; install Node.js 20 or newer, or pass --node PATH"
  fi
  plain_path "$NODE" --node
  if ! staging; then
    [ -x "$NODE" ] || die "$NODE is not executable"
    "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
      die "$NODE is older than Node.js 20"
  fi
}

install_config() {
  if [ -e "$CONF" ]; then
    note "kept the existing $CONF"
    return 0
  fi
  ensure_dir "$CONF_DIR" 750 root:dockd
  cat >"$CONF.new.$$" <<'EOF'
{
  "dataDir": "/var/lib/dockd",
  "usb": { "enabled": true },
  "log": { "level": "info" }
}
EOF
  chmod 640 "$CONF.new.$$"
  if ! staging; then chown root:dockd "$CONF.new.$$"; fi
  mv "$CONF.new.$$" "$CONF"
  changed "wrote $CONF"
}

do_install() {
  if staging; then
    echo "dockd: staging an install below $ROOT (no user, ownership, systemctl or udevadm)"
  else
    [ "$(id -u)" -eq 0 ] || die "run as root, or stage with --root DIR"
    echo "dockd: installing on this system"
  fi
  pick_node
  if ! staging; then ensure_user; fi
  install_app
  install_config
  ensure_dir "$DATA" 750 dockd:dockd

  sed -e "/^ExecStart=/s|/usr/bin/node|$NODE|" \
    -e "/^ExecStart=/s|/opt/dockd|$PREFIX|" \
    -e "/^Documentation=/s|/opt/dockd|$PREFIX|" \
    "$SCRIPT_DIR/dockd.service" >"$WORK/dockd.service"
  install_file "$WORK/dockd.service" "$UNIT" 644
  unit_changed=$CHANGED
  install_file "$SCRIPT_DIR/70-dockd.rules" "$RULES" 644
  rules_changed=$CHANGED

  if systemd_running; then
    if [ "$unit_changed" = 1 ]; then
      systemctl daemon-reload
      note "systemd reloaded"
    fi
    if ! systemctl is-enabled --quiet dockd.service; then
      systemctl enable --quiet dockd.service
      changed "enabled dockd.service (starts at boot)"
    fi
  elif ! staging; then
    note "systemd is not running here: no daemon-reload, dockd.service not enabled"
  fi
  if [ "$rules_changed" = 1 ] && udev_running; then
    udevadm control --reload
    udevadm trigger --subsystem-match=usb --action=change
    note "udev rules reloaded"
  fi

  if [ "$changes" -eq 0 ]; then
    echo "dockd: nothing changed; the install is up to date"
  else
    echo "dockd: $changes change(s)"
  fi
  if systemd_running; then
    if ! systemctl is-active --quiet dockd.service; then
      echo "dockd: start it with: systemctl start dockd"
    elif [ "$APP_CHANGED" = 1 ] || [ "$unit_changed" = 1 ]; then
      echo "dockd: running an older version; apply with: systemctl restart dockd"
    fi
  fi
}

do_uninstall() {
  if staging; then
    echo "dockd: removing the staged install below $ROOT"
  else
    [ "$(id -u)" -eq 0 ] || die "run as root, or use --root DIR"
    echo "dockd: uninstalling from this system"
  fi
  check_app_dir
  if systemd_running && [ -e "$UNIT" ]; then
    if systemctl is-active --quiet dockd.service; then
      systemctl stop dockd.service
      changed "stopped dockd.service"
    fi
    if systemctl is-enabled --quiet dockd.service; then
      systemctl disable --quiet dockd.service
      changed "disabled dockd.service"
    fi
  fi
  remove_path "$UNIT"
  unit_changed=$CHANGED
  remove_path "$RULES"
  rules_changed=$CHANGED
  remove_path "$APP"
  if [ "$unit_changed" = 1 ] && systemd_running; then systemctl daemon-reload; fi
  if [ "$rules_changed" = 1 ] && udev_running; then udevadm control --reload; fi

  if [ "$changes" -eq 0 ]; then
    echo "dockd: nothing to remove"
  else
    echo "dockd: $changes change(s)"
  fi
  # Recordings and their custody log are evidence: never deleted by a script.
  echo "dockd: kept $CONF_DIR, $DATA (recordings, custody log, signing key) and the dockd user;"
  echo "       remove them by hand once the evidence is safely elsewhere"
}

case $ACTION in
  install) do_install ;;
  uninstall) do_uninstall ;;
esac
