#!/usr/bin/env bash
# Builds the guest that test/support/qemu.ts boots: Debian's kernel and an uncompressed initramfs
# holding busybox, the kernel modules for USB storage, FAT and 9p, systemd-udevd, and this host's
# node binary with every shared library it and the project's native modules need. The project
# itself is not in it: the guest mounts the repository over virtio-9p.
#
#   scripts/vm/build-guest.sh [CACHE_DIR]     (default: $DOCKD_VM_CACHE, else REPO/.vm-cache)
#
# Prints the folder holding `kernel` and `initramfs.cpio` as its last line of standard output. The
# folder is named by a hash of every input (package versions, this script, the guest's init, the
# node binary, the host libraries copied), so a second run only computes that hash.
# Installs the host's tools with apt-get when they are missing (root only); the kernel, udev and
# udev's libraries are downloaded as .deb files into the cache and extracted, never installed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${1:-${DOCKD_VM_CACHE:-$root/.vm-cache}}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

log() { echo "build-guest: $*" >&2; }
die() { log "$*"; exit 1; }

# mtools, dosfstools and fdisk are not used here but by the tests' disk images (qemu.ts).
host_packages=(qemu-system-x86 busybox-static kmod xz-utils mtools dosfstools fdisk)
# udevadm (which is systemd-udevd too) and the libraries it loads, directly or not.
udev_packages=(udev libkmod2 libacl1 libblkid1 libcap2 libselinux1 libzstd1 liblzma5 libssl3 libpcre2-8-0)
# The rest of a module list comes from modprobe --show-depends.
modules=(usb-common usbcore xhci-hcd xhci-pci scsi_common scsi_mod sd_mod usb-storage uas
  fat vfat nls_cp437 nls_iso8859-1 nls_utf8 nls_ascii
  virtio_ring virtio virtio_pci netfs fscache 9pnet 9pnet_virtio 9p
  virtio_blk ext4)
# Loaded by request from the crc libraries, which fall back to slower code without them; ext4
# cannot mount a file system with metadata checksums (mkfs.ext4's default) without a crc32c.
optional_modules=(crc64_rocksoft_generic crct10dif_pclmul crct10dif_generic crc32c_generic crc32c-intel)
udev_rules=(50-udev-default 60-block 60-persistent-storage 80-drivers)

# dpkg-query reports "install ok installed" only for a fully configured package.
status=$(dpkg-query -W -f='${Package} ${Status}\n' "${host_packages[@]}" 2>/dev/null || true)
missing=()
for p in "${host_packages[@]}"; do
  grep -qx "$p install ok installed" <<<"$status" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); install them as root"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${host_packages[@]}" >/dev/null
fi

node_bin=$(readlink -f "${DOCKD_VM_NODE:-$(command -v node)}")
[ -x "$node_bin" ] || die "no node binary"

# --- the inputs and their hash ------------------------------------------------------------------

declare -A version=()
kernel_pkg=
resolve_versions() {
  kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
  [ -n "$kernel_pkg" ] || return 1
  local pkg ver
  while read -r pkg ver; do version[$pkg]=$ver; done < <(
    apt-cache policy "$kernel_pkg" "${udev_packages[@]}" 2>/dev/null |
      awk '/^[^ ]/ { sub(":$", "", $1); pkg = $1 } /^  Candidate:/ { print pkg, $2 }')
  for pkg in "$kernel_pkg" "${udev_packages[@]}"; do
    case "${version[$pkg]:-}" in '' | '(none)') return 1 ;; esac
  done
}
# apt-cache takes seconds here (no pkgcache.bin), so its answer is kept until the lists change.
lists_stamp() { stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages* 2>/dev/null | sha256sum | cut -c1-16 || true; }
versions_file="$cache/versions-$(lists_stamp)"
if [ -s "$versions_file" ]; then
  while read -r pkg ver; do
    if [ "$pkg" = kernel ]; then kernel_pkg=$ver; else version[$pkg]=$ver; fi
  done <"$versions_file"
else
  if ! resolve_versions; then
    # A machine whose package lists were never fetched, or were cleaned.
    log "apt-get update (package lists incomplete)"
    apt-get update -qq
    resolve_versions || die "cannot find $kernel_pkg or udev's packages in the package lists"
    versions_file="$cache/versions-$(lists_stamp)"
  fi
  rm -f "$cache"/versions-*
  {
    echo "kernel $kernel_pkg"
    for pkg in "$kernel_pkg" "${udev_packages[@]}"; do echo "$pkg ${version[$pkg]}"; done
  } >"$versions_file"
fi
kver=${kernel_pkg#linux-image-}

# Every ELF file of the host that goes into the guest, with the libraries ldd finds for it.
native_modules=()
if [ -d "$root/node_modules" ]; then
  while IFS= read -r f; do native_modules+=("$f"); done < <(find "$root/node_modules" -name '*.node' -type f | sort)
fi
host_libs() {
  ldd "$@" 2>/dev/null | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]*ld-linux/ { print $1 }' | sort -u
}
mapfile -t libs < <(host_libs "$node_bin" "${native_modules[@]}")

key=$(
  {
    sha256sum "$here/build-guest.sh" "$here/init" | cut -d' ' -f1
    echo "busybox-static $(dpkg-query -W -f='${Version}' busybox-static)"
    for pkg in "$kernel_pkg" "${udev_packages[@]}"; do echo "$pkg ${version[$pkg]}"; done
    sha256sum "$node_bin" "${libs[@]}"
  } | sha256sum | cut -c1-16
)
out="$cache/guest-$key"
if [ -f "$out/initramfs.cpio" ] && [ -f "$out/kernel" ]; then
  echo "$out"
  exit 0
fi

# Test files run in parallel workers, and each may ask for the guest at once.
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/initramfs.cpio" ] && [ -f "$out/kernel" ]; then
  echo "$out"
  exit 0
fi
started=$(date +%s)
log "building $out"

# --- downloads -----------------------------------------------------------------------------------

debs="$cache/debs"
mkdir -p "$debs"
deb_of() { # PACKAGE -> path of its .deb at the resolved version, downloaded when absent
  local pkg=$1 ver=${version[$1]} f
  f=$(ls "$debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    log "downloading $pkg $ver"
    # As root, apt refuses to hand a folder it cannot write to its sandbox user; skip the sandbox.
    (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2)
    f=$(ls "$debs/${pkg}_${ver//:/%3a}_"*.deb | head -n1)
  fi
  echo "$f"
}

work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
extract="$work/extract"
mkdir -p "$stage" "$extract"

dpkg-deb -x "$(deb_of "$kernel_pkg")" "$extract/kernel"
for pkg in "${udev_packages[@]}"; do dpkg-deb -x "$(deb_of "$pkg")" "$extract/udev"; done

# --- the tree ------------------------------------------------------------------------------------

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/x86_64-linux-gnu,lib64,etc/modprobe.d,etc/udev/rules.d,lib/udev/rules.d,lib/systemd}
mkdir -p "$stage"/{proc,sys,dev,run,tmp,root,app,data,mnt}

cp /bin/busybox "$stage/bin/busybox"
for applet in $(busybox --list-full); do
  [ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done
install -m 0755 "$here/init" "$stage/init"

kmods="$extract/kernel/lib/modules/$kver"
[ -d "$kmods" ] || die "no modules for $kver in $kernel_pkg"
# Under emulation the bzImage spends ~3 s inflating itself (xz) before Linux starts. The kernel
# has a PVH entry point, so QEMU can load the uncompressed ELF directly instead. (xz stops reading
# at the end of its stream: a pipe from tail would fail with SIGPIPE under pipefail.)
vmlinuz="$extract/kernel/boot/vmlinuz-$kver"
offset=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$vmlinuz" | head -n1 | cut -d: -f1 || true)
if grep -qx 'CONFIG_PVH=y' "$extract/kernel/boot/config-$kver" && [ -n "$offset" ] &&
  xz -dc --single-stream < <(tail -c +$((offset + 1)) "$vmlinuz") >"$work/kernel" 2>/dev/null &&
  [ "$(head -c 4 "$work/kernel" | od -An -c | tr -d ' ')" = '177ELF' ]; then
  kernel_form="vmlinux (PVH)"
else
  cp "$vmlinuz" "$work/kernel"
  kernel_form="bzImage"
fi
depmod -b "$extract/kernel" "$kver"
{
  for m in "${modules[@]}"; do
    modprobe -d "$extract/kernel" -S "$kver" --show-depends "$m" || die "kernel module $m not found"
  done
  for m in "${optional_modules[@]}"; do
    modprobe -d "$extract/kernel" -S "$kver" --show-depends "$m" 2>/dev/null || true
  done
} | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r ko; do
  rel=${ko#"$extract/kernel/"}
  mkdir -p "$stage/$(dirname "$rel")"
  cp "$ko" "$stage/$rel"
done
cp "$kmods"/modules.{order,builtin,builtin.modinfo} "$stage/lib/modules/$kver/"
depmod -b "$stage" "$kver"
echo 'options usb-storage delay_use=0' >"$stage/etc/modprobe.d/dockd.conf"

cp "$extract/udev/bin/udevadm" "$stage/bin/udevadm"
ln -s /bin/udevadm "$stage/lib/systemd/systemd-udevd"
for helper in ata_id scsi_id; do cp "$extract/udev/lib/udev/$helper" "$stage/lib/udev/"; done
for rule in "${udev_rules[@]}"; do cp "$extract/udev/lib/udev/rules.d/$rule.rules" "$stage/lib/udev/rules.d/"; done

cp "$node_bin" "$stage/usr/bin/node"

# Libraries: the host's for node and the native modules, the extracted packages' for udevadm.
udev_libdirs="$extract/udev/lib/x86_64-linux-gnu:$extract/udev/usr/lib/x86_64-linux-gnu"
copy_lib() {
  local f=$1
  case "$f" in
    */ld-linux-x86-64.so.2) cp -L "$f" "$stage/lib64/ld-linux-x86-64.so.2" ;;
    *) [ -e "$stage/lib/x86_64-linux-gnu/$(basename "$f")" ] || cp -L "$f" "$stage/lib/x86_64-linux-gnu/" ;;
  esac
}
for f in "${libs[@]}"; do copy_lib "$f"; done
udev_elves=("$stage/bin/udevadm" "$stage/lib/udev/ata_id" "$stage/lib/udev/scsi_id")
if LD_LIBRARY_PATH=$udev_libdirs ldd "${udev_elves[@]}" | grep -q 'not found'; then
  LD_LIBRARY_PATH=$udev_libdirs ldd "${udev_elves[@]}" >&2
  die "a library of udevadm is in none of: ${udev_packages[*]}"
fi
while read -r f; do copy_lib "$f"; done < <(LD_LIBRARY_PATH=$udev_libdirs host_libs "${udev_elves[@]}")
ln -s ../../lib64/ld-linux-x86-64.so.2 "$stage/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
echo /lib/x86_64-linux-gnu >"$stage/etc/ld.so.conf"
ldconfig -r "$stage"

cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$stage/etc/group" <<'EOF'
root:x:0:
disk:x:6:
EOF
ln -s /proc/self/mounts "$stage/etc/mtab"

# Uncompressed: under emulation the kernel inflates a compressed one slower than it copies this.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) >"$work/initramfs.cpio"

{
  echo "kernel $kernel_pkg ${version[$kernel_pkg]} as $kernel_form"
  echo "node $node_bin $("$node_bin" --version)"
  for pkg in "${udev_packages[@]}"; do echo "$pkg ${version[$pkg]}"; done
  echo "busybox-static $(dpkg-query -W -f='${Version}' busybox-static)"
  echo "initramfs $(stat -c %s "$work/initramfs.cpio") bytes"
} >"$work/manifest.txt"

mkdir "$work/out"
mv "$work/kernel" "$work/initramfs.cpio" "$work/manifest.txt" "$work/out/"
rm -rf "$out"
mv "$work/out" "$out"
# Older guests are never booted again from this cache: each is ~145 MB. Neither are old .debs.
for old in "$cache"/guest-*; do [ "$old" = "$out" ] || rm -rf "$old"; done
for f in "$debs"/*.deb; do
  keep=
  for pkg in "$kernel_pkg" "${udev_packages[@]}"; do
    case "$(basename "$f")" in "${pkg}_${version[$pkg]//:/%3a}_"*) keep=1 ;; esac
  done
  [ -n "$keep" ] || rm -f "$f"
done
log "built in $(($(date +%s) - started))s: $(du -sh "$out" | cut -f1)"
echo "$out"
