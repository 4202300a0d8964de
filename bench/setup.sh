#!/usr/bin/env bash
# The benchmark's own environment: bgmask from this checkout beside rembg 2.0.86, which is
# never a dependency of bgmask itself.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rembg[cpu]==2.0.86" -e .
# Its own pins would downgrade rembg's scikit-image; what it imports is already there.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
  "pysodmetrics==1.6.2"
