"""The bgmask command as a user runs it: files, folders, exit codes, bad inputs."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from .conftest import SAMPLE, bgmask_cli


def bgmask(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*bgmask_cli(), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    photo = Image.open(SAMPLE).convert("RGB").resize((256, 256))
    photo.save(folder / "a.jpg", quality=92)
    photo.save(folder / "b.png")
    photo.save(folder / "sub" / "c.png")
    return folder


def test_single_file_cutout_keeps_pixels_and_adds_alpha(model_dir, tmp_path, masker):
    out = tmp_path / "cut.png"
    result = bgmask(SAMPLE, "-o", out)
    assert result.returncode == 0, result.stderr
    cut = Image.open(out)
    assert cut.mode == "RGBA" and cut.size == (512, 512)
    original = np.asarray(Image.open(SAMPLE).convert("RGB"))
    assert np.array_equal(np.asarray(cut)[:, :, :3], original)
    assert np.array_equal(np.asarray(cut)[:, :, 3], masker.mask(SAMPLE))


def test_mask_only_and_lossless_webp(model_dir, tmp_path, masker):
    assert bgmask(SAMPLE, "--mask", "-o", tmp_path / "m.png").returncode == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), masker.mask(SAMPLE))
    assert bgmask(SAMPLE, "-o", tmp_path / "c.webp").returncode == 0
    webp = Image.open(tmp_path / "c.webp")
    assert webp.format == "WEBP" and webp.mode == "RGBA"
    assert np.array_equal(np.asarray(webp)[:, :, 3], masker.mask(SAMPLE))


def test_icc_profile_is_kept(model_dir, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "tagged.jpg"
    Image.open(SAMPLE).convert("RGB").save(src, icc_profile=icc)
    assert bgmask(src, "-o", tmp_path / "out.png").returncode == 0
    assert Image.open(tmp_path / "out.png").info.get("icc_profile") == icc


def test_folder_recursive_and_skip_existing(model_dir, photos, tmp_path):
    out = tmp_path / "out"
    flat = bgmask(photos, "-o", out, "--mask", "--jobs", "2")
    assert flat.returncode == 0, flat.stderr
    assert sorted(p.name for p in out.rglob("*.png")) == ["a.png", "b.png"]
    deep = bgmask(photos, "-o", out, "--mask", "-r", "--skip-existing")
    assert deep.returncode == 0
    assert (out / "sub" / "c.png").exists()
    assert "[1/1]" not in deep.stderr  # a single remaining file shows no batch line


def test_batch_line_has_count_and_eta(model_dir, photos, tmp_path):
    result = bgmask(photos, "-o", tmp_path / "o", "--mask")
    assert "[2/2] ETA" in result.stderr


def test_failures_are_summarised_and_the_rest_processed(model_dir, photos, tmp_path):
    (photos / "broken.jpg").write_bytes(Image.open(SAMPLE).convert("RGB").tobytes()[:100])
    (photos / "empty.png").write_bytes(b"")
    result = bgmask(photos, "-o", tmp_path / "out", "--mask")
    assert result.returncode == 1
    assert "2 written, 0 skipped, 2 failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "b.png").exists()
    assert not (tmp_path / "out" / "broken.png").exists()


def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = io.BytesIO()
    Image.open(SAMPLE).save(good, "PNG")
    jpeg = io.BytesIO()
    Image.open(SAMPLE).convert("RGB").save(jpeg, "JPEG")
    files = {
        "truncated.png": good.getvalue()[: len(good.getvalue()) // 2],
        "truncated.jpg": jpeg.getvalue()[:2000],
        "zero.png": b"",
        "text.png": b"hello, I am not a picture\n",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    bomb = tmp_path / "bomb.png"
    Image.new("L", (20000, 20000)).save(bomb, optimize=False, compress_level=1)
    paths["bomb.png"] = bomb
    return paths


def test_bad_inputs_give_one_clear_line_each(model_dir, tmp_path):
    for name, path in bad_files(tmp_path).items():
        result = bgmask(path, "-o", tmp_path / f"out-{name}.png")
        assert result.returncode == 1, name
        lines = [x for x in result.stderr.splitlines() if str(path) in x]
        assert len(lines) == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert not (tmp_path / f"out-{name}.png").exists()
    assert "decompression-bomb" in bgmask(tmp_path / "bomb.png", "-o", tmp_path / "x.png").stderr


def test_usage_errors_exit_2(tmp_path):
    assert bgmask(SAMPLE).returncode == 2  # no -o
    assert bgmask(SAMPLE, "-o", tmp_path / "x.png", "--threshold", "3").returncode == 2
    assert bgmask(SAMPLE, "-o", tmp_path / "x.jpg").returncode == 2  # JPEG has no alpha
    assert not (tmp_path / "x.jpg").exists()


def test_never_overwrites_an_input(model_dir, tmp_path):
    src = tmp_path / "photo.png"
    Image.open(SAMPLE).save(src)
    before = src.read_bytes()
    result = bgmask(src, "-o", src)
    assert result.returncode == 2 and "never overwrites" in result.stderr
    assert src.read_bytes() == before
    result = bgmask(tmp_path, "-o", tmp_path)
    assert result.returncode == 2 and src.read_bytes() == before


def test_unknown_model_is_one_line_not_a_traceback(model_dir, tmp_path):
    result = bgmask(SAMPLE, "-o", tmp_path / "x.png", "--model", "u3net")
    assert result.returncode == 1 and "unknown model 'u3net'" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_commands(model_dir):
    listed = bgmask("models", "list")
    assert listed.returncode == 0 and "u2netp" in listed.stdout
    assert "NON-COMMERCIAL" in listed.stdout
    assert bgmask("models", "path", "u2netp").stdout.strip() == str(model_dir / "u2netp.onnx")
    assert "u2netp: ok" in bgmask("models", "verify").stdout
