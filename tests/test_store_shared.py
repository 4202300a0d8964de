"""A model folder another local user can write to (BGMASK_MODEL_DIR on a shared, sticky folder):
what they plant there can make bgmask neither use a file unchecked nor write through a link."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from bgmask.engine.store import ModelStore
from bgmask.host.catalogue import Source, get_record
from bgmask.host.errors import ModelError, ModelIntegrityError

from .test_store import ModelServer

# Written by the other user, with the system's Python (no access to the project's venv needed).
FORGE = """
import json, os, sys
folder = sys.argv[1]
path = os.path.join(folder, "u2netp.onnx")
with open(path, "wb") as f:
    f.write(bytes.fromhex(sys.stdin.read()))
st = os.stat(path)
entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
if sys.argv[2] == "current":
    entry.update(ctime_ns=st.st_ctime_ns, inode=st.st_ino, device=st.st_dev)
with open(os.path.join(folder, "verified.json"), "w") as f:
    json.dump({"u2netp.onnx": entry}, f)
os.chmod(path, 0o644)
"""


def damaged(model_file: Path) -> bytes:
    data = bytearray(model_file.read_bytes())
    data[5000] ^= 1
    return bytes(data)


@pytest.mark.parametrize("memo_format", ["current", "before-ctime"])
def test_a_memo_another_user_wrote_does_not_vouch_for_their_file(second_user, shared_folder,
                                                                 model_file, memo_format):
    result = second_user.run("/usr/bin/python3", "-c", FORGE, str(shared_folder), memo_format,
                             input=damaged(model_file).hex())
    assert result.returncode == 0, result.stderr
    assert (shared_folder / "verified.json").stat().st_uid == second_user.uid
    store = ModelStore(shared_folder)
    assert not store.is_verified(get_record("u2netp"))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        store.ensure(get_record("u2netp"))


@pytest.mark.parametrize("name", ["u2netp.onnx.part", ".u2netp.onnx.lock"])
def test_a_link_planted_at_a_name_the_store_writes_is_not_followed(second_user, shared_folder,
                                                                   model_file, tmp_path,
                                                                   monkeypatch, name):
    for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    victim = tmp_path / "victims-own-file"
    victim.write_text("mine")
    victim.chmod(0o600)
    planted = second_user.run("/bin/ln", "-s", str(victim), str(shared_folder / name))
    assert planted.returncode == 0, planted.stderr
    server = ModelServer(model_file.read_bytes())
    try:
        record = dataclasses.replace(get_record("u2netp"),
                                     sources=(Source("url", server.url + "/u2netp.onnx"),))
        with pytest.raises(ModelError) as info:
            ModelStore(shared_folder).fetch(record)
    finally:
        server.close()
    assert str(shared_folder / name) in str(info.value)
    assert victim.read_text() == "mine"
    assert (victim.stat().st_mode & 0o777) == 0o600


def test_the_store_owner_memo_still_saves_the_hash(shared_folder, model_file, monkeypatch):
    """The check above costs nothing for the user's own files."""
    from bgmask.engine import store as store_module

    store = ModelStore(shared_folder)
    record = get_record("u2netp")
    store.import_file(record, model_file)
    memo = json.loads((shared_folder / "verified.json").read_text())
    assert memo["u2netp.onnx"]["inode"] == (shared_folder / "u2netp.onnx").stat().st_ino
    assert (shared_folder / "verified.json").stat().st_mode & 0o777 == 0o644
    calls: list[Path] = []
    monkeypatch.setattr(store_module, "file_digests", lambda p: calls.append(p) or ("", ""))
    store.ensure(record)
    assert calls == [] and os.path.exists(shared_folder / "u2netp.onnx")
