"""Every setting bgmask takes from the environment, read in this one place.

Each process reads them once (``Settings.read()``); code that needs one takes a ``Settings``
(tests pass their own). Standard library only: the editors' plug-ins use it too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = "BGMASK_PYTHON"  # bgmask's own interpreter, instead of the installer's record
BACKGROUND_WORKER = "BGMASK_SHARED_WORKER"  # "0": no background worker, one per click
RUNTIME_DIR = "BGMASK_RUNTIME_DIR"  # the background worker's private folder
TRACE_FILE = "BGMASK_TRACE_FILE"  # where a click appends its phase timings (JSON lines)
MODEL_DIR = "BGMASK_MODEL_DIR"  # the model store
MODEL_MIRROR = "BGMASK_MODEL_MIRROR"  # a base URL tried before the catalogue's sources
PROVIDERS = "BGMASK_PROVIDERS"  # comma-separated onnxruntime providers
WORKER_IDLE = "BGMASK_WORKER_IDLE"  # seconds a background worker waits before it exits
# Set by Flatpak inside a sandbox: the app's id, which names the runtime folder it shares.
FLATPAK_ID = "FLATPAK_ID"
# onnxruntime's own switch for its usage telemetry, read when the library loads.
ONNXRUNTIME_TELEMETRY_OFF = ("ORT_DISABLE_TELEMETRY", "1")
# Variables of the editor's own Python that would break a different interpreter started from it.
FOREIGN_PYTHON = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV",
                  "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__")


def switch_off_onnxruntime_telemetry() -> None:
    """Set onnxruntime's telemetry switch in this process; it takes effect only if onnxruntime
    is imported after this. onnxruntime 1.32 on Linux records usage events (the executable's
    path, the model's file name, run times, a device id) under ~/.cache/Microsoft and queues
    them for upload; nothing of a bgmask user's leaves the machine."""
    name, value = ONNXRUNTIME_TELEMETRY_OFF
    os.environ[name] = value


def _text(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or None


@dataclass(frozen=True)
class Settings:
    """What the environment says, parsed. ``environ`` is the whole environment, passed on to
    the processes bgmask starts."""

    environ: Mapping[str, str] = field(default_factory=dict)
    python: str | None = None
    background_worker: bool = True
    runtime_dir: Path | None = None
    trace_file: Path | None = None
    model_dir: Path | None = None
    model_mirror: str | None = None
    providers: tuple[str, ...] | None = None
    worker_idle: float | None = None
    home: Path = field(default_factory=Path.home)
    xdg_config_home: Path | None = None
    xdg_runtime_dir: Path | None = None
    local_app_data: Path | None = None  # Windows
    flatpak_id: str | None = None  # inside a Flatpak sandbox: the app's id

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        providers = [p.strip() for p in (env.get(PROVIDERS) or "").split(",") if p.strip()]
        idle = _text(env, WORKER_IDLE)
        home = _text(env, "HOME") or _text(env, "USERPROFILE")

        def path(name: str) -> Path | None:
            value = _text(env, name)
            return Path(value).expanduser() if value else None

        return cls(
            environ=env,
            python=_text(env, PYTHON),
            background_worker=env.get(BACKGROUND_WORKER, "1") != "0",
            runtime_dir=path(RUNTIME_DIR),
            trace_file=path(TRACE_FILE),
            model_dir=path(MODEL_DIR),
            model_mirror=_text(env, MODEL_MIRROR),
            providers=tuple(providers) or None,
            worker_idle=_idle_seconds(idle),
            home=Path(home) if home else Path.home(),
            xdg_config_home=path("XDG_CONFIG_HOME"),
            xdg_runtime_dir=path("XDG_RUNTIME_DIR"),
            local_app_data=path("LOCALAPPDATA"),
            flatpak_id=_text(env, FLATPAK_ID),
        )

    def child_environ(self) -> dict[str, str]:
        """The environment for bgmask's worker: the editor's, without the variables that tie
        Python to the editor's own interpreter."""
        return {k: v for k, v in self.environ.items() if k not in FOREIGN_PYTHON}


def _idle_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None  # a typo must not stop the worker: the default applies
