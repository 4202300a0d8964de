"""Faults and privacy: a full disk during a download, a GPU provider that fails to start,
1,000 requests on one worker, and the CLI and worker with no network at all (nothing in bgmask
opens a socket except the download the user asked for and the local worker channel)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bgmask.engine import runtime
from bgmask.engine.store import ModelStore
from bgmask.host.catalogue import Source, get_record
from bgmask.host.channels import worker_command
from bgmask.host.client import WorkerClient
from bgmask.host.errors import DiskFullError, UsageError
from PIL import Image

from .conftest import SAMPLE, bgmask_cli
from .test_store import ModelServer

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, unshare)")


@ROOT_ONLY
def test_disk_filling_up_during_a_download_caches_nothing_and_says_so(tmp_path, model_file,
                                                                      monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    small = tmp_path / "small-disk"
    small.mkdir()
    # 2 MiB: less than half the 4.6 MB model.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    server = ModelServer(model_file.read_bytes())
    try:
        record = dataclasses.replace(get_record("u2netp"),
                                     sources=(Source("url", server.url + "/u2netp.onnx"),))
        with pytest.raises(DiskFullError, match="is full; free some space"):
            ModelStore(small).fetch(record)
        assert not [p for p in small.iterdir() if p.suffix in (".onnx", ".part")]
    finally:
        server.close()
        subprocess.run(["umount", str(small)], check=True)


def test_gpu_provider_failing_to_start_falls_back_to_the_cpu_with_a_notice(model_file,
                                                                          monkeypatch):
    """A CUDA provider that is listed but cannot initialise (a broken driver, say): the
    session is made on the CPU and the notice says why, instead of a crash."""
    ort = runtime.import_onnxruntime()
    real_session = ort.InferenceSession

    def failing_gpu(path: str, options: object, providers: list[str]) -> object:
        if providers[0] == "CUDAExecutionProvider":
            raise RuntimeError("CUDA failure 999: unknown error; GPU=0 (simulated driver)")
        return real_session(path, options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", failing_gpu)
    spec = get_record("u2netp").spec
    session = runtime.ModelSession(model_file, spec, runtime.RuntimeOptions())
    assert session.provider == "CPUExecutionProvider"
    assert "CUDAExecutionProvider failed to start" in session.notice
    assert "running on the CPU" in session.notice
    out = session.run(np.zeros((1, 3, spec.size, spec.size), np.float32))
    assert out.shape == (1, spec.size, spec.size)


def test_listed_gpu_provider_that_onnxruntime_cannot_use_is_reported(model_file, monkeypatch):
    """The real onnxruntime, asked for CUDA it does not have: it runs on the CPU and bgmask
    says so rather than claiming the GPU."""
    ort = runtime.import_onnxruntime()
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    session = runtime.ModelSession(model_file, get_record("u2netp").spec,
                                   runtime.RuntimeOptions())
    assert session.provider == "CPUExecutionProvider"
    assert session.notice and "CUDAExecutionProvider" in session.notice


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_a_thousand_requests_do_not_grow_the_worker(model_dir):
    """Photo-sized requests of varying shapes; RSS after 1,000 within 5% of RSS after the
    100 warm-up requests (onnxruntime's arena and Pillow's pools settle in those). One in 25
    is "best" (five network passes each): its buffers are exercised without the test costing
    minutes of CI."""
    photo = np.asarray(Image.open(SAMPLE).convert("RGB"))
    shapes = [(512, 512), (480, 320), (300, 451), (640, 427)]
    inputs = [np.ascontiguousarray(np.resize(photo, (h, w, 3))) for w, h in shapes]
    with WorkerClient.one_shot(worker_command(sys.executable)) as client:
        def request(i: int) -> None:
            a = inputs[i % len(inputs)]
            client.mask(a.tobytes(), a.shape[1], a.shape[0], "rgb8",
                        options={"quality": "best"} if i % 25 == 0 else None)

        for i in range(100):
            request(i)
        pid = client.worker_pid
        warm = rss_mb(pid)
        for i in range(100, 1000):
            request(i)
        end = rss_mb(pid)
    growth = end / warm - 1
    print(f"worker RSS after 100 requests {warm:.0f} MB, after 1000 {end:.0f} MB "
          f"({growth * 100:+.1f}%)", file=sys.stderr)
    assert growth <= 0.05, f"{warm:.0f} MB -> {end:.0f} MB"


# -- privacy ----------------------------------------------------------------------------------

@ROOT_ONLY
def test_cli_and_worker_work_with_no_network_at_all(model_dir, tmp_path):
    out = tmp_path / "cutout.png"
    cli = subprocess.run(["unshare", "-n", *bgmask_cli(), str(SAMPLE), "-o", str(out)],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert Image.open(out).mode == "RGBA"
    code = ("import sys, numpy as np\n"
            "from PIL import Image\n"
            "from bgmask.host.channels import worker_command\n"
            "from bgmask.host.client import WorkerClient\n"
            f"a = np.asarray(Image.open({str(SAMPLE)!r}).convert('RGB'))\n"
            "with WorkerClient.one_shot(worker_command(sys.executable)) as c:\n"
            "    r = c.mask(a.tobytes(), a.shape[1], a.shape[0], 'rgb8')\n"
            "print(len(r.mask))\n")
    worker = subprocess.run(["unshare", "-n", sys.executable, "-c", code],
                            capture_output=True, text=True)
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.strip() == str(512 * 512)


AUDIT = """
import socket, sys
opened = []
def hook(event, args):
    if event == "socket.__new__":
        opened.append(args[1])  # the address family
    if event == "socket.connect" and args[0].family != socket.AF_UNIX:
        raise SystemExit(f"bgmask connected to {args[1]!r}")
sys.addaudithook(hook)
import atexit
atexit.register(lambda: print("families:", sorted(set(map(int, opened))), file=sys.stderr))
"""


def test_nothing_opens_a_network_socket_once_the_model_is_cached(model_dir, tmp_path):
    """An audit hook in the interpreter records every socket: masking files, the worker and
    the shared worker channel use none but Unix sockets."""
    (tmp_path / "sitecustomize.py").write_text(AUDIT)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "BGMASK_RUNTIME_DIR": str(tmp_path / "rt"),
           "BGMASK_PYTHON": sys.executable, "BGMASK_WORKER_IDLE": "5"}
    out = tmp_path / "cutout.png"
    cli = subprocess.run([sys.executable, "-m", "bgmask", str(SAMPLE), "-o", str(out)],
                         capture_output=True, text=True, env=env)
    assert cli.returncode == 0, cli.stderr
    code = ("import numpy as np\nfrom PIL import Image\nfrom bgmask.host import job\n"
            f"a = np.asarray(Image.open({str(SAMPLE)!r}).convert('RGB'))\n"
            "with job.click_client() as c:\n"
            "    c.mask(a.tobytes(), a.shape[1], a.shape[0], 'rgb8')\n"
            "    c.request({'type': 'shutdown'})\n")
    shared = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env)
    assert shared.returncode == 0, shared.stderr
    import json
    import socket

    for result in (cli, shared):
        line = [x for x in result.stderr.splitlines() if x.startswith("families:")][-1]
        families = set(json.loads(line.split(":", 1)[1]))
        assert families <= {int(socket.AF_UNIX)}, families


# -- resources --------------------------------------------------------------------------------

def test_thread_counts_are_bounded_where_every_caller_passes():
    """RuntimeOptions is what the CLI, the worker and the Python API all build: 100,000
    threads crashed onnxruntime with SIGSEGV at 4.8 GB, so no caller may ask for that."""
    limit = runtime.max_threads()
    assert limit == 4 * (os.cpu_count() or 1)
    assert runtime.RuntimeOptions(threads=0).threads == 0
    assert runtime.RuntimeOptions(threads=limit).threads == limit
    for bad in (limit + 1, 100_000, -1, True, 2.0):
        with pytest.raises(UsageError, match=f"give 0 \\(automatic\\) or a count up to {limit}"):
            runtime.RuntimeOptions(threads=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", ["100000", "-1"])
def test_absurd_thread_counts_are_a_usage_error_before_any_work(tmp_path, threads):
    out = tmp_path / "cutout.png"
    result = subprocess.run([*bgmask_cli(), str(SAMPLE), "-o", str(out), "--threads", threads],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"bgmask: error: --threads {threads} is out of range")
    assert not out.exists()


def test_the_worker_refuses_absurd_thread_counts_at_start():
    result = subprocess.run([sys.executable, "-m", "bgmask.worker", "--threads", "100000"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "--threads 100000 is out of range" in result.stderr
    assert "Traceback" not in result.stderr
