"""bgmask: local AI background removal that produces a soft alpha mask.

Three tiers, each a folder: ``host`` runs inside the editors' own Pythons (standard library
only; the installer copies it into each plug-in as a whole), ``engine`` does the masking
(numpy, pillow, onnxruntime), and the processes on top: ``cli`` (the ``bgmask`` command) and
``worker`` (``python -m bgmask.worker``, which the plug-ins talk to).

Importing this package is cheap and has no side effects: numpy and onnxruntime are loaded
only when a mask is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .host.version import VERSION as __version__

if TYPE_CHECKING:
    from .engine.pipeline import Masker, MaskOptions, predict_mask

_LAZY = {"Masker", "MaskOptions", "predict_mask"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bgmask' has no attribute {name!r}")
    from .engine import pipeline

    return getattr(pipeline, name)


__all__ = ["__version__", "Masker", "MaskOptions", "predict_mask"]
