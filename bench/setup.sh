#!/usr/bin/env bash
# The benchmark's own environment: bgmask from this checkout beside rembg 2.0.86, which is
# never a dependency of bgmask itself.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rembg[cpu]==2.0.86" \
  "pysodmetrics==1.6.2" -e .
