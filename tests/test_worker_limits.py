"""Every size a client claims is checked against the limits before anything of that size is
allocated or computed, and a connection that has not proved the secret gets nothing but a
small hello read."""

from __future__ import annotations

import io
import os
import socket
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from bgmask.engine.runtime import RuntimeOptions
from bgmask.host import background, job
from bgmask.host.errors import ImageError, MalformedRequestError, ProtocolError
from bgmask.host.protocol import MAGIC, MAX_PIXELS, PREFIX, read_frame, write_frame
from bgmask.worker.requests import Worker

from .test_shared_worker import hello_pid

GIB = 1 << 30


def frame(header: dict, payload: bytes = b"") -> bytes:
    stream = io.BytesIO()
    write_frame(stream, header, payload)
    return stream.getvalue()


def claim(header: dict, claimed: int, sent: bytes = b"") -> bytes:
    """A frame whose prefix claims ``claimed`` payload bytes, of which ``sent`` follow."""
    head = frame(header)[PREFIX.size:]
    return PREFIX.pack(MAGIC, len(head), claimed) + head + sent


def peak_of(action) -> int:  # noqa: ANN001 (any callable)
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- the frame reader ------------------------------------------------------------------------

@pytest.mark.parametrize("claimed", [GIB, GIB // 2, 100 << 20])
def test_a_claimed_payload_is_not_allocated_before_it_arrives(claimed):
    stream = io.BytesIO(claim({"type": "mask"}, claimed, b"x" * 1000))

    def read() -> None:
        with pytest.raises(ProtocolError, match="ended after 1000 of"):
            read_frame(stream)

    assert peak_of(read) < 4 << 20


def test_a_payload_that_arrives_is_read_whole():
    data = os.urandom(5 << 20)  # several growth steps
    header, payload = read_frame(io.BytesIO(frame({"type": "mask"}, data)))
    assert payload == data


def test_a_hello_sized_limit_refuses_bigger_frames_before_reading_them():
    with pytest.raises(ProtocolError, match="payload length"):
        read_frame(io.BytesIO(claim({"type": "hello"}, 10)), 0, 4096)
    with pytest.raises(ProtocolError, match="header length"):
        read_frame(io.BytesIO(PREFIX.pack(MAGIC, 5000, 0)), 0, 4096)


def test_deeply_nested_header_is_malformed_not_a_crash():
    head = b"[" * 60000
    stream = io.BytesIO(PREFIX.pack(MAGIC, len(head), 0) + head + frame({"type": "bye"}))
    with pytest.raises(MalformedRequestError):
        read_frame(stream)
    assert read_frame(stream) == ({"type": "bye"}, b"")


# -- claims in a mask request, to the real worker loop ---------------------------------------

HELLO = frame({"type": "hello", "protocol": 1})
PIXELS = bytes(8 * 8 * 3)


def mask_header(**changes: object) -> dict:
    return {"type": "mask", "id": 7, "width": 8, "height": 8, "format": "rgb8", **changes}


# (case, the frame's bytes): each claims more than the limits allow, in one field or another.
OVER_LIMIT = [
    ("mask_size of 10 gigapixels", frame(mask_header(mask_size=[100000, 100000]), PIXELS)),
    ("mask_size one side huge", frame(mask_header(mask_size=[8, 1 << 40]), PIXELS)),
    ("mask_size just over the pixel limit",
     frame(mask_header(mask_size=[1 << 14, (1 << 14) + 1]), PIXELS)),
    ("a base mask for a huge mask_size",
     frame(mask_header(mask_size=[100000, 100000], base_mask=True), PIXELS + bytes(64))),
    ("two base planes for a huge mask_size",
     frame(mask_header(mask_size=[100000, 100000], base_mask=2), PIXELS + bytes(128))),
    ("pixels beyond the limit", frame(mask_header(width=1 << 15, height=1 << 15), b"")),
    ("width beyond any side", frame(mask_header(width=1 << 62, height=1), b"")),
    ("a payload unlike the header's", frame(mask_header(), PIXELS * 3)),
    ("more base planes than the protocol allows",
     frame(mask_header(base_mask=3), PIXELS + bytes(64 * 3))),
    ("one base plane claimed, two sent", frame(mask_header(base_mask=1), PIXELS + bytes(128))),
]


@pytest.mark.parametrize("case, data", OVER_LIMIT, ids=[c[0] for c in OVER_LIMIT])
def test_claims_beyond_the_limits_are_refused_before_any_work(model_dir, case, data):
    out = io.BytesIO()
    good = frame(mask_header(id=99), PIXELS)
    worker = Worker(io.BytesIO(HELLO + data + good), out, RuntimeOptions())
    started = time.monotonic()
    peak = peak_of(worker.serve)
    elapsed = time.monotonic() - started
    out.seek(0)
    replies = []
    while (got := read_frame(out)) is not None:
        replies.append(got[0])
    errors = [r for r in replies if r["type"] == "error"]
    assert len(errors) == 1, replies
    if case in ("a payload unlike the header's", "more base planes than the protocol allows",
                "one base plane claimed, two sent"):
        assert errors[0]["error"] == "MalformedRequestError"
    else:  # the user's message names the limit and what to do
        assert errors[0]["error"] == "ImageError" and f"{MAX_PIXELS:,}" in errors[0]["message"]
        assert "smaller layer" in errors[0]["message"]
    # Nothing of the claimed size was allocated; the next request is served as usual.
    assert peak < 64 << 20, f"{peak >> 20} MiB for {case}"
    assert replies[-1]["type"] == "mask" and replies[-1]["id"] == 99
    assert elapsed < 30


def test_a_payload_claim_unlike_the_header_is_refused_unread(model_dir):
    """1 GiB claimed for 8 x 8 pixels, a little sent: an error at once, nothing allocated for
    the claim; the stream cannot be trusted after it, so the worker stops reading it."""
    out = io.BytesIO()
    worker = Worker(io.BytesIO(HELLO + claim(mask_header(), GIB, PIXELS)), out, RuntimeOptions())
    peak = peak_of(lambda: worker.serve())
    out.seek(0)
    replies = []
    while (got := read_frame(out)) is not None:
        replies.append(got[0])
    assert replies[1]["error"] == "ProtocolError" and "192 bytes" in replies[1]["message"]
    assert peak < 16 << 20


QUOTED = [
    ("a model name of 60 KB", frame(mask_header(model="m" * 60000), PIXELS), "UnknownModelError"),
    ("an id of 60 KB", frame(mask_header(id="i" * 60000), PIXELS), "MalformedRequestError"),
    ("an id that is a list", frame(mask_header(id=list(range(9000))), PIXELS),
     "MalformedRequestError"),
]


@pytest.mark.parametrize("case, data, error", QUOTED, ids=[c[0] for c in QUOTED])
def test_replies_stay_within_a_frame_whatever_the_request_quotes(model_dir, case, data, error):
    out = io.BytesIO()
    good = frame(mask_header(id=99), PIXELS)
    assert Worker(io.BytesIO(HELLO + data + good), out, RuntimeOptions()).serve() == 0
    out.seek(0)
    replies = []
    while (got := read_frame(out)) is not None:
        replies.append(got[0])
    errors = [r for r in replies if r["type"] == "error"]
    assert [e["error"] for e in errors] == [error]
    assert len(errors[0]["message"]) < 3000
    assert replies[-1]["type"] == "mask" and replies[-1]["id"] == 99


def test_the_client_refuses_a_mask_beyond_the_limit_before_sending(model_dir):
    from bgmask.host.channels import worker_command
    from bgmask.host.client import WorkerClient

    client = WorkerClient.one_shot(worker_command(sys.executable))
    with pytest.raises(ImageError, match="limit"):
        client.mask(PIXELS, 8, 8, "rgb8", mask_size=(100000, 100000))
    assert not client.running  # no worker was even started


# -- the background worker's connections -----------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(path))
    return sock


def answer(sock: socket.socket) -> list[dict]:
    """The frames the worker sends until it closes the connection (at most 10 s)."""
    sock.settimeout(10)
    replies = []
    with sock.makefile("rb") as reader:
        try:
            while (got := read_frame(reader)) is not None:
                replies.append(got[0])
        except (ConnectionResetError, ProtocolError):
            pass
    return replies


UNAUTHENTICATED = [
    ("a payload of 1 GiB claimed", claim({"type": "hello", "protocol": 1}, GIB, b"x" * 100)),
    ("a mask request with 1 GiB of pixels claimed",
     claim(mask_header(width=1 << 14, height=1 << 14, format="rgba8"), GIB, b"x" * 100)),
    ("a header of 64 KiB claimed", PREFIX.pack(MAGIC, 64 * 1024, 0) + b"{" * 100),
]


@pytest.mark.parametrize("case, data", UNAUTHENTICATED, ids=[c[0] for c in UNAUTHENTICATED])
def test_unauthenticated_connections_get_nothing_beyond_a_small_hello(runtime, case, data):
    with job.click_client() as client:
        pid = hello_pid(client)
    before = rss_mb(pid)
    socks = [connect(runtime / "worker.sock") for _ in range(4)]
    for sock in socks:
        sock.sendall(data)
    for sock in socks:
        replies = answer(sock)  # one error, then the worker closes the connection
        assert [r["type"] for r in replies] in ([], ["error"]), replies
        sock.close()
    after = rss_mb(pid)
    print(f"{case}: worker RSS {before:.0f} MB -> {after:.0f} MB with 4 such connections",
          file=sys.stderr)
    assert after - before < 50
    with job.click_client() as again:  # and it serves its own user as before
        assert again.background and hello_pid(again) == pid


def test_an_authenticated_claim_costs_only_what_was_sent(runtime):
    with job.click_client() as client:
        pid = hello_pid(client)
        before = rss_mb(pid)
        writer, _ = client.channel.streams()
        header = mask_header(width=1 << 14, height=1 << 14, format="rgba8")
        writer.write(claim(header, GIB, b"x" * (4 << 20)))
        writer.flush()
        time.sleep(1.0)  # the worker has read what came and waits for the rest
        after = rss_mb(pid)
    print(f"a 1 GiB request with 4 MiB sent: worker RSS {before:.0f} MB -> {after:.0f} MB",
          file=sys.stderr)
    assert after - before < 64


def test_a_connection_that_sends_nothing_is_closed_soon(runtime):
    with job.click_client():
        pass
    sock = connect(runtime / "worker.sock")
    started = time.monotonic()
    replies = answer(sock)
    assert time.monotonic() - started < 9
    assert replies and replies[0]["type"] == "error" and "hello" in replies[0]["message"]


def test_a_request_before_the_hello_closes_the_connection(runtime):
    with job.click_client():
        pass
    sock = connect(runtime / "worker.sock")
    sock.sendall(frame({"type": "shutdown"}))
    replies = answer(sock)
    assert [r.get("error") for r in replies] == ["AuthenticationError"]
    assert (runtime / "worker.sock").exists()  # and it was not obeyed
    assert background.stop_background_worker()
