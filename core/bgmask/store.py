"""The model store: where model files live, how they arrive, and proof that they are intact.

Files arrive as ``NAME.part``, are verified, then renamed into place, so a file under its
final name has always passed its hash. A verified file's size and mtime are remembered in
``verified.json``; loading it again costs a ``stat``, not a re-hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from . import download
from .catalogue import ModelRecord, Source
from .download import ProgressCallback
from .errors import DiskFullError, DownloadError, ModelIntegrityError, ModelUnavailableError

STORE_ENV = "BGMASK_MODEL_DIR"
# A base URL tried before the catalogue's own sources (an internal mirror, or tests).
MIRROR_ENV = "BGMASK_MODEL_MIRROR"
MEMO_NAME = "verified.json"


def default_store_dir() -> Path:
    override = os.environ.get(STORE_ENV)
    if override:
        return Path(override).expanduser()
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


class ModelStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_store_dir()

    def path_for(self, record: ModelRecord) -> Path:
        return self.root / record.file_name

    # -- verification ---------------------------------------------------------------------

    def _memo(self) -> dict[str, dict[str, int]]:
        try:
            data = json.loads((self.root / MEMO_NAME).read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _remember(self, record: ModelRecord, path: Path) -> None:
        memo = self._memo()
        st = path.stat()
        memo[record.file_name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        tmp = self.root / f".{MEMO_NAME}.{os.getpid()}"
        tmp.write_text(json.dumps(memo, indent=1), encoding="utf-8")
        os.replace(tmp, self.root / MEMO_NAME)

    def is_verified(self, record: ModelRecord) -> bool:
        """True when the file is in place and unchanged since it was last verified."""
        path = self.path_for(record)
        try:
            st = path.stat()
        except OSError:
            return False
        seen = self._memo().get(record.file_name)
        return seen == {"size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def verify(self, record: ModelRecord, *, force: bool = False) -> Path:
        """Check the stored file's hashes (once, unless ``force``) and return its path."""
        path = self.path_for(record)
        if not path.exists():
            raise ModelUnavailableError(self._missing_message(record, []))
        if not force and self.is_verified(record):
            return path
        problem = check_digests(record, path)
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
        mirror = os.environ.get(MIRROR_ENV)
        first = [Source("url", mirror.rstrip("/") + "/" + record.file_name)] if mirror else []
        return first + list(record.sources)

    def ensure(self, record: ModelRecord, progress: ProgressCallback | None = None) -> Path:
        """The verified path of the model, downloading it first if it is not here yet."""
        if self.path_for(record).exists():
            return self.verify(record)
        return self.fetch(record, progress)

    def fetch(self, record: ModelRecord, progress: ProgressCallback | None = None,
              *, force: bool = False) -> Path:
        """Download the model from the first source that delivers the right bytes."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelUnavailableError(
                f"cannot create the model folder {self.root}: {exc.strerror}. "
                f"Set {STORE_ENV} to a folder you can write to."
            ) from exc
        path = self.path_for(record)
        with _exclusive(self.root / f".{record.file_name}.lock"):
            # Another process may have finished the download while we waited for the lock.
            if path.exists() and not force:
                return self.verify(record)
            part = path.with_name(path.name + ".part")
            failures: list[str] = []
            for source in self.sources(record):
                try:
                    download.fetch(source, part, progress)
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
                os.replace(part, path)
                self._remember(record, path)
                return path
            raise ModelUnavailableError(self._missing_message(record, failures))

    def import_file(self, record: ModelRecord, src: Path) -> Path:
        """Put a file the user already has into the store, verified like a download."""
        self.root.mkdir(parents=True, exist_ok=True)
        part = self.path_for(record).with_name(record.file_name + ".part")
        download.copy_file(src, part, None)
        problem = check_digests(record, part)
        if problem:
            part.unlink(missing_ok=True)
            raise ModelIntegrityError(f"{src} is not the {record.name} model: {problem}")
        os.replace(part, self.path_for(record))
        self._remember(record, self.path_for(record))
        return self.path_for(record)

    def _missing_message(self, record: ModelRecord, failures: list[str]) -> str:
        lines = [f"the model {record.name!r} is not available and could not be downloaded."]
        lines += [f"  tried {f}" for f in failures]
        lines.append(f"Put the file {record.file_name} at {self.path_for(record)}")
        lines.append("(or run 'bgmask models fetch " + record.name + " --from FILE').")
        lines.append("It can be obtained from: " + "; ".join(s.describe() for s in record.sources))
        return "\n".join(lines)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An advisory lock so two processes never write the same ``.part`` file at once."""
    with open(lock_path, "a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
