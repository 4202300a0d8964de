"""Run by install.ps1 with each Python it finds: exit 0 when this one can run the installer,
1 when it is older than 3.10, 3 when it is the Microsoft Store's (see winpython.py)."""

import sys
from pathlib import Path

if sys.version_info < (3, 10):  # noqa: UP036 (this runs under any Python found)
    sys.exit(1)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bgmask_installer.winpython import store_python_reason  # noqa: E402

reason = store_python_reason(sys.executable, sys.prefix, sys.base_prefix)
if reason:
    print(f"bgmask installer: skipping {reason}", file=sys.stderr)
    sys.exit(3)
