"""The editors' "new layer" output with clean edge colours: the worker sends back the layer's
own pixels, in their own format, with the soft edge's colours replaced by the subject's."""

from __future__ import annotations

import io

import numpy as np
import pytest
from bgmask.engine.decontaminate import foreground_colours
from bgmask.engine.runtime import RuntimeOptions
from bgmask.host.errors import UsageError
from bgmask.host.protocol import read_frame
from bgmask.worker.requests import Worker

from .test_worker_limits import GIB, HELLO, PIXELS, claim, frame, mask_header, peak_of


def soft(mask: np.ndarray) -> np.ndarray:
    return (mask > 0) & (mask < 255)


def test_an_rgba_layer_comes_back_with_only_its_edge_colours_changed(worker_client, sample_rgba):
    h, w = sample_rgba.shape[:2]
    plain = worker_client.mask(sample_rgba.tobytes(), w, h, "rgba8")
    reply = worker_client.mask(sample_rgba.tobytes(), w, h, "rgba8", colours=True)
    assert reply.mask == plain.mask  # cleaning colours never changes the mask
    mask = np.frombuffer(reply.mask, np.uint8).reshape(h, w)
    got = np.frombuffer(reply.colours, np.uint8).reshape(h, w, 4)
    band = soft(mask)
    assert band.sum() > 1000  # the cat's fur: a wide soft edge
    assert np.array_equal(got[:, :, 3], sample_rgba[:, :, 3])  # the layer's own alpha
    assert np.array_equal(got[~band], sample_rgba[~band])
    assert np.array_equal(got[:, :, :3], foreground_colours(sample_rgba[:, :, :3], mask))
    assert np.abs(got[band].astype(int) - sample_rgba[band]).mean() > 1


def test_sixteen_bit_bgra_comes_back_in_sixteen_bits_and_its_own_order(worker_client, sample_rgba):
    h, w = sample_rgba.shape[:2]
    bgra16 = (sample_rgba[:, :, [2, 1, 0, 3]].astype("<u2") * 257 + 100).astype("<u2")
    bgra16[:, :, 3] = 65535
    reply = worker_client.mask(bgra16.tobytes(), w, h, "bgra16", colours=True)
    mask = np.frombuffer(reply.mask, np.uint8).reshape(h, w)
    got = np.frombuffer(reply.colours, "<u2").reshape(h, w, 4)
    band = soft(mask)
    assert np.array_equal(got[~band], bgra16[~band])  # every 16-bit value kept outside
    assert np.array_equal(got[:, :, :3], foreground_colours(bgra16[:, :, :3], mask))
    # Values that 8 bits cannot hold: the band is solved in 16 bits, not 8.
    assert (got[band][:, :3] % 257 != 0).mean() > 0.5


def test_clean_colours_need_the_full_size_pixels(worker_client, sample_rgba):
    small = np.ascontiguousarray(sample_rgba[::2, ::2])
    with pytest.raises(UsageError, match="full size"):
        worker_client.mask(small.tobytes(), 256, 256, "rgba8", mask_size=(512, 512), colours=True)
    # still serving
    assert worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8").width == 512


def replies_to(data: bytes) -> list[dict]:
    out = io.BytesIO()
    Worker(io.BytesIO(HELLO + data + frame(mask_header(id=99), PIXELS)), out,
           RuntimeOptions()).serve()
    out.seek(0)
    replies = []
    while (got := read_frame(out)) is not None:
        replies.append(got[0])
    return replies


def test_a_colours_field_that_is_not_a_boolean_is_refused(model_dir):
    replies = replies_to(frame(mask_header(colours="yes"), PIXELS))
    assert replies[1]["error"] == "MalformedRequestError" and "colours" in replies[1]["message"]
    assert replies[-1]["type"] == "mask" and replies[-1]["id"] == 99 and "colours" not in \
        replies[-1]


def test_colours_that_would_not_fit_one_reply_are_refused_before_reading(model_dir):
    """A 16384 x 16384 RGBA layer fits a request (1 GiB), but not with its mask in the reply:
    refused from the header, before a byte of the claimed payload is read."""
    header = mask_header(width=1 << 14, height=1 << 14, format="rgba8", colours=True)
    out = io.BytesIO()
    worker = Worker(io.BytesIO(HELLO + claim(header, GIB)), out, RuntimeOptions())
    peak = peak_of(worker.serve)
    out.seek(0)
    replies = []
    while (got := read_frame(out)) is not None:
        replies.append(got[0])
    assert "smaller layer" in replies[1]["message"]
    assert peak < 16 << 20
