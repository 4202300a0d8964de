"""Where things go on each system: bgmask's own folders, GIMP 3 profiles, Krita resources.

Every function takes the platform, environment and home folder as arguments, so Windows and
macOS layouts are testable on Linux with fake folder trees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GIMP_SERIES = re.compile(r"^3\.\d+$")


@dataclass(frozen=True)
class Platform:
    name: str  # "linux", "win32", "darwin"
    env: Mapping[str, str]
    home: Path
    root: Path = Path("/")  # where system folders (/var/lib/flatpak) are looked up; tests move it

    def _env_path(self, key: str, default: Path) -> Path:
        value = self.env.get(key)
        return Path(value) if value else default

    @property
    def xdg_config(self) -> Path:
        return self._env_path("XDG_CONFIG_HOME", self.home / ".config")

    @property
    def xdg_data(self) -> Path:
        return self._env_path("XDG_DATA_HOME", self.home / ".local" / "share")

    @property
    def appdata(self) -> Path:  # Windows roaming
        return self._env_path("APPDATA", self.home / "AppData" / "Roaming")

    @property
    def local_appdata(self) -> Path:  # Windows local
        return self._env_path("LOCALAPPDATA", self.home / "AppData" / "Local")

    @property
    def mac_support(self) -> Path:
        return self.home / "Library" / "Application Support"


def bgmask_data_dir(p: Platform) -> Path:
    """bgmask's per-user data folder (the environment and the models live here); the same
    folder platformdirs gives the core."""
    if p.name.startswith("win"):
        return p.local_appdata / "bgmask"
    if p.name == "darwin":
        return p.mac_support / "bgmask"
    return p.xdg_data / "bgmask"


def env_python(env_dir: Path, platform: str) -> Path:
    return env_dir / ("Scripts/python.exe" if platform.startswith("win") else "bin/python")


def _series_dirs(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(d for d in parent.iterdir() if d.is_dir() and GIMP_SERIES.match(d.name))


def gimp_profiles(p: Platform) -> list[Path]:
    """Every GIMP 3.x profile folder found (3.0, 3.2...; Flatpak's too on Linux)."""
    if p.name.startswith("win"):
        parents = [p.appdata / "GIMP"]
    elif p.name == "darwin":
        parents = [p.mac_support / "GIMP"]
    else:
        parents = [p.xdg_config / "GIMP",
                   p.home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP"]
    return [d for parent in parents for d in _series_dirs(parent)]


@dataclass(frozen=True)
class KritaPlace:
    resources: Path  # holds pykrita/ and actions/
    kritarc: Path


def krita_places(p: Platform) -> list[KritaPlace]:
    """Krita resource folders that exist (Krita made them on its first start)."""
    if p.name.startswith("win"):
        candidates = [KritaPlace(p.appdata / "krita", p.local_appdata / "kritarc")]
    elif p.name == "darwin":
        candidates = [KritaPlace(p.mac_support / "krita",
                                 p.home / "Library" / "Preferences" / "kritarc")]
    else:
        flatpak = p.home / ".var" / "app" / "org.kde.krita"
        # The distribution package and the AppImage share the XDG folders.
        candidates = [KritaPlace(p.xdg_data / "krita", p.xdg_config / "kritarc"),
                      KritaPlace(flatpak / "data" / "krita", flatpak / "config" / "kritarc")]
    return [c for c in candidates if c.resources.is_dir() or c.kritarc.is_file()]
