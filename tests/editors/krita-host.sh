#!/usr/bin/env bash
# Krita and a virtual X server for the end-to-end tests, from the host's apt (Debian 12 has
# Krita 5.1.5 with working Python scripting). Installs only what is missing.
set -euo pipefail
missing=""
for cmd in krita:krita xvfb-run:xvfb xauth:xauth; do
  command -v "${cmd%%:*}" >/dev/null || missing="$missing ${cmd##*:}"
done
if [ -n "$missing" ]; then
  echo "krita-host: installing$missing" >&2
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >&2; }
fi
