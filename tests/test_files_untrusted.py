"""Untrusted images (issue 13): only the raster formats a photo editor's user means are
opened, nothing starts an external program, one bad input never stops a folder run, only
regular files are read, and the cutout is honest about the photo's alpha, colours, size limits
and bit depth."""

from __future__ import annotations

import io
import os
import socket
import stat
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bgmask.engine.output import save_mask
from bgmask.host.errors import OutputError
from PIL import Image, ImageCms

from .conftest import SAMPLE, bgmask_cli


def bgmask(*args: object, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*bgmask_cli(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def picture(size: int = 96) -> Image.Image:
    return Image.open(SAMPLE).convert("RGB").resize((size, size))


def lines_naming(result: subprocess.CompletedProcess[str], path: Path) -> list[str]:
    return [x for x in result.stderr.splitlines() if str(path) in x]


# -- formats that start programs ---------------------------------------------------------------

POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto showpage\n"


@pytest.fixture
def fake_ghostscript(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A 'gs' first on PATH that only leaves a mark: any run of it is the failure."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mark = tmp_path / "ghostscript-ran"
    gs = bin_dir / "gs"
    gs.write_text(f"#!/bin/sh\ntouch {mark}\nexit 1\n")
    gs.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, mark


def test_postscript_under_a_picture_name_never_runs_a_program(model_dir, tmp_path,
                                                              fake_ghostscript):
    env, mark = fake_ghostscript
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "page.png").write_bytes(POSTSCRIPT)
    # The DOS EPS container: a binary header pointing at the PostScript.
    (folder / "dos.jpg").write_bytes(b"\xc5\xd0\xd3\xc6" + struct.pack("<II", 30, len(POSTSCRIPT))
                                     + bytes(18) + POSTSCRIPT)
    picture().save(folder / "good.png")
    result = bgmask(folder, "-o", tmp_path / "out", "--mask", env=env)
    assert not mark.exists(), "Ghostscript was started"
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for name in ("page.png", "dos.jpg"):
        [line] = lines_naming(result, folder / name)
        assert "not an image bgmask can read (it reads JPEG, PNG, WebP, TIFF, BMP and GIF" \
            in line
    assert (tmp_path / "out" / "good.png").exists()
    api = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from bgmask import Masker
        from bgmask.host.errors import ImageError
        try:
            Masker("u2netp").mask({str(folder / 'page.png')!r})
        except ImageError as exc:
            print(exc)
        """)], capture_output=True, text=True, env=env, timeout=120)
    assert "not an image bgmask can read" in api.stdout, api.stderr
    assert not mark.exists(), "Ghostscript was started through the Python API"


def test_the_accepted_formats_all_work(model_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = picture()
    for name in ("a.jpg", "b.png", "c.webp", "d.tif", "e.bmp", "f.gif"):
        photo.save(folder / name)
    # A camera JPEG with a second picture (MPO) is still a JPEG.
    photo.save(folder / "g.jpg", "MPO", save_all=True, append_images=[photo.rotate(90)])
    assert Image.open(folder / "g.jpg").format == "MPO"
    result = bgmask(folder, "-o", tmp_path / "out", "--mask")
    assert result.returncode == 0, result.stderr
    assert "7 written, 0 skipped, 0 failed" in result.stderr


def test_other_formats_pillow_knows_are_refused(tmp_path):
    photo = picture()
    for name, fmt in (("a.png", "PPM"), ("b.png", "TGA"), ("c.png", "PCX"), ("d.png", "ICO")):
        photo.save(tmp_path / name, fmt)
        result = bgmask(tmp_path / name, "-o", tmp_path / f"out-{name}")
        assert result.returncode == 1 and "not an image bgmask can read" in result.stderr, fmt


# -- one bad input never stops a folder run ------------------------------------------------

def dds_with_an_unknown_pixel_format() -> bytes:
    header = struct.pack("<3I", 0x1007, 8, 8) + bytes(12) + bytes(44)
    header += struct.pack("<4I", 32, 0x4, int.from_bytes(b"XXXX", "little"), 0)
    return b"DDS " + struct.pack("<I", 124) + header + bytes(120 - len(header))


SITE_HOOK = """
import PIL.PngImagePlugin, bgmask.engine.pipeline, struct
def _pick(width):
    return width == 77
def _boom():
    raise {exc}
_load = PIL.PngImagePlugin.PngImageFile.load
def load(self):
    if {layer!r} == "decoder" and _pick(self.size[0]):
        _boom()
    return _load(self)
PIL.PngImagePlugin.PngImageFile.load = load
_mask = bgmask.engine.pipeline.Masker.mask_prepared
def mask_prepared(self, prepared, options):
    if {layer!r} == "pipeline" and _pick(prepared.width):
        _boom()
    return _mask(self, prepared, options)
bgmask.engine.pipeline.Masker.mask_prepared = mask_prepared
"""


def test_a_fuzzed_dds_under_a_picture_name_is_one_line(model_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-texture.png").write_bytes(dds_with_an_unknown_pixel_format())
    picture().save(folder / "b.png")
    result = bgmask(folder, "-o", tmp_path / "out", "--mask")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(lines_naming(result, folder / "a-texture.png")) == 1
    assert "1 written, 0 skipped, 1 failed" in result.stderr


@pytest.mark.parametrize("layer", ["decoder", "pipeline"])
@pytest.mark.parametrize("exc", ["NotImplementedError('no')", "ZeroDivisionError()",
                                 "RecursionError('deep')", "struct.error('short')"])
def test_any_exception_for_one_input_is_named_counted_and_the_rest_done(model_dir, tmp_path,
                                                                        layer, exc):
    """Whatever one input makes any layer raise (here injected into the PNG decoder or the
    pipeline for pictures 77 px wide), it is that input's failure only."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITE_HOOK.format(exc=exc, layer=layer))
    folder = tmp_path / "in"
    folder.mkdir()
    picture().save(folder / "a.png")
    picture().resize((77, 60)).save(folder / "b-odd.png")
    picture().save(folder / "c.png")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    result = bgmask(folder, "-o", tmp_path / "out", "--mask", "--jobs", "2", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = lines_naming(result, folder / "b-odd.png")
    assert line.startswith("bgmask: ")
    assert "2 written, 0 skipped, 1 failed" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


# -- only regular files --------------------------------------------------------------------

def test_a_fifo_a_device_or_a_socket_is_refused_at_once(model_dir, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock.png"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    good = tmp_path / "good.png"
    picture().save(good)
    try:
        result = bgmask(fifo, "/dev/zero", sock_path, good, "-o", tmp_path / "out", "--mask",
                        timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("bgmask blocked on a pipe or device")
    finally:
        sock.close()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for path in (fifo, Path("/dev/zero"), sock_path):
        [line] = lines_naming(result, path)
        assert "not a regular file" in line
    assert (tmp_path / "out" / "good.png").exists()
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    api = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from bgmask.engine.images import prepare_file
        from bgmask.host.errors import ImageError
        try:
            prepare_file({str(fifo)!r})
        except ImageError as exc:
            print(exc)
        """)], capture_output=True, text=True, timeout=60)
    assert "not a regular file" in api.stdout, api.stderr


# -- what the cutout holds -----------------------------------------------------------------

def with_holes(mode: str) -> Image.Image:
    """A photo whose own alpha is 0 on the left third and half on a band."""
    rgba = picture(128).convert("RGBA")
    alpha = np.full((128, 128), 255, np.uint8)
    alpha[:, :43] = 0
    alpha[60:70, :] = 128
    rgba.putalpha(Image.fromarray(alpha))
    if mode == "P":
        return rgba.convert("P")  # a palette with transparent entries
    return rgba.convert(mode)


@pytest.mark.parametrize("mode, name", [("RGBA", "a.png"), ("LA", "a.png"), ("P", "a.png"),
                                        ("RGBA", "a.webp")])
def test_the_cutout_never_shows_what_the_photo_hides(model_dir, masker, tmp_path, mode, name):
    source = tmp_path / name
    with_holes(mode).save(source, **({"lossless": True} if name.endswith("webp") else {}))
    own = np.asarray(Image.open(source).convert("RGBA").getchannel("A"))
    assert (own == 0).sum() > 5000
    out = tmp_path / "cut.png"
    assert bgmask(source, "-o", out).returncode == 0
    alpha = np.asarray(Image.open(out).getchannel("A"))
    assert (alpha <= own).all()
    assert np.array_equal(alpha, np.minimum(masker.mask(source), own))


# Minimal ICC v2 profiles, built here: the machine has no profile files to borrow.

def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _icc(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    text = b"bgmask test\0"
    desc = (b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8 + 2 + 1 + 67))
    tags = [(b"desc", desc), (b"cprt", b"text" + bytes(4) + b"none\0"),
            (b"wtpt", b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)), *tags]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        data += bytes(-(offset + len(data)) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000)
              + device_class + space + pcs + bytes(12) + b"acsp" + bytes(28)
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def gray_profile(gamma: float = 1.8) -> bytes:
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    return _icc(b"mntr", b"GRAY", b"XYZ ", [(b"kTRC", curve)])


def cmyk_profile() -> bytes:
    """A made-up printer: a 2-point CLUT from CMYK to Lab, a little colour in it."""
    lut = b"mft2" + bytes(4) + bytes([4, 3, 2, 0])
    lut += b"".join(_s15(1.0 if i in (0, 4, 8) else 0.0) for i in range(9))
    lut += struct.pack(">HH", 2, 2) + struct.pack(">HH", 0, 65535) * 4
    for c, m, y, k in np.ndindex(2, 2, 2, 2):
        light = (1 - c) * (1 - m) * (1 - y) * (1 - k)
        lut += struct.pack(">HHH", round(light * 0xFF00), 0x8000 + (m - c) * 0x3000,
                           0x8000 + y * 0x3000 - c * 0x1800)
    lut += struct.pack(">HH", 0, 65535) * 3
    return _icc(b"prtr", b"CMYK", b"Lab ", [(b"A2B0", lut)])


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@pytest.mark.parametrize("kind", ["cmyk-jpeg", "gray-jpeg", "gray-png", "gray16-png"])
def test_cmyk_and_gray_photos_come_out_as_srgb(model_dir, tmp_path, kind):
    """The cutout is RGB: it must carry a profile a colour manager can use for RGB pixels
    (the photo's CMYK or gray one makes them fail with 'cannot build transform'), and its
    colours are the photo's own, converted through that profile."""
    icc = cmyk_profile() if kind.startswith("cmyk") else gray_profile()
    photo = picture(64)
    source = tmp_path / ("in.jpg" if kind.endswith("jpeg") else "in.png")
    if kind == "cmyk-jpeg":
        photo.convert("CMYK").save(source, icc_profile=icc, quality=95)
    elif kind == "gray16-png":
        Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257).save(
            source, icc_profile=icc)
    else:
        photo.convert("L").save(source, icc_profile=icc)
    out = tmp_path / "cut.png"
    result = bgmask(source, "-o", out)
    assert result.returncode == 0, result.stderr
    cut = Image.open(out)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(cut.info["icc_profile"]))
    assert profile.profile.xcolor_space.strip() == "RGB"
    ImageCms.buildTransform(profile, SRGB, "RGB", "RGB")  # what failed before
    assert "converted to sRGB" in result.stdout
    decoded = Image.open(source)
    if decoded.mode == "I;16":  # 16-bit levels rounded to 8 bits, as GIMP does
        levels = np.asarray(decoded).astype(np.uint32)
        decoded = Image.fromarray(((levels * 255 + 32767) // 65535).astype(np.uint8))
    expected = ImageCms.profileToProfile(decoded, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                         SRGB, outputMode="RGB")
    got = np.asarray(cut.convert("RGB"), np.int16)
    assert np.abs(got - np.asarray(expected, np.int16)).max() <= 1


def test_a_profile_that_does_not_fit_the_pixels_is_dropped(model_dir, tmp_path):
    source = tmp_path / "in.png"
    photo = picture(64)
    photo.save(source, icc_profile=cmyk_profile())  # RGB pixels, a CMYK profile
    out = tmp_path / "cut.png"
    result = bgmask(source, "-o", out)
    assert result.returncode == 0, result.stderr
    cut = Image.open(out)
    assert "icc_profile" not in cut.info
    assert "colour profile dropped" in result.stdout
    assert np.array_equal(np.asarray(cut)[:, :, :3], np.asarray(photo))


def test_too_wide_for_webp_is_refused_before_any_work(tmp_path):
    source = tmp_path / "panorama.png"
    Image.new("RGB", (16400, 4), "white").save(source)
    for flags in ([], ["--mask"]):
        result = bgmask(source, "-o", tmp_path / "pano.webp", *flags)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "WebP holds at most 16383 px a side" in result.stderr
        assert "write .png instead" in result.stderr
        assert " on " not in result.stderr  # refused before the model was loaded
        assert not (tmp_path / "pano.webp").exists()
    with pytest.raises(OutputError, match="WebP holds at most"):
        save_mask(np.zeros((4, 16400), np.uint8), tmp_path / "pano.webp")
    assert list(tmp_path.iterdir()) == [source]


def test_high_bit_depth_inputs_say_they_became_8_bit(model_dir, tmp_path):
    gray16 = tmp_path / "gray16.png"
    Image.fromarray(np.asarray(picture().convert("L"), np.uint16) * 257).save(gray16)
    rgb48 = tmp_path / "rgb48.tif"
    # Pillow cannot write 48-bit colour: a TIFF header around the samples, written by hand.
    samples = (np.asarray(picture()).astype("<u2") * 257).tobytes()
    rgb48.write_bytes(_tiff_rgb48(96, 96, samples))
    assert Image.open(rgb48).mode == "RGB"  # Pillow reads it as 8 bits: only the file knows
    floats = tmp_path / "float.tif"
    Image.fromarray(np.asarray(picture().convert("L"), np.float32) / 255).save(floats)
    eight = tmp_path / "eight.png"
    picture().save(eight)
    result = bgmask(gray16, rgb48, floats, eight, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    said = dict(line.split(" -> ") for line in result.stdout.splitlines())
    assert said[str(gray16)].endswith("(16-bit input written as 8 bits)")
    assert said[str(rgb48)].endswith("(16-bit input written as 8 bits)")
    assert said[str(floats)].endswith("(32-bit input written as 8 bits)")
    assert said[str(eight)] == str(tmp_path / "out" / "eight.png")
    masks = bgmask(gray16, "--mask", "-o", tmp_path / "m.png")
    assert masks.stdout.strip() == f"{gray16} -> {tmp_path / 'm.png'}"  # a mask is 8-bit


def _tiff_rgb48(width: int, height: int, samples: bytes) -> bytes:
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, 0),  # bits: at offset
               (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, 3),
               (278, 3, 1, height), (279, 4, 1, len(samples)), (284, 3, 1, 1)]
    ifd_at = 8
    bits_at = ifd_at + 2 + 12 * len(entries) + 4
    data_at = bits_at + 6
    out = b"II*\0" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_at
        if tag == 273:
            value = data_at
        if kind == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16)
    return out + samples
