"""Turning whatever the caller has (a file, a PIL image in any mode, a numpy array) into the
two views the pipeline needs: a small RGB picture for the network and the full-size luma that
guides the edges. Neither view is ever a full-resolution float array.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..host.errors import ImageError

# Largest side of the working picture the network input and the guide coefficients come from.
WORK_SIDE = 1024


@dataclass
class PreparedImage:
    """The views of one input image that the pipeline uses."""

    width: int
    height: int
    # RGB uint8, at most WORK_SIDE on its longer side (aspect ratio kept); smaller still, but
    # never below the network's side, when nothing needs the working view.
    small_rgb: np.ndarray
    # uint8 luma at full size, or None when the caller did not need one.
    luma: np.ndarray | None


# The raster formats a photo editor's user means by "an image file"; Pillow's other readers
# stay closed. Its EPS/PostScript reader runs Ghostscript, an external program fed a programming
# language (a looping file never returns), and the rarer readers are the least exercised code
# to hand untrusted bytes. (Camera JPEGs carrying a second picture open as "MPO", through the
# JPEG reader.)
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
ACCEPTED_NAMES = "JPEG, PNG, WebP, TIFF, BMP and GIF"

_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


@dataclass
class SourceFile:
    """An opened image file (JPEGs not decoded yet, so they can be at a reduced scale)."""

    image: Image.Image
    # Bits per channel as stored in the file: 8, 16, or 32 (integer or float samples).
    bits: int


def open_image(path: str | Path) -> Image.Image:
    """Open an image file with its EXIF orientation applied; clear errors for bad files."""
    return open_source(path).image


def open_source(path: str | Path, *, load: bool = True,
                formats: tuple[str, ...] = ACCEPTED_FORMATS) -> SourceFile:
    """Open a regular file of one of ``formats``, decoded unless it is a JPEG (decoded later,
    at the scale needed) or ``load`` is false (the header is enough); each way a file can be
    unusable is an ImageError naming it."""
    path = Path(path)
    fp = _open_regular(path)
    size = os.fstat(fp.fileno()).st_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp, formats=list(formats))
            # Ours to close, exactly as when Pillow opens a path itself: after decoding a
            # single picture, or when the image is closed.
            image._exclusive_fp = True
            bits = _stored_bits(image)
            if load and image.format not in ("JPEG", "MPO"):
                image.load()
    except UnidentifiedImageError:
        fp.close()
        if size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)") from None
        raise ImageError(f"{path}: not an image bgmask can read (it reads {ACCEPTED_NAMES} "
                         "files)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        fp.close()
        raise ImageError(
            f"{path}: the image is larger than {Image.MAX_IMAGE_PIXELS:,} pixels "
            "(Pillow's decompression-bomb limit); reduce it first"
        ) from None
    except MemoryError:
        fp.close()
        raise
    except Exception as exc:  # noqa: BLE001 - a decoder fed untrusted bytes may raise anything
        fp.close()
        raise damaged(path, exc) from None
    _check_size(image.width, image.height, str(path))
    return SourceFile(image, bits)


def damaged(path: str | Path, exc: BaseException) -> ImageError:
    """The error for a file a decoder gave up on, whatever it raised."""
    detail = str(exc) or type(exc).__name__
    return ImageError(f"{path}: damaged or truncated image ({detail})")


def _open_regular(path: Path) -> BinaryIO:
    """The file at ``path`` opened for reading, only if it is a regular file: a FIFO would
    block forever, a device never ends. Non-blocking open, and the type checked on the open
    descriptor, so a name swapped in between cannot block either."""
    try:
        before = os.stat(path)
        if stat.S_ISDIR(before.st_mode):
            raise ImageError(f"{path}: is a folder, not an image")
        if not stat.S_ISREG(before.st_mode):
            raise ImageError(f"{path}: not a regular file (a pipe, device or socket); "
                             "bgmask reads image files only")
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot open it ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageError(f"{path}: not a regular file (a pipe, device or socket); "
                         "bgmask reads image files only")
    return os.fdopen(fd, "rb")


def _stored_bits(image: ImageFile.ImageFile) -> int:
    """Bits per channel in the file, read from the decoder's raw mode before decoding (Pillow
    itself reduces 16-bit colour to 8 bits on load)."""
    if image.mode == "F" or image.mode.startswith("I;32") or image.mode == "I":
        raw = _raw_modes(image)
        return 16 if any(";16" in r for r in raw) else 32
    if image.mode.startswith("I;16"):
        return 16
    return 16 if any(";16" in r for r in _raw_modes(image)) else 8


def _raw_modes(image: ImageFile.ImageFile) -> list[str]:
    modes = []
    for tile in image.tile:
        args = tile.args
        if isinstance(args, str):
            modes.append(args)
        elif isinstance(args, tuple) and args and isinstance(args[0], str):
            modes.append(args[0])
    return modes


def upright_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file as bgmask writes it (EXIF orientation applied), from
    its header alone."""
    image = open_source(path, load=False).image
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - damaged EXIF: the picture is written unrotated too
        orientation = 1
    finally:
        image.close()
    w, h = image.size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def alpha_of(image: Image.Image) -> Image.Image | None:
    """The image's own alpha channel (mode "L"), or None when every pixel is opaque."""
    if image.mode in ("RGBA", "LA", "PA"):
        return image.getchannel("A")
    if image.mode in ("RGBa", "La"):
        return image.getchannel("a")
    if "transparency" in image.info and image.mode in ("P", "L", "RGB"):
        return image.convert("RGBA").getchannel("A")  # a palette entry or colour key
    return None


def _check_size(width: int, height: int, what: str) -> None:
    if width < 1 or height < 1:
        raise ImageError(f"{what}: the image is empty ({width}x{height})")


def prepare_file(path: str | Path, need_luma: bool = True,
                 network_side: int | None = None) -> PreparedImage:
    """Views of an image file, decoding large JPEGs at reduced scale where that is enough:
    to ``network_side`` pixels or more on each side when nothing else needs the photo (no
    refinement), else to the 1024 px working view."""
    with decoding(path) as image:
        orientation = image.getexif().get(0x0112, 1)
        if image.format in ("JPEG", "MPO") and image.mode in ("RGB", "L", "CMYK", "YCbCr") \
                and orientation == 1:
            return _prepare_jpeg(Path(path), image, need_luma, network_side)
        return prepare_image(ImageOps.exif_transpose(image), need_luma, network_side)


@contextmanager
def decoding(path: str | Path) -> Iterator[Image.Image]:
    """The opened image file, closed afterwards; whatever the decoder raises inside becomes an
    ImageError naming the file."""
    image = open_image(path)
    try:
        yield image
    except (ImageError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a decoder fed untrusted bytes may raise anything
        raise damaged(path, exc) from None
    finally:
        image.close()


def _prepare_jpeg(path: Path, image: Image.Image, need_luma: bool,
                  network_side: int | None) -> PreparedImage:
    # JPEG can decode at 1/2, 1/4 or 1/8 scale for almost nothing, and can decode only the
    # luma channel: a 48 MP photo never has to exist as full-size RGB. Draft scaling keeps
    # both sides at or above the size asked for, so the network's input is still a reduction.
    width, height = image.size
    small = image  # opened, not decoded yet
    if network_side and not need_luma:
        small.draft("RGB", (network_side, network_side))
    else:
        small.draft("RGB", _draft_target(width, height))
    small_rgb = _to_small_rgb(small)
    luma = None
    if need_luma:
        full = open_source(path, load=False, formats=("JPEG",)).image
        try:
            full.draft("L", (width, height))
            luma = np.asarray(full.convert("L") if full.mode != "L" else _loaded(full))
        finally:
            full.close()
    return PreparedImage(width, height, small_rgb, luma)


def _loaded(image: Image.Image) -> Image.Image:
    image.load()
    return image


def _draft_target(width: int, height: int) -> tuple[int, int]:
    scale = max(width, height) / WORK_SIDE
    return (max(1, int(width / scale)), max(1, int(height / scale))) if scale > 1 \
        else (width, height)


def prepare_image(image: Image.Image, need_luma: bool = True,
                  network_side: int | None = None) -> PreparedImage:
    """Views of an in-memory PIL image in any mode; with ``network_side`` and no luma needed,
    the small view is only as large as the network's input needs."""
    _check_size(image.width, image.height, "image")
    try:
        rgb = to_rgb8(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"damaged or truncated image ({exc})") from None
    luma = np.asarray(rgb.convert("L")) if need_luma else None
    small_rgb = _to_small_rgb(rgb, None if need_luma else network_side)
    return PreparedImage(image.width, image.height, small_rgb, luma)


def prepare_array(array: np.ndarray, need_luma: bool = True,
                  network_side: int | None = None) -> PreparedImage:
    """Views of an (H, W), (H, W, 1|2|3|4) array: uint8, uint16, or float in [0, 1]."""
    return prepare_image(array_to_image(array), need_luma, network_side)


def array_to_image(array: np.ndarray) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise ImageError(f"an image array must be HxW or HxWxC with C in 1..4, not {a.shape}")
    _check_size(a.shape[1], a.shape[0], "image array")
    a = _to_uint8(a)
    if a.ndim == 3 and a.shape[2] == 2:  # gray + alpha: the alpha is not the subject
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    return Image.fromarray(np.ascontiguousarray(a))


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        # Rounded, as GEGL (GIMP) converts: truncation shifts every value down by half a
        # level, and u2netp's mask moves by whole levels for input changes that small.
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        top = max(int(a.max()), 1) if a.size else 1
        return (a.astype(np.float32) * (255.0 / top)).clip(0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        # Linear-light floats with NaN/Inf from HDR sources: non-finite counts as black.
        f = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(f, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ImageError(f"unsupported image array type {a.dtype}")


def to_rgb8(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of any PIL mode (the alpha channel is not part of the prediction)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return array_to_image(_high_depth_array(image)).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def _high_depth_array(image: Image.Image) -> np.ndarray:
    a = np.asarray(image)
    if image.mode.startswith("I;16"):
        return a.astype(np.uint16)
    if image.mode == "I":  # 32-bit ints: 16-bit PNG data, or 8-bit data widened
        top = 255 if a.size and int(a.max()) <= 255 else 65535
        return np.clip(a, 0, top).astype(np.uint8 if top == 255 else np.uint16)
    return a  # "F": floats, assumed 0..1


def _to_small_rgb(image: Image.Image, network_side: int | None = None) -> np.ndarray:
    """The working view; with ``network_side``, reduced further for the network alone."""
    image = image if image.mode == "RGB" else to_rgb8(image)
    w, h = image.size
    side = max(w, h)
    if side > WORK_SIDE:
        scale = WORK_SIDE / side
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                             Image.Resampling.BOX)
    if network_side:
        # An integer box reduction keeping both sides at or above the network's: several
        # times cheaper for the network's resampling that follows. It starts from the working
        # view, never from the photo, so a reduced copy of a big layer (what the editors
        # send) and the layer itself give the same mask.
        factor = min(image.size) // network_side
        if factor > 1:
            image = image.reduce(factor)
    return np.asarray(image)
