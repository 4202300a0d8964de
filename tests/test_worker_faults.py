"""The background worker never holds a click: a stopped, stuck, stale or silent worker costs
seconds (then it is replaced, or the click runs in a one-shot worker), a connection that sends
nothing does not keep it alive, authentication is never off (a secret is whole or refused), and
another user cannot take its folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from bgmask import MaskOptions
from bgmask.host import background, job
from bgmask.host.client import WorkerClient
from bgmask.host.protocol import read_frame, write_frame
from bgmask.host.runtime_folder import runtime_dir
from bgmask.host.settings import Settings

from .conftest import SAMPLE, stop_worker
from .test_shared_worker import hello_pid, mask_with

pytestmark = pytest.mark.slow
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, a second user)")


def dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def timed_click(action, limit: float = 90):  # noqa: ANN001, ANN201 (any callable, its result)
    """(result, seconds) of ``action`` in a thread, failing (not hanging) past ``limit``."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = action()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            box["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"the click was still blocked after {limit} s"
    if "error" in box:
        raise box["error"]
    return box["result"], elapsed


def kind(client: WorkerClient) -> str:
    return "background" if client.background else "one-shot"


def click(photo: np.ndarray) -> tuple[str, int | None, str | None, bytes]:
    """One GIMP-style click: (client kind, background worker pid, fallback reason, mask)."""
    with job.click_client() as c:
        pid = hello_pid(c) if c.background else None
        return kind(c), pid, c.fallback_reason, mask_with(c, photo)


def started_worker(photo: np.ndarray) -> int:
    kind, pid, reason, _ = click(photo)
    assert kind == "background", reason
    return pid


# -- stopped, stuck and stale workers ---------------------------------------------------------

def test_a_stopped_worker_costs_seconds_and_is_replaced(runtime, sample_rgb, masker):
    pid = started_worker(sample_rgb)
    os.kill(pid, signal.SIGSTOP)
    try:
        (kind, new, reason, got), seconds = timed_click(lambda: click(sample_rgb))
    finally:
        if not dead(pid):
            os.kill(pid, signal.SIGKILL)
    print(f"a click with the background worker SIGSTOPped: {seconds:.1f} s", file=sys.stderr)
    assert kind == "background", reason
    assert new != pid and dead(pid)
    assert got == masker.mask(sample_rgb).tobytes()
    assert seconds < 25
    (kind, again, _, _), warm = timed_click(lambda: click(sample_rgb))
    assert again == new and warm < 10  # the replacement is warm for the next click


def test_a_worker_stopped_mid_request_hands_the_click_to_a_one_shot_worker(
        runtime, sample_rgb, masker, monkeypatch):
    monkeypatch.setattr(background.BackgroundConnector, "reply_seconds", 6.0)
    pid = started_worker(sample_rgb)
    stopped = []

    def stop_while_masking(stage: str, done: int, total: int | None) -> None:
        if stage == "inference" and not stopped:
            os.kill(pid, signal.SIGSTOP)  # the request is in, the worker freezes
            stopped.append(pid)

    big = np.ascontiguousarray(np.tile(sample_rgb, (3, 3, 1)))

    def masked() -> tuple[object, str | None]:
        with job.click_client() as c:
            reply = c.mask(big.tobytes(), big.shape[1], big.shape[0], "rgb8",
                           options={"refine": True}, progress=stop_while_masking)
            return reply, c.fallback_reason

    try:
        (reply, reason), seconds = timed_click(masked)
    finally:
        if not dead(pid):
            os.kill(pid, signal.SIGKILL)
    print(f"a click whose worker was SIGSTOPped mid-request: {seconds:.1f} s", file=sys.stderr)
    assert stopped and reason and "stopped answering" in reason
    want = masker.mask(big, MaskOptions(refine=True))
    assert reply.mask == want.tobytes()
    assert dead(pid)  # it was ours and stopped: killed, so the next click starts afresh
    assert started_worker(sample_rgb) != pid


FAKE = r"""
import socket, sys, threading
from bgmask.host.protocol import read_frame, write_frame
path, mode = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(16)
print("ready", flush=True)

def serve(conn):
    reader, writer = conn.makefile("rb"), conn.makefile("wb")
    try:
        while (got := read_frame(reader)) is not None:
            if got[0]["type"] == "hello" and mode == "stale":
                write_frame(writer, {"type": "hello", "protocol": 1, "version": "0.0.0-old",
                                     "providers": [], "pid": 0})
            # everything else, "shutdown" included, is ignored
    except Exception:
        pass

while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@pytest.fixture
def fake_worker(runtime, sample_rgb):
    """Starts a stand-in at the worker's socket: "stale" answers a hello as an old version and
    ignores shutdown; "mute" takes connections and never answers."""
    started_worker(sample_rgb)  # the folder and the secret, as a real first click leaves them
    stop_worker(runtime)
    while (runtime / "worker.sock").exists():
        time.sleep(0.05)
    procs = []

    def start(mode: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", FAKE, str(runtime / "worker.sock"),
                                 mode], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_stale_worker_that_ignores_shutdown_is_killed_once(fake_worker, sample_rgb):
    stale = fake_worker("stale")
    (kind, pid, reason, got), seconds = timed_click(lambda: click(sample_rgb))
    print(f"a click meeting a stale worker that ignores shutdown: {seconds:.1f} s",
          file=sys.stderr)
    assert kind == "background", reason
    assert stale.wait(timeout=5) == -signal.SIGKILL
    assert seconds < 15
    (_, again, _, _), warm = timed_click(lambda: click(sample_rgb))
    assert again == pid and warm < 10


def test_a_worker_that_never_answers_costs_one_timeout_then_a_one_shot_worker(fake_worker,
                                                                              sample_rgb, masker):
    mute = fake_worker("mute")  # alive, not stopped: perhaps busy, so not killed
    (kind, _, reason, got), seconds = timed_click(lambda: click(sample_rgb))
    print(f"a click meeting a worker that never answers: {seconds:.1f} s", file=sys.stderr)
    assert kind == "one-shot" and "did not answer" in reason
    assert got == masker.mask(sample_rgb).tobytes()
    assert seconds < 20 and mute.poll() is None


# -- connections that send nothing ------------------------------------------------------------

def test_connections_that_send_nothing_do_not_keep_the_worker_alive(runtime, sample_rgb,
                                                                    monkeypatch):
    monkeypatch.setenv("BGMASK_WORKER_IDLE", "2")
    started_worker(sample_rgb)
    path = str(runtime / "worker.sock")
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(path)
    partial = socket.socket(socket.AF_UNIX)
    partial.connect(path)
    partial.sendall(b"BGMK\x00\x00")  # half a frame, then nothing
    authenticated = WorkerClient(background.BackgroundConnector([], Settings.read(), runtime))
    authenticated.start()  # proves the secret, then sends nothing more
    try:
        deadline = time.monotonic() + 30
        while (runtime / "worker.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not (runtime / "worker.sock").exists()
    finally:
        silent.close()
        partial.close()
        authenticated.close()


# -- the secret -------------------------------------------------------------------------------

def make_bad_secret(directory: Path, kind: str) -> None:
    path = directory / "secret"
    if kind == "empty (a full disk)":
        path.write_text("")
    elif kind == "short":
        path.write_text("abc123")
    elif kind == "not hex":
        path.write_text("z" * 64)
    elif kind == "readable by others":
        path.write_text("a" * 64)
    elif kind == "a link":
        (directory.parent / "elsewhere").write_text("b" * 64)
        path.symlink_to(directory.parent / "elsewhere")
    elif kind == "a fifo":
        os.mkfifo(path)
    elif kind == "a folder":
        path.mkdir()
    if path.exists() and not path.is_symlink() and path.is_file():
        path.chmod(0o644 if kind == "readable by others" else 0o600)


BAD_SECRETS = ["empty (a full disk)", "short", "not hex", "readable by others", "a link",
               "a fifo", "a folder"]


@pytest.mark.parametrize("kind", BAD_SECRETS)
def test_the_worker_refuses_to_run_with_a_bad_secret(tmp_path, model_dir, kind):
    directory = tmp_path / "rt"
    directory.mkdir(mode=0o700)
    make_bad_secret(directory, kind)
    result = subprocess.run([sys.executable, "-m", "bgmask.worker", "--socket",
                             str(directory / "worker.sock"), "--idle-timeout", "3"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "secret" in result.stderr and "Traceback" not in result.stderr
    assert not (directory / "worker.sock").exists()


def hello_without_the_secret_is_refused(directory: Path) -> bool:
    for hello in ({"type": "hello", "protocol": 1}, {"type": "hello", "protocol": 1,
                                                     "secret": ""}):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(directory / "worker.sock"))
            with sock.makefile("wb") as w, sock.makefile("rb") as r:
                write_frame(w, hello)
                if read_frame(r)[0].get("error") != "AuthenticationError":
                    return False
    return True


@pytest.mark.parametrize("kind", BAD_SECRETS)
def test_a_click_replaces_a_bad_secret_of_its_own_and_keeps_authentication_on(
        runtime, sample_rgb, kind):
    runtime.mkdir(mode=0o700)
    make_bad_secret(runtime, kind)
    kind_of_client, _, reason, got = click(sample_rgb)
    assert len(got) == sample_rgb.shape[0] * sample_rgb.shape[1]
    if kind == "a folder":  # not a file bgmask will delete: the message says what to do
        assert kind_of_client == "one-shot" and "remove it" in reason
        return
    assert kind_of_client == "background", reason
    secret = runtime / "secret"
    assert not secret.is_symlink() and secret.stat().st_mode & 0o777 == 0o600
    assert len(secret.read_text()) == 64
    assert hello_without_the_secret_is_refused(runtime)


FULL_DISK = """
import json, os, sys
import numpy as np
from PIL import Image
from bgmask.host import job
root = sys.argv[1]
os.mkdir(os.path.join(root, "rt"), 0o700)
fd = os.open(os.path.join(root, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
try:
    while True:  # fill the disk
        os.write(fd, b"x" * 4096)
except OSError:
    os.close(fd)
a = np.asarray(Image.open(sys.argv[2]).convert("RGB"))
clicks = []
for _ in range(2):  # a second click finds what the first left
    with job.click_client() as c:
        c.mask(a.tobytes(), a.shape[1], a.shape[0], "rgb8")
        clicks.append(["background" if c.background else "one-shot", c.fallback_reason])
secret = os.path.join(root, "rt", "secret")
print(json.dumps({"clicks": clicks, "secret": os.path.getsize(secret)
                  if os.path.exists(secret) else None,
                  "socket": os.path.exists(os.path.join(root, "rt", "worker.sock"))}))
"""


@ROOT_ONLY
def test_a_full_disk_at_first_use_never_leaves_authentication_off(tmp_path, model_dir):
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "BGMASK_RUNTIME_DIR": str(disk / "rt"), "BGMASK_PYTHON":
           sys.executable, "BGMASK_WORKER_IDLE": "5"}
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=256k tmpfs "$0" && exec "$@"',
         str(disk), sys.executable, "-c", FULL_DISK, str(disk), str(SAMPLE)],
        capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Each click was done by a one-shot worker and said why; no secret file, empty or not,
    # was left for a later worker to run with.
    for kind, reason in report["clicks"]:
        assert kind == "one-shot" and "disk space" in reason, report
    assert report["secret"] is None and not report["socket"], report


# -- the folder -------------------------------------------------------------------------------

SQUATS = {
    "an open folder": "import os, sys; os.mkdir(sys.argv[1]); os.chmod(sys.argv[1], 0o777)",
    "a private folder": "import os, sys; os.mkdir(sys.argv[1], 0o700)",
    "a link": "import os, sys; os.symlink('/tmp', sys.argv[1])",
    "a file": "import sys; open(sys.argv[1], 'w').close()",
}


@ROOT_ONLY
@pytest.mark.parametrize("squat", list(SQUATS))
def test_a_folder_another_user_created_first_is_not_a_dead_end(
        second_user, shared_folder, monkeypatch, model_dir, sample_rgb, squat):
    """No XDG_RUNTIME_DIR: the folder would be TMP/bgmask-UID, in a sticky folder where
    another user can create that name first and only they can remove it."""
    monkeypatch.delenv("BGMASK_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("BGMASK_PYTHON", sys.executable)
    monkeypatch.setattr(tempfile, "tempdir", str(shared_folder))
    taken = shared_folder / f"bgmask-{os.getuid()}"
    decoy = shared_folder / f"bgmask-{os.getuid()}-aaaaaaaa"  # theirs too: never used
    for path in (taken, decoy):
        result = second_user.run(sys.executable, "-c", SQUATS[squat], str(path))
        assert result.returncode == 0, result.stderr
    directories = set()
    try:
        for _ in range(2):
            with job.click_client() as c:
                assert c.background, c.fallback_reason
                directories.add(c.channel.directory)
                pids = hello_pid(c)
                assert len(mask_with(c, sample_rgb)) == sample_rgb.shape[0] * sample_rgb.shape[1]
        [directory] = directories  # the second click found the first one's worker
        assert directory not in (taken, decoy) and directory.parent == shared_folder
        info = directory.lstat()
        assert info.st_uid == os.getuid() and info.st_mode & 0o777 == 0o700
        assert runtime_dir(Settings.read(), create=False) == directory
        assert pids
    finally:
        for directory in directories:
            stop_worker(directory)


def test_an_explicit_folder_that_is_not_private_says_what_to_do(runtime, sample_rgb):
    runtime.mkdir(mode=0o777)
    runtime.chmod(0o777)
    kind, _, reason, _ = click(sample_rgb)
    assert kind == "one-shot"
    assert "BGMASK_RUNTIME_DIR" in reason and "only you can enter" in reason


def test_a_one_shot_fallback_client_has_what_callers_read(runtime, sample_rgb, monkeypatch):
    monkeypatch.setenv("BGMASK_SHARED_WORKER", "0")
    with job.click_client() as c:
        assert not c.background and c.fallback_reason
