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
from .errors import BgmaskError, WorkerError
from .protocol import PROTOCOL_VERSION, expected_payload, read_frame, write_frame

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
        if len(pixels) != expected_payload(width, height, fmt):
            raise WorkerError(f"{width}x{height} {fmt} needs {expected_payload(width, height, fmt)}"
                              f" bytes, {len(pixels)} given")
        if base_mask is not None and len(base_mask) != out_w * out_h:
            raise WorkerError(f"a {out_w}x{out_h} base mask needs {out_w * out_h} bytes, "
                              f"{len(base_mask)} given")
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
        reply, payload = self._exchange(header, pixels, progress)
        return MaskReply(bytes(payload), int(reply["width"]), int(reply["height"]),
                         str(reply.get("provider", "")), reply.get("notice"))

    def _exchange(self, header: dict[str, Any], payload: bytes | memoryview = b"",
                  progress: ProgressHandler | None = None
                  ) -> tuple[dict[str, Any], bytearray]:
        writer, reader = self._streams()
        try:
            write_frame(writer, header, payload)
            while True:
                frame = read_frame(reader)
                if frame is None:
                    raise self._died()
                reply, data = frame
                if reply["type"] == "progress":
                    if progress:
                        progress(str(reply.get("stage")), int(reply.get("done") or 0),
                                 reply.get("total"))
                    continue
                if reply["type"] == "error":
                    raise _error_from_reply(reply)
                return reply, data
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise self._died() from exc

    def _died(self) -> WorkerError:
        process = self._process
        code = process.wait() if process is not None else None
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

