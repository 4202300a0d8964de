"""A photo for the selection-hint tests, made at test time from two the repository carries: a
small cat (``samples/chelsea.png``) in the corner of a big astronaut (``samples/astronaut.png``).
On the whole photo u2netp picks the astronaut and misses the cat entirely; pointed at a rough
rectangle around the cat, it finds the cat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .photos import ASTRONAUT, CAT

SIZE = (1200, 900)
CAT_AT = (784, 617, 396, 263)  # where the cat photo is pasted: x, y, width, height
# The user's rough rectangle: the cat with a margin of the astronaut's background around it.
BOX = (760, 600, 430, 290)


def cat_beside_astronaut(folder: Path) -> Path:
    """The composite as an RGB PNG (the editor and the command line decode the same pixels)."""
    canvas = Image.open(ASTRONAUT).convert("RGB").resize(SIZE, Image.Resampling.LANCZOS)
    x, y, w, h = CAT_AT
    cat = Image.open(CAT).convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    canvas.paste(cat, (x, y))
    path = folder / "cat-beside-astronaut.png"
    canvas.save(path)
    return path


def iou_with_cat(mask: np.ndarray, cat_mask: np.ndarray) -> float:
    """IoU at 128 of ``mask`` over the pasted cat against ``cat_mask``, the core's mask of
    the cat photo alone at the pasted size."""
    x, y, w, h = CAT_AT
    got, want = mask[y:y + h, x:x + w] >= 128, cat_mask >= 128
    return float((got & want).sum() / max(1, (got | want).sum()))


def cat_alone_mask(masker) -> np.ndarray:  # noqa: ANN001 (a bgmask Masker)
    """The core's mask of the cat photo by itself, at the size it is pasted: what a hint
    around the pasted cat should find."""
    _, _, w, h = CAT_AT
    cat = Image.open(CAT).convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    return masker.mask(cat)
