#!/usr/bin/env bash
# The benchmark's own environment: bgmask from this checkout beside rembg 2.0.86, which is
# never a dependency of bgmask itself.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rembg[cpu]==2.0.86" -e .
# pysodmetrics' own pin would downgrade rembg's scikit-image: its other imports are named
# here and it is installed without its dependency list.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "opencv-python-headless==4.14.0.94" "scikit-learn==1.9.1" "scipy==1.17.1"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
  "pysodmetrics==1.6.2"
