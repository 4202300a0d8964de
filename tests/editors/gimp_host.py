"""Runs GIMP 3 for the end-to-end tests: in the Debian chroot that ``gimp-chroot.sh``
provisions for a suite (trixie: GIMP 3.0; forky: GIMP 3.2; on a Debian 13 host trixie's GIMP
runs directly), as an unprivileged user, headless."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
USER, UID = "gimpuser", 4242
HOME = Path("/home") / USER
DEPS_PYTHON = "/opt/bgmask-deps/bin/python"  # onnxruntime, numpy, pillow, platformdirs

sys.path.insert(0, str(REPO / "installers"))
from bgmask_installer.stage import stage_gimp  # noqa: E402

from .virtual_screen import on_a_virtual_screen  # noqa: E402

SCRIPT = str(HERE / "gimp-chroot.sh")
# The Debian suites whose GIMP the tests run in: GIMP 3.0 and GIMP 3.2.
SUITES = ("trixie", "forky")


def gimp_root(suite: str = "trixie") -> Path | None:
    """The provisioned root, or None (the test is skipped, or fails where editors are required)."""
    if subprocess.run(["bash", SCRIPT, "ready", suite]).returncode != 0:
        return None
    return Path(subprocess.run(["bash", SCRIPT, "root", suite], capture_output=True, text=True,
                               check=True).stdout.strip())


def require_gimp(suite: str = "trixie") -> Path:
    root = gimp_root(suite)
    if root is None or os.geteuid() != 0:
        why = (f"GIMP 3 from {suite} is not provisioned (run tests/editors/gimp-chroot.sh "
               f"provision {suite} as root)")
        if os.environ.get("BGMASK_REQUIRE_EDITORS"):
            pytest.fail(why)
        pytest.skip(why)
    # GIMP needs /proc, /dev and /sys inside; they may have been unmounted since provisioning.
    subprocess.run(["bash", SCRIPT, "mount", suite], check=True)
    return root


def gimp_series(root: Path) -> str:
    """The GIMP series installed in ``root`` ("3.0", "3.2"): it names the binaries and the
    profile folder (~/.config/GIMP/3.2 is not 3.0's)."""
    found = sorted((root / "usr" / "bin").glob("gimp-console-3.*"))
    if not found:
        raise AssertionError(f"no gimp-console-3.x in {root}/usr/bin")
    return found[-1].name.removeprefix("gimp-console-")


@dataclass
class GimpRun:
    root: Path
    work: Path  # the work folder as seen from the host
    returncode: int
    output: str
    seconds: float

    def inside(self, path: Path) -> Path:
        """A path inside the chroot as the host sees it."""
        return self.root / path.relative_to("/")

    def results(self) -> dict:
        path = self.work / "result.json"
        if not path.exists():
            raise AssertionError(f"GIMP wrote no result (exit {self.returncode}):\n"
                                 f"{self.output[-4000:]}")
        return json.loads(path.read_text())

    def mask_file(self, name: str) -> Path:
        return self.work / f"{name}.mask"


def chown(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, UID, UID, follow_symlinks=False)


def install_worker_source(root: Path) -> None:
    """bgmask from this checkout, importable by the chroot's dependency environment."""
    src = root / "opt/bgmask-src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(REPO / "core" / "bgmask", src / "bgmask",
                    ignore=shutil.ignore_patterns("__pycache__"))
    site = next((root / "opt/bgmask-deps/lib").glob("python3*/site-packages"))
    (site / "bgmask-src.pth").write_text("/opt/bgmask-src\n")


def in_chroot(root: Path, command: list[str], env: dict[str, str], timeout: float = 600
              ) -> subprocess.CompletedProcess:
    """``command`` as the unprivileged GIMP user inside the chroot, with only ``env``."""
    variables = {"HOME": str(HOME), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env}
    return subprocess.run(["chroot", f"--userspec={UID}:{UID}", str(root), "env", "-i",
                           *[f"{k}={v}" for k, v in variables.items()], *command],
                          capture_output=True, text=True, timeout=timeout)


def copy_checkout(root: Path) -> Path:
    """This checkout's installable parts inside the chroot (the installer's own source)."""
    inside = Path("/home") / USER / "bgmask-checkout"
    target = root / inside.relative_to("/")
    shutil.rmtree(target, ignore_errors=True)
    for part in ("core", "plugin", "installers"):
        shutil.copytree(REPO / part, target / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, target / name)
    chown(target)
    return inside


def run_gimp(root: Path, name: str, job: dict, photos: list[Path], model_file: Path,
             env: dict[str, str] | None = None, timeout: float = 600,
             driver: str = "gimp_driver.py", gui: bool = False,
             installed: bool = False, wrap: list[str] | None = None) -> GimpRun:
    """Stages the plug-in into a fresh GIMP profile (or, ``installed``, uses what the
    installer put there), then runs ``driver`` on ``job`` in gimp-console, or with ``gui`` in
    the full GIMP on a virtual screen."""
    home = root / HOME.relative_to("/")
    series = gimp_series(root)
    profile = home / ".config" / "GIMP" / series
    if not installed:
        shutil.rmtree(profile / "plug-ins", ignore_errors=True)
        stage_gimp(profile / "plug-ins")
        install_worker_source(root)
    work = home / "bgmask-test" / name
    shutil.rmtree(work, ignore_errors=True)
    (work / "models").mkdir(parents=True)
    shutil.copyfile(model_file, work / "models" / model_file.name)
    for photo in photos:
        shutil.copyfile(photo, work / photo.name)
    shutil.copyfile(HERE / driver, work / driver)
    inner_work = HOME / "bgmask-test" / name
    job = {**job, "photo": str(inner_work / photos[0].name)}
    (work / "job.json").write_text(json.dumps(job))
    chown(home)
    variables = {"HOME": str(HOME), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                 **({} if installed else {"BGMASK_PYTHON": DEPS_PYTHON}),
                 "BGMASK_MODEL_DIR": str(inner_work / "models"),
                 # A shared worker of this run's own, gone soon after the run.
                 "BGMASK_RUNTIME_DIR": f"/tmp/bgmask-test-{name}-{os.getpid()}",
                 "BGMASK_WORKER_IDLE": "20",
                 "BGMASK_TEST_WORK": str(inner_work), **(env or {})}
    command = [*(wrap or []), "chroot", f"--userspec={UID}:{UID}", str(root), "env", "-i",
               *[f"{k}={v}" for k, v in variables.items()],
               *(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", f"gimp-{series}"] if gui
                 else [f"gimp-console-{series}", "-i"]),
               "-d", "--batch-interpreter=python-fu-eval",
               "-b", f"exec(open('{inner_work}/{driver}').read())", "--quit"]
    start = time.perf_counter()
    proc = on_a_virtual_screen(
        lambda: subprocess.run(command, capture_output=True, text=True, timeout=timeout),
        lambda run: run.stdout + run.stderr, lambda run: gui and run.returncode != 0)
    return GimpRun(root, work, proc.returncode, proc.stdout + proc.stderr,
                   time.perf_counter() - start)
