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


def foreground_colours(colours: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``colours`` (H, W, C): the colour channels of a picture (RGB, gray, any order; uint8,
    uint16, or float in 0..1, no alpha) with the soft band's pixels (0 < alpha < 255)
    replaced by an estimate of the subject's own colour, in the same type; every other pixel
    unchanged (the same array when there is no band)."""
    band = (alpha > 0) & (alpha < 255)
    if not band.any():
        return colours
    top = float(np.iinfo(colours.dtype).max) if colours.dtype.kind in "ui" else 1.0
    h, w = alpha.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.stack([_reduced(colours[:, :, c], size) for c in range(colours.shape[2])],
                     axis=2) * (1.0 / top)
    fg_mean, bg_mean = _local_means(small, _reduced(alpha, size) * (1.0 / 255.0))
    ys, xs = np.nonzero(band)
    a = (alpha[ys, xs].astype(np.float32) / 255.0)[:, None]
    image = colours[ys, xs].astype(np.float32) * (1.0 / top)
    # The smooth means at the band's pixels only, so a 12 MP picture costs its band.
    fg, bg = _at(fg_mean, ys, xs, h, w), _at(bg_mean, ys, xs, h, w)
    # The blend's residual, given back to the foreground in proportion to its share of it.
    f = (fg + a * (image - a * fg - (1.0 - a) * bg)) * top
    out = colours.copy()
    if colours.dtype.kind in "ui":
        out[ys, xs] = np.clip(f + 0.5, 0.0, top).astype(colours.dtype)
    else:  # float pictures may hold values above 1 (HDR): only negatives are impossible
        out[ys, xs] = np.maximum(f, 0.0)
    return out


def _reduced(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One channel as float32 at ``size`` (width, height), each pixel the mean of its box."""
    image = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BOX))


def _at(small: np.ndarray, ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
    """``small`` (h', w', C) upsampled bilinearly to (h, w), pixel centres aligned, edges
    held, at the pixels (ys, xs) only."""
    sh, sw = small.shape[:2]
    fy = np.clip((ys + 0.5) * (sh / h) - 0.5, 0.0, sh - 1.0)
    fx = np.clip((xs + 0.5) * (sw / w) - 0.5, 0.0, sw - 1.0)
    y0, x0 = fy.astype(np.intp), fx.astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, sh - 1), np.minimum(x0 + 1, sw - 1)
    dy, dx = (fy - y0).astype(np.float32)[:, None], (fx - x0).astype(np.float32)[:, None]
    top = small[y0, x0] * (1.0 - dx) + small[y0, x1] * dx
    bottom = small[y1, x0] * (1.0 - dx) + small[y1, x1] * dx
    return top * (1.0 - dy) + bottom * dy


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
