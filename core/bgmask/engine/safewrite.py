"""Writing one output file so that nobody else's file is ever touched.

An output folder may be shared with other local users (a sticky /tmp, a group folder). Each
file is written to a temporary name nobody can predict, created exclusively and never through a
link, then renamed over the target in one step: a link planted at the temporary or the final
name is never written through (a rename replaces the link itself). Sub-folders below the folder
the user named are entered without following links either. Every temporary still being written
is removed by ``abandon`` when the process is told to stop.
"""

from __future__ import annotations

import errno
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import BinaryIO

from ..host.errors import OutputError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
# Without dir_fd support (Windows) paths are used: there is no planted-link attack to stop
# there in the same form, and O_EXCL still refuses an existing name.
_DIR_FDS = os.open in os.supports_dir_fd and os.rename in os.supports_dir_fd
# Our temporary is a regular file; where the choice exists, say so explicitly anyway.
_NO_FOLLOW_LINK = {"follow_symlinks": False} if os.link in os.supports_follow_symlinks else {}

_lock = threading.Lock()
# (folder fd, temporary name) -> its path, for every temporary being written.
_live: dict[tuple[int | None, str], Path] = {}
_closing = False


class _Folder:
    """An open output folder: a descriptor where the platform has them, else a path."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self.fd = path, fd

    def name(self, name: str) -> str:
        return name if self.fd is not None else str(self.path / name)


def write_file(path: Path, write: Callable[[BinaryIO], None], *, replace: bool,
               root: Path | None = None) -> None:
    """Write ``path`` through ``write(file)``; atomically, never through a link.

    ``replace``: an existing ``path`` is replaced; otherwise an existing one is left alone and
    OutputError says so (checked by the final link itself, so a file appearing meanwhile is
    safe too). ``root``: the folder the user named, which is followed as given; the sub-folders
    between it and ``path`` are created or entered without following links.
    """
    with _open_folder(path.parent, root) as folder:
        tmp = f".{path.name}.{secrets.token_hex(8)}.tmp"
        fd = _create(folder, tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            _finish(folder, tmp, path, replace)
        finally:
            _forget(folder, tmp)


def _create(folder: _Folder, tmp: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
    with _lock:
        if _closing:
            raise OutputError("bgmask is stopping; nothing more is written")
        try:
            fd = os.open(folder.name(tmp), flags, 0o666, dir_fd=folder.fd)
        except OSError as exc:
            raise OutputError(f"{folder.path}: cannot create a file there ({exc.strerror}); "
                              "check the folder's permissions and free space") from None
        _live[(folder.fd, folder.name(tmp))] = folder.path / tmp
        return fd


def _finish(folder: _Folder, tmp: str, path: Path, replace: bool) -> None:
    # Under the lock: a stop either finds the temporary (and removes it) or the finished file.
    with _lock:
        if _closing:
            raise OutputError("bgmask is stopping; nothing more is written")
        src, dst = folder.name(tmp), folder.name(path.name)
        try:
            if replace:
                os.replace(src, dst, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
            else:
                _link_no_clobber(folder, src, dst, path)
        except IsADirectoryError:
            raise OutputError(f"{path} is a folder; give another output name") from None
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(f"{path}: cannot write it ({exc.strerror}); check the folder's "
                              "permissions and free space") from None


def _link_no_clobber(folder: _Folder, src: str, dst: str, path: Path) -> None:
    exists = OutputError(f"{path} already exists and is not bgmask's to replace: use "
                         "--overwrite to replace it, or --skip-existing to keep it")
    try:
        # A hard link fails on an existing name (a link or dangling link included): unlike
        # a check followed by a rename, nothing can slip in between.
        os.link(src, dst, src_dir_fd=folder.fd, dst_dir_fd=folder.fd, **_NO_FOLLOW_LINK)
    except FileExistsError:
        raise exists from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.EMLINK, errno.ENOSYS):
            raise
        # A file system without hard links (FAT, some network shares): check, then rename.
        try:
            os.stat(dst, dir_fd=folder.fd, follow_symlinks=False)
        except FileNotFoundError:
            os.replace(src, dst, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
            return
        raise exists from None
    os.unlink(src, dir_fd=folder.fd)


def _forget(folder: _Folder, tmp: str) -> None:
    with _lock:
        if _live.pop((folder.fd, folder.name(tmp)), None) is not None:
            try:
                os.unlink(folder.name(tmp), dir_fd=folder.fd)
            except FileNotFoundError:
                pass  # renamed into place, or removed by abandon()


def abandon() -> int:
    """Remove every temporary being written and refuse new ones; the number removed.

    For a signal handler's caller: a write in flight either finished before this (its file is
    complete) or finds its temporary gone and stops."""
    global _closing
    removed = 0
    with _lock:
        _closing = True
        for fd, name in _live:
            try:
                os.unlink(name, dir_fd=fd)
                removed += 1
            except OSError:
                pass
        _live.clear()
    return removed


@contextmanager
def _open_folder(parent: Path, root: Path | None) -> Iterator[_Folder]:
    if root is None or not _DIR_FDS:
        parent.mkdir(parents=True, exist_ok=True)
        if not _DIR_FDS:
            yield _Folder(parent, None)
            return
        fd = _open_dir(str(parent), None, follow=True, shown=parent)
    else:
        root.mkdir(parents=True, exist_ok=True)
        fd = _open_dir(str(root), None, follow=True, shown=root)
        try:
            shown = root
            for part in PurePath(os.path.relpath(parent, root)).parts:
                if part in (".", ""):
                    continue
                if part == "..":
                    raise OutputError(f"{parent} is outside the output folder {root}")
                shown = shown / part
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
                inner = _open_dir(part, fd, follow=False, shown=shown)
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
    try:
        yield _Folder(parent, fd)
    finally:
        os.close(fd)


def _open_dir(name: str, dir_fd: int | None, *, follow: bool, shown: Path) -> int:
    flags = os.O_RDONLY | _DIRECTORY | _CLOEXEC | (0 if follow else _NOFOLLOW)
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and not follow:
            raise OutputError(f"{shown} is a link or a file, not a folder: bgmask does not "
                              "write through links inside an output folder; remove it or "
                              "choose another output folder") from None
        raise OutputError(f"{shown}: cannot open the folder ({exc.strerror})") from None


def live_temporaries() -> int:
    """How many temporaries are being written now (for tests)."""
    with _lock:
        return len(_live)
