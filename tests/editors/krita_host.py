"""Runs the real Krita for the end-to-end tests: under Xvfb, with a throw-away profile seeded
from a warmed template, bgmask's plug-in staged into it, and a test-only driver plug-in that
runs a script once the main window exists.

Krita comes from the host's apt ("host": Krita 5.1 on Debian 12) or from a Debian chroot that
``krita-chroot.sh`` provisions (trixie: 5.2, sid: 5.3, experimental: 6.0 on Qt 6 / PyQt6), where
it runs as an unprivileged user with the worker from the chroot's own Python environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .virtual_screen import on_a_virtual_screen

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = Path("/var/cache/bgmask-ci/krita-profile")
SCRIPT = HERE / "krita-chroot.sh"
HOST = "host"
# The Krita builds the tests drive: the host's (5.1), then Debian's 5.2, 5.3 and 6.0.
SUITES = (HOST, "trixie", "sid", "experimental")
USER, UID = "kritauser", 4243  # the chroots' Krita user (krita-chroot.sh makes it)
DEPS_PYTHON = "/opt/bgmask-deps/bin/python"  # onnxruntime, numpy, pillow, platformdirs
# Inside a chroot: the warmed profile, and the folder each run's files go to.
CHROOT_TEMPLATE = Path("/var/cache/bgmask-krita-profile")
CHROOT_RUNS = Path("/home") / USER / "bgmask-test"

sys.path.insert(0, str(REPO / "installers"))
from bgmask_installer.kritarc import set_plugin_enabled  # noqa: E402
from bgmask_installer.stage import KRITA_NAME, stage_krita  # noqa: E402

from .gimp_host import install_worker_source  # noqa: E402  (the chroots' worker: same recipe)


def _unavailable(why: str) -> None:
    if os.environ.get("BGMASK_REQUIRE_EDITORS"):
        pytest.fail(why)
    pytest.skip(why)


def require_krita(suite: str = HOST) -> KritaHost:
    """The Krita of ``suite``, ready to run (its chroot mounted); skips, or fails where editors
    are required, when it is not provisioned."""
    if suite == HOST:
        if shutil.which("krita") is None or shutil.which("xvfb-run") is None:
            _unavailable("Krita and Xvfb are not installed (run tests/editors/krita-host.sh "
                         "as root)")
        return KritaHost(HOST, Path("/"))
    ready = subprocess.run(["bash", str(SCRIPT), "ready", suite]).returncode == 0
    if not ready or os.geteuid() != 0:
        _unavailable(f"Krita from {suite} is not provisioned (run tests/editors/"
                     f"krita-chroot.sh provision {suite} as root)")
    # Krita needs /proc, /dev and /sys inside; they may have been unmounted since provisioning.
    subprocess.run(["bash", str(SCRIPT), "mount", suite], check=True)
    root = subprocess.run(["bash", str(SCRIPT), "root", suite], capture_output=True, text=True,
                          check=True).stdout.strip()
    return KritaHost(suite, Path(root))


@dataclass
class KritaRun:
    work: Path  # as the host sees it
    returncode: int
    output: str
    seconds: float
    root: Path = Path("/")

    def results(self) -> dict:
        path = self.work / "result.json"
        if not path.exists():
            progress = self.work / "progress.txt"
            started = progress.read_text().split() if progress.exists() else []
            raise AssertionError(f"Krita wrote no result (exit {self.returncode}; scenarios "
                                 f"started: {started}):\n{self.output[-4000:]}")
        return self._outside(json.loads(path.read_text()))

    def _outside(self, value: object) -> object:
        """Files the driver names (masks, pixels) as the host sees them."""
        if isinstance(value, dict):
            return {k: (str(self.root / v.lstrip("/")) if k in ("file", "pixels")
                        and isinstance(v, str) else self._outside(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._outside(v) for v in value]
        return value


def profile_env(profile: Path) -> dict[str, str]:
    """The variables Krita runs with for ``profile`` (a path as Krita sees it); the folders
    are made where the host sees them through ``make``."""
    # Krita's embedded Python takes its prefix from the first python3 on PATH: keep it the
    # system's, and keep every variable of our own venv out.
    return {"HOME": str(profile), "XDG_CONFIG_HOME": str(profile / "config"),
            "XDG_DATA_HOME": str(profile / "data"), "XDG_CACHE_HOME": str(profile / "cache"),
            "XDG_RUNTIME_DIR": str(profile / "runtime"),
            "MESA_SHADER_CACHE_DIR": str(profile / "cache"),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            # Krita's swap files go to the temporary folder: keep them in the profile.
            "TMPDIR": str(profile / "tmp")}


def make_profile_dirs(profile: Path) -> None:
    runtime = profile / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    (profile / "tmp").mkdir(exist_ok=True)


def launch(profile: Path, env: dict[str, str], timeout: float,
           wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    """Krita on a virtual screen; on a timeout the whole process group goes (Xvfb and Krita
    would outlive a killed xvfb-run)."""
    command = ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24", "krita", "--nosplash"]
    if wrap:
        command = [*wrap, "env", "-i", *[f"{k}={v}" for k, v in env.items()], *command]

    def start() -> subprocess.CompletedProcess:
        proc = subprocess.Popen(command, env=None if wrap else env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            out += f"\n[killed after {timeout:.0f} s]"
        return subprocess.CompletedProcess(command, proc.returncode, out, "")

    return on_a_virtual_screen(start, lambda run: run.stdout, lambda run: run.returncode != 0)


def install_driver(profile: Path) -> None:
    pykrita = profile / "data" / "krita" / "pykrita"
    shutil.copytree(HERE / "krita_driver", pykrita, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    rc = profile / "config" / "kritarc"
    rc.parent.mkdir(parents=True, exist_ok=True)
    text = rc.read_text() if rc.exists() else ""
    rc.write_text(set_plugin_enabled(text, "bgmask_test_driver"))


def install_bgmask(profile: Path) -> None:
    data = profile / "data" / "krita"
    stage_krita(data / "pykrita")
    actions = data / "actions"
    actions.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "plugin" / "krita" / f"{KRITA_NAME}.action",
                    actions / f"{KRITA_NAME}.action")
    rc = profile / "config" / "kritarc"
    rc.write_text(set_plugin_enabled(rc.read_text(), KRITA_NAME))


def copy_profile(source: Path, target: Path) -> None:
    """A copy of a Krita profile without the sockets and pipes a Krita run leaves in it (its
    single-instance socket stays behind when Krita ends through ``os._exit``)."""
    import stat

    def special(folder: str, names: list[str]) -> set[str]:
        return {n for n in names
                if stat.S_ISSOCK(mode := os.lstat(os.path.join(folder, n)).st_mode)
                or stat.S_ISFIFO(mode)}

    shutil.copytree(source, target, symlinks=True, ignore=special)


def chown(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, UID, UID, follow_symlinks=False)


@dataclass(frozen=True)
class KritaHost:
    """Where one Krita lives: the host (``root`` is /) or a provisioned chroot."""

    suite: str
    root: Path

    @property
    def chroot(self) -> bool:
        return self.suite != HOST

    def outside(self, inner: Path) -> Path:
        """A path as Krita sees it, as the host sees it."""
        return self.root / inner.relative_to("/")

    def template(self) -> Path:
        """A profile this Krita has already filled (its first start copies ~90 MB of bundles
        and builds a resource database), as Krita sees it."""
        inner = CHROOT_TEMPLATE if self.chroot else TEMPLATE
        outer = self.outside(inner)
        if (outer / "config" / "kritarc").exists():
            return inner
        shutil.rmtree(outer, ignore_errors=True)
        outer.mkdir(parents=True)
        work = outer / "warm"
        work.mkdir()
        (work / "quit.py").write_text("def main():\n    finish({})\n")
        install_driver(outer)
        make_profile_dirs(outer)
        if self.chroot:
            chown(outer)
        env = {**profile_env(inner), "BGMASK_TEST_WORK": str(inner / "warm"),
               "BGMASK_KRITA_DRIVER": str(inner / "warm" / "quit.py")}
        self.launch(inner, env, 300)
        shutil.rmtree(work)
        return inner

    def launch(self, profile: Path, env: dict[str, str], timeout: float
               ) -> subprocess.CompletedProcess:
        wrap = ["chroot", f"--userspec={UID}:{UID}", str(self.root)] if self.chroot else None
        return launch(profile, env, timeout, wrap)

    def run(self, tmp: Path, driver: Path, job: dict, env: dict[str, str] | None = None,
            timeout: float = 400, with_bgmask: bool = True, model_dir: Path | None = None
            ) -> KritaRun:
        """Krita with bgmask staged from this checkout into a fresh profile, running
        ``driver`` on ``job``. In a chroot, the job's files and ``model_dir``'s models are
        copied in and the worker is the chroot's Python with this checkout's bgmask."""
        if not self.chroot:
            variables = dict(env or {})
            if model_dir is not None:
                variables.setdefault("BGMASK_MODEL_DIR", str(model_dir))
            return run_krita(tmp, driver, job, variables, timeout, with_bgmask)
        template = self.template()
        inner = self._runs() / tmp.name
        base = self.outside(inner)
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        copy_profile(self.outside(template), base / "profile")
        install_driver(base / "profile")
        if with_bgmask:
            install_bgmask(base / "profile")
            install_worker_source(self.root)
        make_profile_dirs(base / "profile")
        (base / "work").mkdir()
        shutil.copyfile(driver, base / driver.name)
        # The background worker leaves soon after Krita does, so no process stays inside.
        variables = {"BGMASK_PYTHON": DEPS_PYTHON, "BGMASK_WORKER_IDLE": "20", **(env or {})}
        if model_dir is not None:  # the models only: the store's memo names host inodes
            (base / "models").mkdir()
            for model in model_dir.glob("*.onnx"):
                shutil.copyfile(model, base / "models" / model.name)
            variables["BGMASK_MODEL_DIR"] = str(inner / "models")
        job = self._carry(job, base / "in", inner / "in")
        (base / "work" / "job.json").write_text(json.dumps(job))
        chown(base)
        profile = inner / "profile"
        variables = {**profile_env(profile), "BGMASK_TEST_WORK": str(inner / "work"),
                     "BGMASK_KRITA_DRIVER": str(inner / driver.name),
                     "BGMASK_KRITA_WATCHDOG_MS": str(int(max(timeout - 30, 30) * 1000)),
                     **variables}
        start = time.perf_counter()
        proc = self.launch(profile, variables, timeout)
        return KritaRun(base / "work", proc.returncode, proc.stdout,
                        time.perf_counter() - start, self.root)

    def _runs(self) -> Path:
        """This test session's folder for runs inside the chroot; earlier sessions' folders
        (a profile each run, ~100 MB) are removed, this one's are kept for a look after a
        failure."""
        inner = CHROOT_RUNS / str(os.getpid())
        outer = self.outside(CHROOT_RUNS)
        if not self.outside(inner).exists() and outer.exists():
            for old in outer.iterdir():
                shutil.rmtree(old, ignore_errors=True)
        return inner

    def _carry(self, value: object, outer: Path, inner: Path) -> object:
        """``value`` with every host file it names copied into the chroot and renamed."""
        if isinstance(value, dict):
            return {k: self._carry(v, outer, inner) for k, v in value.items()}
        if isinstance(value, list):
            return [self._carry(v, outer, inner) for v in value]
        if isinstance(value, str) and value.startswith("/") and Path(value).is_file():
            outer.mkdir(parents=True, exist_ok=True)
            name = f"{len(list(outer.iterdir()))}-{Path(value).name}"
            shutil.copyfile(value, outer / name)
            return str(inner / name)
        return value


# The host's Krita, as bench/editors.py and test_installed.py drive it.

def warm_template() -> None:
    KritaHost(HOST, Path("/")).template()


def prepare_profile(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A fresh Krita profile with the test driver; (profile, its environment variables)."""
    warm_template()
    profile = tmp / "profile"
    copy_profile(TEMPLATE, profile)
    install_driver(profile)
    make_profile_dirs(profile)
    return profile, profile_env(profile)


def launch_driver(profile: Path, work: Path, driver: Path, job: dict, env: dict[str, str],
                  timeout: float = 400) -> KritaRun:
    work.mkdir(parents=True, exist_ok=True)
    (work / "job.json").write_text(json.dumps(job))
    make_profile_dirs(profile)
    # The driver's watchdog gives up a little before the process is killed, so a stuck run
    # still says so in its result.
    variables = {**profile_env(profile), "BGMASK_TEST_WORK": str(work),
                 "BGMASK_KRITA_DRIVER": str(driver),
                 "BGMASK_KRITA_WATCHDOG_MS": str(int(max(timeout - 30, 30) * 1000)), **env}
    start = time.perf_counter()
    proc = launch(profile, variables, timeout)
    return KritaRun(work, proc.returncode, proc.stdout, time.perf_counter() - start)


def run_krita(tmp: Path, driver: Path, job: dict, env: dict[str, str] | None = None,
              timeout: float = 400, with_bgmask: bool = True) -> KritaRun:
    """The host's Krita with bgmask staged from this checkout into a fresh profile, running
    ``driver``."""
    profile, _ = prepare_profile(tmp)
    if with_bgmask:
        install_bgmask(profile)
    return launch_driver(profile, tmp / "work", driver, job, env or {}, timeout)
