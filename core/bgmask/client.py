"""The client side of the worker protocol, for the editor adapters.

Standard library only (no numpy, no onnxruntime): it runs inside GIMP's and Krita's own
Pythons and starts ``python -m bgmask.worker`` from bgmask's own environment.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import errors
from .errors import BgmaskError, ImageError, ProtocolError, WorkerError
from .protocol import (
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    check_size,
    expected_payload,
    read_frame,
    write_frame,
)

# stage, done, total (None when unknown)
ProgressHandler = Callable[[str, int, "int | None"], None]


@dataclass
class MaskReply:
    mask: bytes  # width * height bytes, 0 = background, 255 = subject
    width: int
    height: int
    provider: str
    notice: str | None


def worker_command(python: str, *extra: str) -> list[str]:
    """The command that starts a worker with bgmask's own interpreter."""
    return [python, "-m", "bgmask.worker", *extra]


class WorkerClient:
    """One worker process, started on first use and restarted if it died between requests."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._next_id = 0
        self.worker_version: str | None = None
        self.providers: list[str] = []
        # Set by adapter.start_client when the background worker could not be used.
        self.fallback_reason: str | None = None

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self.close()
        self._log = tempfile.TemporaryFile(prefix="bgmask-worker-")
        try:
            self._process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                env=self.env, close_fds=True,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            raise WorkerError(
                f"cannot start the bgmask worker ({self.command[0]}): {exc.strerror or exc}. "
                "Reinstall bgmask, or set BGMASK_PYTHON to the Python of bgmask's environment."
            ) from exc
        self._greet()

    def _greet(self, **extra: Any) -> dict[str, Any]:
        header, _ = self._exchange({"type": "hello", "protocol": PROTOCOL_VERSION, **extra})
        self.worker_version = header.get("version")
        self.providers = list(header.get("providers") or [])
        return header

    def _streams(self) -> tuple[Any, Any]:
        """(writer, reader) of the running worker's channel."""
        process = self._process
        assert process is not None and process.stdin and process.stdout
        return process.stdin, process.stdout

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                if process.poll() is None and process.stdin:
                    write_frame(process.stdin, {"type": "bye"})  # type: ignore[arg-type]
                    process.stdin.close()
                process.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- requests -------------------------------------------------------------------------

    def mask(self, pixels: bytes | memoryview, width: int, height: int, fmt: str, *,
             model: str = "u2netp", options: Mapping[str, Any] | None = None,
             progress: ProgressHandler | None = None,
             base_mask: bytes | None = None,
             mask_size: tuple[int, int] | None = None) -> MaskReply:
        """The mask of one picture; raises a ``BgmaskError`` subclass with the worker's message.

        ``mask_size`` (width, height): the pixels are a reduced copy of a layer that size, and
        the mask comes back at it. With ``base_mask`` (one byte per mask pixel) the reply is
        intersected with it."""
        out_w, out_h = mask_size or (width, height)
        needed = expected_payload(width, height, fmt)
        check_size(out_w, out_h, "a mask")
        if len(pixels) != needed:
            raise WorkerError(f"{width}x{height} {fmt} needs {needed} bytes, {len(pixels)} given")
        if base_mask is not None and len(base_mask) != out_w * out_h:
            raise WorkerError(f"a {out_w}x{out_h} base mask needs {out_w * out_h} bytes, "
                              f"{len(base_mask)} given")
        if needed + (out_w * out_h if base_mask is not None else 0) > MAX_PAYLOAD:
            raise ImageError(f"a {width}x{height} {fmt} layer is more than the worker takes in "
                             f"one request ({MAX_PAYLOAD >> 20} MiB); send it as 8-bit, or "
                             "mask a smaller layer")
        if not self.running:
            self.start()
        self._next_id += 1
        header = {"type": "mask", "id": self._next_id, "width": width, "height": height,
                  "format": fmt, "model": model, "options": dict(options or {})}
        if mask_size is not None:
            header["mask_size"] = [out_w, out_h]
        if base_mask is not None:
            header["base_mask"] = True
            pixels = bytes(pixels) + bytes(base_mask)
        reply, payload = self._exchange(header, pixels, progress, max_payload=out_w * out_h)
        if len(payload) != out_w * out_h:
            raise WorkerError(f"the worker sent a mask of {len(payload)} bytes for "
                              f"{out_w}x{out_h}; reinstall bgmask")
        return MaskReply(bytes(payload), int(reply["width"]), int(reply["height"]),
                         str(reply.get("provider", "")), reply.get("notice"))

    def _exchange(self, header: dict[str, Any], payload: bytes | memoryview = b"",
                  progress: ProgressHandler | None = None, *, max_payload: int = 0
                  ) -> tuple[dict[str, Any], bytearray]:
        """Sends one request and reads frames up to its answer; only a mask reply carries
        bytes, and no more than ``max_payload`` are taken."""
        writer, reader = self._streams()
        try:
            write_frame(writer, header, payload)
            while True:
                try:
                    frame = read_frame(reader, max_payload)
                except ProtocolError as exc:
                    self.close()  # out of step with the worker: nothing more can be read
                    raise WorkerError(f"the worker's reply broke the protocol ({exc}); "
                                      "reinstall bgmask if this happens again") from None
                if frame is None:
                    raise self._died()
                reply, data = frame
                if reply["type"] == "progress":
                    # "alive" frames only show the worker is at work (they reset a timeout).
                    if progress and reply.get("stage") != "alive":
                        progress(str(reply.get("stage")), int(reply.get("done") or 0),
                                 reply.get("total"))
                    continue
                if reply["type"] == "error":
                    raise _error_from_reply(reply)
                return reply, data
        except OSError as exc:  # a broken pipe, a reset, a timeout of a socket channel
            raise self._died(exc) from exc

    def _died(self, exc: BaseException | None = None) -> WorkerError:
        process = self._process
        code = None
        if process is not None:
            try:
                code = process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()  # its pipe broke, yet it runs on: nothing more comes from it
                code = process.wait()
        tail = ""
        if self._log is not None:
            self._log.seek(0)
            lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
            tail = "\n".join(lines[-5:])
        self._process = None
        message = f"the bgmask worker stopped unexpectedly (exit code {code})"
        return WorkerError(message + (f":\n{tail}" if tail else ""))


def _error_from_reply(reply: Mapping[str, Any]) -> BgmaskError:
    """The worker's error as the matching exception class, so adapters can react to its kind."""
    cls = getattr(errors, str(reply.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, BgmaskError)):
        cls = WorkerError
    return cls(str(reply.get("message") or "the worker reported an error"))

