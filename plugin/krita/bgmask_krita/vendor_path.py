"""Makes bgmask's editor-side tier, copied into ``vendor/bgmask/host`` by the installer,
importable.

Krita's Python cannot import onnxruntime or numpy: the plug-in only needs ``bgmask.host``
(standard library only), and runs the network in bgmask's worker.
"""

from __future__ import annotations

import os
import sys

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if VENDOR not in sys.path:
    sys.path.insert(0, VENDOR)
