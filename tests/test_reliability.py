"""Malformed input of every kind: each case gives a clear error (no traceback), writes nothing,
and the worker keeps serving. docs/reliability.md reports these cases and what happened."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bgmask.engine.runtime import RuntimeOptions
from bgmask.host.protocol import MAGIC, MAX_HEADER, PREFIX, read_frame, write_frame
from bgmask.worker.requests import Worker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from .conftest import SAMPLE, bgmask_cli

# -- image files through the CLI -------------------------------------------------------------

BROKEN_FILES = {
    "truncated.png": "damaged or truncated",
    "cut-short.jpg": "damaged or truncated",
    "text-named.png": "not an image",
    "zero-bytes.png": "empty file",
    "bomb.png": "decompression-bomb limit",
    "missing.png": "no such file",
}
GOOD_ODDITIES = ["one-pixel.png", "jpeg-named.png", "cmyk.jpg", "palette-transparent.png",
                 "animated.gif", "gray16.png", "float-nan.tiff"]


def make_inputs(folder: Path) -> None:
    photo = Image.open(SAMPLE).convert("RGB").resize((96, 96))
    png, jpg = io.BytesIO(), io.BytesIO()
    photo.save(png, "PNG")
    photo.save(jpg, "JPEG")
    (folder / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (folder / "cut-short.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 3])
    (folder / "text-named.png").write_text("this is a shopping list, not a picture\n")
    (folder / "zero-bytes.png").write_bytes(b"")
    # A valid PNG header claiming 100000 x 100000 pixels: Pillow's bomb guard must refuse it.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))

    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                                      + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                                      + chunk(b"IEND", b""))
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "one-pixel.png")
    (folder / "jpeg-named.png").write_bytes(jpg.getvalue())
    photo.convert("CMYK").save(folder / "cmyk.jpg")
    palette = photo.convert("P")
    palette.info["transparency"] = 0
    palette.save(folder / "palette-transparent.png", transparency=0)
    frames = [photo, photo.rotate(90)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257).save(
        folder / "gray16.png")
    floats = np.asarray(photo.convert("L"), np.float32) / 255
    floats[0, :10] = np.nan
    floats[1, :10] = np.inf
    Image.fromarray(floats, "F").save(folder / "float-nan.tiff")


@pytest.fixture(scope="module")
def cli_run(model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    make_inputs(folder)
    out = tmp_path_factory.mktemp("out")
    names = list(BROKEN_FILES) + GOOD_ODDITIES
    result = subprocess.run([*bgmask_cli(), *[str(folder / n) for n in names], "--mask",
                             "-o", str(out)], capture_output=True, text=True)
    return result, folder, out


@pytest.mark.parametrize("name", list(BROKEN_FILES))
def test_broken_image_file_is_one_clear_line_and_writes_nothing(cli_run, name):
    result, folder, out = cli_run
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = [x for x in result.stderr.splitlines() if name in x and x.startswith("bgmask:")]
    assert BROKEN_FILES[name] in line.lower(), line
    assert not list(out.glob(Path(name).stem + "*"))


@pytest.mark.parametrize("name", GOOD_ODDITIES)
def test_odd_but_valid_images_are_masked_at_their_size(cli_run, name):
    _, folder, out = cli_run
    [written] = list(out.glob(Path(name).stem + "*"))
    with Image.open(folder / name) as source:
        assert Image.open(written).size == source.size


# -- protocol frames to a real worker --------------------------------------------------------

def frame(header: dict, payload: bytes = b"") -> bytes:
    stream = io.BytesIO()
    write_frame(stream, header, payload)
    return stream.getvalue()


def raw_frame(head: bytes, payload: bytes = b"") -> bytes:
    return PREFIX.pack(MAGIC, len(head), len(payload)) + head + payload


def mask_header(**changes: object) -> dict:
    return {"type": "mask", "id": 1, "width": 8, "height": 8, "format": "rgb8", **changes}


PIXELS = bytes(range(8 * 8 * 3))  # 8 x 8 RGB

# (case, frame bytes, expected error class): the worker answers and keeps serving.
RECOVERABLE = [
    ("header is not JSON", raw_frame(b"{not json"), "MalformedRequestError"),
    ("header is JSON but not an object", raw_frame(b"[1, 2]"), "MalformedRequestError"),
    ("header has no type", frame({"id": 3}), "MalformedRequestError"),
    ("unknown request type", frame({"type": "paint"}), "MalformedRequestError"),
    ("unknown pixel format", frame(mask_header(format="rgb12"), PIXELS),
     "MalformedRequestError"),
    ("pixel count not w*h*channels", frame(mask_header(), PIXELS[:-1]),
     "MalformedRequestError"),
    ("zero width", frame(mask_header(width=0), b""), "MalformedRequestError"),
    ("negative height", frame(mask_header(height=-8), PIXELS), "MalformedRequestError"),
    ("width is a string", frame(mask_header(width="8"), PIXELS), "MalformedRequestError"),
    ("format missing", frame({"type": "mask", "id": 1, "width": 8, "height": 8}, PIXELS),
     "MalformedRequestError"),
    ("unknown option", frame(mask_header(options={"sharpen": True}), PIXELS), "UsageError"),
    ("option of the wrong type", frame(mask_header(options={"invert": "yes"}), PIXELS),
     "UsageError"),
    ("threshold out of range", frame(mask_header(options={"threshold": 1.5}), PIXELS),
     "UsageError"),
    ("negative contrast", frame(mask_header(options={"contrast": -2}), PIXELS),
     "UsageError"),
    ("options not an object", frame(mask_header(options=[1]), PIXELS), "UsageError"),
    ("unknown model", frame(mask_header(model="u3net-huge"), PIXELS), "UnknownModelError"),
    ("model name not a string", frame(mask_header(model=7), PIXELS), "UsageError"),
    ("base mask of the wrong size", frame(mask_header(base_mask=True), PIXELS + b"\x00" * 10),
     "MalformedRequestError"),
    ("wrong protocol version", frame({"type": "hello", "protocol": 99}),
     "MalformedRequestError"),
    ("mask_size smaller than the pixels", frame(mask_header(mask_size=[4, 4]), PIXELS),
     "MalformedRequestError"),
    ("mask_size not a pair", frame(mask_header(mask_size="big"), PIXELS),
     "MalformedRequestError"),
    ("mask_size with refinement", frame(mask_header(mask_size=[64, 64],
                                                    options={"refine": True}), PIXELS),
     "UsageError"),
]
# Frames after which the stream cannot be trusted: one error reply, then the worker exits.
FATAL = [
    ("wrong magic", b"JUNK" + raw_frame(b"{}")[4:]),
    ("header length beyond the bound", PREFIX.pack(MAGIC, MAX_HEADER + 1, 0)),
    ("payload length beyond the bound", PREFIX.pack(MAGIC, 2, (1 << 30) + 1) + b"{}"),
    ("stream ends inside a frame", PREFIX.pack(MAGIC, 50, 0) + b'{"type":'),
]


def serve(stream: bytes) -> tuple[int, list[dict]]:
    """Runs the real worker loop (real model) over ``stream``; (exit code, reply headers)."""
    out = io.BytesIO()
    code = Worker(io.BytesIO(stream), out, RuntimeOptions()).serve()
    out.seek(0)
    replies = []
    while (got := read_frame(out)) is not None:
        replies.append(got[0])
    return code, [r for r in replies if r["type"] != "progress"]


HELLO = frame({"type": "hello", "protocol": 1})
GOOD = frame(mask_header(id=99), PIXELS)


def test_request_before_handshake_is_refused_then_served(model_dir):
    code, replies = serve(GOOD + HELLO + GOOD)
    assert code == 0
    assert replies[0]["type"] == "error" and "hello" in replies[0]["message"]
    assert replies[-1]["type"] == "mask"


@pytest.mark.parametrize("case, data, error", RECOVERABLE, ids=[c[0] for c in RECOVERABLE])
def test_malformed_request_gets_an_error_and_the_worker_keeps_serving(model_dir, case, data,
                                                                      error):
    code, replies = serve(HELLO + data + GOOD)
    assert code == 0
    errors = [r for r in replies if r["type"] == "error"]
    assert [e["error"] for e in errors] == [error], replies
    assert errors[0]["message"] and "Traceback" not in errors[0]["message"]
    assert replies[-1]["type"] == "mask" and replies[-1]["id"] == 99


@pytest.mark.parametrize("case, data", FATAL, ids=[c[0] for c in FATAL])
def test_lost_framing_gets_one_error_and_the_worker_stops(model_dir, case, data):
    code, replies = serve(HELLO + data + GOOD)
    assert code == 3
    assert replies[-1]["type"] == "error" and replies[-1]["error"] == "ProtocolError"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.binary(max_size=64),
    st.builds(lambda h, p: frame(h, p),
              st.dictionaries(st.sampled_from(["type", "id", "width", "height", "format",
                                               "options", "model", "base_mask", "protocol"]),
                              st.one_of(st.integers(-5, 40), st.text(max_size=8),
                                        st.sampled_from(["mask", "hello", "rgb8", "bye"]),
                                        st.booleans(), st.none()), max_size=8),
              st.binary(max_size=200))), max_size=6))
def test_fuzzed_frames_never_crash_the_worker(model_dir, chunks):
    """Random bytes and random well-framed headers: the loop ends with 0 or 3, never raises,
    and every reply it writes is itself a valid frame."""
    code, replies = serve(HELLO + b"".join(chunks))
    assert code in (0, 3)
    assert all(r["type"] in ("hello", "mask", "error", "bye") for r in replies)


# -- model files and options through the CLI -------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*bgmask_cli(), *args], capture_output=True, text=True)


@pytest.fixture
def bad_models(tmp_path, model_file) -> Path:
    data = model_file.read_bytes()
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(1).bytes(5000))
    (tmp_path / "u2netp.onnx").write_bytes(data)
    return tmp_path


@pytest.mark.parametrize("name, flags, message", [
    ("empty.onnx", [], "cannot load"),
    ("truncated.onnx", [], "cannot load"),
    ("random.onnx", [], "cannot load"),
    # A valid graph fed the wrong input shape: it takes 320 x 320.
    ("u2netp.onnx", ["--input-size", "512"], "takes input"),
])
def test_bad_model_file_is_a_clear_error_and_writes_nothing(bad_models, tmp_path, name, flags,
                                                            message):
    out = tmp_path / "out.png"
    result = cli(str(SAMPLE), "-o", str(out), "--model-file", str(bad_models / name), *flags)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_a_cached_model_with_a_wrong_hash_is_refused(model_file, tmp_path, monkeypatch):
    store = tmp_path / "store"
    store.mkdir()
    damaged = bytearray(model_file.read_bytes())
    damaged[5000] ^= 0xFF
    (store / "u2netp.onnx").write_bytes(bytes(damaged))
    monkeypatch.setenv("BGMASK_MODEL_DIR", str(store))
    verify = cli("models", "verify", "u2netp")
    assert verify.returncode == 1 and "sha256" in verify.stderr.lower()
    out = tmp_path / "out.png"
    masked = subprocess.run([*bgmask_cli(), str(SAMPLE), "-o", str(out)], capture_output=True,
                            text=True, env={**__import__("os").environ,
                                            "BGMASK_MODEL_DIR": str(store),
                                            "BGMASK_MODEL_MIRROR": "http://127.0.0.1:9/"})
    assert masked.returncode == 1 and not out.exists()
    assert "Traceback" not in masked.stderr


@pytest.mark.parametrize("flags, code", [
    (["--model", "no-such-model"], 1),
    (["--input-size", "-5", "--model-file", "x.onnx"], 2),
    (["--threshold", "1.5"], 2),
    (["--threshold", "0"], 2),
    (["--contrast", "0"], 2),
    (["--jobs", "0"], 2),
    (["--quality", "perfect"], 2),
])
def test_bad_options_are_refused_before_any_work(model_dir, tmp_path, flags, code):
    out = tmp_path / "out.png"
    result = cli(str(SAMPLE), "-o", str(out), *flags)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip()
    assert not out.exists()
