"""The per-user installer: editor detection on each system (fake folder trees), kritarc
editing, the staged plug-ins, the zips, and the refusals that must change nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installers"))
from bgmask_installer import kritarc  # noqa: E402
from bgmask_installer.paths import (  # noqa: E402
    Platform,
    bgmask_data_dir,
    gimp_profiles,
    krita_places,
)
from bgmask_installer.stage import stage_gimp, stage_krita  # noqa: E402

INSTALLER = ROOT / "installers" / "install.py"


def tree(base: Path, *paths: str) -> None:
    for p in paths:
        target = base / p
        if p.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("x")


def test_windows_layout(tmp_path):
    tree(tmp_path, "Roaming/GIMP/3.0/", "Roaming/GIMP/3.2/", "Roaming/GIMP/2.10/",
         "Roaming/krita/", "Local/kritarc")
    p = Platform("win32", {"APPDATA": str(tmp_path / "Roaming"),
                           "LOCALAPPDATA": str(tmp_path / "Local")}, tmp_path)
    assert [d.name for d in gimp_profiles(p)] == ["3.0", "3.2"]
    [krita] = krita_places(p)
    assert krita.resources == tmp_path / "Roaming/krita"
    assert krita.kritarc == tmp_path / "Local/kritarc"
    assert bgmask_data_dir(p) == tmp_path / "Local/bgmask"


def test_macos_layout(tmp_path):
    tree(tmp_path, "Library/Application Support/GIMP/3.0/",
         "Library/Application Support/krita/", "Library/Preferences/kritarc")
    p = Platform("darwin", {}, tmp_path)
    assert gimp_profiles(p) == [tmp_path / "Library/Application Support/GIMP/3.0"]
    [krita] = krita_places(p)
    assert krita.kritarc == tmp_path / "Library/Preferences/kritarc"
    assert bgmask_data_dir(p) == tmp_path / "Library/Application Support/bgmask"


def test_linux_layout_with_flatpaks_and_xdg_overrides(tmp_path):
    tree(tmp_path, "cfg/GIMP/3.0/", ".var/app/org.gimp.GIMP/config/GIMP/3.0/",
         ".var/app/org.kde.krita/data/krita/", "data/krita/")
    p = Platform("linux", {"XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                           "XDG_DATA_HOME": str(tmp_path / "data")}, tmp_path)
    assert gimp_profiles(p) == [tmp_path / "cfg/GIMP/3.0",
                                tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.0"]
    assert [k.resources for k in krita_places(p)] == [
        tmp_path / "data/krita", tmp_path / ".var/app/org.kde.krita/data/krita"]
    assert krita_places(p)[0].kritarc == tmp_path / "cfg/kritarc"


def test_no_editor_found_on_a_bare_home(tmp_path):
    p = Platform("linux", {}, tmp_path)
    assert gimp_profiles(p) == [] and krita_places(p) == []


KRITARC = """MaxBrushSize=1000
[General]
LastPreset=Basic_tip_default
[python]
enable_scripter=true
[advancedColorSelector]
shadeSelectorType=MyPaint
"""


def test_kritarc_edit_keeps_every_other_line_and_undoes_exactly():
    enabled = kritarc.set_plugin_enabled(KRITARC, "bgmask_krita")
    assert "enable_bgmask_krita=true" in enabled.split("[python]")[1].split("[")[0]
    assert enabled.startswith("MaxBrushSize=1000\n")  # a key before the first group survives
    assert kritarc.set_plugin_enabled(enabled, "bgmask_krita") == enabled  # idempotent
    assert kritarc.remove_plugin(enabled, "bgmask_krita") == KRITARC
    bare = "MaxBrushSize=1000\n"
    added = kritarc.set_plugin_enabled(bare, "bgmask_krita")
    assert kritarc.remove_plugin(added, "bgmask_krita", drop_empty_group=True) == bare


def test_staged_plugins_import_only_the_standard_library(tmp_path):
    gimp = stage_gimp(tmp_path / "gimp")
    stage_krita(tmp_path / "krita")
    entry = tmp_path / "gimp" / "bgmask-gimp" / "bgmask-gimp.py"
    assert entry in gimp and os.access(entry, os.X_OK)
    assert entry.read_text().startswith("#!/usr/bin/env python3\n")
    for vendor in (tmp_path / "gimp/bgmask-gimp/vendor", tmp_path / "krita/bgmask_krita/vendor"):
        # -I -S: no site-packages at all, as in an editor's bare Python.
        # Every module of the copied tier, imported: nothing the editor lacks is reached.
        names = sorted(p.stem for p in (vendor / "bgmask" / "host").glob("*.py"))
        assert {"client", "job", "channels", "background", "settings"} <= set(names)
        code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); "
                "[importlib.import_module('bgmask.host.' + n) for n in sys.argv[2:]]; "
                "assert not {'numpy', 'onnxruntime', 'PIL'} & set(sys.modules), sys.modules")
        subprocess.run([sys.executable, "-I", "-S", "-c", code, str(vendor), *names],
                       check=True)
        # The copy offers only the host tier: nothing in it points at the engine.
        assert "engine" not in (vendor / "bgmask" / "__init__.py").read_text()


def test_manual_install_zips(tmp_path):
    subprocess.run([sys.executable, str(INSTALLER), "--zip", str(tmp_path)], check=True,
                   capture_output=True)
    krita = zipfile.ZipFile(tmp_path / "bgmask-krita.zip").namelist()
    assert {"bgmask_krita.desktop", "bgmask_krita.action", "bgmask_krita/__init__.py",
            "bgmask_krita/vendor/bgmask/host/client.py"} <= set(krita)
    gimp = zipfile.ZipFile(tmp_path / "bgmask-gimp.zip")
    info = gimp.getinfo("bgmask-gimp/bgmask-gimp.py")
    assert (info.external_attr >> 16) & 0o111, "the GIMP entry point must stay executable"


def run_installer(home: Path, *args: str, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "BGMASK_"))}
    return subprocess.run([sys.executable, str(INSTALLER), *args], capture_output=True,
                          text=True, env={**clean, "HOME": str(home), **(env or {})})


def snapshot(base: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(base)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(base.rglob("*"))}


def test_missing_editor_is_a_clear_error_and_changes_nothing(tmp_path):
    before = snapshot(tmp_path)
    result = run_installer(tmp_path)
    assert result.returncode == 1
    assert "neither GIMP 3 nor Krita was found" in result.stderr
    result = run_installer(tmp_path, "--gimp")
    assert result.returncode == 1 and "GIMP 3 was not found" in result.stderr
    assert snapshot(tmp_path) == before


def test_dry_run_names_every_path_and_changes_nothing(tmp_path):
    tree(tmp_path, ".config/GIMP/3.0/", ".local/share/krita/")
    before = snapshot(tmp_path)
    result = run_installer(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / ".config/GIMP/3.0/plug-ins/bgmask-gimp") in result.stdout
    assert str(tmp_path / ".local/share/krita/pykrita/bgmask_krita") in result.stdout
    assert str(tmp_path / ".config/kritarc") in result.stdout
    assert snapshot(tmp_path) == before


@pytest.fixture
def read_only(tmp_path):
    """A folder the installer cannot write, whoever runs the test (root ignores mode bits)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_read_only_profile_is_refused_before_anything_changes(tmp_path, read_only):
    tree(tmp_path, ".local/share/krita/")
    before = snapshot(tmp_path)
    result = run_installer(tmp_path, "--gimp-profile", str(read_only))
    assert result.returncode == 1
    assert f"cannot write to {read_only}" in result.stderr
    assert snapshot(tmp_path) == before


# Runs install.py in a Python whose ensurepip cannot be imported, as on Debian or Ubuntu
# without the python3.X-venv package.
WITHOUT_ENSUREPIP = ("import runpy, sys; sys.modules['ensurepip'] = None; "
                     "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def test_a_python_that_cannot_make_environments_is_named_before_anything_changes(tmp_path):
    tree(tmp_path, ".config/GIMP/3.0/")
    before = snapshot(tmp_path)
    # Should the check be missing, pip fails fast here instead of installing from the network.
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("XDG_", "BGMASK_", "PIP_"))}
    env = {**clean, "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}
    result = subprocess.run([sys.executable, "-c", WITHOUT_ENSUREPIP, str(INSTALLER)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1, result.stderr
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"sudo apt install python{version}-venv" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_the_sh_launcher_looks_for_every_supported_python():
    """Python 3.10 to 3.14 (GIMP 3.2 in Debian forky runs plug-ins with 3.14)."""
    text = (ROOT / "installers" / "install.sh").read_text()
    for minor in range(10, 15):
        assert f"python3.{minor} " in text
