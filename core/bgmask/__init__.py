"""bgmask: local AI background removal that produces a soft alpha mask.

Importing this package is cheap and has no side effects: numpy and onnxruntime are loaded
only when a mask is asked for, so the stdlib-only worker client can live in an editor's Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .pipeline import Masker, MaskOptions, predict_mask

_LAZY = {"Masker": "pipeline", "MaskOptions": "pipeline", "predict_mask": "pipeline"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bgmask' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = ["__version__", "Masker", "MaskOptions", "predict_mask"]
