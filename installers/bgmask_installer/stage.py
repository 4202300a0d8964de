"""Copies an editor adapter, with the stdlib-only part of bgmask it imports, into a folder.

The adapters run inside the editors' own Pythons, which cannot import onnxruntime or numpy;
they import bgmask's editor-side tier, ``bgmask.host`` (standard library only, and nothing
outside its folder: tests/test_tiers.py checks), from a ``vendor`` copy of the whole folder
made here, so every installed plug-in speaks exactly the protocol of the worker installed
beside it.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST_TIER = REPO / "core" / "bgmask" / "host"
PLUGINS = REPO / "plugin"
# The vendored package holds only the host tier: its __init__ must not offer the engine.
VENDOR_INIT = '"""bgmask\'s editor-side tier (``bgmask.host``), copied here by the installer."""\n'
# Where a plug-in's copy of the host tier goes, inside the plug-in's folder.
VENDORED_HOST = Path("vendor", "bgmask", "host")
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


def _vendor(plugin_dir: Path, written: list[Path]) -> None:
    host = plugin_dir / VENDORED_HOST
    host.mkdir(parents=True, exist_ok=True)
    (host.parent / "__init__.py").write_text(VENDOR_INIT, encoding="utf-8")
    written.append(host.parent / "__init__.py")
    _copy_tree(HOST_TIER, host, written)


def stage_gimp(plugins_dir: Path) -> list[Path]:
    """``plugins_dir/bgmask-gimp/`` with its executable entry point; the files written."""
    written: list[Path] = []
    target = plugins_dir / GIMP_NAME
    _copy_tree(PLUGINS / "gimp" / GIMP_NAME, target, written)
    _vendor(target, written)
    entry = target / f"{GIMP_NAME}.py"
    entry.chmod(entry.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return written


def stage_krita(pykrita_dir: Path) -> list[Path]:
    """``pykrita_dir/bgmask_krita/`` and its ``.desktop`` file; the files written."""
    written: list[Path] = []
    source = PLUGINS / "krita"
    _copy_tree(source / KRITA_NAME, pykrita_dir / KRITA_NAME, written)
    _copy(source / f"{KRITA_NAME}.desktop", pykrita_dir / f"{KRITA_NAME}.desktop", written)
    _vendor(pykrita_dir / KRITA_NAME, written)
    return written
