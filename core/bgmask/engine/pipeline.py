"""From an image to its full-size 8-bit mask: network input, inference, post-processing.

Choices here were measured on ../shared/evaldata against rembg's u2netp pipeline (see
docs/benchmarks.md): the probability map is scaled by its peak and centred on its own
subject/background split only when the peak says a subject was found (so an empty photo stays
empty), and a contrast curve (a sharpening of the confidence that keeps every value's order)
narrows the blurred ramp that upsampling a 320 px map leaves at every edge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..host.catalogue import DEFAULT_MODEL, InputSpec, get_record
from ..host.errors import UsageError
from .box import Box, check_inside, crop_source, source_size, validate_box
from .calibration import centre_on_split
from .download import ProgressCallback
from .fusion import best_probability
from .images import PreparedImage, prepare_array, prepare_file, prepare_image
from .refine import guided_coefficients, upsample_to_uint8, upsample_uint8
from .runtime import ModelSession, RuntimeOptions, get_session
from .store import ModelStore

QUALITIES = ("fast", "best")
# A map whose peak is below this found no subject; it is left as it is, not stretched.
SUBJECT_PEAK = 0.5
# Guided-filter radius (fraction of the working picture's longer side) and regulariser.
REFINE_RADIUS = 0.004
REFINE_EPS = 1e-4

ImageSource = str | Path | Image.Image | np.ndarray


@dataclass(frozen=True)
class MaskOptions:
    # Fit the mask to the photo's own edges (a guided filter on the full-size luma).
    refine: bool = False
    # "best" adds a brightened view (plain and mirrored) of a dark photo to the plain one and
    # looks again at a small subject (engine/fusion.py): 1-6 network passes.
    quality: str = "fast"
    # A value in (0, 1) gives a hard mask: 255 where the probability reaches it, else 0.
    threshold: float | None = None
    invert: bool = False
    # Slope at 0.5 of the transfer curve p^c / (p^c + (1-p)^c), a sharpening of the network's
    # confidence that keeps every value's order; 1 leaves the soft ramp as it is.
    contrast: float = 3.0
    # (x, y, width, height) in the mask's pixels: the network looks only there, 0 outside.
    box: Box | None = None

    def __post_init__(self) -> None:
        if self.box is not None:
            object.__setattr__(self, "box", validate_box(self.box))
        if self.quality not in QUALITIES:
            raise UsageError(f"quality must be one of {', '.join(QUALITIES)}, not {self.quality!r}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise UsageError(f"threshold must be between 0 and 1 (exclusive), not {self.threshold}")
        if not 0.1 <= self.contrast <= 10.0:
            raise UsageError(f"contrast must be between 0.1 and 10, not {self.contrast}")


def network_input(small_rgb: np.ndarray, spec: InputSpec, mirrored: bool = False) -> np.ndarray:
    """The (1, 3, S, S) float32 tensor the network expects."""
    image = Image.fromarray(small_rgb).resize((spec.size, spec.size), Image.Resampling.LANCZOS)
    if mirrored:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    x = np.asarray(image, dtype=np.float32) * (1.0 / 255.0)
    x -= np.asarray(spec.mean, dtype=np.float32)
    x /= np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


class Masker:
    """A loaded model, ready to mask any number of images."""

    def __init__(self, model: str = DEFAULT_MODEL, *, model_file: Path | None = None,
                 spec: InputSpec | None = None, runtime: RuntimeOptions | None = None,
                 store: ModelStore | None = None,
                 progress: ProgressCallback | None = None) -> None:
        if model_file is not None:
            model_file = Path(model_file)
            sidecar = model_file.with_name(model_file.name + ".json")
            if spec is None:
                spec = InputSpec.from_sidecar(sidecar) if sidecar.exists() else InputSpec()
            path, self.model_name = model_file, model_file.stem
        else:
            record = get_record(model)
            spec = spec or record.spec
            path = (store or ModelStore()).ensure(record, progress)
            self.model_name = record.name
        self.session: ModelSession = get_session(path, spec, runtime or RuntimeOptions())

    @property
    def provider(self) -> str:
        return self.session.provider

    @property
    def notice(self) -> str | None:
        return self.session.notice

    def mask(self, source: ImageSource, options: MaskOptions | None = None,
             size: tuple[int, int] | None = None) -> np.ndarray:
        """The (H, W) uint8 mask of a file path, PIL image or numpy array, at full size; or at
        ``size`` (width, height) when ``source`` is a reduced copy of a larger picture."""
        options = options or MaskOptions()
        if options.box is not None:
            return self._mask_box(source, options, size)
        need_luma = options.refine
        side: int | None = self.session.spec.size
        if options.quality == "best":
            side = None  # the working view: the subject zoom crops it
        if isinstance(source, (str, Path)):
            prepared = prepare_file(source, need_luma, side)
        elif isinstance(source, Image.Image):
            prepared = prepare_image(source, need_luma, side)
        else:
            prepared = prepare_array(source, need_luma, side)
        if size is not None and size != (prepared.width, prepared.height):
            if options.refine:
                raise UsageError("edge refinement needs the full-size pixels, not a reduced "
                                 "copy: send them at full size")
            prepared = replace(prepared, width=size[0], height=size[1])
        return self.mask_prepared(prepared, options)

    def _mask_box(self, source: ImageSource, options: MaskOptions,
                  size: tuple[int, int] | None) -> np.ndarray:
        """The mask of the box's pixels alone, placed in a mask that is 0 outside it (the
        value 0 takes through invert or threshold)."""
        assert options.box is not None
        full = size or source_size(source)
        check_inside(options.box, *full)
        x, y, w, h = options.box
        inner = replace(options, box=None)
        part = self.mask(crop_source(source, options.box, full), inner, size=(w, h))
        outside = _to_uint8(_transfer(inner)(np.zeros(1, np.float32)))[0]
        out = np.full((full[1], full[0]), outside, dtype=np.uint8)
        out[y:y + h, x:x + w] = part
        return out

    def probability(self, small_rgb: np.ndarray, quality: str = "fast") -> np.ndarray:
        """The network's map in [0, 1] (S x S; for "best", the fusion at the working view's
        size); when a subject was found, scaled by its peak (and centred on the photo's own
        subject/background split where the model's record says)."""
        if quality == "best":
            return best_probability(self._run_view, small_rgb, self._calibrated)
        return self._calibrated(self.session.run(network_input(small_rgb, self.session.spec))[0])

    def _run_view(self, rgb: np.ndarray, mirrored: bool) -> np.ndarray:
        prob = self.session.run(network_input(rgb, self.session.spec, mirrored))[0]
        return prob[:, ::-1] if mirrored else prob

    def _calibrated(self, prob: np.ndarray) -> np.ndarray:
        peak = float(prob.max())
        if peak > SUBJECT_PEAK:
            prob = prob * (1.0 / peak)
            if self.session.spec.centre_split:
                prob = centre_on_split(prob)
        return prob

    def mask_prepared(self, prepared: PreparedImage, options: MaskOptions) -> np.ndarray:
        prob = self.probability(prepared.small_rgb, options.quality)
        out = np.empty((prepared.height, prepared.width), dtype=np.uint8)
        finish = _transfer(options)
        if options.refine and prepared.luma is not None:
            a, b = _refine_coefficients(prepared.small_rgb, prob)
            luma = prepared.luma

            def combine(planes: list[np.ndarray], y0: int, y1: int) -> np.ndarray:
                values = planes[0] * luma[y0:y1].astype(np.float32)
                values *= 1.0 / 255.0
                values += planes[1]
                return finish(values)

            upsample_to_uint8([a, b], prepared.width, prepared.height, combine, out)
        else:
            # The probability is upsampled in 8 bits and the curve (or threshold, or invert)
            # applied as a 256-entry table: within a level of doing it all in floats, and
            # several times faster on a 48 MP photo.
            levels = finish(np.arange(256, dtype=np.float32) / 255.0)
            upsample_uint8(_to_uint8(prob), prepared.width, prepared.height, out,
                           lut=_to_uint8(levels).tolist())
        return out


def _refine_coefficients(small_rgb: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = small_rgb.shape[:2]
    guide = np.asarray(Image.fromarray(small_rgb).convert("L"), dtype=np.float32) / 255.0
    p = np.asarray(Image.fromarray(prob, mode="F").resize((w, h), Image.Resampling.BILINEAR))
    radius = max(1, round(REFINE_RADIUS * max(w, h)))
    return guided_coefficients(guide, p, radius, REFINE_EPS)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _transfer(options: MaskOptions) -> Callable[[np.ndarray], np.ndarray]:
    """Probability -> final value in [0, 1], applied in place on each strip."""
    def finish(values: np.ndarray) -> np.ndarray:
        if options.threshold is not None:
            values = (values >= options.threshold).astype(np.float32)
        elif options.contrast != 1.0:
            np.clip(values, 0.0, 1.0, out=values)
            rest = np.power(1.0 - values, options.contrast)
            np.power(values, options.contrast, out=values)
            rest += values
            values /= rest
        if options.invert:
            np.subtract(1.0, values, out=values)
        return values

    return finish


_default_maskers: dict[str, Masker] = {}


def predict_mask(source: ImageSource, options: MaskOptions | None = None,
                 model: str = DEFAULT_MODEL) -> np.ndarray:
    """One-call API: the mask of ``source`` with a process-wide model of that name."""
    masker = _default_maskers.get(model)
    if masker is None:
        masker = _default_maskers[model] = Masker(model)
    return masker.mask(source, options)
