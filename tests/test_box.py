"""A box the user points at: the network looks only there, the mask is 0 outside."""

from __future__ import annotations

import numpy as np
import pytest
from bgmask.engine.pipeline import MaskOptions
from bgmask.host.errors import UsageError
from PIL import Image

from .conftest import EVALDATA, SAMPLE


def iou(mask: np.ndarray, truth: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """IoU at 0.5 inside ``box``, leaving out grabcut's unknown band (128)."""
    x, y, w, h = box
    mask, truth = mask[y:y + h, x:x + w], truth[y:y + h, x:x + w]
    known = truth != 128
    pred, subject = (mask >= 128) & known, (truth > 128) & known
    return float((pred & subject).sum() / (pred | subject).sum())


def test_a_box_rescues_the_scissors_the_network_missed(masker):
    """grabcut's scissors.JPG: on the whole photo the network picks the apples around them;
    a rectangle drawn around the scissors' handles gets the handles."""
    photo = EVALDATA / "grabcut" / "images" / "scissors.JPG"
    if not photo.exists():
        pytest.skip("no evaldata")
    truth = np.asarray(Image.open(EVALDATA / "grabcut" / "masks" / "scissors.bmp").convert("L"))
    box = (20, 150, 330, 300)  # the user's rough rectangle, handles and a lot of apples
    whole = masker.mask(photo)
    pointed = masker.mask(photo, MaskOptions(box=box))
    assert iou(whole, truth, box) < 0.1
    assert iou(pointed, truth, box) > 0.75
    outside = np.ones(truth.shape, bool)
    outside[150:450, 20:350] = False
    assert pointed[outside].max() == 0


def test_box_coordinates_are_the_masks_for_files_images_arrays_and_reduced_copies(masker):
    photo = Image.open(SAMPLE).convert("RGB")
    box = (180, 60, 200, 300)
    by_file = masker.mask(SAMPLE, MaskOptions(box=box))
    assert by_file.shape == (photo.height, photo.width)
    assert np.array_equal(by_file, masker.mask(photo, MaskOptions(box=box)))
    assert np.abs(masker.mask(np.asarray(photo), MaskOptions(box=box)).astype(int)
                  - by_file).max() <= 2
    # An editor may send a half-size copy and ask for the full-size mask: same box, same place.
    half = photo.resize((photo.width // 2, photo.height // 2))
    reduced = masker.mask(half, MaskOptions(box=box), size=photo.size)
    x, y, w, h = box
    assert reduced[:y].max() == 0 and reduced[y + h:].max() == 0
    assert (reduced[y:y + h, x:x + w] > 128).mean() > 0.3
    # Inverted, the outside is kept (255): the box holds the subject either way.
    inverted = masker.mask(photo, MaskOptions(box=box, invert=True))
    assert inverted[:y].min() == 255


@pytest.mark.parametrize("box", [(0, 0, 513, 10), (500, 500, 20, 20), (0, 0, 0, 5),
                                 (-1, 0, 5, 5), (0, 0, 5), (0, 0, 5.5, 5), "0,0,5,5"])
def test_a_box_outside_the_image_or_empty_is_a_usage_error(masker, box):
    with pytest.raises(UsageError, match="box"):
        masker.mask(SAMPLE, MaskOptions(box=box))


def test_the_cli_takes_a_box(tmp_path):
    from bgmask.cli import main

    out = tmp_path / "mask.png"
    assert main([str(SAMPLE), "--mask", "--box", "180,60,200,300", "-o", str(out), "-q"]) == 0
    mask = np.asarray(Image.open(out))
    assert mask[:60].max() == 0 and mask[60:360, 180:380].max() > 200
    assert main([str(SAMPLE), "--box", "1,2,3", "-o", str(tmp_path / "x.png"), "-q"]) == 2


def test_a_box_rescues_the_small_cat_beside_the_astronaut(masker, tmp_path):
    """samples/ only (no evaldata): on a small cat pasted beside the big astronaut the network
    picks the astronaut and misses the cat; ``--box`` around the cat gets it, 0 outside. The
    editors' selection hint is checked against this same mask (tests/editors/test_gimp.py)."""
    from bgmask.cli import main

    from .hint_photo import BOX, cat_alone_mask, cat_beside_astronaut, iou_with_cat

    photo = cat_beside_astronaut(tmp_path)
    whole, pointed = tmp_path / "whole.png", tmp_path / "pointed.png"
    assert main([str(photo), "--mask", "-o", str(whole), "-q"]) == 0
    assert main([str(photo), "--mask", "--box", ",".join(map(str, BOX)), "-o", str(pointed),
                 "-q"]) == 0
    whole_mask, pointed_mask = np.asarray(Image.open(whole)), np.asarray(Image.open(pointed))
    cat = cat_alone_mask(masker)
    assert iou_with_cat(whole_mask, cat) < 0.1
    assert (whole_mask > 128).mean() > 0.2  # it found the astronaut instead
    assert iou_with_cat(pointed_mask, cat) > 0.9
    x, y, w, h = BOX
    inside = np.zeros(pointed_mask.shape, bool)
    inside[y:y + h, x:x + w] = True
    assert pointed_mask[~inside].max() == 0
