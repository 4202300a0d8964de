"""The worker client the plug-ins use: one class, whatever the channel to the worker.

It holds a ``Channel`` (a pipe to a worker of its own, or a connection to the background
worker) made by a connect function, reconnects when the worker went away between requests,
and, when a background worker stops answering in the middle of a click, finishes the click
on a fallback channel. Standard library only: this runs inside the editors' Pythons.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .catalogue import DEFAULT_MODEL
from .channels import Channel, PipeChannel, ProgressHandler, SocketChannel
from .errors import ImageError, WorkerError
from .protocol import MAX_BASE_MASKS, MAX_PAYLOAD, check_size, expected_payload

# A ready channel and the worker's hello.
Connector = Callable[[], tuple[Channel, dict[str, Any]]]


@dataclass
class MaskReply:
    mask: bytes  # width * height bytes, 0 = background, 255 = subject
    width: int
    height: int
    provider: str
    notice: str | None
    # With ``colours=True``: the pixels as sent, their soft edge's colours decontaminated.
    colours: bytes | None = None


def open_pipe(command: Sequence[str], env: Mapping[str, str] | None = None
              ) -> tuple[Channel, dict[str, Any]]:
    """A worker process of our own, greeted."""
    channel = PipeChannel(command, env)
    try:
        return channel, channel.hello()
    except BaseException:
        channel.close()
        raise


class WorkerClient:
    """A worker, reached on first use and reached again if it went away between requests."""

    def __init__(self, connect: Connector, *, fallback: Connector | None = None,
                 on_stall: Callable[[Channel], None] | None = None,
                 fallback_reason: str | None = None) -> None:
        self._connect = connect
        self._fallback = fallback
        self._on_stall = on_stall
        self.channel: Channel | None = None
        self._next_id = 0
        self.worker_version: str | None = None
        self.providers: list[str] = []
        #: Why this client is not (or no longer) on the background worker, if it was meant to be.
        self.fallback_reason = fallback_reason

    @classmethod
    def one_shot(cls, command: Sequence[str], env: Mapping[str, str] | None = None
                 ) -> WorkerClient:
        """A client with a worker process of its own."""
        return cls(functools.partial(open_pipe, list(command), env))

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.channel is not None and bool(getattr(self.channel, "running", False))

    @property
    def background(self) -> bool:
        """Whether requests go to the per-user background worker."""
        return isinstance(self.channel, SocketChannel)

    @property
    def worker_pid(self) -> int | None:
        return self.channel.pid if self.channel is not None else None

    def start(self) -> None:
        self.close()
        self._use(*self._connect())

    def _use(self, channel: Channel, hello: Mapping[str, Any]) -> None:
        self.channel = channel
        self.worker_version = hello.get("version")
        self.providers = list(hello.get("providers") or [])

    def close(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.close()

    # -- requests -------------------------------------------------------------------------

    def request(self, header: dict[str, Any], seconds: float | None = None
                ) -> dict[str, Any]:
        """One request without a payload (``hello``, ``shutdown``) to the worker this client
        is on (reached first if it has none); the worker's answer."""
        if self.channel is None:
            self.start()
        assert self.channel is not None
        if seconds is None:
            return self.channel.exchange(header)[0]
        with self.channel.time_limit(seconds):
            return self.channel.exchange(header)[0]

    def mask(self, pixels: bytes | bytearray | memoryview, width: int, height: int, fmt: str, *,
             model: str = DEFAULT_MODEL, options: Mapping[str, Any] | None = None,
             progress: ProgressHandler | None = None,
             base_mask: bytes | bytearray | None = None,
             base_masks: Sequence[bytes | bytearray] = (),
             mask_size: tuple[int, int] | None = None, colours: bool = False) -> MaskReply:
        """The mask of one picture; raises a ``BgmaskError`` subclass with the worker's message.

        ``mask_size`` (width, height): the pixels are a reduced copy of a layer that size, and
        the mask comes back at it. With ``base_mask`` and/or ``base_masks`` (one byte per mask
        pixel each: an existing mask, a selection) the reply is the minimum of it and them.
        With ``colours`` the reply also carries the pixels with their edge colours cleaned
        (what a new layer holding the subject should show), in ``fmt``; full size only."""
        out_w, out_h = mask_size or (width, height)
        needed = expected_payload(width, height, fmt)
        check_size(out_w, out_h, "a mask")
        if len(pixels) != needed:
            raise WorkerError(f"{width}x{height} {fmt} needs {needed} bytes, {len(pixels)} given")
        bases = ([base_mask] if base_mask is not None else []) + list(base_masks)
        if len(bases) > MAX_BASE_MASKS:
            raise WorkerError(f"at most {MAX_BASE_MASKS} base masks, {len(bases)} given")
        for base in bases:
            if len(base) != out_w * out_h:
                raise WorkerError(f"a {out_w}x{out_h} base mask needs {out_w * out_h} bytes, "
                                  f"{len(base)} given")
        if needed + out_w * out_h * max(len(bases), colours) > MAX_PAYLOAD:
            raise ImageError(f"a {width}x{height} {fmt} layer is more than the worker takes in "
                             f"one request ({MAX_PAYLOAD >> 20} MiB); send it as 8-bit, or "
                             "mask a smaller layer")
        self._next_id += 1
        header = {"type": "mask", "id": self._next_id, "width": width, "height": height,
                  "format": fmt, "model": model, "options": dict(options or {})}
        if mask_size is not None:
            header["mask_size"] = [out_w, out_h]
        if colours:
            header["colours"] = True
        expected = out_w * out_h + (needed if colours else 0)
        if bases:
            # true for one plane: a worker of the first protocol reads that too.
            header["base_mask"] = True if len(bases) == 1 else len(bases)
            pixels = b"".join([pixels, *bases])
        if not self.running:
            self.start()
        assert self.channel is not None
        try:
            reply, payload = self.channel.exchange(header, pixels, progress,
                                                   max_payload=expected)
        except WorkerError as exc:
            channel = self.channel
            if not channel.stalled or self._fallback is None:
                raise
            # Stuck, not dead: the request itself is fine, so it runs where it can.
            if self._on_stall is not None:
                self._on_stall(channel)
            self.close()
            self.fallback_reason = str(exc)
            self._connect, self._fallback = self._fallback, None
            self.start()
            assert self.channel is not None
            reply, payload = self.channel.exchange(header, pixels, progress,
                                                   max_payload=expected)
        if len(payload) != expected:
            what = f" and {width}x{height} {fmt} colours" if colours else ""
            raise WorkerError(f"the worker sent {len(payload)} bytes for a {out_w}x{out_h} "
                              f"mask{what}; reinstall bgmask")
        split = out_w * out_h
        return MaskReply(bytes(payload[:split]), int(reply["width"]), int(reply["height"]),
                         str(reply.get("provider", "")), reply.get("notice"),
                         bytes(payload[split:]) if colours else None)
