"""Photos for the end-to-end tests, from the ones the repository carries (``samples/``, sources
and licences in ``samples/SOURCE.md``), made camera-size at test time.

Editor and CLI tests use these and never ``../shared/evaldata``, which exists only on the
project's own machines and is for quality scoring. The copies are deterministic: the same bytes
on every machine. Sensor-like grain is added after upscaling, so a 12 MP copy has detail at
full resolution (a smooth upscale would hide a reader that drops or shifts pixels).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ASTRONAUT = SAMPLES / "astronaut.png"
CAT = SAMPLES / "chelsea.png"
CUP = SAMPLES / "coffee.png"


@dataclass(frozen=True)
class Photo:
    """A photo file and the pixels a decoder gives for it (RGB or RGBA; uint8 or uint16)."""

    path: Path
    pixels: np.ndarray

    @property
    def megapixels(self) -> float:
        return self.pixels.shape[0] * self.pixels.shape[1] / 1e6


def upscaled(source: Path, size: tuple[int, int], seed: int) -> np.ndarray:
    """``source`` cropped to the aspect of ``size``, upscaled, with grain: (H, W, 3) float
    in 0..255."""
    image = Image.open(source).convert("RGB")
    width, height = size
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = round(width / scale), round(height / scale)
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h))
    big = np.asarray(image.resize(size, Image.Resampling.LANCZOS), np.float32)
    grain = np.random.default_rng(seed).normal(0.0, 2.5, big.shape).astype(np.float32)
    return np.clip(big + grain, 0, 255)


def camera_jpeg(folder: Path) -> Photo:
    """A 12 MP (4000x3000) JPEG without alpha, as a phone or camera writes it."""
    path = folder / "cat-12mp.jpg"
    Image.fromarray(upscaled(CAT, (4000, 3000), 1).round().astype(np.uint8)).save(
        path, quality=92)
    return Photo(path, np.asarray(Image.open(path).convert("RGB")))


def camera_png_alpha(folder: Path) -> Photo:
    """A 12 MP (4032x3024) RGBA PNG whose left edge is transparent and fades in."""
    path = folder / "cup-12mp-alpha.png"
    rgb = upscaled(CUP, (4032, 3024), 2).round().astype(np.uint8)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :400] = 0
    alpha[:, 400:912] = np.linspace(0, 255, 512).round().astype(np.uint8)
    pixels = np.dstack([rgb, alpha])
    Image.fromarray(pixels, "RGBA").save(path, compress_level=1)
    return Photo(path, pixels)


def camera_png16(folder: Path) -> Photo:
    """A 12 MP (4000x3000) 16-bit RGB PNG, with real information in the low bytes."""
    path = folder / "astronaut-12mp-16bit.png"
    pixels = (upscaled(ASTRONAUT, (4000, 3000), 3) * 257).round().astype(np.uint16)
    write_png16(path, pixels)
    return Photo(path, pixels)


def write_png16(path: Path, rgb: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow writes 16 bits only for grayscale)."""
    height, width, _ = rgb.shape
    rows = np.zeros((height, 1 + width * 6), np.uint8)  # filter byte 0 on every row
    rows[:, 1:] = rgb.astype(">u2").view(np.uint8).reshape(height, width * 6)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    # An sRGB chunk, as editors write it (without one, Krita asks which profile to assume).
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"sRGB", b"\x00")
                     + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + chunk(b"IEND", b""))


def camera_photos(folder: Path) -> dict[str, Photo]:
    """The camera-size set every editor is checked on."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"jpeg": camera_jpeg(folder), "png_alpha": camera_png_alpha(folder),
            "png16": camera_png16(folder)}
