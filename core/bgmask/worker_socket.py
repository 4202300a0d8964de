"""The per-user background worker's server side: ``python -m bgmask.worker --socket PATH``.

Listens on a Unix socket (0600, in the 0700 folder ``bgmask.sharedworker`` prepared), accepts
only peers of this user, authenticates each connection with the secret file beside the socket,
serves each connection on its own thread with the worker's request loop (models loaded once,
one inference at a time), and exits after an idle time or when a newer client asks it to.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from .runtime import RuntimeOptions
from .sharedworker import SECRET_NAME, read_secret
from .worker import Worker

DEFAULT_IDLE_SECONDS = 900.0


def _peer_uid(conn: socket.socket) -> int | None:
    """The connecting process's uid (Linux); None where the system does not say."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _bind(path: Path) -> socket.socket | None:
    """A listening socket at ``path``; None when a live worker already answers there."""
    if path.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            return None
        except OSError:
            path.unlink()  # left behind by a worker that was killed
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
        idle = float(os.environ.get("BGMASK_WORKER_IDLE") or DEFAULT_IDLE_SECONDS)
    secret = read_secret(path.parent, create=False)
    server = _bind(path)
    if server is None:
        return 0  # another worker won the race; the client connects to that one
    inode = path.stat().st_ino
    shared: dict = {}
    lock = threading.Lock()
    stop = threading.Event()
    state = {"active": 0, "last": time.monotonic()}
    guard = threading.Lock()

    def handle(conn: socket.socket) -> None:
        with guard:
            state["active"] += 1
        try:
            with conn, conn.makefile("rb") as reader, conn.makefile("wb") as writer:
                Worker(reader, writer, runtime, maskers=shared, lock=lock, secret=secret,
                       on_shutdown=stop.set).serve()
        except OSError:
            pass  # the client went away mid-request; the next one starts clean
        finally:
            with guard:
                state["active"] -= 1
                state["last"] = time.monotonic()

    server.settimeout(0.5)
    print(f"bgmask worker {os.getpid()} serving {path} (idle exit after {idle:.0f} s)",
          file=sys.stderr, flush=True)
    try:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                with guard:
                    if state["active"] == 0 and time.monotonic() - state["last"] > idle:
                        break
                continue
            if _peer_uid(conn) not in (None, os.getuid()):
                conn.close()  # another user: never served, whatever they send
                continue
            conn.settimeout(None)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    finally:
        server.close()
        with contextlib.suppress(OSError):
            if path.stat().st_ino == inode:
                path.unlink()
    return 0


__all__ = ["serve_socket", "SECRET_NAME"]
