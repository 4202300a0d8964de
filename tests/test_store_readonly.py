"""A model folder that cannot be written (a read-only mount, a folder an administrator filled):
a model that is there and hashes right is used; anything that needs a write says, in one line,
to set BGMASK_MODEL_DIR to a writable folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from .conftest import SAMPLE, bgmask_cli


class ReadOnlyStore:
    """A store folder to fill, then ``lock()`` makes it read-only for whoever runs the test
    (root ignores mode bits, so as root it becomes a read-only bind mount of itself)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mounted = False

    def lock(self) -> Path:
        if os.geteuid() == 0:
            subprocess.run(["mount", "--bind", str(self.folder), str(self.folder)], check=True)
            self.mounted = True
            subprocess.run(["mount", "-o", "remount,bind,ro", str(self.folder)], check=True)
        else:
            self.folder.chmod(0o555)
        probe = self.folder / ".probe"
        with pytest.raises(OSError):
            probe.write_bytes(b"")
        return self.folder


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[ReadOnlyStore]:
    store = ReadOnlyStore(tmp_path / "models")
    store.folder.mkdir()
    yield store
    if store.mounted:
        subprocess.run(["umount", str(store.folder)], check=True)
    store.folder.chmod(0o755)


def bgmask(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BGMASK_MODEL_DIR": str(store)}
    env.pop("BGMASK_MODEL_MIRROR", None)
    return subprocess.run([*bgmask_cli(), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bgmask: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("memo", ["remembered", "absent"])
def test_a_model_in_a_read_only_folder_is_used(read_only_store, model_file, tmp_path, memo):
    """'absent': the folder was filled by hand (or an administrator copied the file), so the
    model is hashed now, and used, though that cannot be remembered."""
    from bgmask.engine.store import ModelStore
    from bgmask.host.catalogue import get_record

    if memo == "remembered":
        ModelStore(read_only_store.folder).import_file(get_record("u2netp"), model_file)
    else:
        shutil.copyfile(model_file, read_only_store.folder / "u2netp.onnx")
    store = read_only_store.lock()
    out = tmp_path / "cutout.png"
    result = bgmask(store, str(SAMPLE), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert Image.open(out).mode == "RGBA"
    verify = bgmask(store, "models", "verify", "u2netp")
    assert verify.returncode == 0 and "u2netp: ok" in verify.stdout, verify.stderr


def test_a_damaged_model_in_a_read_only_folder_is_refused(read_only_store, model_file, tmp_path):
    data = bytearray(model_file.read_bytes())
    data[5000] ^= 1
    (read_only_store.folder / "u2netp.onnx").write_bytes(bytes(data))
    store = read_only_store.lock()
    line = one_line_error(bgmask(store, str(SAMPLE), "-o", str(tmp_path / "c.png")))
    assert "is damaged or not the expected file" in line


@pytest.mark.parametrize("args", [
    ("{sample}", "-o", "{out}"),
    ("models", "fetch", "u2netp"),
    ("models", "fetch", "u2netp", "--force"),
    ("models", "fetch", "u2netp", "--from", "{model}"),
], ids=["first-use", "fetch", "fetch-force", "fetch-from"])
def test_what_needs_a_write_says_where_to_put_the_store_instead(read_only_store, model_file,
                                                               tmp_path, args):
    if "--force" in args:
        shutil.copyfile(model_file, read_only_store.folder / "u2netp.onnx")
    store = read_only_store.lock()
    argv = [a.format(sample=SAMPLE, out=tmp_path / "c.png", model=model_file) for a in args]
    line = one_line_error(bgmask(store, *argv))
    assert f"cannot write the model u2netp into {store}" in line
    assert "set BGMASK_MODEL_DIR to a folder you can write to" in line
