"""Shared fixtures: the real u2netp model, real photos, and a worker command."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from .photos import Photo, camera_photos

ROOT = Path(__file__).resolve().parent.parent
EVALDATA = ROOT.parent / "shared" / "evaldata"
SAMPLE = ROOT / "samples" / "astronaut.png"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The store scripts/test.sh filled with the verified u2netp (fetched through bgmask)."""
    from bgmask.engine.store import ModelStore, default_store_dir
    from bgmask.host.catalogue import get_record

    store = ModelStore(default_store_dir())
    record = get_record("u2netp")
    if not store.path_for(record).exists():
        pytest.exit(f"u2netp is not in {store.root}: run scripts/test.sh (it fetches it)", 2)
    store.verify(record)
    return store.root


@pytest.fixture(scope="session")
def sample_rgb() -> np.ndarray:
    """The repository's sample photo as (H, W, 3) uint8 pixels."""
    from PIL import Image

    return np.asarray(Image.open(SAMPLE).convert("RGB"))


@pytest.fixture(scope="session")
def sample_rgba() -> np.ndarray:
    """The repository's sample photo as (H, W, 4) uint8 pixels."""
    from PIL import Image

    return np.asarray(Image.open(SAMPLE).convert("RGBA"))


@pytest.fixture(scope="module")
def worker_client(model_dir: Path):
    """A worker client of this checkout's Python, its own worker for the module's tests."""
    from bgmask.host.channels import worker_command
    from bgmask.host.client import WorkerClient

    with WorkerClient.one_shot(worker_command(sys.executable)) as client:
        yield client


@pytest.fixture(scope="session")
def model_file(model_dir: Path) -> Path:
    return model_dir / "u2netp.onnx"


@pytest.fixture(scope="session")
def masker(model_dir: Path):
    from bgmask.engine.pipeline import Masker

    return Masker("u2netp")


@pytest.fixture
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model folder for tests that download."""
    root = tmp_path / "models"
    monkeypatch.setenv("BGMASK_MODEL_DIR", str(root))
    monkeypatch.delenv("BGMASK_MODEL_MIRROR", raising=False)
    return root


@pytest.fixture(scope="session")
def grabcut_photos() -> list[Path]:
    images = sorted((EVALDATA / "grabcut" / "images").glob("*"))
    if not images:
        pytest.skip("../shared/evaldata is not beside the project")
    return images


def interruptible() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a runner started in
    the background (``cmd &``, nohup) ignores SIGINT, its children inherit that, and Python
    then never raises KeyboardInterrupt, so Ctrl-C's behaviour would go untested."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def bgmask_cli() -> list[str]:
    exe = shutil.which("bgmask", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "bgmask"]


@dataclass(frozen=True)
class LocalUser:
    """Another local account, for tests of what one user can do to another's files."""

    name: str
    uid: int
    gid: int

    def command(self, *argv: str) -> list[str]:
        """``argv`` run as this user (setpriv: no shell, no login, no inherited groups)."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                *argv]

    def run(self, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*argv), capture_output=True, text=True,
                              timeout=120, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def second_user() -> LocalUser:
    """A second local user (created as root when missing); skips when not root."""
    if os.geteuid() != 0:
        pytest.skip("a second local user needs root to create (run the tests as root)")
    name = "bgmask-other"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        name], check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    return LocalUser(name, entry.pw_uid, entry.pw_gid)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every local user can write to, sticky like /tmp (each user's files stay theirs),
    reachable by others through 0755 parents."""
    folder = Path(tempfile.mkdtemp(prefix="bgmask-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def camera(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Photo]:
    """Camera-size photos (12 MP: a JPEG, a PNG with alpha, a 16-bit PNG) made from the
    photos the repository carries."""
    return camera_photos(tmp_path_factory.mktemp("camera"))


@pytest.fixture(scope="session")
def camera_expected(camera: dict[str, Photo], masker) -> dict[str, np.ndarray]:
    """The core's mask of each camera photo's decoded pixels: what an editor must match."""
    return {name: masker.mask(photo.pixels) for name, photo in camera.items()}


def assert_same_mask(got: np.ndarray, want: np.ndarray, mean_levels: float = 2.0) -> None:
    """``got`` is the mask the core computes (``want``) up to resampling: the same size, at
    most ``mean_levels`` of 255 apart on average. ``want`` must hold both subject and
    background, so an empty or full mask can never pass."""
    assert got.shape == want.shape, f"mask {got.shape[::-1]}, expected {want.shape[::-1]}"
    assert (want < 64).mean() > 0.05 and (want > 191).mean() > 0.05, "trivial expected mask"
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.mean() <= mean_levels, (
        f"mean difference {diff.mean():.2f} levels (mask mean {got.mean():.1f}, "
        f"expected {want.mean():.1f})")


def stop_worker(directory: Path) -> None:
    """Asks a background worker left running in ``directory`` to exit, as a newer client
    would."""
    from bgmask.host.background import stop_background_worker
    from bgmask.host.settings import RUNTIME_DIR, Settings

    stop_background_worker(Settings.read({RUNTIME_DIR: str(directory)}))


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> Iterator[Path]:
    """A background worker's folder of this test's own; its worker is stopped afterwards."""
    directory = tmp_path / "rt"
    monkeypatch.setenv("BGMASK_RUNTIME_DIR", str(directory))
    monkeypatch.setenv("BGMASK_PYTHON", sys.executable)
    monkeypatch.setenv("BGMASK_WORKER_IDLE", "30")
    yield directory
    stop_worker(directory)
