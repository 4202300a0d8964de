"""Writing results: the mask alone, or the photo with the mask as its alpha channel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageError
from .images import open_image, to_rgb8

SUFFIXES = {".png": "PNG", ".webp": "WEBP"}


def output_format(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: write .png or .webp (masks and cutouts need lossless alpha)")
    return fmt


def save_mask(mask: np.ndarray, path: Path) -> None:
    _save(Image.fromarray(mask, mode="L"), path, icc=None)


def save_cutout(source: Path, mask: np.ndarray, path: Path) -> None:
    """The source photo, upright, with ``mask`` as alpha; its ICC profile is carried over."""
    original = open_image(source)
    icc = original.info.get("icc_profile")
    rgb = to_rgb8(ImageOps.exif_transpose(original))
    if rgb.size != (mask.shape[1], mask.shape[0]):
        raise ImageError(f"{source}: the mask does not match the image size")
    rgb.putalpha(Image.fromarray(mask, mode="L"))  # our own freshly decoded copy
    _save(rgb, path, icc)


def _save(image: Image.Image, path: Path, icc: bytes | None) -> None:
    """Write to a temporary name and rename, so an interrupted run leaves no half file."""
    fmt = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    options: dict[str, object] = {"icc_profile": icc} if icc else {}
    if fmt == "WEBP":
        options.update(lossless=True, quality=100, exact=True)
    try:
        image.save(tmp, fmt, **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
