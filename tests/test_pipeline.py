"""The real u2netp through the real onnxruntime: sizes, modes, options, and quality on photos."""

from __future__ import annotations

import numpy as np
import pytest
from bgmask.engine.pipeline import Masker, MaskOptions
from bgmask.host.errors import ImageError, UsageError
from PIL import Image

from .conftest import EVALDATA, SAMPLE


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(SAMPLE).convert("RGB")


@pytest.fixture(scope="module")
def reference(masker, photo) -> np.ndarray:
    return masker.mask(photo)


def test_mask_is_full_size_uint8_with_subject_and_background(reference, photo):
    assert reference.shape == (photo.height, photo.width) and reference.dtype == np.uint8
    # The astronaut fills the lower middle; the top corners are background.
    assert reference[380:500, 200:300].mean() > 200
    assert reference[:40, :40].mean() < 30
    assert ((reference > 0) & (reference < 255)).any(), "edges should stay soft"


@pytest.mark.parametrize("mode", ["RGBA", "L", "LA", "P", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_every_pil_mode_gives_a_matching_mask(masker, photo, reference, mode):
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257)
    elif mode == "F":
        converted = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.float32) / 255.0)
    else:
        converted = photo.convert(mode)
    mask = masker.mask(converted)
    assert mask.shape == reference.shape
    # Gray and palette versions lose colour, so allow some difference, but the subject stays.
    assert np.abs(mask.astype(int) - reference).mean() < (3 if mode in ("RGBA", "CMYK",
                                                                        "YCbCr") else 25)


def test_palette_with_transparency(masker, photo):
    p = photo.convert("P")
    p.info["transparency"] = 0
    assert masker.mask(p).shape == (photo.height, photo.width)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_arrays_of_each_depth_agree(masker, photo, reference, dtype):
    a = np.asarray(photo)
    if dtype == np.uint16:
        a = a.astype(np.uint16) * 257
    elif dtype == np.float32:
        a = a.astype(np.float32) / 255.0
    assert np.abs(masker.mask(a).astype(int) - reference).max() <= 2


def test_float_array_with_nan_and_inf_still_masks(masker, photo):
    a = np.asarray(photo).astype(np.float32) / 255.0
    a[:10] = np.nan
    a[10:20] = np.inf
    assert masker.mask(a).shape == a.shape[:2]


def test_exif_orientation_is_respected(masker, photo, reference, tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    photo.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    mask = masker.mask(path)
    assert mask.shape == reference.shape  # upright, as the user sees it
    assert np.abs(mask.astype(int) - reference).mean() < 4


def test_large_jpeg_is_masked_at_full_size(masker, photo, tmp_path):
    path = tmp_path / "big.jpg"
    photo.resize((4000, 3000)).save(path, quality=90)
    assert masker.mask(path).shape == (3000, 4000)


def test_an_empty_photo_gives_an_empty_mask(masker):
    # rembg's min-max stretch turns this into a full-range mask; ours must stay background.
    assert masker.mask(np.full((240, 320, 3), 128, np.uint8)).max() < 64


def test_options(masker, photo, reference):
    inverted = masker.mask(photo, MaskOptions(invert=True))
    assert np.abs(inverted.astype(int) + reference - 255).max() <= 1
    hard = masker.mask(photo, MaskOptions(threshold=0.5))
    assert set(np.unique(hard)) <= {0, 255}
    best = masker.mask(photo, MaskOptions(quality="best"))
    refined = masker.mask(photo, MaskOptions(refine=True))
    for other in (best, refined):
        assert other.shape == reference.shape
        assert not np.array_equal(other, reference)
        assert other[380:500, 200:300].mean() > 200 and other[:40, :40].mean() < 30


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"threshold": 0}, {"quality": "max"},
                                    {"contrast": -1}])
def test_out_of_range_options_are_refused(kwargs):
    with pytest.raises(UsageError):
        MaskOptions(**kwargs)


def test_bad_arrays_are_refused(masker):
    for bad in (np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 7), np.uint8),
                np.zeros((2, 2, 2, 2), np.uint8)):
        with pytest.raises(ImageError):
            masker.mask(bad)


def test_model_file_with_sidecar_and_no_store(model_file, tmp_path, monkeypatch, photo,
                                              reference):
    monkeypatch.setenv("BGMASK_MODEL_DIR", str(tmp_path / "nothing-here"))
    copy = tmp_path / "mine.onnx"
    copy.write_bytes(model_file.read_bytes())
    (tmp_path / "mine.onnx.json").write_text('{"size": 320, "centre_split": true}')
    assert np.array_equal(Masker(model_file=copy).mask(photo), reference)
    assert not (tmp_path / "nothing-here").exists()


# rembg 2.0.86 u2netp on these folders, from ../shared/evaldata/README.md: (MAE, maxF).
REMBG_FIGURES = {"alphamatting_lowres": (0.1004, 0.9071), "grabcut": (0.0587, 0.8124)}


@pytest.mark.parametrize("folder", sorted(REMBG_FIGURES))
def test_quality_on_real_photos_beats_rembg(masker, folder):
    """Default settings: lower MAE and higher maxF than rembg's u2netp on the whole folder
    (the two smaller sets; bench/run.py scores all three)."""
    from bench.quality import score

    images = sorted((EVALDATA / folder / "images").glob("*"))
    if not images:
        pytest.skip("no evaldata")
    scores = []
    for image in images:
        gt = np.asarray(Image.open(next((EVALDATA / folder / "masks").glob(image.stem + ".*")))
                        .convert("L"))
        no_band = np.zeros(gt.shape, bool)  # the edge-band score is not asserted here
        scores.append(score(masker.mask(image), gt, "alpha" in folder, no_band))
    mae = np.mean([s["mae"] for s in scores])
    max_f = np.max(np.mean([s["f"] for s in scores], axis=0))
    rembg_mae, rembg_max_f = REMBG_FIGURES[folder]
    assert mae < rembg_mae and max_f > rembg_max_f, (mae, max_f)
