"""``bgmask models fetch NAME --from FILE``: what the user points at is read only if it is a
regular file, never past the model's size, and an interrupted import leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import bgmask_cli, interruptible

SIZE = 4_574_861


def fetch_from(source: str | Path, store: Path, timeout: float = 60
               ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BGMASK_MODEL_DIR": str(store)}
    return subprocess.run([*bgmask_cli(), "models", "fetch", "u2netp", "--from", str(source)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bgmask: error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def leftovers(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir()
                  if p.name.startswith("u2netp")) if store.exists() else []


def test_an_endless_device_is_refused_without_reading_it(isolated_store):
    start = time.monotonic()
    result = fetch_from("/dev/zero", isolated_store)
    assert_one_line_refusal(result, "/dev/zero is not a regular file", "give the model file")
    assert time.monotonic() - start < 30
    assert leftovers(isolated_store) == []


def test_a_fifo_is_refused_instead_of_waiting_for_a_writer(isolated_store, tmp_path):
    fifo = tmp_path / "u2netp.onnx"
    os.mkfifo(fifo)
    assert_one_line_refusal(fetch_from(fifo, isolated_store, timeout=30), "not a regular file")
    assert leftovers(isolated_store) == []


def test_a_folder_is_refused(isolated_store, tmp_path):
    assert_one_line_refusal(fetch_from(tmp_path, isolated_store), "is a folder",
                            "give the model file")


def test_a_missing_file_is_refused(isolated_store, tmp_path):
    assert_one_line_refusal(fetch_from(tmp_path / "nowhere.onnx", isolated_store),
                            "does not exist", "give the path of the model file")


def test_a_larger_file_is_refused_before_it_is_copied(isolated_store, tmp_path):
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:
        f.truncate(3 << 30)  # 3 GiB, sparse: copying it would take a while and the disk
    start = time.monotonic()
    assert_one_line_refusal(fetch_from(big, isolated_store), f"it is {3 << 30} bytes",
                            f"{SIZE} expected")
    assert time.monotonic() - start < 30
    assert leftovers(isolated_store) == []


def test_a_wrong_file_of_the_right_size_is_refused_and_removed(isolated_store, tmp_path):
    wrong = tmp_path / "wrong.onnx"
    wrong.write_bytes(bytes(SIZE))
    assert_one_line_refusal(fetch_from(wrong, isolated_store), "is not the u2netp model",
                            "sha256")
    assert leftovers(isolated_store) == []


def test_a_folder_at_the_part_files_name_is_one_line_and_kept(isolated_store, model_file):
    (isolated_store / "u2netp.onnx.part").mkdir(parents=True)
    assert_one_line_refusal(fetch_from(model_file, isolated_store), "u2netp.onnx.part",
                            "Is a directory")
    assert (isolated_store / "u2netp.onnx.part").is_dir()


def test_the_right_file_is_imported_and_verified(isolated_store, model_file):
    result = fetch_from(model_file, isolated_store)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == isolated_store / "u2netp.onnx"
    assert leftovers(isolated_store) == ["u2netp.onnx"]


# The import made slow (one small chunk every 20 ms, about 6 minutes for the whole model), so
# that a signal lands mid-copy; everything else is the real CLI.
SLOW_IMPORT = """
import sys, time
from bgmask import cli
from bgmask.engine import download
real = download.copy_bounded
class Slow:
    def __init__(self, f): self.f = f
    def read(self, n):
        time.sleep(0.02)
        return self.f.read(min(n, 256))
download.copy_bounded = lambda src, *a, **k: real(Slow(src), *a, **k)
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_import_leaves_no_part_file(isolated_store, model_file, signum):
    env = {**os.environ, "BGMASK_MODEL_DIR": str(isolated_store)}
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_IMPORT, "models", "fetch", "u2netp", "--from",
         str(model_file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=interruptible)
    part = isolated_store / "u2netp.onnx.part"
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size > 0):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr
    if signum == signal.SIGINT:
        assert process.returncode == 130 and "interrupted" in stderr, (process.returncode,
                                                                      stderr)
    else:  # it still dies of SIGTERM, as its parent expects, once the part file is gone
        assert process.returncode == -signal.SIGTERM, (process.returncode, stderr)
    assert leftovers(isolated_store) == []
