#!/usr/bin/env bash
# 'make vm': the Mininet VM's disk image, from Debian packages only (docs/vm.md).
#
# Two layers, each rebuilt only when its inputs change:
#   build/vm/root   a debootstrap tree with Debian's kernel, an initramfs that finds a virtio disk, and the
#                   project's own 'tools/setup.sh --install' done inside (every package, the .venv): keyed on the
#                   functions that build it (build_tree and what it calls, not the rest of this script), the
#                   suite, setup.sh and the pinned requirements.
#   build/vm/disk.img  that tree plus the checkout's files as they are now (/opt/multi6lab) and the guest's init
#                   (tools/vm/init.sh as /sbin/multi6lab-init), as an ext4 image
#                   made by mkfs.ext4 -d (no loop mount): keyed on the tree, the commit and the checkout's content.
# Every mount is made inside a private mount namespace (unshare -m), so none outlives the build, even a failed one.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROJECT=$PWD
OUT=build/vm
ROOT=$OUT/root
SUITE=bookworm
MIRROR=${MULTI6LAB_MIRROR:-http://deb.debian.org/debian}
GUEST_DIR=/opt/multi6lab

say() { echo "== vm: $*"; }
die() { echo "multi6lab: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "building the VM image needs root (debootstrap and chroot); run it as 'sudo make vm'."

need=""
for p in debootstrap debian-archive-keyring qemu-system-x86 e2fsprogs rsync; do  # the keyring: Ubuntu lacks it
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  say "installing Debian packages:$need"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null; }
fi

started=$(date +%s)

in_root() {  # a command in the tree, with /proc, /sys and /dev mounted for it alone
  unshare -m --propagation private bash -euo pipefail -c '
    r=$1; shift
    mount -t proc proc "$r/proc"; mount -t sysfs sys "$r/sys"; mount --rbind /dev "$r/dev"
    exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive "$@"' in_root "$ROOT" "$@"
}

sync_project() {  # the checkout as it is (its .git too, for the results' provenance); the guest's .venv stays
  mkdir -p "$ROOT$GUEST_DIR"
  rsync -a --delete --exclude /.venv --exclude /build --exclude /results --exclude /runs \
    --exclude __pycache__ --exclude '*.egg-info' --exclude .mypy_cache --exclude .ruff_cache \
    --exclude .pytest_cache --exclude .coverage "$PROJECT/" "$ROOT$GUEST_DIR/"
}

build_tree() {
  say "building the guest's tree (debootstrap $SUITE from $MIRROR, Debian's kernel, then tools/setup.sh inside)"
  rm -rf "$ROOT" "$OUT/root.key" "$OUT/disk.img" "$OUT/disk.key"
  mkdir -p "$ROOT"
  debootstrap --variant=minbase --include=kmod,iproute2,rsync,make,git,ca-certificates,procps,less \
    "$SUITE" "$ROOT" "$MIRROR" > "$OUT/debootstrap.log" 2>&1 || die "debootstrap failed; see $OUT/debootstrap.log"
  # No service starts inside the chroot, and none at the guest's boot: the guest's init starts what it needs.
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 multi6lab-vm\n' > "$ROOT/etc/hosts"
  echo multi6lab-vm > "$ROOT/etc/hostname"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  # The initramfs must find the root disk: Debian's kernel has virtio's block driver as a module.
  mkdir -p "$ROOT/etc/initramfs-tools" && printf 'virtio_pci\nvirtio_blk\n' >> "$ROOT/etc/initramfs-tools/modules"
  say "installing Debian's kernel in the tree"
  in_root apt-get install -y -q --no-install-recommends linux-image-amd64 initramfs-tools > "$OUT/kernel.log" 2>&1 ||
    die "installing the guest's kernel failed; see $OUT/kernel.log"
  # Certificate authorities this host added (a proxy that inspects TLS): the tree's pip must trust them too.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    in_root update-ca-certificates > /dev/null
  fi
  sync_project
  say "running tools/setup.sh --install in the tree (the guest needs nothing from outside when it boots)"
  in_root bash "$GUEST_DIR/tools/setup.sh" --install > "$OUT/setup.log" 2>&1 || die "setup inside the tree failed; see $OUT/setup.log"
  in_root apt-get clean
}

# The tree's key: the text of the functions that build it (bash prints them without comments), so an edit to
# the disk's part of this script does not rebuild it.
base_key=$( { declare -f build_tree in_root sync_project; echo "$SUITE"; cat tools/setup.sh requirements.txt pyproject.toml; } |
           sha256sum | cut -c1-16)
if [ "$(cat "$OUT/root.key" 2>/dev/null)" != "$base_key" ]; then
  build_tree
  echo "$base_key" > "$OUT/root.key"
fi

install -m 0755 tools/vm/init.sh "$ROOT/sbin/multi6lab-init"
sync_project
disk_key=$( { echo "$base_key"; git rev-parse HEAD 2>/dev/null;  # the commit a guest's results will name
              git ls-files -co --exclude-standard -z | sort -z | xargs -0 sha256sum 2>/dev/null; } |
            sha256sum | cut -c1-16)
if [ "$(cat "$OUT/disk.key" 2>/dev/null)" != "$disk_key" ] || [ ! -e "$OUT/disk.img" ]; then
  say "making the disk image from the tree (mkfs.ext4 -d)"
  used_mb=$(du -sm "$ROOT" | cut -f1)
  size_mb=$(( used_mb + 2048 ))  # room for the guest's runs and test results
  rm -f "$OUT/disk.img.new"
  truncate -s "${size_mb}M" "$OUT/disk.img.new"
  mkfs.ext4 -q -F -L multi6lab -d "$ROOT" "$OUT/disk.img.new" > "$OUT/mkfs.log" 2>&1 || die "mkfs.ext4 failed; see $OUT/mkfs.log"
  mv "$OUT/disk.img.new" "$OUT/disk.img"
  echo "$disk_key" > "$OUT/disk.key"
fi
kernel=$(ls "$ROOT"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$ROOT"/boot/initrd.img-* | sort -V | tail -1)
cp "$kernel" "$OUT/vmlinuz" && cp "$initrd" "$OUT/initrd.img"
basename "$kernel" | sed 's/^vmlinuz-//' > "$OUT/kernel.version"
say "ready: $OUT/disk.img ($(du -h --apparent-size "$OUT/disk.img" | cut -f1) apparent, $(du -h "$OUT/disk.img" | cut -f1) on disk)," \
    "kernel $(cat "$OUT/kernel.version"), in $(( $(date +%s) - started )) s"
