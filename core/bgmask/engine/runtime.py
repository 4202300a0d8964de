"""onnxruntime sessions: provider choice, honest fallback to the CPU, one session per model.

A session is costly to create (graph optimisation, weight packing), so each process keeps one
per (model file, providers, threads) and reuses it for every image.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..host.catalogue import InputSpec
from ..host.errors import ModelLoadError, ProviderError, RuntimeMissingError, UsageError
from ..host.settings import Settings, switch_off_onnxruntime_telemetry

if TYPE_CHECKING:
    import numpy as np

# Tried in this order among those the installed onnxruntime offers.
PREFERRED_PROVIDERS = (
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
CPU = "CPUExecutionProvider"


def import_onnxruntime() -> ModuleType:
    switch_off_onnxruntime_telemetry()  # before the import: the library reads it as it loads
    try:
        import onnxruntime
    except ImportError as exc:
        raise RuntimeMissingError(
            f"onnxruntime is not installed for {sys.executable}. Install bgmask with its "
            "installer, or run: python -m pip install onnxruntime"
        ) from exc
    onnxruntime.set_default_logger_severity(3)  # its warnings are ours to phrase
    if hasattr(onnxruntime, "disable_telemetry_events"):  # imported before bgmask set the switch
        onnxruntime.disable_telemetry_events()
    return onnxruntime


def max_threads() -> int:
    """The most inference threads a session may ask for. More threads than cores only adds
    contention, so 4 per logical CPU is already generous; onnxruntime takes any count and
    creates them all (100,000 crashed with SIGSEGV at 4.8 GB), so the bound is ours to keep."""
    return 4 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class RuntimeOptions:
    # None: the best available (or $BGMASK_PROVIDERS, comma-separated).
    providers: tuple[str, ...] | None = None
    # 0: onnxruntime's default (one per physical core).
    threads: int = 0

    def __post_init__(self) -> None:
        # Checked here, where the CLI, the worker and the Python API all pass.
        limit = max_threads()
        if (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                or not 0 <= self.threads <= limit):
            raise UsageError(f"--threads {self.threads!r} is out of range: give 0 (automatic) "
                             f"or a count up to {limit} (4 per CPU on this computer)")


def choose_providers(requested: tuple[str, ...] | None, available: list[str]) -> list[str]:
    """The providers to ask for, in order, always ending with the CPU."""
    if requested is None:
        requested = Settings.read().providers
    if requested:
        aliases = {"cpu": CPU, "cuda": "CUDAExecutionProvider",
                   "directml": "DmlExecutionProvider", "dml": "DmlExecutionProvider",
                   "coreml": "CoreMLExecutionProvider"}
        wanted = [aliases.get(p.lower(), p) for p in requested]
        unknown = [p for p in wanted if p not in available]
        if unknown and all(p in unknown for p in wanted):
            raise ProviderError(
                f"execution provider {', '.join(unknown)} is not available in this onnxruntime "
                f"(available: {', '.join(available)}). Install the matching onnxruntime build "
                "(for example onnxruntime-gpu for CUDA) or choose the CPU."
            )
        chosen = [p for p in wanted if p in available]
    else:
        chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


class ModelSession:
    """One loaded network and the facts a caller needs about how it runs."""

    def __init__(self, model_path: Path, spec: InputSpec, options: RuntimeOptions) -> None:
        ort = import_onnxruntime()
        self.spec = spec
        self.model_path = model_path
        wanted = choose_providers(options.providers, ort.get_available_providers())
        sess_options = ort.SessionOptions()
        if options.threads > 0:
            sess_options.intra_op_num_threads = options.threads
        # Set when the run does not use the first provider asked for; the UI shows it.
        self.notice: str | None = None
        try:
            self._session = ort.InferenceSession(str(model_path), sess_options, providers=wanted)
        except Exception as exc:  # noqa: BLE001 (onnxruntime raises untyped errors)
            if wanted == [CPU]:
                raise ModelLoadError(
                    f"onnxruntime cannot load {model_path}: {_first_line(exc)}. The file is "
                    "damaged or is not an ONNX model; delete it and fetch it again."
                ) from exc
            self.notice = f"{wanted[0]} failed to start ({_first_line(exc)}); running on the CPU"
            try:
                self._session = ort.InferenceSession(str(model_path), sess_options,
                                                     providers=[CPU])
            except Exception as exc2:  # noqa: BLE001
                raise ModelLoadError(
                    f"onnxruntime cannot load {model_path}: {_first_line(exc2)}"
                ) from exc2
        self.provider = self._session.get_providers()[0]
        if self.notice is None and self.provider != wanted[0]:
            self.notice = f"{wanted[0]} is not usable here; running on {self.provider}"
        self._check_graph()
        self._input_name = self._session.get_inputs()[0].name
        self._lock = threading.Lock()

    def _check_graph(self) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = list(inputs[0].shape) if inputs else []
        ok = (len(inputs) == 1 and len(shape) == 4 and shape[1] in (3, "3")
              and all(d == self.spec.size for d in shape[2:] if isinstance(d, int)))
        if not ok:
            raise ModelLoadError(
                f"{self.model_path.name} takes input {shape}, but bgmask feeds "
                f"[1, 3, {self.spec.size}, {self.spec.size}]. Check the model's input size "
                "(--input-size or the .json description beside the file)."
            )
        if self.spec.output_index >= len(outputs):
            raise ModelLoadError(
                f"{self.model_path.name} has {len(outputs)} outputs; output "
                f"{self.spec.output_index} was asked for"
            )

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probability maps (N, H, W) float32 in [0, 1] for a normalised (N, 3, S, S) batch."""
        import numpy as np

        with self._lock:  # one run at a time per session; onnxruntime parallelises inside
            out = self._session.run(None, {self._input_name: batch})[self.spec.output_index]
        out = np.asarray(out, dtype=np.float32).reshape(batch.shape[0], *out.shape[-2:])
        if self.spec.sigmoid:
            out = 1.0 / (1.0 + np.exp(-out))
        return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


_sessions: dict[tuple[str, InputSpec, RuntimeOptions], ModelSession] = {}
_sessions_lock = threading.Lock()


def get_session(model_path: Path, spec: InputSpec, options: RuntimeOptions) -> ModelSession:
    """The process-wide session for this model file, created on first use."""
    key = (str(Path(model_path).resolve()), spec, options)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = ModelSession(Path(model_path), spec, options)
        return session


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())
