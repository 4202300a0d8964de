"""The model store: where model files live, how they arrive, and proof that they are intact.

Files arrive as ``NAME.part``, are verified, then renamed into place, so a file under its
final name has passed its hash when it was put there. What the store guarantees afterwards:
a file is used only if its bytes were hashed since it last changed, where "changed" is judged
by its identity and times (size, mtime, ctime, inode, device) remembered in ``verified.json``.
ctime cannot be set back by a user (only by changing the system clock), so a file rewritten
in place with its mtime restored is hashed again before use. Loading an unchanged file costs a
``stat``, not a re-hash. ``verified.json`` counts only if this user (or root) owns it and no
one else can write it, so another user who can write a shared store folder cannot vouch for a
file. When the folder cannot be written (a read-only store), a file that hashes right is still
used; it is simply hashed on every load.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..host.catalogue import ModelRecord, Source
from ..host.errors import DiskFullError, DownloadError, ModelIntegrityError, ModelUnavailableError
from ..host.settings import MODEL_DIR, Settings
from . import download
from .download import ProgressCallback

MEMO_NAME = "verified.json"
# verified.json holds a few lines per model; anything much larger is not ours.
MEMO_MAX_BYTES = 1 << 20


def default_store_dir() -> Path:
    override = Settings.read().model_dir
    if override is not None:
        return override
    import platformdirs  # deferred: only the store needs it

    return Path(platformdirs.user_data_dir("bgmask", appauthor=False)) / "models"


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def check_digests(record: ModelRecord, path: Path) -> str | None:
    """None when the file matches the record, else a sentence saying how it differs."""
    size = path.stat().st_size
    if record.size is not None and size != record.size:
        return f"it is {size} bytes, {record.size} expected"
    sha, md5 = file_digests(path)
    if record.sha256 and sha != record.sha256:
        return f"its sha256 is {sha}, {record.sha256} expected"
    if record.md5 and md5 != record.md5:
        return f"its md5 is {md5}, {record.md5} expected"
    return None


def identity(st: os.stat_result) -> dict[str, int]:
    """What must be unchanged for an earlier hash to still vouch for a file. mtime alone can
    be set back (``touch -d``, ``os.utime``, archive tools); ctime moves on every write and
    every metadata change and cannot be set back, and a replaced file has a new inode."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "inode": st.st_ino, "device": st.st_dev}


class ModelStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_store_dir()

    def path_for(self, record: ModelRecord) -> Path:
        return self.root / record.file_name

    # -- verification ---------------------------------------------------------------------

    def _memo(self) -> dict[str, object]:
        """What was verified; empty when the file is missing, unreadable or not ours (a
        folder, garbage, JSON nested too deep, a file another user could have written): that
        only costs a re-hash."""
        try:
            fd = os.open(self.root / MEMO_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                if not _written_by_us(os.fstat(fd)):
                    return {}
                text = f.read(MEMO_MAX_BYTES + 1)
            data = json.loads(text) if len(text) <= MEMO_MAX_BYTES else None
        except (OSError, ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    def _remember(self, record: ModelRecord, path: Path) -> None:
        """Note that ``path`` hashed right. Best effort: a store that cannot be written (a
        read-only folder, a ``verified.json`` that is a folder) just hashes again next time."""
        try:
            memo = self._memo()
            memo[record.file_name] = identity(path.stat())
            # An unpredictable name, created exclusively: never a file someone planted.
            fd, tmp = tempfile.mkstemp(prefix=f".{MEMO_NAME}.", dir=self.root)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    if hasattr(os, "fchmod"):  # mkstemp's 0600 would hide it from a shared store
                        os.fchmod(f.fileno(), 0o644)
                    json.dump(memo, f, indent=1)
                os.replace(tmp, self.root / MEMO_NAME)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass

    def is_verified(self, record: ModelRecord) -> bool:
        """True when the file is in place and unchanged since it was last verified."""
        try:
            st = self.path_for(record).stat()
        except OSError:
            return False
        return self._memo().get(record.file_name) == identity(st)

    def verify(self, record: ModelRecord, *, force: bool = False) -> Path:
        """Check the stored file's hashes (once, unless ``force``) and return its path."""
        path = self.path_for(record)
        if not path.exists():
            raise ModelUnavailableError(self._missing_message(record, []))
        if not force and self.is_verified(record):
            return path
        if not path.is_file():
            raise ModelIntegrityError(f"{path} is not a file; remove it and run 'bgmask models "
                                      f"fetch {record.name}'")
        try:
            problem = check_digests(record, path)
        except OSError as exc:
            raise ModelIntegrityError(
                f"cannot read the model file {path} ({exc.strerror or exc}); make it readable, "
                f"or delete it and run 'bgmask models fetch {record.name}'") from None
        if problem:
            raise ModelIntegrityError(
                f"the model file {path} is damaged or not the expected file: {problem}. "
                f"Delete it, or run 'bgmask models fetch {record.name} --force' "
                "to download it again."
            )
        self._remember(record, path)
        return path

    # -- obtaining ------------------------------------------------------------------------

    def sources(self, record: ModelRecord) -> list[Source]:
        # A base URL tried before the catalogue's own (an internal mirror, or tests).
        mirror = Settings.read().model_mirror
        first = [Source("url", mirror.rstrip("/") + "/" + record.file_name)] if mirror else []
        return first + list(record.sources)

    def ensure(self, record: ModelRecord, progress: ProgressCallback | None = None) -> Path:
        """The verified path of the model, downloading it first if it is not here yet."""
        if self.path_for(record).exists():
            return self.verify(record)
        return self.fetch(record, progress)

    def fetch(self, record: ModelRecord, progress: ProgressCallback | None = None,
              *, force: bool = False) -> Path:
        """Download the model from the first source that delivers the right bytes.

        A ``.part`` left by an interrupted download is kept to be resumed (it is never larger
        than the model and never used unverified); one that fails its check is removed."""
        path = self.path_for(record)
        with self._writing(record):
            # Another process may have finished the download while we waited for the lock.
            if path.exists() and not force:
                return self.verify(record)
            part = path.with_name(path.name + ".part")
            if part.is_symlink() or (part.exists() and not part.is_file()):
                raise ModelUnavailableError(f"{part} is in the way (not a file bgmask wrote): "
                                            "remove it and try again")
            failures: list[str] = []
            for source in self.sources(record):
                try:
                    download.fetch(source, part, progress, _limit(record))
                except DiskFullError:
                    raise  # another source would fill the same disk
                except DownloadError as exc:
                    failures.append(str(exc))
                    continue
                problem = check_digests(record, part)
                if problem:
                    part.unlink(missing_ok=True)
                    failures.append(f"{source.describe()}: wrong file, {problem}")
                    continue
                _put_in_place(part, path)
                self._remember(record, path)
                return path
            raise ModelUnavailableError(self._missing_message(record, failures))

    def import_file(self, record: ModelRecord, src: Path) -> Path:
        """Put a file the user already has into the store, verified like a download.

        Only a regular file is read, and no more than the model's size: ``--from /dev/zero``
        or a file that keeps growing stops there. The ``.part`` is removed on every way out,
        Ctrl-C and SIGTERM included."""
        path = self.path_for(record)
        part = path.with_name(record.file_name + ".part")
        with download.open_regular(src) as fin:
            size = os.fstat(fin.fileno()).st_size
            limit = _limit(record, size)
            if size > limit:
                raise ModelIntegrityError(f"{src} is not the {record.name} model: it is {size} "
                                          f"bytes, {limit} expected")
            with self._writing(record), _removed_on_exit(part):
                try:
                    with download.open_part(part) as fout:
                        download.copy_bounded(fin, fout, limit, size, None)
                except download.TooLargeError:
                    raise ModelIntegrityError(f"{src} grew past the {record.name} model's "
                                              f"{limit} bytes while it was read") from None
                except OSError as exc:
                    if exc.errno == errno.ENOSPC:
                        raise DiskFullError(f"the disk holding {self.root} is full; free some "
                                            "space and try again") from None
                    raise ModelUnavailableError(f"copying {src} into {part} failed: "
                                                f"{exc.strerror or exc}") from None
                problem = check_digests(record, part)
                if problem:
                    raise ModelIntegrityError(f"{src} is not the {record.name} model: {problem}")
                _put_in_place(part, path)
        self._remember(record, path)
        return path

    @contextlib.contextmanager
    def _writing(self, record: ModelRecord) -> Iterator[None]:
        """The folder made and locked for writing this model, or one line saying what to do."""
        lock = self.root / f".{record.file_name}.lock"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # Never through a symlink someone planted at the lock's name; held until the end.
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            handle = os.fdopen(os.open(lock, flags, 0o644), "r+b")
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise ModelUnavailableError(
                f"cannot write the model {record.name} into {self.root} "
                f"({exc.strerror or exc}{where}): set {MODEL_DIR} to a folder you can write to, "
                f"or put {record.file_name} there by hand"
            ) from None
        with handle, _locked(handle):
            yield

    def _missing_message(self, record: ModelRecord, failures: list[str]) -> str:
        lines = [f"the model {record.name!r} is not available and could not be downloaded."]
        lines += [f"  tried {f}" for f in failures]
        lines.append(f"Put the file {record.file_name} at {self.path_for(record)}")
        lines.append("(or run 'bgmask models fetch " + record.name + " --from FILE').")
        lines.append("It can be obtained from: " + "; ".join(s.describe() for s in record.sources))
        return "\n".join(lines)


def _written_by_us(st: os.stat_result) -> bool:
    """Whether only this user (or root) can have written the file. Another user who can
    write into a shared store folder could otherwise vouch for a file of their own making."""
    if sys.platform == "win32":  # the store is in the user's own profile; no POSIX owners
        return True
    return st.st_uid in (os.geteuid(), 0) and not st.st_mode & 0o022


def _put_in_place(part: Path, path: Path) -> None:
    """The verified ``part`` renamed to its final name, atomically."""
    try:
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ModelUnavailableError(f"cannot put the model at {path} ({exc.strerror or exc}): "
                                    "remove what is there and try again") from None


def _limit(record: ModelRecord, fallback: int = download.MAX_MODEL_BYTES) -> int:
    """The most bytes a source may deliver for this model."""
    if record.size is not None:
        return record.size
    return min(fallback, download.MAX_MODEL_BYTES)


@contextlib.contextmanager
def _locked(handle: IO[bytes]) -> Iterator[None]:
    """An advisory lock so two processes never write the same ``.part`` file at once."""
    fileno = handle.fileno()
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(fileno, msvcrt.LK_LOCK, 1)
        try:
            yield
        finally:
            handle.seek(0)
            msvcrt.locking(fileno, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fileno, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fileno, fcntl.LOCK_UN)


class _Terminated(BaseException):
    """SIGTERM, raised where the program was so that cleanup code runs."""


@contextlib.contextmanager
def _removed_on_exit(part: Path) -> Iterator[None]:
    """``part`` is deleted however the block ends but by success (which renames it away).

    Exceptions, Ctrl-C (KeyboardInterrupt) and, when this process has not chosen its own
    SIGTERM handling, SIGTERM: the process still dies of the signal, after the cleanup."""
    own_sigterm = (sys.platform != "win32"
                   and threading.current_thread() is threading.main_thread()
                   and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
    if own_sigterm:
        def on_sigterm(signum: int, frame: object) -> None:
            raise _Terminated

        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):  # e.g. a folder of the user's at that name: kept
            part.unlink(missing_ok=True)
        if isinstance(exc, _Terminated):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        if own_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
