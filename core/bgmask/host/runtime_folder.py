"""The background worker's private folder: where its socket and the per-user secret live, and
the checks that keep other local users out of both.

Used by both sides: the editor-side client that connects (``bgmask.host.background``) and the
worker that listens (``bgmask.worker.server``). Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import WorkerError
from .settings import RUNTIME_DIR, Settings

SOCKET_NAME = "worker.sock"
SECRET_NAME = "secret"
SECRET_PATTERN = re.compile(r"[0-9a-f]{64}")
# The longest path a Unix socket address takes (sun_path is 108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100


def runtime_dir(settings: Settings, create: bool = True) -> Path | None:
    """This user's private folder for the socket, or None where there is no shared worker.

    ``$BGMASK_RUNTIME_DIR`` is taken as given (checked when used). Inside a Flatpak sandbox
    (``$FLATPAK_ID``) the folder in ``$XDG_RUNTIME_DIR/app/$FLATPAK_ID``, the one part of the
    sandbox's runtime folder that the host sees too (as its own ``$XDG_RUNTIME_DIR/app/ID``),
    so the installer on the host can stop that worker. Otherwise the folder in
    ``$XDG_RUNTIME_DIR``, else ``/tmp/bgmask-UID``; if another user holds that name (a
    sticky /tmp lets anyone create it first, and only they can remove it), a folder with an
    unpredictable name beside it (``bgmask-UID-XXXXXXXX``), which nobody can take in advance.
    With ``create`` false, None when that fallback does not exist yet."""
    if sys.platform.startswith("win") or not hasattr(socket, "AF_UNIX"):
        return None
    if settings.runtime_dir is not None:
        return settings.runtime_dir
    xdg = settings.xdg_runtime_dir
    if xdg is not None and settings.flatpak_id and "/" not in settings.flatpak_id:
        shared = xdg / "app" / settings.flatpak_id
        if _problem(shared) is None:
            return shared / "bgmask"
    if xdg is not None and _problem(xdg) is None:
        return xdg / "bgmask"
    tmp = Path(tempfile.gettempdir())
    preferred = tmp / f"bgmask-{os.getuid()}"
    if not os.path.lexists(preferred) or _problem(preferred) is None:
        return preferred
    prefix = f"{preferred.name}-"
    with contextlib.suppress(OSError), os.scandir(tmp) as entries:
        own = sorted(e.name for e in entries if e.name.startswith(prefix))
        for name in own:
            if _problem(tmp / name) is None:
                return tmp / name
    if not create:
        return None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))  # 0700, a name nobody can guess


def _problem(path: Path) -> str | None:
    """Why ``path`` is not a folder only this user controls, or None when it is: ours, 0700,
    not a symbolic link, in a parent that others cannot rename it out of."""
    uid = os.getuid()
    try:
        parent = path.parent.stat()
        if parent.st_uid not in (uid, 0) or (
                parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX):
            return f"{path.parent} can be changed by other users"
        info = path.lstat()
    except OSError as exc:
        return f"{path} cannot be checked ({exc.strerror or exc})"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a folder"
    if info.st_uid != uid:
        return f"{path} belongs to another user (uid {info.st_uid})"
    if info.st_mode & 0o077:
        return f"{path} is open to other users (mode {info.st_mode & 0o777:o})"
    return None


def check_private(path: Path) -> Path:
    problem = _problem(path)
    if problem is not None:
        raise WorkerError(
            f"{problem}: it is not a private folder of this user, so bgmask's background "
            f"worker does not use it. Remove it if it is yours, or set {RUNTIME_DIR} to a "
            "folder only you can enter (for example ~/.cache/bgmask-run).")
    if len(str(path / SOCKET_NAME)) > MAX_SOCKET_PATH:
        raise WorkerError(f"{path} is too long a path for a socket; set {RUNTIME_DIR} to a "
                          "shorter folder only you can enter")
    return path


def private_dir(path: Path) -> Path:
    """Creates ``path`` 0700, or checks that an existing one is ours and closed to others."""
    try:
        path.mkdir(mode=0o700, parents=False)
    except FileExistsError:
        pass
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    return check_private(path)


# -- the secret -------------------------------------------------------------------------------

def _load_secret(path: Path) -> str:
    """The secret in ``path``; FileNotFoundError when absent, WorkerError when it is not a
    0600 regular file of ours holding 64 hex digits (an empty file from a full disk
    included: authentication is never off)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise WorkerError(f"{path} cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() \
                or info.st_mode & 0o077:
            raise WorkerError(f"{path} is not a private file of this user")
        text = os.read(fd, 256).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if not SECRET_PATTERN.fullmatch(text):
        raise WorkerError(f"{path} is empty or damaged")
    return text


def _write_secret(path: Path, replace: bool) -> None:
    """A new secret, complete on disk before it takes the name: written to an unguessable
    temporary name (exclusive, 0600), synced, then linked (first writer wins) or renamed over
    a damaged one. A full disk fails here and leaves no secret file at all."""
    temp = path.with_name(f".{path.name}-{secrets.token_hex(8)}")
    data = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                     | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(temp, path)
        else:
            with contextlib.suppress(FileExistsError):  # another click made it first
                os.link(temp, path)
    except OSError as exc:
        raise WorkerError(f"cannot write bgmask's secret {path} ({exc.strerror or exc}); "
                          "free some disk space, or remove it if it is in the way") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def read_secret(directory: Path, create: bool) -> str:
    """This user's secret. With ``create`` (a client, holding the spawn lock) a missing one is
    made, and one that is empty, damaged or not private is replaced: it is in our own private
    folder, and a worker never runs with such a one. Without, any of those is an error."""
    path = directory / SECRET_NAME
    try:
        return _load_secret(path)
    except FileNotFoundError:
        if not create:
            raise WorkerError(f"{path} is missing; the next click creates it") from None
        _write_secret(path, replace=False)
    except WorkerError:
        if not create:
            raise
        _write_secret(path, replace=True)
    try:
        return _load_secret(path)
    except FileNotFoundError:
        raise WorkerError(f"{path} vanished as it was made; try again") from None


@contextlib.contextmanager
def spawn_lock(directory: Path) -> Iterator[None]:
    """One starter at a time: two clicks at once must not start two workers."""
    import fcntl

    fd = os.open(directory / "spawn.lock",
                 os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- the peer ----------------------------------------------------------------------------------

def peer_cred(sock: socket.socket) -> tuple[int, int] | None:
    """(pid, uid) of the process at the other end (on a client's socket: the process that
    listens), where the system says (Linux); None elsewhere."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid, uid, _ = struct.unpack("3i", creds)
    return pid, uid
