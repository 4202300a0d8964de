"""Nothing of a user's is kept or queued for upload outside what they asked for."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from PIL import Image

from .conftest import SAMPLE, bgmask_cli


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_a_cutout_writes_only_the_output_and_records_no_usage_events(model_dir, tmp_path):
    # onnxruntime 1.32 keeps a usage-event database (executable path, model file name, a
    # device id) under the user's cache folder, queued for upload, unless it is switched off.
    home = tmp_path / "home"
    home.mkdir()
    photo = tmp_path / "photo.jpg"
    Image.open(SAMPLE).convert("RGB").save(photo)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("XDG_", "ORT_"))}
    env.update(HOME=str(home), BGMASK_MODEL_DIR=str(model_dir))
    done = subprocess.run([*bgmask_cli(), str(photo), "-o", str(tmp_path / "cut.png")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cut.png").is_file()
    assert files_under(home) == set()
