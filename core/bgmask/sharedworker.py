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

Standard library only: this runs inside the editors' Pythons.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .client import MaskReply, WorkerClient
from .errors import AuthenticationError, WorkerError

RUNTIME_ENV = "BGMASK_RUNTIME_DIR"
SOCKET_NAME = "worker.sock"
SECRET_NAME = "secret"
START_SECONDS = 60.0  # onnxruntime's import alone can take seconds on a cold disk
CONNECT_SECONDS = 2.0
HELLO_SECONDS = 5.0  # a live worker answers a hello in milliseconds, even while it masks
GONE_SECONDS = 3.0  # for a worker asked to exit, or killed, to let go of its socket
SHUTDOWN_SECONDS = 2.0  # for a worker of another version to answer "shutdown"
# Silence allowed while waiting for a reply: the worker sends an "alive" frame every 2 s, so
# only a stopped or hung worker stays this quiet; a long mask never does.
REPLY_SECONDS = 120.0
ATTEMPTS = 3
SECRET_PATTERN = re.compile(r"[0-9a-f]{64}")
# The longest path a Unix socket address takes (sun_path is 108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100


def runtime_dir(env: Mapping[str, str] | None = None, create: bool = True) -> Path | None:
    """This user's private folder for the socket, or None where there is no shared worker.

    ``$BGMASK_RUNTIME_DIR`` is taken as given (checked when used). Otherwise the folder in
    ``$XDG_RUNTIME_DIR``, else ``/tmp/bgmask-UID``; if another user holds that name (a
    sticky /tmp lets anyone create it first, and only they can remove it), a folder with an
    unpredictable name beside it (``bgmask-UID-XXXXXXXX``), which nobody can take in advance.
    With ``create`` false, None when that fallback does not exist yet."""
    env = os.environ if env is None else env
    if sys.platform.startswith("win") or not hasattr(socket, "AF_UNIX"):
        return None
    if env.get(RUNTIME_ENV):
        return Path(env[RUNTIME_ENV])
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and _problem(Path(xdg)) is None:
        return Path(xdg) / "bgmask"
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
            f"worker does not use it. Remove it if it is yours, or set {RUNTIME_ENV} to a "
            "folder only you can enter (for example ~/.cache/bgmask-run).")
    if len(str(path / SOCKET_NAME)) > MAX_SOCKET_PATH:
        raise WorkerError(f"{path} is too long a path for a socket; set {RUNTIME_ENV} to a "
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
def _spawn_lock(directory: Path) -> Iterator[None]:
    """One starter at a time: two clicks at once must not start two workers."""
    import fcntl

    fd = os.open(directory / "spawn.lock",
                 os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- the socket -------------------------------------------------------------------------------

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


def _stopped(pid: int) -> bool:
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


def _end(cred: tuple[int, int] | None, path: Path, why: str) -> None:
    """Kills the worker behind ``cred`` when it is this user's (it listens in our private
    folder), and waits until its socket is free; WorkerError when it is not ours to kill."""
    if cred is None or cred[1] != os.getuid() or cred[0] <= 1 or cred[0] == os.getpid():
        raise WorkerError(f"the background worker {why}, and it is not this session's to stop")
    with contextlib.suppress(ProcessLookupError):
        os.kill(cred[0], signal.SIGKILL)  # also ends a stopped process, unlike SIGTERM
    _gone(path, GONE_SECONDS)


def stop_shared_worker(env: Mapping[str, str] | None = None) -> bool:
    """Asks this user's background worker, if one runs, to exit (the installer does this
    after an upgrade, so the next click starts the new code); one that does not go in a few
    seconds is killed. True if one was stopped."""
    directory = runtime_dir(env, create=False)
    if directory is None or not (directory / SOCKET_NAME).exists():
        return False
    try:
        check_private(directory)
        sock = _connect(directory / SOCKET_NAME)
    except WorkerError:
        return False
    if sock is None:
        return False
    cred = peer_cred(sock)
    client = SharedWorkerClient([], env, directory)
    client._attach(sock)
    try:
        with client._timeout(HELLO_SECONDS):
            client._greet(secret=read_secret(directory, create=False))
        with client._timeout(SHUTDOWN_SECONDS):
            client._exchange({"type": "shutdown"})
    except (WorkerError, OSError):
        pass
    finally:
        client.close()
    if _gone(directory / SOCKET_NAME, GONE_SECONDS):
        return True
    try:
        _end(cred, directory / SOCKET_NAME, "did not exit when asked")
    except WorkerError:
        return False
    return True


class SharedWorkerClient(WorkerClient):
    """A connection to the per-user background worker, started on first use. If the worker
    stops answering in the middle of a click, the rest of the click runs in a one-shot worker
    of its own (``fallback_reason`` says why)."""

    reply_seconds = REPLY_SECONDS
    hello_seconds = HELLO_SECONDS

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None,
                 directory: Path) -> None:
        super().__init__(command, env)
        self.directory = directory
        self._sock: socket.socket | None = None
        self._files: tuple[Any, Any] | None = None
        self._cred: tuple[int, int] | None = None
        self._stalled = False
        self._fallback: WorkerClient | None = None
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
        reasons = []
        for _ in range(ATTEMPTS):
            sock = self._connect_or_spawn()
            if sock is None:
                reasons.append("the worker started found another one in its place")
                continue
            self._attach(sock)
            # Read each time: a spawn may just have replaced a damaged secret.
            why = self._handshake(self._secret())
            if why is None:
                return
            reasons.append(why)
        raise WorkerError("no usable background worker after "
                          f"{ATTEMPTS} tries: " + "; ".join(reasons))

    def _secret(self) -> str:
        try:
            return read_secret(self.directory, create=False)
        except WorkerError:
            with _spawn_lock(self.directory):
                return read_secret(self.directory, create=True)

    def _handshake(self, secret: str) -> str | None:
        """None when the attached worker is ours, current and answering; otherwise why not,
        after dealing with it (waited out, asked to go, or killed) so the next try is clean."""
        cred = self._cred
        try:
            with self._timeout(self.hello_seconds):
                header = self._greet(secret=secret)
        except AuthenticationError:
            # It was started with a secret that is no longer the file's: stale.
            self.close()
            _end(cred, self.socket_path, "holds an old secret")
            return "a worker with an old secret was replaced"
        except WorkerError as exc:
            self.close()
            if self._stalled:
                self._stalled = False
                if cred is not None and _stopped(cred[0]):
                    _end(cred, self.socket_path, "is stopped")
                    return "a stopped worker was replaced"
                raise WorkerError("the background worker did not answer within "
                                  f"{self.hello_seconds:.0f} s") from None
            _gone(self.socket_path, GONE_SECONDS)  # it was exiting, or was killed
            return str(exc)
        if header.get("version") == __version__:
            return None
        # A worker of another version: ask it to go; one that does not is killed.
        try:
            with self._timeout(SHUTDOWN_SECONDS):
                self._exchange({"type": "shutdown"})
            agreed = True
        except WorkerError:
            agreed = False  # no "bye": it will not go by itself
        self.close()
        if not (agreed and _gone(self.socket_path, GONE_SECONDS)):
            _end(cred, self.socket_path, "of another version did not exit when asked")
        return f"a worker of version {header.get('version')} was replaced"

    @contextlib.contextmanager
    def _timeout(self, seconds: float) -> Iterator[None]:
        sock = self._sock
        if sock is not None:
            sock.settimeout(seconds)
        try:
            yield
        finally:
            if self._sock is not None:
                self._sock.settimeout(self.reply_seconds)

    def _attach(self, sock: socket.socket) -> None:
        self._sock = sock
        self._cred = peer_cred(sock)
        sock.settimeout(self.reply_seconds)
        self._files = (sock.makefile("wb"), sock.makefile("rb"))

    def _streams(self) -> tuple[Any, Any]:
        if self._files is None:
            raise WorkerError("the background worker's connection is closed")
        return self._files

    def _connect_or_spawn(self) -> socket.socket | None:
        """A connection to the worker, started here if none listens; None when the one
        started exited because another held the socket (perhaps a dying one: try again)."""
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
                code = process.poll()
                if code == 0:
                    return None
                if code is not None:
                    raise WorkerError(f"the bgmask worker exited at start (code {code}); "
                                      f"see {self.directory}/worker.log")
                time.sleep(0.05)
            process.kill()
            raise WorkerError("the bgmask worker did not start in time")

    def close(self) -> None:
        files, self._files = self._files, None
        sock, self._sock = self._sock, None
        for f in files or ():
            with contextlib.suppress(OSError):
                f.close()
        if sock is not None:
            sock.close()
        fallback, self._fallback = self._fallback, None
        if fallback is not None:
            fallback.close()

    def mask(self, pixels: bytes | memoryview, width: int, height: int, fmt: str,
             **kwargs: Any) -> MaskReply:
        if self._fallback is not None:
            return self._fallback.mask(pixels, width, height, fmt, **kwargs)
        try:
            return super().mask(pixels, width, height, fmt, **kwargs)
        except WorkerError as exc:
            if not self._stalled:
                raise
            # Stuck, not dead: the request itself is fine, so it runs where it can.
            self._stalled = False
            cred, reason = self._cred, str(exc)
            if cred is not None and _stopped(cred[0]):
                with contextlib.suppress(WorkerError):
                    _end(cred, self.socket_path, "is stopped")
            self.close()
            self.fallback_reason = reason
            self._fallback = WorkerClient(self.command, self.env)
            self._fallback.start()
            return self._fallback.mask(pixels, width, height, fmt, **kwargs)

    def _died(self, exc: BaseException | None = None) -> WorkerError:
        if isinstance(exc, TimeoutError):
            self._stalled = True
            files, self._files = self._files, None  # half a frame may be buffered: unusable
            for f in files or ():
                with contextlib.suppress(OSError):
                    f.close()
            return WorkerError("the background worker stopped answering (no reply for "
                               f"{self._sock.gettimeout() if self._sock else 0:.0f} s)")
        self.close()
        return WorkerError("the shared bgmask worker closed the connection; "
                           f"see {self.directory}/worker.log")
