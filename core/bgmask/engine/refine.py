"""Edge refinement: a guided filter whose coefficients are fitted at working resolution and
applied to the full-resolution luma strip by strip (He & Sun's "fast guided filter").

The network sees 320 px; the photo may have 8000. Fitting ``mask ~ a * luma + b`` locally
lets the photo's own edges sharpen the upsampled mask, while the only full-size arrays are the
caller's luma and the output, never a float copy of the whole image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

# Rows per strip when applying coefficients at full size: bounds the float temporaries to a
# few MB whatever the image height.
STRIP_PIXELS = 2_000_000


def box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, the window clipped at the borders (O(1) per pixel)."""
    h, w = x.shape
    c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0))), axis=0, dtype=np.float64), axis=1)
    y0 = np.clip(np.arange(h) - r, 0, h)
    y1 = np.clip(np.arange(h) + r + 1, 0, h)
    x0 = np.clip(np.arange(w) - r, 0, w)
    x1 = np.clip(np.arange(w) + r + 1, 0, w)
    s = c[y1][:, x1] - c[y0][:, x1] - c[y1][:, x0] + c[y0][:, x0]
    n = np.outer(y1 - y0, x1 - x0)
    return (s / n).astype(np.float32)


def guided_coefficients(guide: np.ndarray, p: np.ndarray, r: int,
                        eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (a, b) so that ``a * guide + b`` follows ``p`` and the guide's edges."""
    mean_i = box_mean(guide, r)
    mean_p = box_mean(p, r)
    var_i = box_mean(guide * guide, r) - mean_i * mean_i
    cov_ip = box_mean(guide * p, r) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, r), box_mean(b, r)


def upsample_to_uint8(planes: list[np.ndarray], width: int, height: int,
                      combine: Callable[[list[np.ndarray], int, int], np.ndarray],
                      out: np.ndarray) -> None:
    """Bilinear-upsample float planes to (height, width) strip by strip; ``combine(rows,
    y0, y1)`` turns the upsampled planes of rows y0..y1 into values in [0, 1]."""
    h_lo, w_lo = planes[0].shape
    images = [Image.fromarray(np.ascontiguousarray(p, dtype=np.float32), mode="F")
              for p in planes]
    rows = max(1, STRIP_PIXELS // max(width, 1))
    sy = h_lo / height
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        box = (0.0, y0 * sy, float(w_lo), y1 * sy)
        strip = [np.array(im.resize((width, y1 - y0), Image.Resampling.BILINEAR, box=box))
                 for im in images]
        values = combine(strip, y0, y1)
        np.multiply(np.clip(values, 0.0, 1.0, out=values), 255.0, out=values)
        values += 0.5
        out[y0:y1] = values.astype(np.uint8)


def upsample_uint8(plane: np.ndarray, width: int, height: int, out: np.ndarray,
                   lut: list[int] | None = None) -> None:
    """Bilinear-upsample an 8-bit plane into ``out`` (height, width) strip by strip, then map
    each value through ``lut`` (256 entries), all in Pillow's integer code: the cheap path when
    no full-size guide is involved."""
    h_lo, w_lo = plane.shape
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.uint8), mode="L")
    rows = max(1, 4 * STRIP_PIXELS // max(width, 1))
    sy = h_lo / height
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        box = (0.0, y0 * sy, float(w_lo), y1 * sy)
        strip = image.resize((width, y1 - y0), Image.Resampling.BILINEAR, box=box)
        out[y0:y1] = np.asarray(strip.point(lut) if lut is not None else strip)
