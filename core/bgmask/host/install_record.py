"""Where the editor adapters find bgmask's own Python, so they can start its worker.

The installer writes ``adapters.json`` into bgmask's per-user config folder; ``$BGMASK_PYTHON``
overrides it. Standard library only: the adapters import this inside GIMP's and Krita's Pythons,
and the stdlib-only installer writes the same file, so both compute the folder the same way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import WorkerError
from .settings import PYTHON, Settings

CONFIG_NAME = "adapters.json"


def config_dir(settings: Settings, platform: str | None = None) -> Path:
    """bgmask's per-user config folder (the same place platformdirs gives the core)."""
    platform = platform or sys.platform
    home = settings.home
    if platform.startswith("win"):
        return (settings.local_app_data or home / "AppData" / "Local") / "bgmask"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "bgmask"
    return (settings.xdg_config_home or home / ".config") / "bgmask"


def config_path(settings: Settings, platform: str | None = None) -> Path:
    return config_dir(settings, platform) / CONFIG_NAME


def read_config(settings: Settings) -> dict[str, object]:
    """The installer's record, or {} when there is none; a damaged file is an error."""
    path = config_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise WorkerError(f"cannot read {path} ({exc}); run the bgmask installer again") from None
    if not isinstance(data, dict):
        raise WorkerError(f"{path} is damaged; run the bgmask installer again")
    return data


def worker_python(settings: Settings) -> str:
    """The interpreter of bgmask's environment: ``$BGMASK_PYTHON``, else the installer's record."""
    python = settings.python or read_config(settings).get("python")
    if not python:
        raise WorkerError(
            "bgmask's worker is not installed: run the bgmask installer "
            f"(it writes {config_path(settings)}), or set {PYTHON} to the Python of an "
            "environment where bgmask is installed.")
    if not Path(str(python)).is_file():
        raise WorkerError(
            f"bgmask's Python {python} does not exist any more: run the bgmask installer again, "
            f"or set {PYTHON} to the Python of an environment where bgmask is installed.")
    return str(python)
