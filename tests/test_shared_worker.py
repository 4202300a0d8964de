"""The per-user background worker that keeps the model warm across GIMP clicks: shared between
clients, private to its user, replaced when stale, gone when idle, and never a dead end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import bgmask
import numpy as np
import pytest
from bgmask.host import background, job
from bgmask.host.channels import worker_command
from bgmask.host.client import WorkerClient
from bgmask.host.errors import WorkerError
from bgmask.host.protocol import read_frame, write_frame
from bgmask.host.settings import Settings

from .conftest import stop_worker

pytestmark = pytest.mark.slow


def mask_with(client: WorkerClient, photo: np.ndarray) -> bytes:
    return client.mask(photo.tobytes(), photo.shape[1], photo.shape[0], "rgb8").mask


def hello_pid(client: WorkerClient) -> int:
    pid = client.worker_pid
    assert pid is not None
    return pid


def test_clicks_share_one_warm_worker_and_get_the_core_mask(runtime, masker, sample_rgb):
    with job.click_client() as first:
        assert first.background and first.channel.spawned
        pid = hello_pid(first)
        got = mask_with(first, sample_rgb)
    with job.click_client() as second:
        assert not second.channel.spawned
        assert hello_pid(second) == pid
        assert mask_with(second, sample_rgb) == got
    assert np.array_equal(np.frombuffer(got, np.uint8).reshape(sample_rgb.shape[:2]),
                          masker.mask(sample_rgb))
    mode = os.stat(runtime).st_mode & 0o777
    assert mode == 0o700 and os.stat(runtime / "worker.sock").st_mode & 0o777 == 0o600
    assert os.stat(runtime / "secret").st_mode & 0o777 == 0o600


def test_a_client_without_the_secret_is_refused(runtime):
    with job.click_client():
        pass
    for hello in ({"type": "hello", "protocol": 1},
                  {"type": "hello", "protocol": 1, "secret": "0" * 64}):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(runtime / "worker.sock"))
            with sock.makefile("wb", buffering=0) as w, sock.makefile("rb") as r:
                write_frame(w, hello)
                reply, _ = read_frame(r)
                assert reply["error"] == "AuthenticationError"
                # The worker has closed the connection: nothing more is served.
                try:
                    write_frame(w, {"type": "mask", "id": 1, "width": 1, "height": 1,
                                    "format": "gray8"}, b"\x00")
                    assert read_frame(r) is None
                except (BrokenPipeError, ConnectionResetError):
                    pass


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_another_user_cannot_even_connect(runtime):
    with job.click_client():
        pass
    code = ("import socket, sys; s = socket.socket(socket.AF_UNIX); "
            "s.connect(sys.argv[1])")
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             sys.executable, "-c", code, str(runtime / "worker.sock")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "PermissionError" in result.stderr


def test_a_worker_of_another_version_is_replaced(runtime, monkeypatch, sample_rgb):
    with job.click_client() as first:
        old = hello_pid(first)
    monkeypatch.setattr(background, "VERSION", "0.0.0-newer")
    # The old worker answers with its version; the newer client asks it to go.
    with pytest.raises(WorkerError, match="no usable background worker"):
        # This test's worker is the same code, so it reports the old version again.
        WorkerClient(background.BackgroundConnector(worker_command(sys.executable),
                                                    Settings.read(), runtime)).start()
    monkeypatch.setattr(background, "VERSION", bgmask.__version__)
    with job.click_client() as fresh:
        assert hello_pid(fresh) != old
        assert len(mask_with(fresh, sample_rgb)) == sample_rgb.shape[0] * sample_rgb.shape[1]


def test_idle_worker_exits_by_itself(runtime, monkeypatch):
    monkeypatch.setenv("BGMASK_WORKER_IDLE", "1")
    with job.click_client():
        pass
    deadline = time.monotonic() + 20
    while (runtime / "worker.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (runtime / "worker.sock").exists()


def test_an_unsafe_runtime_folder_falls_back_to_a_one_shot_worker(runtime, sample_rgb):
    runtime.mkdir(mode=0o777)
    runtime.chmod(0o777)  # open to everyone: never trusted with the socket
    with job.click_client() as client:
        assert not client.background
        assert "not a private folder" in client.fallback_reason
        assert len(mask_with(client, sample_rgb)) == sample_rgb.shape[0] * sample_rgb.shape[1]


def test_killed_mid_request_reports_and_the_next_click_starts_afresh(runtime, sample_rgb):
    with job.click_client() as client:
        pid = hello_pid(client)
    big = np.ascontiguousarray(np.tile(sample_rgb, (6, 6, 1)))
    killed = []

    def kill_while_masking(stage: str, done: int, total: int | None) -> None:
        # The worker sends "inference" once it holds the whole request and starts the
        # network: killing it here cuts a request in progress, whatever the machine's load.
        if stage == "inference" and not killed:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with job.click_client() as c:
        assert c.background
        with pytest.raises(WorkerError, match="closed the connection"):
            # Refinement works on the full-size pixels: seconds of work, far more than the
            # moment between the "inference" frame and the kill.
            c.mask(big.tobytes(), big.shape[1], big.shape[0], "rgb8",
                   options={"refine": True}, progress=kill_while_masking)
    assert killed
    # At once, while the killed worker may still be going: the next click starts a fresh
    # background worker rather than falling back.
    with job.click_client() as again:
        assert again.background, again.fallback_reason
        assert hello_pid(again) != pid
        assert len(mask_with(again, sample_rgb)) == sample_rgb.shape[0] * sample_rgb.shape[1]


def test_a_worker_that_drops_the_hello_is_replaced_not_fallen_back_from(runtime, sample_rgb):
    """What a click meets just after a worker was killed: its socket still takes a connection,
    then closes it unanswered. The click must start a fresh background worker."""
    with job.click_client():
        pass
    stop_worker(runtime)
    while (runtime / "worker.sock").exists():
        time.sleep(0.05)
    dying = socket.socket(socket.AF_UNIX)
    dying.bind(str(runtime / "worker.sock"))
    dying.listen(4)

    def drop_one() -> None:
        conn, _ = dying.accept()
        conn.close()
        dying.close()  # gone, its socket file left behind as a killed worker leaves it

    thread = threading.Thread(target=drop_one)
    thread.start()
    with job.click_client() as client:
        thread.join(10)
        assert client.background, client.fallback_reason
        assert client.channel.spawned
        assert len(mask_with(client, sample_rgb)) == sample_rgb.shape[0] * sample_rgb.shape[1]


def test_two_clicks_at_once_both_succeed(runtime, sample_rgb):
    results: list[bytes] = []

    def click() -> None:
        with job.click_client() as c:
            results.append(mask_with(c, sample_rgb))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2 and results[0] == results[1]


def test_stop_shared_worker_ends_it(runtime):
    with job.click_client():
        pass
    assert background.stop_background_worker()
    deadline = time.monotonic() + 10
    while (runtime / "worker.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (runtime / "worker.sock").exists()
    assert not background.stop_background_worker()
