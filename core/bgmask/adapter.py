"""What the GIMP and Krita adapters share: a job's settings, the worker they start, and the
progress of a job over several layers.

Standard library only: this module is copied into each plug-in with the client and runs inside
the editor's own Python.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .catalogue import DEFAULT_MODEL
from .client import WorkerClient, worker_command
from .errors import BgmaskError, UsageError
from .hostconfig import worker_env, worker_python
from .sharedworker import SharedWorkerClient, runtime_dir

# Where the mask goes, and what happens to a mask the layer already has (key: label).
OUTPUTS = {"mask": "Layer mask", "selection": "Selection", "layer": "New layer with the mask"}
EXISTING = {"replace": "Replace it", "intersect": "Intersect with it"}
QUALITIES = {"fast": "Fast", "best": "Best (twice the time)"}


@dataclass(frozen=True)
class JobSettings:
    model: str = DEFAULT_MODEL
    refine: bool = False
    quality: str = "fast"
    invert: bool = False
    existing: str = "replace"
    output: str = "mask"

    def __post_init__(self) -> None:
        for value, known, what in ((self.output, OUTPUTS, "output"),
                                   (self.existing, EXISTING, "existing-mask choice"),
                                   (self.quality, QUALITIES, "quality")):
            if value not in known:
                raise UsageError(f"unknown {what} {value!r}; use one of {', '.join(known)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> JobSettings:
        """Settings from saved or scripted values, ignoring keys this version does not know."""
        known = asdict(cls())
        return cls(**{k: v for k, v in values.items() if k in known})

    def worker_options(self) -> dict[str, Any]:
        return {"refine": self.refine, "quality": self.quality, "invert": self.invert}


def new_client(env: Mapping[str, str] | None = None) -> WorkerClient:
    """A client for a worker of bgmask's own environment, found through the installer's record
    or ``$BGMASK_PYTHON``; the worker starts on the first request."""
    clean = worker_env(env)
    return WorkerClient(worker_command(worker_python(clean)), clean)


def start_client(env: Mapping[str, str] | None = None) -> WorkerClient:
    """A started client for a plug-in that lives for one click (GIMP): the per-user background
    worker, which keeps the model loaded between clicks, or, if anything about it fails, a
    one-shot worker of its own (``fallback_reason`` then says why). Every wait on the way is
    bounded, so a stopped or stuck background worker costs seconds, never the click."""
    clean = worker_env(env)
    command = worker_command(worker_python(clean))
    reason = "no shared worker on this system"
    if clean.get("BGMASK_SHARED_WORKER", "1") != "0":
        shared: SharedWorkerClient | None = None
        try:
            directory = runtime_dir(clean)
            if directory is not None:
                shared = SharedWorkerClient(command, clean, directory)
                shared.start()
                return shared
        # ValueError: a file object of a connection that broke under it.
        except (BgmaskError, OSError, ValueError) as exc:
            if shared is not None:
                shared.close()
            reason = str(exc) or type(exc).__name__
    client = WorkerClient(command, clean)
    client.start()
    client.fallback_reason = reason
    return client


def layer_progress(index: int, count: int, report: Callable[[float], None]
                   ) -> Callable[[str, int, int | None], None]:
    """A worker progress handler mapping one layer's stages onto the whole job's 0..1 bar."""
    def handler(stage: str, done: int, total: int | None) -> None:
        within = 0.5 if stage == "inference" else (done / total * 0.5 if total else 0.0)
        report(min(1.0, (index + within) / count))
    return handler


class PhaseTimer:
    """Seconds a click spends reading the layer, in the worker, and writing the mask. With
    ``$BGMASK_TRACE_FILE`` set, ``save`` appends them as one JSON line: the benchmark reads it,
    and a user reporting a slow click can send it."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._mark
        self._mark = now

    def save(self, env: Mapping[str, str] | None = None) -> None:
        path = (os.environ if env is None else env).get("BGMASK_TRACE_FILE")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(self.phases) + "\n")
