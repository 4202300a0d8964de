"""The "best" setting: a second, brightened look at the photo, fused so that the plain view's
subject stays as confident as it is, plus a second look at a small subject.

u2netp finds subjects in well-exposed photos and misses or swaps them in dark ones (on the
grabcut dev photos, a gamma-0.7 copy alone lifts maxF from 0.813 to 0.895). Views: the photo as
the fast setting sees it, and a brightened copy (gamma 0.7) plain and mirrored. A pixel is
subject where the plain view says so, or where both brightened views agree:
``max(plain, min(bright, bright mirrored))``. So best never lowers what the fast setting is
sure of (the astronaut's helmet stays opaque: averaging views had made 15.6% of it
translucent), and a find of the brightened copy counts only when its mirror image confirms it
(alone, the brightened view's false finds cost MAE on the horse photos). A photo whose median
luma is mid-grey or brighter gets no brightened views: u2netp already sees its subject, and
brightening it washes the subject into a light background and adds background between a
horse's legs (dev horses MAE 0.0301 with, 0.0299 without, grabcut and alpha mattes unchanged).
Measured against the four geometric views fused by their upper median that this replaces: the
mirrored and letterboxed views lost the hair of a long-haired portrait (alpha set MAE 0.0996
against 0.0909 for fast). When the fused subject covers at most half of the picture, the same
views look again at its bounding box (with a margin) and that map is averaged in, so a small
subject is seen at more than a few dozen pixels. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

# A subject whose box (with margin) covers more than this share of the picture is already
# seen at the network's full resolution: no second look.
ZOOM_MAX_SHARE = 0.5
# Margin around the subject's box, as a share of its size on each side, plus a few pixels.
ZOOM_MARGIN = 0.15
ZOOM_MIN_MARGIN = 4
# The brightened view: each 8-bit value v becomes 255 * (v / 255) ** BRIGHTEN.
BRIGHTEN = 0.7
_BRIGHTEN_TABLE = (255.0 * (np.arange(256) / 255.0) ** BRIGHTEN + 0.5).astype(np.uint8)
# Pictures whose median luma (ITU-R 601, 8-bit) reaches this are not brightened.
BRIGHT_MEDIAN = 128

# (pixels, mirrored) -> the network's map of those pixels, in [0, 1], at the network's size.
RunView = Callable[[np.ndarray, bool], np.ndarray]
# A fused or single map -> the same map scaled by its peak and centred on its split.
Calibrate = Callable[[np.ndarray], np.ndarray]


def best_probability(run: RunView, rgb: np.ndarray, calibrate: Calibrate) -> np.ndarray:
    """The fused, calibrated map of ``rgb`` (H, W, 3) at (H, W)."""
    dark = is_dark(rgb)
    fused = calibrate(fused_views(run, rgb, dark))
    box = zoom_box(fused)
    if box is not None:
        x0, y0, x1, y1 = box
        near = calibrate(fused_views(run, np.ascontiguousarray(rgb[y0:y1, x0:x1]), dark))
        fused[y0:y1, x0:x1] = 0.5 * (fused[y0:y1, x0:x1] + near)
    return fused


def fused_views(run: RunView, rgb: np.ndarray, dark: bool) -> np.ndarray:
    """``max(plain, min(bright, bright mirrored))`` at (H, W), not yet calibrated; the plain
    view alone for a photo that is not ``dark``."""
    h, w = rgb.shape[:2]
    plain = _resized(run(rgb, False), w, h)
    if not dark:
        return plain
    bright = brightened(rgb)
    confirmed = np.minimum(_resized(run(bright, False), w, h), _resized(run(bright, True), w, h))
    return np.maximum(plain, confirmed)


def is_dark(rgb: np.ndarray) -> bool:
    """Whether the median luma of ``rgb`` (uint8) is below mid-grey."""
    luma = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))
    counts = np.cumsum(np.bincount(luma.ravel(), minlength=256))
    # The median from the histogram: the first level that half of the pixels reach.
    return int(np.searchsorted(counts, (luma.size + 1) // 2)) < BRIGHT_MEDIAN


def brightened(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (uint8) with its mid-tones lifted, black and white kept."""
    return _BRIGHTEN_TABLE[rgb]


def zoom_box(prob: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around the subject (prob >= 0.5) with a margin, or None when there is
    no subject or it already fills much of the picture."""
    rows, cols = np.nonzero(prob.max(axis=1) >= 0.5)[0], np.nonzero(prob.max(axis=0) >= 0.5)[0]
    if rows.size == 0:
        return None
    h, w = prob.shape
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    my = int(ZOOM_MARGIN * (y1 - y0)) + ZOOM_MIN_MARGIN
    mx = int(ZOOM_MARGIN * (x1 - x0)) + ZOOM_MIN_MARGIN
    y0, y1, x0, x1 = max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)
    if (y1 - y0) * (x1 - x0) > ZOOM_MAX_SHARE * h * w:
        return None
    return x0, y0, x1, y1


def _resized(prob: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(prob, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
