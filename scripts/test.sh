#!/usr/bin/env bash
# Installs bgmask with its test dependencies into .venv, fetches and verifies the default model
# through bgmask's own store (pip route, so the user's pip settings apply), provisions the real
# editors (GIMP 3.0 and 3.2, Krita) when run as root, then runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
export BGMASK_MODEL_DIR="$PWD/.cache/models"
.venv/bin/bgmask models fetch u2netp
.venv/bin/ruff check core plugin installers tests bench
# Type-checks core/, the plug-ins and the installer ([tool.mypy]; editor APIs from stubs/).
.venv/bin/python -m mypy
if [ "$(id -u)" = 0 ]; then
  # The editors' end-to-end tests must run, not skip, where they can be provisioned.
  export BGMASK_REQUIRE_EDITORS=1
  # GIMP 3.0 (Debian trixie) and GIMP 3.2 (Debian forky), each in a chroot cached between runs.
  trap 'for s in trixie forky; do bash tests/editors/gimp-chroot.sh umount $s; done
        for s in trixie sid experimental; do bash tests/editors/krita-chroot.sh umount $s; done' EXIT
  for suite in trixie forky; do bash tests/editors/gimp-chroot.sh provision "$suite"; done
  # Krita 5.2 (trixie), 5.3 (sid) and 6.0 (sid + experimental) beside the host's 5.1.
  for suite in trixie sid experimental; do bash tests/editors/krita-chroot.sh provision "$suite"; done
  # Flatpak GIMP, simulated with bubblewrap (tests/editors/test_flatpak.py).
  command -v bwrap >/dev/null || apt-get install -y -q bubblewrap \
    || { apt-get update -q && apt-get install -y -q bubblewrap; }
  bash tests/editors/krita-host.sh
  echo "test.sh: editors provisioned after ${SECONDS} s" >&2
fi
.venv/bin/python -m pytest -q "$@"
# The benchmark's quick mode, so it cannot rot (it asserts nothing about speed).
bash bench/setup.sh
.cache/bench-venv/bin/python bench/run.py --quick --out .cache/benchmarks-quick.md
echo "test.sh: done in ${SECONDS} s" >&2
