"""Makes the stdlib-only part of bgmask importable inside GIMP's Python.

The installer copies bgmask's client, protocol, errors, catalogue and adapter modules into
``vendor/bgmask`` beside this file, so the plug-in never imports onnxruntime or numpy and does
not depend on which Python GIMP bundles.
"""

from __future__ import annotations

import os
import sys

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if VENDOR not in sys.path:
    sys.path.insert(0, VENDOR)
