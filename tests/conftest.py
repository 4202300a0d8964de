"""Shared fixtures: the real u2netp model, real photos, and a worker command."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVALDATA = ROOT.parent / "shared" / "evaldata"
SAMPLE = ROOT / "samples" / "astronaut.png"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The store scripts/test.sh filled with the verified u2netp (fetched through bgmask)."""
    from bgmask.catalogue import get_record
    from bgmask.store import ModelStore, default_store_dir

    store = ModelStore(default_store_dir())
    record = get_record("u2netp")
    if not store.path_for(record).exists():
        pytest.exit(f"u2netp is not in {store.root}: run scripts/test.sh (it fetches it)", 2)
    store.verify(record)
    return store.root


@pytest.fixture(scope="session")
def model_file(model_dir: Path) -> Path:
    return model_dir / "u2netp.onnx"


@pytest.fixture(scope="session")
def masker(model_dir: Path):
    from bgmask.pipeline import Masker

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


def bgmask_cli() -> list[str]:
    exe = shutil.which("bgmask", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "bgmask"]
