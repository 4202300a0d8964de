#!/usr/bin/env python3
"""Installs bgmask into GIMP 3 and Krita for this user; ``--uninstall`` removes it again.
Standard library only: run it with any Python >= 3.10 (``--help`` for the options)."""

import sys
from pathlib import Path

if sys.version_info < (3, 10):  # noqa: UP036 (users may start it with an old Python)
    sys.exit("bgmask's installer needs Python 3.10 or newer; this is " + sys.version.split()[0])
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bgmask_installer.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
