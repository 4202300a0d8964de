import io
import struct

import pytest
from bgmask.host.errors import MalformedRequestError, ProtocolError
from bgmask.host.protocol import MAGIC, MAX_HEADER, expected_payload, read_frame, write_frame


def frame_bytes(header: dict, payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    write_frame(buf, header, payload)
    return buf.getvalue()


def test_round_trip_and_clean_eof():
    stream = io.BytesIO(frame_bytes({"type": "mask", "id": 1}, b"\x01\x02") +
                        frame_bytes({"type": "bye"}))
    assert read_frame(stream) == ({"type": "mask", "id": 1}, b"\x01\x02")
    assert read_frame(stream) == ({"type": "bye"}, b"")
    assert read_frame(stream) is None


class NoBigReads(io.BytesIO):
    def read(self, n=-1):
        assert n <= 1 << 20, f"tried to read {n} bytes at once"
        return super().read(n)


@pytest.mark.parametrize("prefix, message", [
    (struct.pack(">4sIQ", b"NOPE", 2, 0), "magic"),
    (struct.pack(">4sIQ", MAGIC, MAX_HEADER + 1, 0), "header length"),
    (struct.pack(">4sIQ", MAGIC, 2, 1 << 62), "payload length"),
])
def test_bounds_are_checked_before_anything_is_read(prefix, message):
    with pytest.raises(ProtocolError, match=message) as info:
        read_frame(NoBigReads(prefix + b"{}"))
    assert not isinstance(info.value, MalformedRequestError)  # the stream is lost


def test_bad_header_leaves_the_stream_in_step():
    bad = struct.pack(">4sIQ", MAGIC, 5, 1) + b"nope!" + b"x"
    stream = io.BytesIO(bad + frame_bytes({"type": "bye"}))
    with pytest.raises(MalformedRequestError, match="not JSON"):
        read_frame(stream)
    assert read_frame(stream) == ({"type": "bye"}, b"")


def test_truncated_frame():
    with pytest.raises(ProtocolError, match="ended"):
        read_frame(io.BytesIO(frame_bytes({"type": "x"}, b"abcd")[:-2]))


def test_payload_sizes():
    assert expected_payload(4, 3, "rgba8") == 48
    assert expected_payload(4, 3, "grayf32") == 48
    with pytest.raises(MalformedRequestError):
        expected_payload(0, 3, "rgb8")
    with pytest.raises(MalformedRequestError):
        expected_payload(2, 3, "cmyk8")


def test_the_client_checks_base_planes_before_starting_a_worker():
    """Base planes (an existing mask, a selection) are checked on the editor's side: at most
    MAX_BASE_MASKS, each one byte per mask pixel, before any worker is reached."""
    from bgmask.host.client import WorkerClient
    from bgmask.host.errors import WorkerError
    from bgmask.host.protocol import MAX_BASE_MASKS

    def never() -> None:
        raise AssertionError("no worker may be started for a request refused here")

    client = WorkerClient(never)  # type: ignore[arg-type]
    pixels, plane = bytes(4 * 3 * 3), bytes(4 * 3)
    with pytest.raises(WorkerError, match=f"at most {MAX_BASE_MASKS} base masks"):
        client.mask(pixels, 4, 3, "rgb8", base_mask=plane, base_masks=[plane, plane])
    with pytest.raises(WorkerError, match="base mask needs 12 bytes, 11 given"):
        client.mask(pixels, 4, 3, "rgb8", base_masks=[plane, plane[:11]])
