#!/usr/bin/env bash
# GIMP 3 for the end-to-end tests. Debian 12 has no GIMP 3, so on a Debian 12 host it lives in a
# Debian 13 chroot that is kept between runs (rebuilt when missing or out of date); on Debian 13
# it comes from apt directly and this script only installs it.
#
#   gimp-chroot.sh provision   build or reuse the chroot, then mount /proc, /dev, /sys into it
#   gimp-chroot.sh umount      unmount what provision mounted
#   gimp-chroot.sh root        print the chroot's path ("/" when no chroot is needed)
set -euo pipefail

ROOT="${BGMASK_GIMP_ROOT:-/var/cache/bgmask-ci/gimp-trixie}"
# Bump when the package list or the layout below changes: an old chroot is then rebuilt.
RECIPE=3
PACKAGES="gimp python3 python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 python3-venv python3-pip
  ca-certificates xvfb xauth xdotool"
# The worker environment's dependencies, installed once; bgmask itself is reinstalled per run.
WORKER_DEPS="onnxruntime numpy pillow platformdirs"

host_major() { cut -d. -f1 /etc/debian_version; }

needs_chroot() { [ "$(host_major)" -lt 13 ]; }

host_mirror() {
  # The host's own Debian mirror, so no registry address is written into the project.
  awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
    || awk '/^deb / {print $2; exit}' /etc/apt/sources.list
}

mount_all() {
  for d in proc sys dev; do
    mountpoint -q "$ROOT/$d" || mount --rbind "/$d" "$ROOT/$d"
    mount --make-rslave "$ROOT/$d"
  done
  mountpoint -q "$ROOT/dev/shm" || mount -t tmpfs -o mode=1777 shm "$ROOT/dev/shm"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

umount_all() {
  for d in dev/shm dev sys proc; do
    if mountpoint -q "$ROOT/$d"; then umount -R "$ROOT/$d" || umount -lR "$ROOT/$d"; fi
  done
}

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

build() {
  echo "gimp-chroot: building a Debian 13 chroot with GIMP 3 in $ROOT (a few minutes, once)" >&2
  # The base system is the slow part: kept when only the steps after it failed or changed.
  if [ ! -f "$ROOT/.bgmask-base" ]; then
    [ -d "$ROOT" ] && { umount_all; rm -rf --one-file-system "$ROOT"; }
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2
    mkdir -p "$(dirname "$ROOT")"
    debootstrap --variant=minbase trixie "$ROOT" "$(host_mirror)" >&2
    touch "$ROOT/.bgmask-base"
  fi
  mount_all
  # Extra CA certificates of the host (TLS-inspecting proxies), so pip inside trusts them too.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  fi
  in_root apt-get update -q >&2
  # shellcheck disable=SC2086
  in_root apt-get install -y -q --no-install-recommends $PACKAGES >&2
  in_root update-ca-certificates >&2
  in_root apt-get clean
  # The host's pip settings (index, wheel folders, certificates) and its local wheel folders.
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
  [ -d /etc/xdg/pip ] && { mkdir -p "$ROOT/etc/xdg"; cp -r /etc/xdg/pip "$ROOT/etc/xdg/"; }
  in_root python3 -m venv /opt/bgmask-deps
  # shellcheck disable=SC2086
  in_root /opt/bgmask-deps/bin/pip install -q $WORKER_DEPS >&2
  in_root useradd -m -u 4242 -s /bin/bash gimpuser 2>/dev/null || true
  echo "$RECIPE" > "$ROOT/.bgmask-recipe"
}

case "${1:-}" in
  provision)
    if ! needs_chroot; then
      command -v gimp-console-3.0 >/dev/null || apt-get install -y -q --no-install-recommends \
        $PACKAGES >&2
      exit 0
    fi
    if [ "$(cat "$ROOT/.bgmask-recipe" 2>/dev/null)" != "$RECIPE" ]; then build; fi
    mount_all
    ;;
  umount) needs_chroot && umount_all ;;
  root) if needs_chroot; then echo "$ROOT"; else echo /; fi ;;
  *) echo "usage: $0 provision|umount|root" >&2; exit 2 ;;
esac
