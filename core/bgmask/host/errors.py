"""The exceptions bgmask raises.

Every message is written for the person at the keyboard: it says what went wrong and what to
do next. This module is stdlib-only because the editor adapters import it through the client.
"""

from __future__ import annotations


class BgmaskError(Exception):
    """Base of every error bgmask raises on purpose; ``str(error)`` is a user-facing message."""


class UsageError(BgmaskError):
    """Options or arguments that cannot work together (the CLI exits with 2)."""


class ModelError(BgmaskError):
    """Anything about obtaining or loading a model."""


class UnknownModelError(ModelError):
    """A model name that is not in the catalogue."""


class ModelUnavailableError(ModelError):
    """No source could deliver the model file; the message names where to put it by hand."""


class ModelIntegrityError(ModelError):
    """A model file whose size or hash does not match the catalogue."""


class ModelLoadError(ModelError):
    """A model file onnxruntime cannot load, or whose graph does not fit its description."""


class DownloadError(ModelError):
    """A download that failed part-way; nothing was cached."""


class DiskFullError(DownloadError):
    """The model folder's disk filled up during a download; the partial file was removed."""


class RuntimeMissingError(BgmaskError):
    """onnxruntime (or numpy) is not importable in this Python."""


class ProviderError(BgmaskError):
    """An execution provider that was asked for and cannot run."""


class ImageError(BgmaskError):
    """An input that is not a usable image (unreadable, truncated, empty, too large...)."""


class OutputError(BgmaskError):
    """An output file that cannot or may not be written (it exists, a link is in the way, the
    folder refuses it); nothing of the user's was changed."""


class WorkerError(BgmaskError):
    """The worker process could not be started, died, or answered with an error."""


class ProtocolError(WorkerError):
    """A frame that breaks the worker protocol (bad magic, oversize, malformed header)."""


class MalformedRequestError(ProtocolError):
    """A complete frame whose content is invalid; the stream is still in step, so a worker
    answers with an error and keeps serving."""


class AuthenticationError(ProtocolError):
    """A connection to the shared worker without this user's secret; it is closed."""
