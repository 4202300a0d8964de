"""The client side of the per-user background worker that keeps models warm across clicks.

GIMP starts a new plug-in process for every click, so a worker tied to that process would load
the model every time. Instead the first click starts ``python -m bgmask.worker --socket PATH``
in the background; later clicks connect to it. The channel is local only: a Unix socket in a
folder only this user can enter (0700), the socket itself 0600, the peer's uid checked by the
worker, and every connection authenticated with a per-user secret kept in a 0600 file in the
same folder. A worker of another bgmask version is asked to exit and replaced. The worker
exits by itself after an idle time. Anything that goes wrong here is the caller's cue to fall
back to a one-shot worker. Windows (named pipes) is not implemented yet: no shared worker there.

Standard library only: this runs inside the editors' Pythons.
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .client import WorkerClient
from .errors import WorkerError

RUNTIME_ENV = "BGMASK_RUNTIME_DIR"
SOCKET_NAME = "worker.sock"
SECRET_NAME = "secret"
START_SECONDS = 60.0  # onnxruntime's import alone can take seconds on a cold disk


def runtime_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """This user's private folder for the socket, or None where there is no shared worker."""
    env = os.environ if env is None else env
    if sys.platform.startswith("win") or not hasattr(socket, "AF_UNIX"):
        return None
    if env.get(RUNTIME_ENV):
        return Path(env[RUNTIME_ENV])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "bgmask"
    return Path(tempfile.gettempdir()) / f"bgmask-{os.getuid()}"


def private_dir(path: Path) -> Path:
    """Creates ``path`` 0700, or checks that an existing one is ours and closed to others."""
    try:
        path.mkdir(mode=0o700, parents=False)
    except FileExistsError:
        pass
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise WorkerError(f"{path} is not a private folder of this user; remove it so bgmask "
                          "can create it again")
    return path


def read_secret(directory: Path, create: bool) -> str:
    path = directory / SECRET_NAME
    if create and not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        except FileExistsError:
            pass  # another click made it first
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise WorkerError(f"{path} is readable by others or not ours; remove it")
    return path.read_text().strip()


@contextmanager
def _spawn_lock(directory: Path):  # noqa: ANN202 (a context manager)
    """One starter at a time: two clicks at once must not start two workers."""
    import fcntl

    with open(directory / "spawn.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def stop_shared_worker(env: Mapping[str, str] | None = None) -> bool:
    """Asks this user's background worker, if one runs, to exit (the installer does this
    after an upgrade, so the next click starts the new code). True if one was stopped."""
    directory = runtime_dir(env)
    if directory is None or not (directory / SOCKET_NAME).exists():
        return False
    sock = _connect(directory / SOCKET_NAME)
    if sock is None:
        return False
    client = SharedWorkerClient([], env, directory)
    client._attach(sock)
    try:
        client._greet(secret=read_secret(directory, create=False))
        client._exchange({"type": "shutdown"})
        return True
    except (WorkerError, OSError):
        return False
    finally:
        client.close()


class SharedWorkerClient(WorkerClient):
    """A connection to the per-user background worker, started on first use."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None,
                 directory: Path) -> None:
        super().__init__(command, env)
        self.directory = directory
        self._sock: socket.socket | None = None
        self._files: tuple[Any, Any] | None = None
        self.started_worker = False

    @property
    def socket_path(self) -> Path:
        return self.directory / SOCKET_NAME

    @property
    def running(self) -> bool:
        return self._sock is not None

    def start(self) -> None:
        self.close()
        private_dir(self.directory)
        for _ in range(2):
            self._attach(self._connect_or_spawn())
            secret = read_secret(self.directory, create=False)
            header = self._greet(secret=secret)
            if header.get("version") == __version__:
                return
            # A worker of another bgmask version: ask it to go, then start ours.
            try:
                self._exchange({"type": "shutdown"})
            except WorkerError:
                pass
            self.close()
            self._wait_gone()
        raise WorkerError("the shared bgmask worker could not be replaced by this version")

    def _attach(self, sock: socket.socket) -> None:
        self._sock = sock
        self._files = (sock.makefile("wb"), sock.makefile("rb"))

    def _streams(self) -> tuple[Any, Any]:
        assert self._files is not None
        return self._files

    def _connect_or_spawn(self) -> socket.socket:
        sock = _connect(self.socket_path)
        if sock is not None:
            return sock
        with _spawn_lock(self.directory):
            sock = _connect(self.socket_path)
            if sock is not None:
                return sock
            read_secret(self.directory, create=True)
            log = open(self.directory / "worker.log", "ab")  # noqa: SIM115 (the worker's)
            try:
                process = subprocess.Popen(
                    [*self.command, "--socket", str(self.socket_path)], env=self.env,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                    close_fds=True, start_new_session=True)
            except OSError as exc:
                raise WorkerError(f"cannot start the bgmask worker ({self.command[0]}): "
                                  f"{exc.strerror or exc}") from exc
            finally:
                log.close()
            self.started_worker = True
            deadline = time.monotonic() + START_SECONDS
            while time.monotonic() < deadline:
                sock = _connect(self.socket_path)
                if sock is not None:
                    return sock
                if process.poll() is not None:
                    raise WorkerError(f"the bgmask worker exited at start (code "
                                      f"{process.returncode}); see {self.directory}/worker.log")
                time.sleep(0.05)
            process.kill()
            raise WorkerError("the bgmask worker did not start in time")

    def _wait_gone(self, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while self.socket_path.exists() and time.monotonic() < deadline:
            sock = _connect(self.socket_path)
            if sock is None:
                return
            sock.close()
            time.sleep(0.05)

    def close(self) -> None:
        files, self._files = self._files, None
        sock, self._sock = self._sock, None
        for f in files or ():
            try:
                f.close()
            except OSError:
                pass
        if sock is not None:
            sock.close()

    def _died(self) -> WorkerError:
        self.close()
        return WorkerError("the shared bgmask worker closed the connection; "
                           f"see {self.directory}/worker.log")
