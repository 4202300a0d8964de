"""What a worker does with one stream of requests: checks each frame, masks, and answers in
the framing of ``bgmask.host.protocol`` (on stdin/stdout, or one socket connection).

stdout carries frames only: anything else that would print there is sent to stderr.
A request that fails gets an error reply and the worker keeps serving; a stream that has lost
its framing cannot be trusted again, so the worker answers once and exits.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from ..engine.box import check_inside
from ..engine.decontaminate import foreground_colours
from ..engine.pipeline import Masker, MaskOptions
from ..engine.runtime import RuntimeOptions, available_providers
from ..host.catalogue import DEFAULT_MODEL
from ..host.errors import (
    AuthenticationError,
    BgmaskError,
    MalformedRequestError,
    ProtocolError,
    UsageError,
)
from ..host.protocol import (
    MAX_BASE_MASKS,
    MAX_HELLO,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    check_size,
    expected_payload,
    parse_format,
    read_head,
    read_payload,
    skip_payload,
    write_frame,
)
from ..host.version import VERSION as __version__

OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "refine": (bool,), "quality": (str,), "threshold": (float, int, type(None)),
    "invert": (bool,), "contrast": (float, int),
    # [x, y, width, height] in the mask's pixels (a user's selection): checked by MaskOptions
    # like the command line's --box, and against the mask's size before the payload is read.
    "box": (list,),
}
DTYPES: dict[int, np.dtype] = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<f4")}
MAX_MESSAGE = 2000  # characters of an error message sent back


# 8-bit colour formats Pillow unpacks straight to RGB in one C pass (the alpha is not part of
# the prediction): cheaper than numpy channel shuffles on a 12 MP layer.
PIL_RAW_MODES = {"rgb8": "RGB", "rgba8": "RGBX", "bgra8": "BGRX"}


def pixels_to_input(payload: bytes | bytearray | memoryview, width: int, height: int, fmt: str
                    ) -> np.ndarray | Image.Image:
    """What the pipeline takes for these pixels: a PIL image for 8-bit colour, else an array."""
    raw_mode = PIL_RAW_MODES.get(fmt)
    if raw_mode is None:
        return pixels_to_array(payload, width, height, fmt)
    size = expected_payload(width, height, fmt)
    if len(payload) != size:
        raise MalformedRequestError(
            f"{width}x{height} {fmt} needs {size} bytes of pixels, {len(payload)} were sent")
    # Pillow maps any buffer (a memoryview of the request too); its stub names fewer types.
    return Image.frombuffer("RGB", (width, height), payload,  # type: ignore[arg-type]
                            "raw", raw_mode, 0, 1)


def pixels_to_array(payload: bytes | bytearray | memoryview, width: int, height: int, fmt: str
                    ) -> np.ndarray:
    channels, sample = parse_format(fmt)
    size = expected_payload(width, height, fmt)
    if len(payload) != size:
        raise MalformedRequestError(
            f"{width}x{height} {fmt} needs {size} bytes of pixels, {len(payload)} were sent"
        )
    a = np.frombuffer(payload, dtype=DTYPES[sample]).reshape(height, width, channels)
    if fmt.startswith("bgra"):
        a = a[:, :, [2, 1, 0, 3]]
    return a.astype(a.dtype.newbyteorder("=")) if sample > 1 else a


def decontaminated(payload: bytes | bytearray | memoryview, width: int, height: int, fmt: str,
                   mask: np.ndarray) -> bytes:
    """The pixels as sent, in their own format and channel order, with the colours in
    ``mask``'s soft band replaced by the subject's own (an alpha channel is left as it is):
    the editors' "new layer" output, which must not carry the old background at its edge."""
    channels, sample = parse_format(fmt)
    pixels = np.frombuffer(payload, DTYPES[sample]).reshape(height, width, channels)
    colour = channels - 1 if fmt.startswith(("graya", "rgba", "bgra")) else channels
    out = pixels.copy()
    out[:, :, :colour] = foreground_colours(pixels[:, :, :colour], mask)
    return out.tobytes()


def mask_options(raw: Any) -> MaskOptions:
    if raw is None:
        return MaskOptions()
    if not isinstance(raw, dict):
        raise UsageError("options must be a JSON object")
    for key, value in raw.items():
        if key not in OPTION_TYPES:
            raise UsageError(f"unknown option {key!r} (known: {', '.join(OPTION_TYPES)})")
        if not isinstance(value, OPTION_TYPES[key]) or (
                isinstance(value, bool) and bool not in OPTION_TYPES[key]):
            raise UsageError(f"option {key!r} has the wrong type: {value!r}")
    return MaskOptions(**raw)


def mask_size(raw: Any, width: Any, height: Any) -> tuple[int, int]:
    """The size of the mask to send back: the pixels' own, or ``mask_size`` when an adapter
    sent a reduced copy of a larger layer (the network works at 1024 px at most anyway).
    Either is checked against the pixel limit here, before any work or allocation."""
    check_size(width, height)
    if raw is None:
        return width, height
    if not (isinstance(raw, list) and len(raw) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in raw)):
        raise MalformedRequestError(f"mask_size must be [width, height], not {raw!r}")
    check_size(raw[0], raw[1], "a mask")
    if width > raw[0] or height > raw[1]:
        raise MalformedRequestError("mask_size must be at least the size of the pixels sent")
    return raw[0], raw[1]  # Masker.mask refuses it with refinement, which needs full size


def base_mask_count(raw: Any) -> int:
    """How many 8-bit planes of the mask's size follow the pixels: ``true`` is one (the first
    protocol's form), or a count up to MAX_BASE_MASKS (an existing mask and a selection)."""
    if raw is None or raw is False:
        return 0
    if raw is True:
        return 1
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= MAX_BASE_MASKS:
        return raw
    raise MalformedRequestError(f"base_mask must be true, false or a count of 0 to "
                                f"{MAX_BASE_MASKS} planes, not {raw!r}")


def _short_id(value: Any) -> bool:
    return value is None or isinstance(value, (int, float, str)) and len(str(value)) <= 100


class Worker:
    """Serves one channel. The socket server runs one per connection, sharing the loaded
    models, a lock that runs one inference at a time, and the per-user secret.

    With a secret (the background worker), a connection is strict until its hello proves the
    secret: one small frame without payload, anything else closes it. ``busy`` wraps each
    authenticated request (the server's idle clock), and ``heartbeat`` seconds apart a request
    in progress sends a progress frame, so a client can tell a stuck worker from a slow mask.
    """

    def __init__(self, stdin: BinaryIO, stdout: BinaryIO, runtime: RuntimeOptions, *,
                 maskers: dict[str, Masker] | None = None, lock: threading.Lock | None = None,
                 secret: str | None = None,
                 on_shutdown: Callable[[], None] | None = None,
                 on_greeted: Callable[[], None] | None = None,
                 busy: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                 heartbeat: float | None = None,
                 providers: list[str] | None = None) -> None:
        self.stdin, self.stdout, self.runtime = stdin, stdout, runtime
        self.maskers: dict[str, Masker] = {} if maskers is None else maskers
        self.lock = lock or threading.Lock()
        self.secret, self.on_shutdown, self.on_greeted = secret, on_shutdown, on_greeted
        self.busy = busy or contextlib.nullcontext
        self.heartbeat = heartbeat
        self.providers = providers
        self.greeted = False
        self._write_lock = threading.Lock()  # the heartbeat writes from its own thread

    def send(self, header: dict[str, Any], payload: bytes | memoryview = b"") -> None:
        with self._write_lock:
            write_frame(self.stdout, header, payload)

    def limits(self) -> tuple[int, int]:
        """(max payload, max header) of the next frame: before a background worker's client
        has proved the secret, nothing beyond a small hello is read."""
        if self.secret is not None and not self.greeted:
            return 0, MAX_HELLO
        return MAX_PAYLOAD, 64 * 1024

    def serve(self) -> int:
        while True:
            request_id = None
            try:
                head = read_head(self.stdin, *self.limits())
                if head is None:
                    return 0  # the client closed the pipe: a normal end
                header, size = head
                request_id = header.get("id")
                if not _short_id(request_id):
                    request_id = None  # every reply echoes it: it must stay small
                    skip_payload(self.stdin, size)
                    raise MalformedRequestError("a request's id must be a number or a string "
                                                "of at most 100 characters")
                kind = header["type"]
                if kind != "mask" or not self.greeted:
                    skip_payload(self.stdin, size)  # only a mask request carries pixels
                if kind == "bye":
                    return 0
                if kind == "hello":
                    self.hello(header)
                elif not self.greeted:
                    if self.secret is not None:
                        raise AuthenticationError("send a 'hello' with this user's secret "
                                                  "first; the connection is closed")
                    raise MalformedRequestError("send a 'hello' frame before any request")
                elif kind == "mask":
                    with self.busy():
                        self.mask(header, size)
                elif kind == "shutdown" and self.on_shutdown is not None:
                    self.on_shutdown()  # a newer client replaces this background worker
                    self.send({"type": "bye"})
                    return 0
                else:
                    raise MalformedRequestError(f"unknown request type {kind!r}")
            except ProtocolError as exc:
                self.reply_error(request_id, exc)
                if not isinstance(exc, MalformedRequestError):
                    return 3  # framing lost: nothing after this can be trusted
            except BgmaskError as exc:
                self.reply_error(request_id, exc)
            except MemoryError:
                self.reply_error(request_id, BgmaskError(
                    "out of memory while masking; close other programs or use a smaller image"))
            except ConnectionError:
                raise  # the channel itself is gone: nobody to answer, the caller closes it
            except Exception as exc:  # noqa: BLE001 (a bug must not take the editor's worker down)
                traceback.print_exc(file=sys.stderr)
                self.reply_error(request_id, BgmaskError(f"internal error: {exc!r}"),
                                 "InternalError")

    def reply_error(self, request_id: Any, exc: BaseException, name: str | None = None) -> None:
        # A message may quote what the client sent (a model name of 60 KB): the reply must
        # still fit in a frame, and so must an id that is not a small value.
        message = str(exc)
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "..."
        if not _short_id(request_id):
            request_id = None
        self.send({"type": "error", "id": request_id,
                   "error": name or type(exc).__name__, "message": message})

    def hello(self, header: dict[str, Any]) -> None:
        if self.secret is not None and not hmac.compare_digest(
                str(header.get("secret", "")).encode(), self.secret.encode()):
            raise AuthenticationError("wrong or missing secret: this worker serves its own "
                                      "user's bgmask only")
        if header.get("protocol") != PROTOCOL_VERSION:
            raise MalformedRequestError(
                f"protocol {header.get('protocol')!r} asked, this worker speaks "
                f"{PROTOCOL_VERSION}; reinstall bgmask so the plug-in and worker match")
        self.greeted = True
        if self.on_greeted is not None:
            self.on_greeted()
        providers = self.providers if self.providers is not None else available_providers()
        self.send({"type": "hello", "protocol": PROTOCOL_VERSION, "version": __version__,
                   "providers": providers, "pid": os.getpid()})

    def masker(self, model: str, request_id: Any) -> Masker:
        masker = self.maskers.get(model)
        if masker is None:
            def progress(done: int, total: int | None) -> None:
                self.send({"type": "progress", "id": request_id, "stage": "download",
                           "done": done, "total": total})

            masker = self.maskers[model] = Masker(model, runtime=self.runtime, progress=progress)
        return masker

    @contextlib.contextmanager
    def beating(self, request_id: Any) -> Iterator[None]:
        """Sends an "alive" progress frame every ``heartbeat`` seconds meanwhile."""
        if not self.heartbeat:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat):
                try:
                    self.send({"type": "progress", "id": request_id, "stage": "alive",
                               "done": 0, "total": None})
                except (OSError, ValueError):
                    return  # the connection is gone; the request's own write will say so

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def check_mask(self, header: dict[str, Any], size: int
                   ) -> tuple[int, int, str, tuple[int, int], MaskOptions, str, int, bool]:
        """Everything a mask request claims, checked before its payload is read."""
        width, height, fmt = header.get("width"), header.get("height"), header.get("format")
        if not isinstance(fmt, str):
            raise MalformedRequestError("a mask request needs a string 'format'")
        options = mask_options(header.get("options"))
        out = mask_size(header.get("mask_size"), width, height)
        if options.box is not None:
            check_inside(options.box, *out)
        planes = base_mask_count(header.get("base_mask"))
        pixels = expected_payload(width, height, fmt)
        base = out[0] * out[1] * planes
        if size != pixels + base:
            extra = f" and {base} of base mask{'s' if planes > 1 else ''}" if base else ""
            raise MalformedRequestError(f"{width}x{height} {fmt} needs {pixels} bytes of pixels"
                                        f"{extra}, {size - base} were sent")
        model = header.get("model") or DEFAULT_MODEL
        if not isinstance(model, str):
            raise UsageError("model must be a string")
        colours = header.get("colours", False)
        if not isinstance(colours, bool):
            raise MalformedRequestError(f"colours must be true or false, not {colours!r}")
        if colours and out != (width, height):
            raise UsageError("clean edge colours need the layer's pixels at full size, not a "
                             "reduced copy")
        if colours and pixels + out[0] * out[1] > MAX_PAYLOAD:
            raise UsageError(f"a {width}x{height} {fmt} layer with its cleaned colours is more "
                             f"than one reply holds ({MAX_PAYLOAD >> 20} MiB); clean the "
                             "colours of a smaller layer")
        return (width, height, fmt, out, options, model,  # type: ignore[return-value]
                planes, colours)

    def mask(self, header: dict[str, Any], size: int) -> None:
        request_id = header.get("id")
        try:
            width, height, fmt, (out_w, out_h), options, model, planes, colours = \
                self.check_mask(header, size)
        except BgmaskError as exc:
            try:
                skip_payload(self.stdin, size)
            except ProtocolError as lost:  # the claim was a lie too: say both
                raise ProtocolError(f"{exc}; {lost}") from None
            raise
        payload = read_payload(self.stdin, size)
        split = size - planes * out_w * out_h
        # Views into the payload, no copies: a 12 MP selection and mask cost nothing more.
        bases = [np.frombuffer(payload, np.uint8, out_w * out_h, split + i * out_w * out_h)
                 for i in range(planes)]
        pixels = pixels_to_input(memoryview(payload)[:split], width, height, fmt)
        with self.beating(request_id), self.lock:
            masker = self.masker(model, request_id)
            self.send({"type": "progress", "id": request_id, "stage": "inference", "done": 0,
                       "total": 1})
            mask = masker.mask(pixels, options, size=(out_w, out_h))
        for base_mask in bases:  # an existing mask, a soft selection: never above either
            np.minimum(mask, base_mask.reshape(mask.shape), out=mask)
        reply: dict[str, Any] = {"type": "mask", "id": request_id, "width": out_w,
                                 "height": out_h, "provider": masker.provider,
                                 "notice": masker.notice}
        if not colours:
            self.send(reply, mask.data.cast("B"))
            return
        reply["colours"] = fmt
        cleaned = decontaminated(memoryview(payload)[:split], width, height, fmt, mask)
        self.send(reply, b"".join([mask.data.cast("B"), cleaned]))
