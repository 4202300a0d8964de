"""Copies an editor adapter, with the stdlib-only part of bgmask it imports, into a folder.

The adapters run inside the editors' own Pythons, which cannot import onnxruntime or numpy;
they import bgmask's client, protocol, errors, catalogue and adapter modules from a ``vendor``
copy made here, so every installed plug-in speaks exactly the protocol of the worker installed
beside it.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core" / "bgmask"
PLUGINS = REPO / "plugin"
# The modules the adapters import: each is standard library only (tests/test_adapters.py checks).
VENDORED = ("__init__.py", "errors.py", "protocol.py", "client.py", "hostconfig.py",
            "catalogue.py", "adapter.py", "sharedworker.py")
GIMP_NAME = "bgmask-gimp"
KRITA_NAME = "bgmask_krita"


def _copy(src: Path, dest: Path, written: list[Path]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    written.append(dest)


def _copy_tree(src: Path, dest: Path, written: list[Path]) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            _copy(path, dest / path.relative_to(src), written)


def _vendor(dest: Path, written: list[Path]) -> None:
    for name in VENDORED:
        _copy(CORE / name, dest / "bgmask" / name, written)


def stage_gimp(plugins_dir: Path) -> list[Path]:
    """``plugins_dir/bgmask-gimp/`` with its executable entry point; the files written."""
    written: list[Path] = []
    target = plugins_dir / GIMP_NAME
    _copy_tree(PLUGINS / "gimp" / GIMP_NAME, target, written)
    _vendor(target / "vendor", written)
    entry = target / f"{GIMP_NAME}.py"
    entry.chmod(entry.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return written


def stage_krita(pykrita_dir: Path) -> list[Path]:
    """``pykrita_dir/bgmask_krita/`` and its ``.desktop`` file; the files written."""
    written: list[Path] = []
    source = PLUGINS / "krita"
    _copy_tree(source / KRITA_NAME, pykrita_dir / KRITA_NAME, written)
    _copy(source / f"{KRITA_NAME}.desktop", pykrita_dir / f"{KRITA_NAME}.desktop", written)
    _vendor(pykrita_dir / KRITA_NAME / "vendor", written)
    return written
