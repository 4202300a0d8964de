"""Edge colour decontamination: the foreground's own colour in a cutout's soft band.

A pixel at the edge is a blend ``I = a * F + (1 - a) * B`` of the subject's colour F and the old
background's B. A plain cutout keeps I, so B comes along wherever the cutout is placed. This
estimates F with Forte & Pitie's blur-fusion ("Approximate fast foreground colour estimation",
ICIP 2021): local alpha-weighted means of the foreground and background colours, corrected by
the pixel's own residual. The smooth means are computed on a reduced copy (they are blurs
anyway) and only the band's pixels are solved at full size, so a 12 MP cutout costs little
more than its band. Opaque pixels keep their colour exactly; transparent ones are left as
they are (invisible, and a mask edited later shows them as they were).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# The local means come from a reduced copy at most this long a side (the network's working view).
from .images import WORK_SIDE

# Blur radii of the two passes, as fractions of the reduced copy's longer side: a wide pass
# that reaches colours far from the band, then a narrow one for local colour (measured on
# alphamatting_lowres: narrower second passes did better, docs/benchmarks.md).
RADII = (0.06, 0.003)
_EPS = 1e-4


def foreground_colours(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with the soft band's pixels (0 < alpha < 255) replaced by an
    estimate of the subject's own colour; every other pixel unchanged."""
    band = (alpha > 0) & (alpha < 255)
    if not band.any():
        return rgb
    h, w = alpha.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small_rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX),
                           np.float32) / 255.0
    small_a = np.asarray(Image.fromarray(alpha).resize(size, Image.Resampling.BOX),
                         np.float32) / 255.0
    fg_mean, bg_mean = _local_means(small_rgb, small_a)
    # The smooth means at full size, in 8 bits (colours; a level is far below what shows).
    fg_full = np.asarray(Image.fromarray(_to_u8(fg_mean)).resize((w, h),
                                                                 Image.Resampling.BILINEAR))
    bg_full = np.asarray(Image.fromarray(_to_u8(bg_mean)).resize((w, h),
                                                                 Image.Resampling.BILINEAR))
    ys, xs = np.nonzero(band)
    a = (alpha[ys, xs].astype(np.float32) / 255.0)[:, None]
    image = rgb[ys, xs].astype(np.float32)
    fg, bg = fg_full[ys, xs].astype(np.float32), bg_full[ys, xs].astype(np.float32)
    # The blend's residual, given back to the foreground in proportion to its share of it.
    f = fg + a * (image - a * fg - (1.0 - a) * bg)
    out = rgb.copy()
    out[ys, xs] = np.clip(f + 0.5, 0.0, 255.0).astype(np.uint8)
    return out


def _local_means(image: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blur-fusion's two passes on the reduced copy: alpha-weighted local means of the
    foreground and background colours, each pass refining the previous estimates."""
    fg, bg = image, image
    side = max(a.shape)
    a3 = a[:, :, None]
    for fraction in RADII:
        r = max(1, round(fraction * side))
        blurred_a = _blur(a3, r)
        fg_mean = _blur(fg * a3, r) / (blurred_a + _EPS)
        bg_mean = _blur(bg * (1.0 - a3), r) / (1.0 - blurred_a + _EPS)
        residual = image - a3 * fg_mean - (1.0 - a3) * bg_mean
        fg = np.clip(fg_mean + a3 * residual, 0.0, 1.0)
        bg = np.clip(bg_mean + (1.0 - a3) * residual, 0.0, 1.0)
    return fg_mean, bg_mean


def _blur(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window clipped at the borders, all channels at once, one axis at
    a time (float32 running sums are exact enough on a copy of at most WORK_SIDE a side)."""
    for axis in (0, 1):
        n = x.shape[axis]
        sums = np.cumsum(x, axis=axis, dtype=np.float32)
        sums = np.concatenate([np.zeros_like(np.take(sums, [0], axis)), sums], axis=axis)
        hi = np.minimum(np.arange(n) + r + 1, n)
        lo = np.maximum(np.arange(n) - r, 0)
        shape = [1] * x.ndim
        shape[axis] = n
        x = (np.take(sums, hi, axis) - np.take(sums, lo, axis)) / (hi - lo).reshape(shape)
    return x


def _to_u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
