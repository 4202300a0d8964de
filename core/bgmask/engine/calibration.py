"""Re-centring a probability map on the photo's own split between subject and background.

A network's 0.5 is not the same boundary on every photo: on one the subject sits at 0.9 and
the background at 0.3, on another at 0.6 and 0.05. The map's own split (Otsu's threshold on
its histogram) is moved to 0.5 by a monotonic, piecewise-linear map that keeps 0 and 1 where
they are, so the soft ramp, the contrast curve and any hard threshold all centre on that
photo's edge. Measured on ../shared/evaldata: maxF up on every set, MAE still below rembg's
(docs/benchmarks-notes.md).
"""

from __future__ import annotations

import numpy as np

# A split this close to 0 or 1 says the map is nearly all one class; moving it to 0.5 would
# stretch noise, so it is held inside these bounds.
SPLIT_RANGE = (0.05, 0.95)
LEVELS = 256


def split_level(prob: np.ndarray) -> float:
    """Otsu's threshold of a map in [0, 1]: the level that best separates its two classes."""
    bins = np.minimum((prob * LEVELS).astype(np.intp), LEVELS - 1)
    counts = np.bincount(bins.ravel(), minlength=LEVELS).astype(np.float64)
    below = counts.cumsum()
    above = below[-1] - below
    moment = (counts * np.arange(LEVELS)).cumsum()
    mean_below = moment / np.maximum(below, 1.0)
    mean_above = (moment[-1] - moment) / np.maximum(above, 1.0)
    spread = below * above * (mean_below - mean_above) ** 2
    return (int(np.argmax(spread)) + 1) / LEVELS


def centre_on_split(prob: np.ndarray) -> np.ndarray:
    """``prob`` with its split level moved to 0.5, 0 and 1 fixed, order of values kept."""
    split = min(max(split_level(prob), SPLIT_RANGE[0]), SPLIT_RANGE[1])
    low = prob * (0.5 / split)
    high = 0.5 + (prob - split) * (0.5 / (1.0 - split))
    return np.where(prob < split, low, high).astype(np.float32, copy=False)
