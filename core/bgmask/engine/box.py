"""A box the user points at: the network looks only inside it and the mask is 0 outside.

A box is a plain (x, y, width, height) in the pixel coordinates of the mask being made (the
input's own, or the full size a reduced copy stands for), so a command line, the Python API
and an editor's selection can all give one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from PIL import Image, ImageOps

from ..host.errors import ImageError, UsageError
from .images import decoding, upright_size

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

Box = tuple[int, int, int, int]


def parse_box(text: str) -> Box:
    """``"X,Y,W,H"`` (whole pixels) as a box; a UsageError naming the form otherwise."""
    parts = text.split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise UsageError(f"--box takes X,Y,W,H in whole pixels (e.g. 120,40,300,420), "
                         f"not {text!r}")
    return values


def validate_box(box: object) -> Box:
    """Four whole numbers, origin at or right/below 0, width and height at least 1."""
    if not isinstance(box, (tuple, list)) or len(box) != 4 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in box):
        raise UsageError(f"box must be four whole numbers (x, y, width, height), not {box!r}")
    x, y, w, h = (int(v) for v in box)
    if w < 1 or h < 1:
        raise UsageError(f"box {x},{y},{w},{h} is empty: give a width and height of 1 or more")
    if x < 0 or y < 0:
        raise UsageError(f"box {x},{y},{w},{h} starts outside the image: x and y must be 0 "
                         "or more")
    return x, y, w, h


def check_inside(box: Box, width: int, height: int) -> None:
    x, y, w, h = box
    if x + w > width or y + h > height:
        raise UsageError(f"box {x},{y},{w},{h} reaches outside the {width}x{height} image: "
                         f"keep x+width <= {width} and y+height <= {height}")


def source_size(source: object) -> tuple[int, int]:
    """(width, height) of a path (as bgmask sees it: upright), PIL image or array."""
    if isinstance(source, (str, Path)):
        return upright_size(source)
    if isinstance(source, Image.Image):
        return source.size
    shape = np.shape(cast("ArrayLike", source))  # an array, or anything numpy reads as one
    if len(shape) < 2:
        raise ImageError(f"an image array must be HxW or HxWxC, not {shape}")
    return shape[1], shape[0]


def crop_source(source: object, box: Box, full: tuple[int, int]) -> Image.Image | np.ndarray:
    """The part of ``source`` under ``box`` (given in ``full``'s coordinates; ``source`` may
    be a reduced copy of that picture, then the box is scaled to it)."""
    width, height = source_size(source)
    sx, sy = width / full[0], height / full[1]
    x, y, w, h = box
    x0, y0 = min(int(x * sx), width - 1), min(int(y * sy), height - 1)
    x1, y1 = max(x0 + 1, round((x + w) * sx)), max(y0 + 1, round((y + h) * sy))
    if isinstance(source, (str, Path)):
        with decoding(source) as image:
            return ImageOps.exif_transpose(image).crop((x0, y0, x1, y1))
    if isinstance(source, Image.Image):
        return source.crop((x0, y0, x1, y1))
    return np.asarray(source)[y0:y1, x0:x1]
