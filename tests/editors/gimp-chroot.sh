#!/usr/bin/env bash
# GIMP 3 for the end-to-end tests, from a Debian suite: trixie (Debian 13) carries GIMP 3.0,
# forky (Debian 14, testing) GIMP 3.2. Each lives in a chroot that is kept between runs (rebuilt
# when missing or out of date); on a Debian 13 host, trixie's GIMP comes from apt directly.
#
#   gimp-chroot.sh provision [SUITE]   build or reuse the chroot, then mount /proc, /dev, /sys
#   gimp-chroot.sh mount [SUITE]       mount /proc, /dev, /sys into a provisioned chroot
#   gimp-chroot.sh umount [SUITE]      unmount what provision mounted
#   gimp-chroot.sh root [SUITE]        print the chroot's path ("/" when no chroot is needed)
#   gimp-chroot.sh ready [SUITE]       exit 0 when GIMP is provisioned
# SUITE: trixie (the default) or forky.
set -euo pipefail

SUITE="${2:-trixie}"
case "$SUITE" in
  trixie) SCRIPT=trixie ;;
  forky) SCRIPT=sid ;;  # debootstrap on Debian 12 has no forky script; sid's fits
  *) echo "gimp-chroot: unknown suite $SUITE (trixie or forky)" >&2; exit 2 ;;
esac
host_major() { cut -d. -f1 /etc/debian_version; }
needs_chroot() { [ "$SUITE" != trixie ] || [ "$(host_major)" -lt 13 ]; }

CACHE=/var/cache/bgmask-ci
if needs_chroot; then
  ROOT="$CACHE/gimp-$SUITE"
  STAMP="$ROOT/.bgmask-recipe"
else
  ROOT=/
  STAMP="$CACHE/gimp-host-recipe"
fi
# Bump when the package list or the layout below changes: an old chroot is then rebuilt.
RECIPE=3
PACKAGES="gimp python3 python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 python3-venv python3-pip
  ca-certificates xvfb xauth xdotool"
# The worker environment's dependencies, installed once; bgmask itself is reinstalled per run.
WORKER_DEPS="onnxruntime numpy pillow platformdirs"

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
# Testing's Release files can carry a Valid-Until already past on a mirror snapshot.
APT_OPTS=(-o Acquire::Check-Valid-Until=false)

build() {
  echo "gimp-chroot: provisioning GIMP 3 in $ROOT (a few minutes, once)" >&2
  needs_chroot && build_base
  in_root apt-get "${APT_OPTS[@]}" update -q >&2
  # shellcheck disable=SC2086
  in_root apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends $PACKAGES >&2
  in_root apt-get clean
  in_root python3 -m venv /opt/bgmask-deps
  # shellcheck disable=SC2086
  in_root /opt/bgmask-deps/bin/pip install -q $WORKER_DEPS >&2
  in_root useradd -m -u 4242 -s /bin/bash gimpuser 2>/dev/null || true
  mkdir -p "$(dirname "$STAMP")"
  echo "$RECIPE" > "$STAMP"
}

build_base() {
  # The base system is the slow part: kept when only the steps after it failed or changed.
  if [ ! -f "$ROOT/.bgmask-base" ]; then
    [ -d "$ROOT" ] && { umount_all; rm -rf --one-file-system "$ROOT"; }
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2
    mkdir -p "$(dirname "$ROOT")"
    debootstrap --variant=minbase "$SUITE" "$ROOT" "$(host_mirror)" \
      "/usr/share/debootstrap/scripts/$SCRIPT" >&2
    touch "$ROOT/.bgmask-base"
  fi
  mount_all
  # Extra CA certificates of the host (TLS-inspecting proxies), so pip inside trusts them too.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  fi
  in_root apt-get "${APT_OPTS[@]}" update -q >&2
  in_root apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends ca-certificates >&2
  in_root update-ca-certificates >&2
  # The host's pip settings (index, wheel folders, certificates).
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
  [ -d /etc/xdg/pip ] && { mkdir -p "$ROOT/etc/xdg"; cp -r /etc/xdg/pip "$ROOT/etc/xdg/"; }
  return 0
}

ready() { [ "$(cat "$STAMP" 2>/dev/null)" = "$RECIPE" ]; }

case "${1:-}" in
  provision)
    ready || build
    if needs_chroot; then mount_all; fi
    ;;
  mount) if needs_chroot && ready; then mount_all; fi ;;
  umount) if needs_chroot; then umount_all; fi ;;
  root) echo "$ROOT" ;;
  ready) ready ;;
  *) echo "usage: $0 provision|mount|umount|root|ready" >&2; exit 2 ;;
esac
