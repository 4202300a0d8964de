"""Runs the real Krita for the end-to-end tests: under Xvfb, with a throw-away profile seeded
from a warmed template, bgmask's plug-in staged into it, and a test-only driver plug-in that
runs a script once the main window exists."""

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
TEMPLATE = Path("/var/cache/bgmask-ci/krita-profile")

sys.path.insert(0, str(REPO / "installers"))
from bgmask_installer.kritarc import set_plugin_enabled  # noqa: E402
from bgmask_installer.stage import KRITA_NAME, stage_krita  # noqa: E402


def require_krita() -> None:
    if shutil.which("krita") is None or shutil.which("xvfb-run") is None:
        why = "Krita and Xvfb are not installed (run tests/editors/krita-host.sh as root)"
        if os.environ.get("BGMASK_REQUIRE_EDITORS"):
            pytest.fail(why)
        pytest.skip(why)


@dataclass
class KritaRun:
    work: Path
    returncode: int
    output: str
    seconds: float

    def results(self) -> dict:
        path = self.work / "result.json"
        if not path.exists():
            raise AssertionError(f"Krita wrote no result (exit {self.returncode}):\n"
                                 f"{self.output[-4000:]}")
        return json.loads(path.read_text())


def profile_env(profile: Path) -> dict[str, str]:
    runtime = profile / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    (profile / "tmp").mkdir(exist_ok=True)
    # Krita's embedded Python takes its prefix from the first python3 on PATH: keep it the
    # system's, and keep every variable of our own venv out.
    return {"HOME": str(profile), "XDG_CONFIG_HOME": str(profile / "config"),
            "XDG_DATA_HOME": str(profile / "data"), "XDG_CACHE_HOME": str(profile / "cache"),
            "XDG_RUNTIME_DIR": str(runtime), "MESA_SHADER_CACHE_DIR": str(profile / "cache"),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            # Krita's swap files go to the temporary folder: keep them in the profile.
            "TMPDIR": str(profile / "tmp")}


def launch(profile: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24", "krita",
                           "--nosplash"], env=env, capture_output=True, text=True,
                          timeout=timeout)


def warm_template() -> None:
    """A profile Krita has already filled (its first start copies ~90 MB of bundles)."""
    if (TEMPLATE / "config" / "kritarc").exists():
        return
    shutil.rmtree(TEMPLATE, ignore_errors=True)
    TEMPLATE.mkdir(parents=True)
    work = TEMPLATE / "warm"
    work.mkdir()
    driver = work / "quit.py"
    driver.write_text("def main():\n    finish({})\n")
    install_driver(TEMPLATE)
    env = {**profile_env(TEMPLATE), "BGMASK_TEST_WORK": str(work),
           "BGMASK_KRITA_DRIVER": str(driver)}
    launch(TEMPLATE, env, 300)
    shutil.rmtree(work)


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


def prepare_profile(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A fresh Krita profile with the test driver; (profile, its environment variables)."""
    warm_template()
    profile = tmp / "profile"
    copy_profile(TEMPLATE, profile)
    install_driver(profile)
    return profile, profile_env(profile)


def launch_driver(profile: Path, work: Path, driver: Path, job: dict, env: dict[str, str],
                  timeout: float = 400) -> KritaRun:
    work.mkdir(parents=True, exist_ok=True)
    (work / "job.json").write_text(json.dumps(job))
    # The driver's watchdog gives up a little before the process is killed, so a stuck run
    # still says so in its result.
    variables = {**profile_env(profile), "BGMASK_TEST_WORK": str(work),
                 "BGMASK_KRITA_DRIVER": str(driver),
                 "BGMASK_KRITA_WATCHDOG_MS": str(int(max(timeout - 30, 30) * 1000)), **env}
    start = time.perf_counter()
    proc = launch(profile, variables, timeout)
    return KritaRun(work, proc.returncode, proc.stdout + proc.stderr,
                    time.perf_counter() - start)


def run_krita(tmp: Path, driver: Path, job: dict, env: dict[str, str] | None = None,
              timeout: float = 400, with_bgmask: bool = True) -> KritaRun:
    """Krita with bgmask staged from this checkout into a fresh profile, running ``driver``."""
    profile, _ = prepare_profile(tmp)
    if with_bgmask:
        install_bgmask(profile)
    return launch_driver(profile, tmp / "work", driver, job, env or {}, timeout)
