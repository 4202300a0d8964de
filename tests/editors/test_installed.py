"""The installer end to end on Linux: install into a throw-away HOME, use the installed Krita
plug-in in the real Krita (no path into this checkout), upgrade, refuse a model fetch without
network, uninstall, and find the profile as it was, except for what Krita itself wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..photos import ASTRONAUT
from .krita_host import launch_driver, prepare_profile, require_krita
from .test_gimp import assert_close, cli_mask

pytestmark = pytest.mark.editors
REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "installers" / "install.py"
DRIVER = Path(__file__).resolve().parent / "krita_e2e_driver.py"


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for root in roots:
        if root.is_file():
            found[str(root)] = root.read_bytes()
        for p in sorted(root.rglob("*")) if root.is_dir() else []:
            found[str(p)] = p.read_bytes() if p.is_file() else None
    return found


def installer(env: dict[str, str], *args: str, wrap: list[str] | None = None
              ) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("XDG_", "BGMASK_", "VIRTUAL_ENV"))}
    # The system Python, as a user would run it; not the test venv.
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable
    return subprocess.run([*(wrap or []), python, str(INSTALLER), *args], capture_output=True,
                          text=True, env={**clean, **env}, timeout=600)


def test_install_use_upgrade_offline_uninstall(tmp_path, model_file):
    require_krita()
    profile, env = prepare_profile(tmp_path)
    gimp_profile = profile / "config" / "GIMP" / "3.0"
    gimp_profile.mkdir(parents=True)
    models = profile / "data" / "bgmask" / "models"
    models.mkdir(parents=True)
    shutil.copyfile(model_file, models / model_file.name)  # as if fetched once before
    watched = (profile / "config", profile / "data" / "krita")
    before = snapshot(*watched)

    first = installer(env)
    assert first.returncode == 0, first.stdout + first.stderr
    installed = snapshot(*watched)
    assert (gimp_profile / "plug-ins" / "bgmask-gimp" / "bgmask-gimp.py").exists()
    assert "enable_bgmask_krita=true" in (profile / "config" / "kritarc").read_text()

    photo = tmp_path / "photo.png"
    Image.open(ASTRONAUT).convert("RGB").save(photo)
    # No BGMASK_PYTHON: the plug-in finds the worker through what the installer wrote.
    run = launch_driver(profile, tmp_path / "work", DRIVER,
                        {"photo": str(photo), "scenarios": ["action"]}, {})
    action = run.results()["action"]
    assert action["ok"], action["message"]
    data = Path(action["mask"]["file"]).read_bytes()
    got = np.frombuffer(data, np.uint8).reshape(action["mask"]["height"],
                                                action["mask"]["width"])
    assert_close(got, cli_mask(photo, tmp_path))
    after_krita = snapshot(*watched)
    krita_wrote = {k for k, v in after_krita.items() if installed.get(k, b"-") != v}

    again = installer(env)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout

    if os.geteuid() == 0:  # a network namespace with no network at all
        shutil.rmtree(models)
        offline = installer(env, wrap=["unshare", "-n"])
        assert offline.returncode == 1
        assert "could not be fetched" in offline.stderr
        assert not list(models.glob("*.onnx")), "a model file appeared without a network"
        assert (profile / "config" / "bgmask" / "adapters.json").exists()

    removed = installer(env, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    after = snapshot(*watched)
    for path in sorted(set(before) | set(after)):
        if path in krita_wrote or "__pycache__" in path:
            continue
        assert before.get(path, "absent") == after.get(path, "absent"), path
    assert "enable_bgmask_krita" not in (profile / "config" / "kritarc").read_text()
    assert not (profile / "data" / "bgmask" / "env").exists()
