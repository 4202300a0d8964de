"""What the bgmask command tells the person running it (issue 12, item 7): a line per input
saying what was written or skipped, the counts and the execution provider at the end, progress
drawn only on a terminal, and a usage error for several inputs into one file name."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from .conftest import SAMPLE, bgmask_cli
from .test_store import ModelServer


def bgmask(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*bgmask_cli(), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    photo = Image.open(SAMPLE).convert("RGB").resize((128, 128))
    photo.save(folder / "a.jpg", quality=92)
    photo.save(folder / "b.png")
    return folder


def test_a_single_input_says_what_it_wrote_and_on_which_provider(model_dir, tmp_path):
    out = tmp_path / "cut.png"
    result = bgmask(SAMPLE, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{SAMPLE} -> {out}\n"
    assert "bgmask: 1 written, 0 skipped, 0 failed (u2netp on CPUExecutionProvider)" \
        in result.stderr


def test_a_folder_run_names_each_output_and_counts_them(model_dir, photos, tmp_path):
    out = tmp_path / "out"
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = bgmask(photos, "-o", out, "--mask")
    assert result.returncode == 1
    assert sorted(result.stdout.splitlines()) == [f"{photos / 'a.jpg'} -> {out / 'a.png'}",
                                                  f"{photos / 'b.png'} -> {out / 'b.png'}"]
    assert "2 written, 0 skipped, 1 failed (u2netp on CPUExecutionProvider)" in result.stderr
    assert f"bgmask: {photos / 'broken.png'}: " in result.stderr


def test_skip_existing_reports_what_it_skipped(model_dir, photos, tmp_path):
    out = tmp_path / "out"
    assert bgmask(photos / "a.jpg", "-o", out, "--mask").returncode == 0
    result = bgmask(photos, "-o", out, "--mask", "--skip-existing")
    assert result.returncode == 0, result.stderr
    assert f"{photos / 'a.jpg'} -> {out / 'a.png'}: skipped, already there" in result.stdout
    assert f"{photos / 'b.png'} -> {out / 'b.png'}\n" in result.stdout
    assert "1 written, 1 skipped, 0 failed" in result.stderr
    again = bgmask(photos, "-o", out, "--mask", "--skip-existing")
    assert again.returncode == 0 and again.stdout.count("skipped, already there") == 2
    assert "0 written, 2 skipped, 0 failed" in again.stderr


def test_quiet_says_nothing_but_errors(model_dir, photos, tmp_path):
    result = bgmask(photos, "-o", tmp_path / "out", "--mask", "-q")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


@pytest.mark.parametrize("output", ["two.png", "two.webp", "two.jpg"])
def test_several_inputs_into_one_file_name_is_a_usage_error(photos, tmp_path, output):
    target = tmp_path / output
    for inputs in ([photos / "a.jpg", photos / "b.png"], [photos]):
        result = bgmask(*inputs, "-o", target)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "folder" in result.stderr
        assert not target.exists()


def test_an_existing_folder_with_an_image_suffix_is_still_a_folder(model_dir, photos, tmp_path):
    folder = tmp_path / "cutouts.png"
    folder.mkdir()
    result = bgmask(photos, "-o", folder, "--mask")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"]


def test_no_control_codes_in_a_log(model_dir, photos, tmp_path, model_file):
    """Not on a terminal (a log file, a pipe): no carriage returns or escape sequences, from
    the model download or from the batch progress."""
    server = ModelServer(model_file.read_bytes())
    try:
        env = {**os.environ, "BGMASK_MODEL_DIR": str(tmp_path / "empty-store"),
               "BGMASK_MODEL_MIRROR": server.url}
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
            env.pop(name, None)
        result = bgmask(photos, "-o", tmp_path / "out", "--mask", env=env)
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert "downloading the model" in result.stderr and "model downloaded" in result.stderr
    assert "[2/2] ETA" in result.stderr
    for text in (result.stdout, result.stderr):
        assert "\r" not in text and "\033" not in text


def test_progress_is_drawn_in_place_on_a_terminal(model_dir, photos, tmp_path, model_file):
    server = ModelServer(model_file.read_bytes())
    leader, follower = pty.openpty()
    try:
        env = {**os.environ, "BGMASK_MODEL_DIR": str(tmp_path / "empty-store"),
               "BGMASK_MODEL_MIRROR": server.url}
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
            env.pop(name, None)
        process = subprocess.Popen([*bgmask_cli(), str(photos), "-o", str(tmp_path / "out"),
                                    "--mask"], stdout=subprocess.DEVNULL, stderr=follower,
                                   env=env)
        os.close(follower)
        seen = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other side closed: bgmask has exited
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=120) == 0
    finally:
        server.close()
        os.close(leader)
    assert b"\r\033[Kdownloading model" in seen
    assert b"\r\033[K[1/2] ETA" in seen
