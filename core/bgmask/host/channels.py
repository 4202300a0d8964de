"""The two ways a plug-in reaches a worker, behind one interface: a pipe to a worker process of
its own (``PipeChannel``), or a connection to this user's background worker
(``SocketChannel``). ``WorkerClient`` holds one and does not care which.

Standard library only: this runs inside the editors' Pythons.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from . import errors
from .errors import BgmaskError, ProtocolError, WorkerError
from .protocol import PROTOCOL_VERSION, read_frame, write_frame
from .runtime_folder import peer_cred

# stage, done, total (None when unknown)
ProgressHandler = Callable[[str, int, "int | None"], None]
EXIT_SECONDS = 5.0  # for a worker told "bye" to exit
LOG_LINES = 5  # of a dead worker's stderr, shown in the error


def worker_command(python: str, *extra: str) -> list[str]:
    """The command that starts a worker with bgmask's own interpreter."""
    return [python, "-m", "bgmask.worker", *extra]


class Channel:
    """One open connection to a worker: frames go out and come back on its two streams."""

    #: The worker stopped answering but did not go away (only a socket channel can tell).
    stalled = False
    #: The worker process at the other end, where known.
    pid: int | None = None

    def streams(self) -> tuple[IO[bytes], IO[bytes]]:
        """(writer, reader)."""
        raise NotImplementedError

    def died(self, exc: BaseException | None = None) -> WorkerError:
        """Closes the channel and says why the worker went away."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        """A shorter wait for the steps inside (a pipe has no wait limit of its own)."""
        yield

    def hello(self, **extra: Any) -> dict[str, Any]:
        header, _ = self.exchange({"type": "hello", "protocol": PROTOCOL_VERSION, **extra})
        return header

    def exchange(self, header: dict[str, Any], payload: bytes | bytearray | memoryview = b"",
                 progress: ProgressHandler | None = None, *, max_payload: int = 0
                 ) -> tuple[dict[str, Any], bytearray]:
        """Sends one request and reads frames up to its answer; only a mask reply carries
        bytes, and no more than ``max_payload`` are taken."""
        writer, reader = self.streams()
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
                    raise self.died()
                reply, data = frame
                if reply["type"] == "progress":
                    # "alive" frames only show the worker is at work (they reset a timeout).
                    if progress and reply.get("stage") != "alive":
                        progress(str(reply.get("stage")), int(reply.get("done") or 0),
                                 reply.get("total"))
                    continue
                if reply["type"] == "error":
                    raise error_from_reply(reply)
                return reply, data
        except OSError as exc:  # a broken pipe, a reset, a timeout of a socket channel
            raise self.died(exc) from exc


class PipeChannel(Channel):
    """A worker process of this plug-in's own, on its stdin and stdout; its stderr goes to a
    temporary file whose last lines explain a crash."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self._log: IO[bytes] = tempfile.TemporaryFile(prefix="bgmask-worker-")
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                env=dict(env) if env is not None else None, close_fds=True,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except OSError as exc:
            self._log.close()
            raise WorkerError(
                f"cannot start the bgmask worker ({self.command[0]}): {exc.strerror or exc}. "
                "Reinstall bgmask, or set BGMASK_PYTHON to the Python of bgmask's environment."
            ) from exc
        self.pid = self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def streams(self) -> tuple[IO[bytes], IO[bytes]]:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise WorkerError("the bgmask worker's pipe is closed")
        return process.stdin, process.stdout

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                if process.poll() is None and process.stdin:
                    write_frame(process.stdin, {"type": "bye"})
                    process.stdin.close()
                process.wait(timeout=EXIT_SECONDS)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        self._log.close()

    def died(self, exc: BaseException | None = None) -> WorkerError:
        process, self._process = self._process, None
        code = None
        if process is not None:
            try:
                code = process.wait(timeout=EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()  # its pipe broke, yet it runs on: nothing more comes from it
                code = process.wait()
        tail = ""
        if not self._log.closed:
            self._log.seek(0)
            lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
            tail = "\n".join(lines[-LOG_LINES:])
            self._log.close()
        message = f"the bgmask worker stopped unexpectedly (exit code {code})"
        return WorkerError(message + (f":\n{tail}" if tail else ""))


class SocketChannel(Channel):
    """A connection to this user's background worker. Every read has a time limit: the worker
    sends a frame every few seconds while it works, so silence means it is stopped or hung
    (``stalled``), which is the caller's cue to go on without it."""

    #: The user the worker runs as, where known.
    uid: int | None

    def __init__(self, sock: socket.socket, directory: Path, reply_seconds: float) -> None:
        self.directory = directory
        self.reply_seconds = reply_seconds
        self._sock: socket.socket | None = sock
        cred = peer_cred(sock)
        self.pid, self.uid = cred if cred is not None else (None, None)
        sock.settimeout(reply_seconds)
        self._files: tuple[Any, Any] | None = (sock.makefile("wb"), sock.makefile("rb"))
        #: Whether opening this channel started the worker (the first click of a session).
        self.spawned = False

    @property
    def running(self) -> bool:
        return self._sock is not None

    @contextlib.contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        if self._sock is not None:
            self._sock.settimeout(seconds)
        try:
            yield
        finally:
            if self._sock is not None:
                self._sock.settimeout(self.reply_seconds)

    def streams(self) -> tuple[IO[bytes], IO[bytes]]:
        if self._files is None:
            raise WorkerError("the background worker's connection is closed")
        return self._files

    def _close_files(self) -> None:
        files, self._files = self._files, None
        for f in files or ():
            with contextlib.suppress(OSError):
                f.close()

    def close(self) -> None:
        self._close_files()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def died(self, exc: BaseException | None = None) -> WorkerError:
        if isinstance(exc, TimeoutError):
            self.stalled = True
            seconds = self._sock.gettimeout() if self._sock is not None else 0
            self._close_files()  # half a frame may be buffered: unusable
            return WorkerError("the background worker stopped answering (no reply for "
                               f"{seconds or 0:.0f} s)")
        self.close()
        return WorkerError("the shared bgmask worker closed the connection; "
                           f"see {self.directory}/worker.log")


def error_from_reply(reply: Mapping[str, Any]) -> BgmaskError:
    """The worker's error as the matching exception class, so adapters can react to its kind."""
    cls = getattr(errors, str(reply.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, BgmaskError)):
        cls = WorkerError
    return cls(str(reply.get("message") or "the worker reported an error"))
