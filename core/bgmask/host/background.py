"""The client side of the per-user background worker that keeps models warm across clicks.

GIMP starts a new plug-in process for every click, so a worker tied to that process would load
the model every time. Instead the first click starts ``python -m bgmask.worker --socket PATH``
in the background; later clicks connect to it. The channel is local only: a Unix socket in a
folder only this user can enter (0700), the socket itself 0600, the peer's uid checked by the
worker, and every connection authenticated with a per-user secret kept in a 0600 file in the
same folder. A worker of another bgmask version is asked to exit and replaced. The worker
exits by itself after an idle time. Anything that goes wrong here is the caller's cue to fall
back to a one-shot worker. Windows (named pipes) is not implemented yet: no shared worker there.

No step waits without a bound: connecting, the hello and a shutdown have seconds; a reply has
REPLY_SECONDS of silence (the worker sends a frame every few seconds while it works). A worker
that does not answer is killed when it is this user's and stopped or stale, else left alone,
and the click goes on without it.

The folder, the secret and the peer checks are in ``runtime_folder`` (the worker's side uses
them too); the connection itself is a ``channels.SocketChannel`` held by ``client.WorkerClient``.
Standard library only: this runs inside the editors' Pythons.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .channels import Channel, SocketChannel
from .client import Connector, WorkerClient, open_pipe
from .errors import AuthenticationError, BgmaskError, WorkerError
from .runtime_folder import (
    SOCKET_NAME,
    check_private,
    private_dir,
    read_secret,
    runtime_dir,
    spawn_lock,
)
from .settings import Settings
from .version import VERSION

START_SECONDS = 60.0  # onnxruntime's import alone can take seconds on a cold disk
CONNECT_SECONDS = 2.0
HELLO_SECONDS = 5.0  # a live worker answers a hello in milliseconds, even while it masks
GONE_SECONDS = 3.0  # for a worker asked to exit, or killed, to let go of its socket
SHUTDOWN_SECONDS = 2.0  # for a worker of another version to answer "shutdown"
# Silence allowed while waiting for a reply: the worker sends an "alive" frame every 2 s, so
# only a stopped or hung worker stays this quiet; a long mask never does.
REPLY_SECONDS = 120.0
ATTEMPTS = 3


# -- the socket -------------------------------------------------------------------------------

def _connect(path: Path) -> socket.socket | None:
    """A connection to the worker at ``path``; None when none listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_SECONDS)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        # EAGAIN: its queue of connections is full, so it has stopped accepting them.
        raise WorkerError(f"the background worker at {path} does not accept connections "
                          f"({exc.strerror or exc})") from None
    return sock


def is_stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP, a debugger), as /proc says; False if unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = text.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] in ("T", "t")


def _gone(path: Path, seconds: float) -> bool:
    """Waits until nothing listens at ``path`` any more; whether that happened in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            sock = _connect(path)
        except WorkerError:
            alive = True  # listening, but not accepting: still there
        else:
            alive = sock is not None
            if sock is not None:
                sock.close()
        if not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _end(pid: int | None, uid: int | None, path: Path, why: str) -> None:
    """Kills the worker behind ``cred`` when it is this user's (it listens in our private
    folder), and waits until its socket is free; WorkerError when it is not ours to kill."""
    if pid is None or uid != os.getuid() or pid <= 1 or pid == os.getpid():
        raise WorkerError(f"the background worker {why}, and it is not this session's to stop")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # also ends a stopped process, unlike SIGTERM
    _gone(path, GONE_SECONDS)


class BackgroundConnector:
    """Connects to this user's background worker, starting it when none runs; a
    ``client.Connector``. Waits are bounded: hello, shutdown and start have seconds."""

    reply_seconds = REPLY_SECONDS
    hello_seconds = HELLO_SECONDS

    def __init__(self, command: Sequence[str], settings: Settings, directory: Path) -> None:
        self.command = list(command)
        self.settings = settings
        self.directory = directory

    @property
    def socket_path(self) -> Path:
        return self.directory / SOCKET_NAME

    def __call__(self) -> tuple[Channel, dict[str, Any]]:
        private_dir(self.directory)
        reasons = []
        for _ in range(ATTEMPTS):
            spawned, sock = self._connect_or_spawn()
            if sock is None:
                reasons.append("the worker started found another one in its place")
                continue
            channel = SocketChannel(sock, self.directory, self.reply_seconds)
            channel.spawned = spawned
            # Read each time: a spawn may just have replaced a damaged secret.
            header, why = self._handshake(channel, self._secret())
            if header is not None:
                return channel, header
            reasons.append(why)
        raise WorkerError("no usable background worker after "
                          f"{ATTEMPTS} tries: " + "; ".join(reasons))

    def _secret(self) -> str:
        try:
            return read_secret(self.directory, create=False)
        except WorkerError:
            with spawn_lock(self.directory):
                return read_secret(self.directory, create=True)

    def _handshake(self, channel: SocketChannel, secret: str
                   ) -> tuple[dict[str, Any] | None, str]:
        """(the hello, "") when the worker is ours, current and answering; otherwise (None,
        why not), after dealing with it (waited out, asked to go, or killed) so the next try
        is clean."""
        pid, uid = channel.pid, channel.uid
        try:
            with channel.time_limit(self.hello_seconds):
                header = channel.hello(secret=secret)
        except AuthenticationError:
            # It was started with a secret that is no longer the file's: stale.
            channel.close()
            _end(pid, uid, self.socket_path, "holds an old secret")
            return None, "a worker with an old secret was replaced"
        except WorkerError as exc:
            channel.close()
            if channel.stalled:
                if pid is not None and is_stopped(pid):
                    _end(pid, uid, self.socket_path, "is stopped")
                    return None, "a stopped worker was replaced"
                raise WorkerError("the background worker did not answer within "
                                  f"{self.hello_seconds:.0f} s") from None
            _gone(self.socket_path, GONE_SECONDS)  # it was exiting, or was killed
            return None, str(exc)
        if header.get("version") == VERSION:
            return header, ""
        # A worker of another version: ask it to go; one that does not is killed.
        try:
            with channel.time_limit(SHUTDOWN_SECONDS):
                channel.exchange({"type": "shutdown"})
            agreed = True
        except WorkerError:
            agreed = False  # no "bye": it will not go by itself
        channel.close()
        if not (agreed and _gone(self.socket_path, GONE_SECONDS)):
            _end(pid, uid, self.socket_path, "of another version did not exit when asked")
        return None, f"a worker of version {header.get('version')} was replaced"

    def _connect_or_spawn(self) -> tuple[bool, socket.socket | None]:
        """(whether it was started here, a connection to the worker); no connection when the
        one started exited because another held the socket (perhaps a dying one: try
        again)."""
        sock = _connect(self.socket_path)
        if sock is not None:
            return False, sock
        with spawn_lock(self.directory):
            sock = _connect(self.socket_path)
            if sock is not None:
                return False, sock
            read_secret(self.directory, create=True)
            log = open(self.directory / "worker.log", "ab")  # noqa: SIM115 (the worker's)
            try:
                process = subprocess.Popen(
                    [*self.command, "--socket", str(self.socket_path)],
                    env=self.settings.child_environ(), stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=log, close_fds=True,
                    start_new_session=True)
            except OSError as exc:
                raise WorkerError(f"cannot start the bgmask worker ({self.command[0]}): "
                                  f"{exc.strerror or exc}") from exc
            finally:
                log.close()
            deadline = time.monotonic() + START_SECONDS
            while time.monotonic() < deadline:
                sock = _connect(self.socket_path)
                if sock is not None:
                    return True, sock
                code = process.poll()
                if code == 0:
                    return True, None
                if code is not None:
                    raise WorkerError(f"the bgmask worker exited at start (code {code}); "
                                      f"see {self.directory}/worker.log")
                time.sleep(0.05)
            process.kill()
            raise WorkerError("the bgmask worker did not start in time")


def abandon(channel: Channel) -> None:
    """Deals with a background worker that stopped answering in the middle of a click: one
    of ours that is stopped (SIGSTOP, a debugger) is killed, so the next click starts a new
    one; a busy or foreign one is left alone."""
    if isinstance(channel, SocketChannel) and channel.pid is not None \
            and is_stopped(channel.pid):
        with contextlib.suppress(WorkerError):
            _end(channel.pid, channel.uid, channel.directory / SOCKET_NAME, "is stopped")


def background_client(command: Sequence[str], settings: Settings) -> WorkerClient:
    """A started client for a plug-in that lives for one click (GIMP): the per-user background
    worker, which keeps the model loaded between clicks, or, if anything about it fails, a
    one-shot worker of its own (``fallback_reason`` then says why). Every wait on the way is
    bounded, so a stopped or stuck background worker costs seconds, never the click."""
    one_shot: Connector = functools.partial(open_pipe, list(command), settings.child_environ())
    reason = "no shared worker on this system"
    if settings.background_worker:
        try:
            directory = runtime_dir(settings)
            if directory is not None:
                client = WorkerClient(BackgroundConnector(command, settings, directory),
                                      fallback=one_shot, on_stall=abandon)
                client.start()
                return client
        # ValueError: a file object of a connection that broke under it.
        except (BgmaskError, OSError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
    client = WorkerClient(one_shot, fallback_reason=reason)
    client.start()
    return client


def stop_background_worker(settings: Settings | None = None) -> bool:
    """Asks this user's background worker, if one runs, to exit (the installer does this
    after an upgrade, so the next click starts the new code); one that does not go in a few
    seconds is killed. True if one was stopped."""
    settings = settings or Settings.read()
    directory = runtime_dir(settings, create=False)
    if directory is None or not (directory / SOCKET_NAME).exists():
        return False
    try:
        check_private(directory)
        sock = _connect(directory / SOCKET_NAME)
    except WorkerError:
        return False
    if sock is None:
        return False
    channel = SocketChannel(sock, directory, REPLY_SECONDS)
    try:
        with channel.time_limit(HELLO_SECONDS):
            channel.hello(secret=read_secret(directory, create=False))
        with channel.time_limit(SHUTDOWN_SECONDS):
            channel.exchange({"type": "shutdown"})
    except (WorkerError, OSError):
        pass
    finally:
        channel.close()
    if _gone(directory / SOCKET_NAME, GONE_SECONDS):
        return True
    try:
        _end(channel.pid, channel.uid, directory / SOCKET_NAME, "did not exit when asked")
    except WorkerError:
        return False
    return True
