"""The "best" setting: several views of the photo through the network, fused so that what
the views agree on stays confident, plus a second look at a small subject.

Views: the photo squashed to the network's square (as the fast setting sees it), its mirror
image, and both again letterboxed (aspect ratio kept, edges replicated). Each map is brought
back to the working view's pixels and the four are fused per pixel by their upper median (the
second largest): a pixel is subject when at least two views say so. Averaging instead made
solid subjects translucent wherever one view missed them (the astronaut's helmet: 15.6% of the
fast setting's opaque pixels fell below 200; with the upper median none do), and a plain
maximum let one view's false find through. When the fused subject covers at most half of the
picture, the network looks again at its bounding box (with a margin) and that view is averaged
in, so a small subject is seen at more than a few dozen pixels. Figures: docs/benchmarks.md.
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

# (pixels, mirrored) -> the network's map of those pixels, in [0, 1], at the network's size.
RunView = Callable[[np.ndarray, bool], np.ndarray]
# A fused or single map -> the same map scaled by its peak and centred on its split.
Calibrate = Callable[[np.ndarray], np.ndarray]


def best_probability(run: RunView, rgb: np.ndarray, calibrate: Calibrate) -> np.ndarray:
    """The fused, calibrated map of ``rgb`` (H, W, 3) at (H, W)."""
    h, w = rgb.shape[:2]
    maps = [_resized(run(rgb, mirrored), w, h) for mirrored in (False, True)]
    maps += [_letterboxed(run, rgb, mirrored) for mirrored in (False, True)]
    fused = calibrate(np.sort(np.stack(maps), axis=0)[-2])
    box = zoom_box(fused)
    if box is not None:
        x0, y0, x1, y1 = box
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        near = [_resized(run(crop, mirrored), x1 - x0, y1 - y0) for mirrored in (False, True)]
        fused[y0:y1, x0:x1] = 0.5 * (fused[y0:y1, x0:x1] + calibrate(0.5 * (near[0] + near[1])))
    return fused


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


def _letterboxed(run: RunView, rgb: np.ndarray, mirrored: bool) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = np.pad(rgb, ((top, side - h - top), (left, side - w - left), (0, 0)), mode="edge")
    return _resized(run(square, mirrored), side, side)[top:top + h, left:left + w]


def _resized(prob: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(prob, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
