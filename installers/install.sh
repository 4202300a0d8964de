#!/bin/sh
# bgmask for GIMP 3 and Krita on Linux and macOS: finds a Python 3.10+ and runs the installer.
# Usage: sh installers/install.sh [--uninstall] [--dry-run] [--help]
here=$(cd "$(dirname "$0")" && pwd)
# Newest first; plain python3 last covers versions newer than this list.
for py in python3.14 python3.13 python3.12 python3.11 python3.10 python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    exec "$py" "$here/install.py" "$@"
  fi
done
echo "bgmask installer: Python 3.10 or newer is needed; install it from your system's packages or python.org" >&2
exit 1
