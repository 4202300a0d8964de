"""The worker protocol: framing shared by the worker and its stdlib-only client.

A frame is::

    magic    4 bytes  b"BGMK"
    hlen     4 bytes  big-endian length of the header (at most MAX_HEADER)
    plen     8 bytes  big-endian length of the payload (at most MAX_PAYLOAD)
    header   hlen bytes of UTF-8 JSON, an object with a "type" key
    payload  plen raw bytes (pixels), possibly empty

Lengths are checked against the bounds before anything is allocated, and a payload is read
into a buffer that grows as its bytes arrive. Messages:

==========  ===============================  ==============================================
type        from client                      from worker
==========  ===============================  ==============================================
hello       {"protocol": 1[, "secret"]}      {"protocol": 1, "version", "providers", "pid"}
mask        {"id", "width", "height",        {"id", "width", "height", "provider",
            "format", "model", "options",    "notice"[, "colours"]} + payload of
            "base_mask" (true or a count),   width*height bytes [+ the pixels, cleaned]
            "mask_size", "colours"}
            + payload of pixels
            [+ mask-size bytes per base plane]
progress    -                                {"id", "stage", "done", "total"}; stage
                                             "alive" (every few seconds while a request
                                             is queued or running) only says so
error       -                                {"id", "error" (class name), "message"}
bye         {} (the worker exits; so does    -
            end-of-file on its stdin)
shutdown    {} (shared worker only: exit,    {}  (type "bye")
            a newer client replaces it)
==========  ===============================  ==============================================

Pixel formats name channels and sample type: ``gray8, graya8, rgb8, rgba8, bgra8`` (one byte
each), ``gray16 ... bgra16`` (uint16, little-endian), ``grayf32 ... bgraf32`` (float32
little-endian, 0..1). ``bgra`` is the channel order Krita and Qt keep 8- and 16-bit pixels in,
so an adapter can send them as they are. Rows are top to bottom, no padding.

With ``"mask_size": [W, H]`` the pixels are a reduced copy (1024 px at most per side, all the
network ever sees) of a W x H layer, and the mask comes back at W x H: a big layer need not be
read or sent whole. Not with edge refinement, which needs the full-size pixels.

With ``"base_mask": true`` (or a count, 1 to MAX_BASE_MASKS) the pixels are followed by that
many 8-bit planes of the mask's size (an existing layer mask, the user's selection over the
layer) and the reply is the pixel-wise minimum of the mask and every plane, so adapters can
intersect without array code of their own (a per-byte loop in an editor's Python costs
seconds on a 12 MP layer). The payload's length is checked against the claim first.

``"options"`` may hold ``"refine"``, ``"quality"``, ``"invert"``, ``"threshold"``,
``"contrast"`` and ``"box": [x, y, width, height]`` (whole pixels of the mask, inside it): the
network looks only at the box and the mask is 0 outside it (what ``bgmask --box`` does). An
editor sends its selection's bounding box there and the selection itself as a base plane, so
the mask is 0 outside the selection and never above a soft selection's value.
With ``"colours": true`` (full-size pixels only) the mask is followed by the pixels as sent,
same format and channel order, with the colours in the mask's soft band replaced by an
estimate of the subject's own (an alpha channel untouched): what an editor's "new layer"
output shows, without the old background's colour at its edge. Never for a layer mask,
which must leave the layer's pixels as they are.
This module imports only the standard library.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

from .errors import ImageError, MalformedRequestError, ProtocolError

PROTOCOL_VERSION = 1
MAGIC = b"BGMK"
PREFIX = struct.Struct(">4sIQ")
MAX_HEADER = 64 * 1024
# 1 GiB: a 16384 x 16384 RGBA 8-bit layer; larger layers must be tiled by the caller.
MAX_PAYLOAD = 1 << 30
# The most pixels a request may ask a mask for (the same 16384 x 16384), and the longest side:
# claims are refused against these before anything of that size is allocated or computed.
MAX_PIXELS = 1 << 28
MAX_SIDE = 1 << 18
# A hello is a few dozen bytes; this is all a connection may send before it is authenticated.
MAX_HELLO = 4096
# Planes a mask request may send to be intersected with its mask (an existing mask, a selection).
MAX_BASE_MASKS = 2
# Payloads are read into a buffer that grows as the bytes arrive (doubling from this size), so
# a frame that claims a large payload costs memory only for what was actually sent.
FIRST_CHUNK = 1 << 20

CHANNELS = {"gray": 1, "graya": 2, "rgb": 3, "rgba": 4, "bgra": 4}
SAMPLE_BYTES = {"8": 1, "16": 2, "f32": 4}


def parse_format(fmt: str) -> tuple[int, int]:
    """(channels, bytes per sample) of a pixel format name such as ``rgba16``."""
    if isinstance(fmt, str):
        for name, channels in CHANNELS.items():
            depth = fmt[len(name):] if fmt.startswith(name) else None
            if depth in SAMPLE_BYTES:
                return channels, SAMPLE_BYTES[depth]
    known = ", ".join(c + d for c in CHANNELS for d in SAMPLE_BYTES)
    raise MalformedRequestError(f"unknown pixel format {fmt!r} (known: {known})")


def check_size(width: Any, height: Any, what: str = "the picture") -> int:
    """width * height after checking both against the limits: MalformedRequestError for what
    is not a size at all, ImageError (the user's layer is too big) beyond the limits."""
    if not (isinstance(width, int) and isinstance(height, int)) or isinstance(width, bool) \
            or isinstance(height, bool) or width < 1 or height < 1:
        raise MalformedRequestError(
            f"width and height must be positive integers, not {width!r}x{height!r}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageError(
            f"{what} of {width}x{height} is more than bgmask's limit of {MAX_PIXELS:,} pixels "
            f"({MAX_SIDE:,} per side); mask a smaller layer or split it into parts")
    return width * height


def expected_payload(width: Any, height: Any, fmt: str) -> int:
    check_size(width, height)
    channels, sample = parse_format(fmt)
    return width * height * channels * sample


def write_frame(stream: IO[bytes], header: dict[str, Any],
                payload: bytes | bytearray | memoryview = b"") -> None:
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if len(head) > MAX_HEADER:
        raise ProtocolError(f"header of {len(head)} bytes exceeds {MAX_HEADER}")
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    stream.write(PREFIX.pack(MAGIC, len(head), len(payload)))
    stream.write(head)
    if len(payload):
        stream.write(payload)
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytearray | None:
    """n bytes, or None on a clean end-of-file before the first byte. Read straight into one
    buffer (a 12 MP layer is tens of megabytes, and every extra copy shows in the click time)
    that grows only as bytes arrive: a claimed length alone never allocates."""
    buffer = bytearray(min(n, FIRST_CHUNK))
    got = 0
    while got < n:
        if got == len(buffer):
            buffer.extend(bytes(min(len(buffer), n - len(buffer))))
        with memoryview(buffer)[got:] as part:
            count = stream.readinto(part)  # type: ignore[attr-defined]
        if not count:
            if got == 0:
                return None
            raise ProtocolError(f"stream ended after {got} of {n} bytes")
        got += count
    return buffer


def skip_payload(stream: IO[bytes], n: int) -> None:
    """Reads and drops n bytes in small pieces: a refused frame's payload is never held."""
    scratch = bytearray(min(n, 1 << 16))
    left = n
    with memoryview(scratch) as view:
        while left:
            count = stream.readinto(view[:min(left, len(scratch))])  # type: ignore[attr-defined]
            if not count:
                raise ProtocolError("stream ended inside a frame")
            left -= count


def read_head(stream: IO[bytes], max_payload: int = MAX_PAYLOAD, max_header: int = MAX_HEADER
              ) -> tuple[dict[str, Any], int] | None:
    """The next frame's (header, payload length), its payload still unread; None at a clean
    end-of-file between frames. A header that is not a JSON object raises
    MalformedRequestError after its payload was skipped, so the stream stays in step."""
    prefix = _read_exact(stream, PREFIX.size)
    if prefix is None:
        return None
    magic, hlen, plen = PREFIX.unpack(bytes(prefix))
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {magic!r}; is something else writing to the pipe?")
    if hlen > max_header:
        raise ProtocolError(f"header length {hlen} exceeds the bound of {max_header}")
    if plen > max_payload:
        raise ProtocolError(f"payload length {plen} exceeds the bound of {max_payload}")
    raw = _read_exact(stream, hlen)
    if raw is None and hlen:
        raise ProtocolError("stream ended inside a frame")
    try:
        header = json.loads((raw or b"").decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        skip_payload(stream, plen)
        raise MalformedRequestError(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        skip_payload(stream, plen)
        raise MalformedRequestError("frame header must be a JSON object with a string 'type'")
    return header, plen


def read_payload(stream: IO[bytes], n: int) -> bytearray:
    payload = _read_exact(stream, n)
    if payload is None and n:
        raise ProtocolError("stream ended inside a frame")
    return payload or bytearray()


def read_frame(stream: IO[bytes], max_payload: int = MAX_PAYLOAD,
               max_header: int = MAX_HEADER) -> tuple[dict[str, Any], bytearray] | None:
    """The next (header, payload), or None at a clean end-of-file between frames."""
    head = read_head(stream, max_payload, max_header)
    if head is None:
        return None
    header, plen = head
    return header, read_payload(stream, plen)
