"""The per-user background worker's server side: ``python -m bgmask.worker --socket PATH``.

Listens on a Unix socket (0600, in the 0700 folder ``bgmask.host.runtime_folder`` prepared), accepts
only peers of this user, authenticates each connection with the secret file beside the socket,
serves each connection on its own thread with the worker's request loop (models loaded once,
one inference at a time), and exits after an idle time or when a newer client asks it to.

Nothing a connection does can hold the worker: it has HELLO_SECONDS to prove the secret with
one small frame, an authenticated one is closed after a silence, a client that stops reading
replies is dropped, and only requests (not open connections) keep the worker from its idle
exit.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..engine.runtime import RuntimeOptions, available_providers
from ..host.errors import ProtocolError, WorkerError
from ..host.runtime_folder import SECRET_NAME, check_private, peer_cred, read_secret
from ..host.settings import Settings
from .requests import Worker

DEFAULT_IDLE_SECONDS = 900.0
HELLO_SECONDS = 5.0  # from connecting to a hello with the secret; our client sends it at once
CONNECTION_IDLE = 120.0  # an authenticated connection silent this long is closed
SEND_SECONDS = 60.0  # a client that takes no reply bytes for this long is dropped
HEARTBEAT_SECONDS = 2.0  # "alive" frames while a request waits or runs (client: 30 s limit)
MAX_CONNECTIONS = 32


class Channel:
    """One connection as the worker's stdin and stdout, with the server's time limits: a
    total deadline until the hello is accepted, a silence limit after it."""

    def __init__(self, sock: socket.socket, hello_seconds: float, idle: float) -> None:
        self.sock = sock
        self.deadline: float | None = time.monotonic() + hello_seconds
        self.idle = idle
        self.broken = False

    def authenticated(self) -> None:
        self.deadline = None

    def readinto(self, view: memoryview) -> int:
        late = ProtocolError("no hello with the secret in time; connection closed"
                             if self.deadline is not None else
                             "the client sent nothing for too long; connection closed")
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise late
            self.sock.settimeout(left)
        else:
            self.sock.settimeout(self.idle)
        try:
            return self.sock.recv_into(view)
        except TimeoutError:
            raise late from None

    def write(self, data: bytes | memoryview) -> int:
        if self.broken:
            raise BrokenPipeError("the connection was dropped")
        self.sock.settimeout(SEND_SECONDS)
        try:
            self.sock.sendall(data)
        except OSError as exc:
            # Half a frame may have gone: nothing more can be written in step.
            self.broken = True
            if isinstance(exc, TimeoutError):
                raise BrokenPipeError("the client stopped reading replies") from None
            raise
        return len(data)

    def flush(self) -> None:
        pass


class Activity:
    """The idle clock: requests and authenticated connections keep the worker up, nothing
    else does (an authenticated connection is itself closed after a silence)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.busy = 0
        self.clients = 0
        self.connections = 0
        self.last = time.monotonic()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        with self._lock:
            self.busy += 1
        try:
            yield
        finally:
            with self._lock:
                self.busy -= 1
                self.last = time.monotonic()

    def change(self, clients: int = 0, connections: int = 0) -> None:
        with self._lock:
            self.clients += clients
            self.connections += connections
            if clients:  # a connection that never authenticates does not count as use
                self.last = time.monotonic()

    def idle_for(self) -> float:
        with self._lock:
            if self.busy or self.clients:
                return 0.0
            return time.monotonic() - self.last


def _bind(path: Path) -> socket.socket | None:
    """A listening socket at ``path``; None when a live worker already answers there."""
    if path.exists() or path.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
            return None
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left behind by a worker that was killed
        except OSError:
            return None  # a full backlog or a slow answer: a worker lives there
        finally:
            probe.close()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    server.listen(16)
    return server


def serve_socket(path_text: str, runtime: RuntimeOptions, idle: float | None) -> int:
    path = Path(path_text)
    if idle is None:
        idle = Settings.read().worker_idle or DEFAULT_IDLE_SECONDS
    check_private(path.parent)
    # Refuses an empty or malformed secret: a worker never runs without authentication.
    secret = read_secret(path.parent, create=False)
    # Asked once before listening, so a hello is answered at once even on a cold disk.
    providers = available_providers()
    server = _bind(path)
    if server is None:
        return 0  # another worker won the race; the client connects to that one
    inode = path.stat().st_ino
    shared: dict = {}
    lock = threading.Lock()
    stop = threading.Event()
    activity = Activity()
    connection_idle = min(CONNECTION_IDLE, max(idle, 1.0))

    def handle(conn: socket.socket) -> None:
        channel = Channel(conn, HELLO_SECONDS, connection_idle)
        greeted = []

        def on_greeted() -> None:
            channel.authenticated()
            greeted.append(True)
            activity.change(clients=1)

        try:
            with conn:
                Worker(channel, channel, runtime, maskers=shared, lock=lock,  # type: ignore[arg-type]
                       secret=secret, on_shutdown=stop.set, on_greeted=on_greeted,
                       busy=activity.request, heartbeat=HEARTBEAT_SECONDS,
                       providers=providers).serve()
        except OSError:
            pass  # the client went away mid-request; the next one starts clean
        finally:
            activity.change(clients=-len(greeted), connections=-1)

    server.settimeout(0.5)
    print(f"bgmask worker {os.getpid()} serving {path} (idle exit after {idle:.0f} s)",
          file=sys.stderr, flush=True)
    try:
        while not stop.is_set() and activity.idle_for() <= idle:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            cred = peer_cred(conn)
            if cred is not None and cred[1] != os.getuid():
                conn.close()  # another user: never served, whatever they send
                continue
            if activity.connections >= MAX_CONNECTIONS:
                conn.close()  # each costs a thread: a flood is refused, not queued
                continue
            activity.change(connections=1)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    finally:
        server.close()
        with contextlib.suppress(OSError):
            if path.stat().st_ino == inode:
                path.unlink()
    return 0


__all__ = ["serve_socket", "SECRET_NAME", "WorkerError"]
