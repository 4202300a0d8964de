"""Edge colour decontamination: a cutout placed on a new background without the old one's
colour at its edge."""

from __future__ import annotations

import numpy as np
import pytest
from bgmask.engine.decontaminate import foreground_colours
from PIL import Image

from .conftest import EVALDATA, SAMPLE

GREEN = np.array([40, 200, 60], np.float32)
WHITE = np.array([230, 230, 235], np.float32)


def composite_errors(name: str) -> tuple[float, float]:
    """A true alpha matte's photo over green, cut out (plain and decontaminated), placed on
    white: the mean error in the soft band against the true composite on white, in levels."""
    folder = EVALDATA / "alphamatting_lowres"
    subject = np.asarray(Image.open(folder / "images" / name).convert("RGB"), np.float32)
    return errors_on_white(subject, np.asarray(Image.open(folder / "masks" / name).convert("L")))


def errors_on_white(subject: np.ndarray, alpha8: np.ndarray) -> tuple[float, float]:
    """``subject`` over green with ``alpha8``, cut out plain and decontaminated, placed on
    white: each one's mean error in the soft band against the true composite on white."""
    a = alpha8[:, :, None] / 255.0
    on_green = np.clip(a * subject + (1 - a) * GREEN + 0.5, 0, 255).astype(np.uint8)
    truth = a * subject + (1 - a) * WHITE
    band = (alpha8 > 0) & (alpha8 < 255)
    errors = []
    for colours in (on_green, foreground_colours(on_green, alpha8)):
        placed = a * colours.astype(np.float32) + (1 - a) * WHITE
        errors.append(float(np.abs(placed - truth)[band].mean()))
    return errors[0], errors[1]


@pytest.mark.parametrize("name", ["GT01.png", "GT07.png", "GT27.png"])
def test_a_decontaminated_edge_is_closer_to_the_true_composite(name):
    if not (EVALDATA / "alphamatting_lowres" / "images" / name).exists():
        pytest.skip("no evaldata")
    plain, cleaned = composite_errors(name)
    assert cleaned < 0.8 * plain, (plain, cleaned)


def test_the_samples_own_colours_leave_the_old_background_behind():
    """The repository's own photo (no evaldata needed) as the subject's colours, cut out by a
    disc with a 20 px soft edge, composited over green, cut out again and placed on white: the
    decontaminated edge is much closer to the photo truly placed on white."""
    subject = np.asarray(Image.open(SAMPLE).convert("RGB"), np.float32)
    h, w = subject.shape[:2]
    ys, xs = np.mgrid[:h, :w]
    alpha = np.clip((200 - np.hypot(ys - h / 2, xs - w / 2)) / 20, 0, 1)
    plain, cleaned = errors_on_white(subject, (alpha * 255 + 0.5).astype(np.uint8))
    assert cleaned < 0.8 * plain, (plain, cleaned)


def test_only_the_soft_band_changes():
    rgb = np.asarray(Image.open(SAMPLE).convert("RGB"))
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[100:400, 100:400] = 255
    alpha[100:400, 90:100] = 128
    out = foreground_colours(rgb, alpha)
    soft = (alpha > 0) & (alpha < 255)
    assert np.array_equal(out[~soft], rgb[~soft])
    assert not np.array_equal(out[soft], rgb[soft])
    assert foreground_colours(rgb, np.full(alpha.shape, 255, np.uint8)) is rgb


def test_the_cli_decontaminates_cutouts_and_never_masks(tmp_path):
    from bgmask.cli import main

    plain, clean = tmp_path / "plain.png", tmp_path / "clean.png"
    assert main([str(SAMPLE), "-o", str(plain), "-q"]) == 0
    assert main([str(SAMPLE), "--decontaminate", "-o", str(clean), "-q"]) == 0
    a, b = np.asarray(Image.open(plain)), np.asarray(Image.open(clean))
    assert np.array_equal(a[:, :, 3], b[:, :, 3])  # the same mask
    opaque = a[:, :, 3] == 255
    assert np.array_equal(a[opaque], b[opaque])
    assert not np.array_equal(a, b)
    # A mask has no colours to clean: asking for both is a usage error, nothing written.
    assert main([str(SAMPLE), "--mask", "--decontaminate", "-o", str(tmp_path / "m.png")]) == 2
    assert not (tmp_path / "m.png").exists()
