"""The plug-in's state for one Krita session: the settings (kept in kritarc) and the worker,
started on the first job, kept warm between clicks, restarted if it died."""

from __future__ import annotations

import threading
from collections.abc import Callable

from bgmask.host.client import MaskReply, WorkerClient
from bgmask.host.job import JobSettings, LayerInput, mask_layers, session_client
from krita import Krita

GROUP = "bgmask"


def load_settings() -> JobSettings:
    app = Krita.instance()
    return JobSettings.saved(lambda key, default: app.readSetting(GROUP, key, default))


def save_settings(settings: JobSettings) -> None:
    for key, value in settings.as_text().items():
        Krita.instance().writeSetting(GROUP, key, value)


class WorkerSession:
    """One worker per Krita session; jobs are served one after the other."""

    def __init__(self, factory: Callable[[], WorkerClient] = session_client) -> None:
        self._factory = factory
        self._client: WorkerClient | None = None
        self._lock = threading.Lock()

    def masks(self, inputs: list[LayerInput], settings: JobSettings,
              report: Callable[[float, str], None]) -> list[MaskReply]:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            # A worker that died since the last click is restarted by the client itself.
            return mask_layers(self._client, len(inputs), inputs.__getitem__, settings,
                               report)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


SESSION = WorkerSession()
