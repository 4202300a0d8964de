"""Flatpak GIMP, simulated: the real installer and the real GIMP 3.0 in a bubblewrap sandbox.

Flathub cannot be reached from these machines, so ``fake_flatpak.py`` stands in for the
``flatpak`` command: bubblewrap around the Debian trixie chroot of ``gimp-chroot.sh`` as the
runtime (its /usr, /etc and Python 3.13 instead of this system's), with Flathub GIMP's
folders, permissions and shared runtime folder (see that file for what is and is not
reproduced). Everything runs as an unprivileged user with a home of its own; this system's
Python (3.11 on Debian 12) runs the installer, as a user would.

What is checked is what a user gets: the installer finds GIMP as a Flatpak and says so; a
click in the sandboxed GIMP gives the core's mask for the same pixels, with no variable
pointing anywhere (the plug-in finds its settings and its worker inside the sandbox);
``--uninstall`` stops the background worker running in the sandbox while GIMP is still open,
and nothing of bgmask is left in the home folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from ..photos import CAT
from .gimp_host import UID, GimpRun, chown, copy_checkout, require_gimp
from .test_gimp import assert_close, cli_mask, read_mask

pytestmark = pytest.mark.editors
HERE = Path(__file__).resolve().parent
APP = "org.gimp.GIMP"
# Kept between runs so the packages for the sandbox are downloaded once per machine.
PIP_CACHE = Path("/var/cache/bgmask-ci/flatpak-pip-cache")
PASSED_ON = ("LANG", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
             "NO_PROXY")


@dataclass
class Sim:
    base: Path
    home: Path
    runtime_dir: Path  # this system's $XDG_RUNTIME_DIR for the user
    checkout: Path

    @property
    def app_dir(self) -> Path:
        return self.home / ".var" / "app" / APP

    def command(self, command: list[str], **extra: str) -> list[str]:
        """``command`` as the unprivileged user, with only the environment a session has."""
        env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in PASSED_ON}
        env.update({"HOME": str(self.home), "PATH": f"{self.base / 'bin'}:/usr/bin:/bin",
                    "XDG_RUNTIME_DIR": str(self.runtime_dir), "LANG": "C.UTF-8",
                    "PIP_CACHE_DIR": str(PIP_CACHE), **extra})
        return ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "env", "-i",
                *[f"{k}={v}" for k, v in env.items()], *command]

    def installer(self, *args: str) -> subprocess.CompletedProcess:
        python = shutil.which("python3", path="/usr/bin:/bin") or "python3"
        return subprocess.run(self.command([python, str(self.checkout / "installers" /
                                                         "install.py"), *args]),
                              capture_output=True, text=True, timeout=900, cwd=self.home)


@pytest.fixture
def sim() -> Iterator[Sim]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the runtime is a chroot, and the test runs as another user")
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    runtime = require_gimp("trixie")
    base = Path(tempfile.mkdtemp(prefix="bgmask-flatpak-", dir="/tmp"))
    base.chmod(0o755)
    try:
        home = base / "home" / "gimpuser"
        copy_checkout(base)  # into home/gimpuser/bgmask-checkout, owned by the user
        (base / "bin").mkdir()
        shutil.copyfile(HERE / "fake_flatpak.py", base / "bin" / "flatpak")
        (base / "bin" / "flatpak").chmod(0o755)
        (base / "bin" / "fake_flatpak.json").write_text(json.dumps(
            {"runtime": str(runtime), "xdg_config": ["GIMP"]}))
        runtime_dir = base / "run" / "user" / str(UID)
        runtime_dir.mkdir(parents=True, mode=0o700)
        # As after installing GIMP from Flathub and starting it once: the app, its data
        # folder, and its profile in ~/.config/GIMP (the folder its permission maps).
        for folder in (".local/share/flatpak/app/" + APP, ".var/app/" + APP,
                       ".config/GIMP/3.0"):
            (home / folder).mkdir(parents=True, exist_ok=True)
        for name in (".config/pip/pip.conf", ".pip/pip.conf"):  # the user's pip settings
            if (Path.home() / name).is_file():
                (home / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path.home() / name, home / name)
        PIP_CACHE.mkdir(parents=True, exist_ok=True)
        for path in (home, runtime_dir, PIP_CACHE):
            chown(path)
        yield Sim(base, home, runtime_dir, home / "bgmask-checkout")
    finally:
        for pid in worker_pids(base / "home" / "gimpuser"):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


def worker_pids(home: Path) -> list[int]:
    """The background workers in this test's sandbox, as this system sees them (by their
    home folder: another run of this test may have its own at the same time)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or entry.stat().st_uid != UID:
                continue
            args = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bgmask.worker" in args and f"HOME={home}".encode() in environ:
            pids.append(int(entry.name))
    return pids


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*")) if not p.is_symlink()}


def wait_for(check, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_flatpak_gimp_installs_masks_and_uninstalls(sim, model_file, tmp_path):
    dry = sim.installer("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"GIMP 3.0 (Flatpak {APP}) in {sim.home / '.config/GIMP/3.0'}" in dry.stdout
    assert str(sim.app_dir / "data/bgmask/env") in dry.stdout
    before = snapshot(sim.home)

    start = time.perf_counter()
    install = sim.installer("--gimp", "--no-krita")
    install_seconds = time.perf_counter() - start
    assert install.returncode == 0, install.stdout + install.stderr
    record = json.loads((sim.app_dir / "config/bgmask/adapters.json").read_text())
    assert record["python"] == str(sim.app_dir / "data/bgmask/env/bin/python")
    # The environment is the runtime's Python's (3.13), not this system's (3.11)...
    assert "version = 3.13" in (sim.app_dir / "data/bgmask/env/pyvenv.cfg").read_text()
    assert (sim.app_dir / "data/bgmask/models" / model_file.name).read_bytes() == \
        model_file.read_bytes()
    # ...and nothing was set up outside the sandbox, where no GIMP runs.
    assert not (sim.home / ".local/share/bgmask").exists()
    assert not (sim.home / ".config/bgmask/adapters.json").exists()

    work = sim.home / "flatpak-work"
    work.mkdir()
    photo = work / "photo.png"
    Image.open(CAT).convert("RGB").save(photo)
    for driver in ("gimp_driver.py", "flatpak_driver.py"):
        shutil.copyfile(HERE / driver, work / driver)
    (work / "job.json").write_text(json.dumps({"scenarios": ["basic"], "photo": str(photo)}))
    chown(work)
    # No BGMASK_* variable: the plug-in finds its record and its worker by itself.
    gimp_command = sim.command(
        ["flatpak", "run", "--command=gimp-console-3.0", APP, "-i", "-d",
         "--batch-interpreter=python-fu-eval", "-b",
         f"exec(open('{work}/flatpak_driver.py').read())", "--quit"],
        BGMASK_TEST_WORK=str(work))
    log = sim.base / "gimp-output.txt"  # a file: a full pipe would block GIMP while it waits
    start = time.perf_counter()
    with open(log, "w") as out:
        gimp = subprocess.Popen(gimp_command, cwd=sim.home, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: (work / "result.json").exists() or gimp.poll() is not None, 600)
        click_seconds = time.perf_counter() - start
        run = GimpRun(sim.base, work, gimp.poll() or 0, "", click_seconds)
        if not (work / "result.json").exists():
            raise AssertionError(f"GIMP wrote no result:\n{log.read_text()[-4000:]}")
        basic = run.results()["basic"]
        assert "exception" not in basic, basic
        assert basic["ok"], basic["message"]
        assert_close(read_mask(run, basic["mask"]), cli_mask(photo, tmp_path))

        # The background worker runs in the sandbox; its socket is where this side sees it.
        socket = sim.runtime_dir / "app" / APP / "bgmask" / "worker.sock"
        assert socket.exists(), sorted(sim.runtime_dir.rglob("*"))
        assert worker_pids(sim.home), "no background worker runs inside the sandbox"
        removed = sim.installer("--uninstall", "--purge-models")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert f"stopped the bgmask worker running inside the Flatpak {APP}" in removed.stdout
        assert wait_for(lambda: not worker_pids(sim.home), 10), "the worker still runs"
        assert not socket.exists()
        assert gimp.poll() is None, "GIMP itself must not be stopped"
        (work / "release").touch()
        gimp.wait(timeout=120)
        assert gimp.returncode == 0, log.read_text()[-4000:]
    finally:
        if gimp.poll() is None:
            os.killpg(gimp.pid, signal.SIGKILL)
            gimp.wait()

    after = snapshot(sim.home)
    ignore = ("bgmask-checkout", "flatpak-work")
    left = [p for p in after if "bgmask" in p.lower() and not p.startswith(ignore)]
    assert not left, f"left behind: {left}"
    changed = [p for p, data in before.items() if after.get(p, "gone") != data]
    assert not changed, f"changed: {changed}"
    print(f"\nflatpak simulation: install {install_seconds:.1f} s (packages downloaded "
          f"here, installed in the sandbox), GIMP start + click {click_seconds:.1f} s")
