"""The best setting on real photos: confident subjects stay opaque, and it beats the default
where the default's single view fails."""

from __future__ import annotations

import numpy as np
import pytest
from bgmask.engine.pipeline import MaskOptions
from PIL import Image

from .conftest import EVALDATA, SAMPLE


def test_best_keeps_a_solid_subject_opaque(masker):
    """The astronaut's helmet: averaging the mirrored view made it about 70% opaque; of the
    pixels the default holds at 250 or more, at most 2% may fall below 200 with best."""
    default = masker.mask(SAMPLE)
    best = masker.mask(SAMPLE, MaskOptions(quality="best"))
    confident = default >= 250
    assert (best[confident] < 200).mean() <= 0.02
    assert best[:40, :40].mean() < 30  # background stays background


def test_best_keeps_a_dark_photos_solid_subject_opaque(masker):
    """The astronaut underexposed (median luma below mid-grey), so that best adds its brightened
    views: what the default is sure of stays so."""
    dark = (np.asarray(Image.open(SAMPLE).convert("RGB")) * 0.55).astype(np.uint8)
    default = masker.mask(dark)
    best = masker.mask(dark, MaskOptions(quality="best"))
    confident = default >= 250
    assert confident.mean() > 0.2
    assert (best[confident] < 200).mean() <= 0.02


def test_best_looks_at_a_brightened_copy_of_a_dark_photo_only():
    """A photo at mid-grey or brighter costs best one pass (and no false finds of a washed-out
    copy); a dark one gets the brightened copy, plain and mirrored."""
    from bgmask.engine.fusion import best_probability

    seen: list[tuple[float, bool]] = []

    def run(rgb: np.ndarray, mirrored: bool) -> np.ndarray:
        seen.append((float(rgb.mean()), mirrored))
        return np.zeros((320, 320), np.float32)  # no subject: no zoom pass

    photo = np.asarray(Image.open(SAMPLE).convert("RGB"))
    best_probability(run, photo, lambda p: p)
    assert len(seen) == 1
    seen.clear()
    dark = (photo * 0.55).astype(np.uint8)
    best_probability(run, dark, lambda p: p)
    assert [mirrored for _, mirrored in seen] == [False, False, True]
    assert seen[1][0] > seen[0][0] + 10  # the second and third look at a brighter copy


def test_best_beats_the_default_on_grabcut(masker):
    from bench.quality import score

    folder = EVALDATA / "grabcut"
    images = sorted((folder / "images").glob("*"))
    if not images:
        pytest.skip("no evaldata")
    results = {}
    for quality in ("fast", "best"):
        scores = []
        for image in images:
            gt = np.asarray(Image.open(next((folder / "masks").glob(image.stem + ".*")))
                            .convert("L"))
            mask = masker.mask(image, MaskOptions(quality=quality))
            scores.append(score(mask, gt, False, np.zeros(gt.shape, bool)))
        results[quality] = (np.mean([s["mae"] for s in scores]),
                            np.max(np.mean([s["f"] for s in scores], axis=0)))
    assert results["best"][0] < results["fast"][0], results
    assert results["best"][1] > results["fast"][1] + 0.04, results
