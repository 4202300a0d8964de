"""Where the editor adapters find bgmask's own Python, so they can start its worker.

The installer writes ``adapters.json`` into bgmask's per-user config folder; ``$BGMASK_PYTHON``
overrides it. Standard library only: the adapters import this inside GIMP's and Krita's Pythons,
and the stdlib-only installer writes the same file, so both compute the folder the same way.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .errors import WorkerError

CONFIG_NAME = "adapters.json"
# Variables of the editor's own Python that would break a different interpreter started from it.
_FOREIGN_PYTHON_VARS = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV",
                        "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__")


def config_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """bgmask's per-user config folder (the same place platformdirs gives the core)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        base = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "bgmask"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "bgmask"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "bgmask"


def config_path(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    return config_dir(env, platform) / CONFIG_NAME


def read_config(env: Mapping[str, str] | None = None) -> dict[str, object]:
    """The installer's record, or {} when there is none; a damaged file is an error."""
    path = config_path(env)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise WorkerError(f"cannot read {path} ({exc}); run the bgmask installer again") from None
    if not isinstance(data, dict):
        raise WorkerError(f"{path} is damaged; run the bgmask installer again")
    return data


def worker_python(env: Mapping[str, str] | None = None) -> str:
    """The interpreter of bgmask's environment: ``$BGMASK_PYTHON``, else the installer's record."""
    env = os.environ if env is None else env
    python = env.get("BGMASK_PYTHON") or read_config(env).get("python")
    if not python:
        raise WorkerError(
            "bgmask's worker is not installed: run the bgmask installer "
            f"(it writes {config_path(env)}), or set BGMASK_PYTHON to the Python of an "
            "environment where bgmask is installed.")
    if not Path(str(python)).is_file():
        raise WorkerError(
            f"bgmask's Python {python} does not exist any more: run the bgmask installer again, "
            "or set BGMASK_PYTHON to the Python of an environment where bgmask is installed.")
    return str(python)


def worker_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The editor's environment without the variables that tie Python to the editor's own."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if k not in _FOREIGN_PYTHON_VARS}
