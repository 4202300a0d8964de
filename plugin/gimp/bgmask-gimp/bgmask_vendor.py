"""Makes bgmask's editor-side tier importable inside GIMP's Python.

The installer copies ``bgmask.host`` (standard library only) into ``vendor/bgmask/host``
beside this file, so the plug-in never imports onnxruntime or numpy and does not depend on
which Python GIMP bundles.
"""

from __future__ import annotations

import os
import sys

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if VENDOR not in sys.path:
    sys.path.insert(0, VENDOR)
