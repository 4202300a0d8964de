"""One "Remove Background" job, the same for every editor: its settings, the plan for each
layer (what to send, which existing mask to combine), the requests to the worker, and the
messages the user reads. The plug-ins keep only their editor's reads, writes and widgets.

Standard library only: this runs inside GIMP's and Krita's own Pythons.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .background import background_client
from .catalogue import DEFAULT_MODEL
from .channels import worker_command
from .client import MaskReply, WorkerClient
from .errors import BgmaskError, UsageError
from .install_record import worker_python
from .settings import Settings

# Where the mask goes, and what happens to a mask the layer already has (key: label).
OUTPUTS = {"mask": "Layer mask", "selection": "Selection", "layer": "New layer with the mask"}
EXISTING = {"replace": "Replace it", "intersect": "Intersect with it"}
QUALITIES = {"fast": "Fast", "best": "Best (2-4x the time)"}
MASK_NAME = "bgmask"  # a mask node's name, where the editor names masks
COPY_SUFFIX = " (bgmask)"  # the new layer of the "layer" output: "<layer name> (bgmask)"

NO_LAYER = "Select a layer: bgmask masks layers, not channels or masks."
OUT_OF_MEMORY = ("Out of memory while masking: close other images or programs, or mask a "
                 "smaller layer.")
CLOSED = "The image was closed before its mask was ready."

Box = tuple[int, int, int, int]  # x, y, width, height in a layer's own pixels


@dataclass(frozen=True)
class JobSettings:
    model: str = DEFAULT_MODEL
    refine: bool = False
    quality: str = "fast"
    invert: bool = False
    existing: str = "replace"
    output: str = "mask"
    # With a selection in the image, the network looks only at its bounding box and the mask
    # is 0 outside it (never above a soft selection): the user points at the subject.
    use_selection: bool = True
    # The "layer" output only: the new layer's edge colours become the subject's own, so the
    # old background does not come along. A mask never changes the layer's pixels.
    decontaminate: bool = False

    def __post_init__(self) -> None:
        for value, known, what in ((self.output, OUTPUTS, "output"),
                                   (self.existing, EXISTING, "existing-mask choice"),
                                   (self.quality, QUALITIES, "quality")):
            if value not in known:
                raise UsageError(f"unknown {what} {value!r}; use one of {', '.join(known)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> JobSettings:
        """Settings from saved or scripted values (booleans may be saved as "True"/"False"),
        ignoring keys this version does not know; UsageError for a value it does not."""
        known = {f.name: f.type for f in fields(cls)}
        chosen: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                continue
            if known[key] == "bool" and isinstance(value, str):
                value = value == "True"
            chosen[key] = value
        return cls(**chosen)

    @classmethod
    def saved(cls, read: Callable[[str, str], str]) -> JobSettings:
        """Settings an editor stored as text (``read(key, default)``); the defaults where they
        came from another version and no longer make sense."""
        try:
            return cls.from_mapping({k: read(k, str(v)) for k, v in asdict(cls()).items()})
        except UsageError:
            return cls()

    def as_text(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @property
    def combines_existing(self) -> bool:
        """Whether a layer's existing mask is sent along, to be intersected with the new one
        (a selection is made from the new mask alone)."""
        return self.existing == "intersect" and self.output != "selection"

    @property
    def cleans_colours(self) -> bool:
        """Whether the worker sends back the layer's pixels with clean edge colours."""
        return self.decontaminate and self.output == "layer"

    def worker_options(self) -> dict[str, Any]:
        return {"refine": self.refine, "quality": self.quality, "invert": self.invert}


SETTING_NAMES = tuple(f.name for f in fields(JobSettings))


@dataclass
class LayerInput:
    """One layer as the plug-in read it: its pixels at full size, in a worker format."""

    name: str
    pixels: bytes | bytearray
    width: int
    height: int
    fmt: str
    base_mask: bytes | None = None  # its existing mask, when the settings combine it
    # The selection as a hint (see selection_box): its bounding box on the layer, and its
    # values over the whole layer (one byte a pixel, 0 outside), or both None.
    box: Box | None = None
    selection: bytes | bytearray | None = None
    # Whether cleaned edge colours could be written back into a copy of this layer (not when
    # the pixels sent are a converted copy, or the layer draws itself from another source):
    # where not, the worker is not asked to clean them.
    cleanable: bool = True


def selection_box(name: str, left: int, top: int, right: int, bottom: int,
                  width: int, height: int) -> Box:
    """The selection's bounding box (``left, top`` inclusive, ``right, bottom`` exclusive, in
    the layer's own pixels: image coordinates less the layer's offsets) clipped to a
    ``width`` x ``height`` layer; a UsageError saying what to do when it misses the layer."""
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(right, width), min(bottom, height)
    if x1 <= x0 or y1 <= y0:
        raise UsageError(f"The selection does not touch layer {name!r}: select part of that "
                         "layer's subject (bgmask looks only inside the selection), or remove "
                         "the selection to mask the whole layer.")
    return x0, y0, x1 - x0, y1 - y0


def selection_hint(layer: LayerInput) -> tuple[Box | None, list[bytes | bytearray]]:
    """The worker's box and the base planes for a layer's selection: none at all for a
    selection that covers the whole layer fully (Select All), which changes nothing."""
    if layer.box is None:
        return None, []
    planes = [] if layer.selection is None else [layer.selection]
    if layer.box == (0, 0, layer.width, layer.height) and (
            layer.selection is None or layer.selection.count(255) == len(layer.selection)):
        return None, []
    return layer.box, planes


def mask_layers(client: WorkerClient, count: int, read: Callable[[int], LayerInput],
                settings: JobSettings, report: Callable[[float, str], None],
                timer: PhaseTimer | None = None) -> list[MaskReply]:
    """The masks of layers 0..count-1, in order. ``read(i)`` gives layer i's pixels when they
    are needed, so a plug-in that reads on demand holds one layer at a time. ``report(fraction,
    text)`` follows the whole job on a 0..1 scale, on the caller's thread."""
    replies = []
    for index in range(count):
        layer = read(index)
        if timer is not None:
            timer.lap("read")

        def progress(fraction: float, name: str = layer.name) -> None:
            report(fraction, f"masking {name}...")

        progress(index / count)
        options = settings.worker_options()
        # The setting is honoured here too, so an adapter may read the selection regardless.
        box, planes = selection_hint(layer) if settings.use_selection else (None, [])
        if box is not None:
            options["box"] = list(box)
        replies.append(client.mask(
            layer.pixels, layer.width, layer.height, layer.fmt, model=settings.model,
            options=options, base_mask=layer.base_mask, base_masks=planes,
            progress=layer_progress(index, count, progress),
            colours=settings.cleans_colours and layer.cleanable))
        if timer is not None:
            timer.lap("worker")
    return replies


def layer_progress(index: int, count: int, report: Callable[[float], None]
                   ) -> Callable[[str, int, int | None], None]:
    """A worker progress handler mapping one layer's stages onto the whole job's 0..1 bar."""
    def handler(stage: str, done: int, total: int | None) -> None:
        within = 0.5 if stage == "inference" else (done / total * 0.5 if total else 0.0)
        report(min(1.0, (index + within) / count))
    return handler


def failure_message(exc: BaseException) -> str:
    """What the user reads when a job fails: bgmask's own errors say what to do; anything
    else is a bug, reported as such rather than taking the editor down."""
    if isinstance(exc, BgmaskError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return OUT_OF_MEMORY
    return f"internal error in bgmask: {exc!r}"


def done_message(count: int, seconds: float, notice: str | None) -> str:
    plural = "s" if count != 1 else ""
    message = f"done: {count} layer{plural} in {seconds:.1f} s"
    return f"{message} ({notice})" if notice else message


def click_client(settings: Settings | None = None) -> WorkerClient:
    """A started client for a plug-in that lives for one click (GIMP): the per-user
    background worker, else a one-shot worker (``fallback_reason`` says why)."""
    settings = settings or Settings.read()
    return background_client(worker_command(worker_python(settings)), settings)


def session_client(settings: Settings | None = None) -> WorkerClient:
    """A client for a plug-in that lives as long as the editor (Krita): a worker of its own,
    started on the first request and kept warm between clicks."""
    settings = settings or Settings.read()
    return WorkerClient.one_shot(worker_command(worker_python(settings)),
                                 settings.child_environ())


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

    def save(self, settings: Settings | None = None) -> None:
        path = (settings or Settings.read()).trace_file
        if path is not None:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(self.phases) + "\n")
