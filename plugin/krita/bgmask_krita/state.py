"""The plug-in's state for one Krita session: the settings (kept in kritarc) and the worker,
started on the first job, kept warm between clicks, restarted if it died."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict

from bgmask.adapter import JobSettings, new_client
from bgmask.client import MaskReply, ProgressHandler, WorkerClient
from bgmask.errors import UsageError
from krita import Krita

GROUP = "bgmask"
BOOLEAN = {"refine", "invert"}


def load_settings() -> JobSettings:
    app = Krita.instance()
    values: dict[str, object] = {}
    for key, default in asdict(JobSettings()).items():
        text = app.readSetting(GROUP, key, str(default))
        values[key] = (text == "True") if key in BOOLEAN else text
    try:
        return JobSettings(**values)  # type: ignore[arg-type]
    except UsageError:  # settings of another version: start from the defaults
        return JobSettings()


def save_settings(settings: JobSettings) -> None:
    for key, value in asdict(settings).items():
        Krita.instance().writeSetting(GROUP, key, str(value))


class WorkerSession:
    """One worker per Krita session; requests are serialised (one job at a time)."""

    def __init__(self, factory: Callable[[], WorkerClient] = new_client) -> None:
        self._factory = factory
        self._client: WorkerClient | None = None
        self._lock = threading.Lock()

    def mask(self, data: bytes, width: int, height: int, fmt: str, settings: JobSettings,
             progress: ProgressHandler, base_mask: bytes | None) -> MaskReply:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            # A worker that died since the last click is restarted by the client itself.
            return self._client.mask(data, width, height, fmt, model=settings.model,
                                     options=settings.worker_options(), progress=progress,
                                     base_mask=base_mask)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


SESSION = WorkerSession()
