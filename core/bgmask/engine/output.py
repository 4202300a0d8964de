"""Writing results: the mask alone, or the photo with the mask as its alpha channel.

Each save returns notes for the person reading the output line (a 16-bit input written as
8 bits, colours converted to sRGB); every write goes through ``safewrite``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from ..host.errors import ImageError, OutputError
from .decontaminate import foreground_colours
from .images import alpha_of, open_source, to_rgb8
from .safewrite import write_file

try:  # Pillow built without littlecms has no ImageCms: profiles are then dropped, not applied
    from PIL import ImageCms
except ImportError:  # pragma: no cover - every wheel on PyPI has it
    ImageCms = None  # type: ignore[assignment]

SUFFIXES = {".png": "PNG", ".webp": "WEBP"}
WEBP_MAX_SIDE = 16383  # the WebP format's own limit, per side

# The colour space an ICC profile describes (header bytes 16..20), by the PIL modes it fits.
_PROFILE_SPACE_OF_MODE = {"RGB": b"RGB ", "RGBA": b"RGB ", "RGBa": b"RGB ", "RGBX": b"RGB ",
                          "P": b"RGB ", "PA": b"RGB ", "CMYK": b"CMYK", "L": b"GRAY",
                          "LA": b"GRAY", "La": b"GRAY", "I": b"GRAY", "I;16": b"GRAY",
                          "I;16B": b"GRAY", "I;16L": b"GRAY", "I;16N": b"GRAY", "F": b"GRAY"}


def output_format(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: write .png or .webp (masks and cutouts need lossless alpha)")
    return fmt


def check_fits(path: Path, width: int, height: int) -> None:
    """Refuse, before any work, a picture the output format cannot hold."""
    if output_format(path) == "WEBP" and max(width, height) > WEBP_MAX_SIDE:
        raise OutputError(f"{path}: WebP holds at most {WEBP_MAX_SIDE} px a side and this "
                          f"picture is {width}x{height}; write .png instead")


def save_mask(mask: np.ndarray, path: Path, *, replace: bool = True,
              root: Path | None = None) -> list[str]:
    """Write the 8-bit mask; ``replace`` and ``root`` as in ``safewrite.write_file``."""
    _save(Image.fromarray(mask, mode="L"), path, None, replace, root)
    return []


def save_cutout(source: Path, mask: np.ndarray, path: Path, *, replace: bool = True,
                root: Path | None = None, decontaminate: bool = False) -> list[str]:
    """The source photo, upright, with ``mask`` as alpha (never more opaque than the photo's
    own alpha), in 8-bit sRGB or under the photo's own RGB profile; notes on what changed.
    ``decontaminate`` replaces the soft edge's colours by the subject's own."""
    opened = open_source(source)
    notes = []
    try:
        original = opened.image
        icc = original.info.get("icc_profile")
        upright = ImageOps.exif_transpose(original)
        if upright.size != (mask.shape[1], mask.shape[0]):
            raise ImageError(f"{source}: the mask does not match the image size")
        rgb, icc, colour_note = _rgb_and_profile(upright, icc)
        alpha = mask
        own = alpha_of(upright)
        if own is not None:
            # Pixels the photo itself hides stay hidden: the cutout only removes.
            alpha = np.minimum(mask, np.asarray(own))
    finally:
        opened.image.close()
    if opened.bits > 8:
        notes.append(f"{opened.bits}-bit input written as 8 bits")
    if colour_note:
        notes.append(colour_note)
    if decontaminate:
        rgb = Image.fromarray(foreground_colours(np.asarray(rgb.convert("RGB")), alpha))
    if rgb is upright:
        rgb = rgb.copy()  # never add a channel to a picture someone else holds
    rgb.putalpha(Image.fromarray(np.ascontiguousarray(alpha), mode="L"))
    _save(rgb, path, icc, replace, root)
    return notes


def _rgb_and_profile(image: Image.Image, icc: bytes | None
                     ) -> tuple[Image.Image, bytes | None, str | None]:
    """8-bit RGB pixels and the profile that describes them: the photo's own profile when it is
    an RGB one; a grayscale or CMYK photo's colours converted through its profile to sRGB;
    otherwise no profile at all (one that does not describe RGB pixels breaks colour managers)."""
    if not icc:
        return to_rgb8(image), None, None
    space, wanted = bytes(icc[16:20]), _PROFILE_SPACE_OF_MODE.get(image.mode)
    if space == wanted == b"RGB ":
        return to_rgb8(image), icc, None
    if space == wanted and ImageCms is not None:
        kind = "CMYK" if space == b"CMYK" else "grayscale"
        source = image if image.mode == "CMYK" else _gray8(image)
        try:
            converted = ImageCms.profileToProfile(
                source, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb(), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a damaged profile: dropped below
        else:
            if converted is not None:
                return converted, _srgb_bytes(), f"{kind} colours converted to sRGB"
    return to_rgb8(image), None, "its colour profile dropped (it does not describe RGB)"


def _gray8(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in ("LA", "La"):
        return image.convert("L")
    return to_rgb8(image).convert("L")  # 16-bit and float grays, scaled as for the mask


def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _srgb_bytes() -> bytes:
    return _srgb().tobytes()


def _save(image: Image.Image, path: Path, icc: bytes | None, replace: bool,
          root: Path | None) -> None:
    fmt = output_format(path)
    check_fits(path, image.width, image.height)
    # Given explicitly, even when None: Pillow's writers otherwise fall back on the profile
    # the picture was decoded with, the very one a conversion may have dropped.
    image.info.pop("icc_profile", None)
    options: dict[str, object] = {"icc_profile": icc}
    if fmt == "WEBP":
        options.update(lossless=True, quality=100, exact=True)

    def write(f: BinaryIO) -> None:
        image.save(f, fmt, **options)

    write_file(path, write, replace=replace, root=root)


def is_complete_output(path: Path, size: tuple[int, int] | None = None) -> bool:
    """Whether ``path`` is a PNG or WebP that decodes to the end, of ``size`` when given
    (``--skip-existing`` trusts nothing less: a 0-byte or cut-short file is redone)."""
    try:
        first = open_source(path, load=False, formats=("PNG", "WEBP")).image
        fmt = first.format or "PNG"
        try:
            if fmt == "PNG":
                first.verify()  # every chunk's checksum, which decoding alone does not check
        finally:
            first.close()
        image = open_source(path, load=False, formats=(fmt,)).image
        try:
            image.load()
            return size is None or image.size == size
        finally:
            image.close()
    except (ImageError, MemoryError):
        return False
    except Exception:  # noqa: BLE001 - any decoder complaint means "not a complete file"
        return False
