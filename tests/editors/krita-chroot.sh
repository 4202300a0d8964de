#!/usr/bin/env bash
# Krita for the end-to-end tests, from a Debian suite: trixie (Debian 13) carries Krita 5.2,
# sid 5.3, and sid + experimental Krita 6 (Qt 6, PyQt6). Each lives in a chroot kept between
# runs; a zstd tarball of the finished chroot lets a machine that lost (or never unpacked) the
# chroot restore it in seconds instead of rebuilding it for minutes.
#
#   krita-chroot.sh provision SUITE   restore or build the chroot, then mount /proc, /dev, /sys
#   krita-chroot.sh mount SUITE       mount /proc, /dev, /sys into a provisioned chroot
#   krita-chroot.sh umount SUITE      unmount what provision mounted
#   krita-chroot.sh root SUITE        print the chroot's path
#   krita-chroot.sh ready SUITE       exit 0 when Krita is provisioned
# SUITE: trixie, sid or experimental.
set -euo pipefail

SUITE="${2:-}"
case "$SUITE" in
  trixie) BASE=trixie; BINDING=python3-pyqt5 ;;
  sid) BASE=sid; BINDING=python3-pyqt5 ;;
  # experimental is a partial suite: a sid system with Krita 6 and its Qt 6 stack on top.
  experimental) BASE=sid; BINDING=python3-pyqt6 ;;
  *) echo "krita-chroot: unknown suite '$SUITE' (trixie, sid or experimental)" >&2; exit 2 ;;
esac

CACHE=/var/cache/bgmask-ci
ROOT="$CACHE/krita-$SUITE"
STAMP="$ROOT/.bgmask-recipe"
# Bump when the package list or the layout below changes: an old chroot and tarball are then
# rebuilt (the recipe is part of the tarball's name).
RECIPE=1
TARBALL="$CACHE/krita-$SUITE.r$RECIPE.tar.zst"
# sid and experimental start from the same debootstrapped sid: the second build reuses it.
BASE_TARBALL="$CACHE/krita-base-$BASE.r$RECIPE.tar.zst"
USER_NAME=kritauser
USER_ID=4243
# Krita's Python scripting needs the binding, which Debian's krita only recommends.
PACKAGES="krita $BINDING python3 python3-venv xvfb xauth ca-certificates"
# The worker environment's dependencies; bgmask itself is copied in by the tests per run.
WORKER_DEPS="onnxruntime numpy pillow platformdirs"
# The mirror's sid (and experimental) Release files carry a Valid-Until already past.
APT_OPTS=(-o Acquire::Check-Valid-Until=false)

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
  [ -d "$ROOT" ] || return 0
  for d in dev/shm dev sys proc; do
    if mountpoint -q "$ROOT/$d"; then umount -R "$ROOT/$d" || umount -lR "$ROOT/$d"; fi
  done
}

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

remove_root() {
  umount_all
  # Never follow a mount that is still there into the host's own /proc or /dev.
  [ -d "$ROOT" ] && rm -rf --one-file-system "$ROOT"
  return 0
}

lean_dpkg() {
  # Documentation, manuals and translations are a few hundred MB the tests never read; a
  # throw-away chroot needs no fsync after every unpacked file.
  mkdir -p "$ROOT/etc/dpkg/dpkg.cfg.d"
  cat > "$ROOT/etc/dpkg/dpkg.cfg.d/01-bgmask-lean" <<'EOF'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
}

trust_host_certificates() {
  # Extra CA certificates of the host (TLS-inspecting proxies), so pip inside trusts them too.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  fi
  in_root update-ca-certificates >&2
  # The host's pip settings (index, wheel folders, certificates).
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
  [ -d /etc/xdg/pip ] && { mkdir -p "$ROOT/etc/xdg"; cp -r /etc/xdg/pip "$ROOT/etc/xdg/"; }
  return 0
}

build() {
  echo "krita-chroot: building Krita from $SUITE in $ROOT (minutes, once per machine)" >&2
  remove_root
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2
  command -v zstd >/dev/null || apt-get install -y -q zstd >&2
  local mirror
  mirror="$(host_mirror)"
  mkdir -p "$CACHE"
  if [ -f "$BASE_TARBALL" ]; then
    mkdir -p "$ROOT"
    zstd -q -dc "$BASE_TARBALL" | tar -C "$ROOT" --numeric-owner -xpf -
  else
    debootstrap --variant=minbase "$BASE" "$ROOT" "$mirror" >&2
    lean_dpkg
    if [ "$BASE" = sid ]; then
      rm -f "$CACHE"/krita-base-sid.r*.tar.zst
      tar -C "$ROOT" --one-file-system --numeric-owner -cf - . \
        | zstd -q -T0 -3 -o "$BASE_TARBALL.part"
      mv "$BASE_TARBALL.part" "$BASE_TARBALL"
    fi
  fi
  if [ "$SUITE" = experimental ]; then
    echo "deb $mirror experimental main" > "$ROOT/etc/apt/sources.list.d/experimental.list"
  fi
  mount_all
  in_root apt-get "${APT_OPTS[@]}" update -q >&2
  local target=()
  [ "$SUITE" = experimental ] && target=(-t experimental)
  # shellcheck disable=SC2086
  in_root apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${target[@]}" \
    $PACKAGES >&2
  in_root apt-get clean
  rm -rf "$ROOT"/var/lib/apt/lists/*
  trust_host_certificates
  in_root python3 -m venv /opt/bgmask-deps
  # shellcheck disable=SC2086
  in_root /opt/bgmask-deps/bin/pip install -q --no-cache-dir $WORKER_DEPS >&2
  in_root useradd -m -u "$USER_ID" -s /bin/bash "$USER_NAME"
  check_scripting
  echo "$RECIPE" > "$STAMP"
  pack
}

check_scripting() {
  # Krita without its Python binding starts fine and silently loads no Python plug-in.
  local module=PyQt5
  [ "$SUITE" = experimental ] && module=PyQt6
  in_root python3 -c "import $module.QtCore" \
    || { echo "krita-chroot: $module is not importable in $ROOT" >&2; exit 1; }
  compgen -G "$ROOT/usr/lib/*/kritaplugins/kritapykrita.so" >/dev/null \
    || { echo "krita-chroot: Krita's Python plug-in loader is missing in $ROOT" >&2; exit 1; }
}

pack() {
  umount_all
  rm -f "$CACHE"/krita-"$SUITE".r*.tar.zst
  tar -C "$ROOT" --one-file-system --numeric-owner -cf - . \
    | zstd -q -T0 -3 -o "$TARBALL.part"
  mv "$TARBALL.part" "$TARBALL"
}

restore() {
  echo "krita-chroot: restoring Krita from $SUITE out of $TARBALL" >&2
  remove_root
  mkdir -p "$ROOT"
  zstd -q -dc "$TARBALL" | tar -C "$ROOT" --numeric-owner -xpf -
}

ready() { [ "$(cat "$STAMP" 2>/dev/null)" = "$RECIPE" ]; }

case "${1:-}" in
  provision)
    if ! ready; then
      if [ -f "$TARBALL" ]; then restore; else build; fi
    fi
    mount_all
    ;;
  mount) if ready; then mount_all; fi ;;
  umount) umount_all ;;
  root) echo "$ROOT" ;;
  ready) ready ;;
  *) echo "usage: $0 provision|mount|umount|root|ready SUITE" >&2; exit 2 ;;
esac
