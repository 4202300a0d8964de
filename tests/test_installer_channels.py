"""The installer's channels on fake folder trees: Flatpak, Snap, Microsoft Store and Steam
editors, GIMP3_DIRECTORY, a moved Krita resource folder, the Store's Python on Windows, and
the Flatpak route end to end with a stand-in ``flatpak`` that records what runs in the
sandbox (the real sandbox and GIMP: tests/editors/test_flatpak.py)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .test_installer import snapshot, tree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installers"))
from bgmask.host.runtime_folder import runtime_dir  # noqa: E402
from bgmask.host.settings import Settings  # noqa: E402
from bgmask_installer import main as installer  # noqa: E402
from bgmask_installer.editors import (  # noqa: E402
    CUSTOM,
    FLATPAK,
    SNAP,
    STANDARD,
    STEAM,
    STORE,
    classify,
    gimp_installations,
    krita_installations,
    kritarc_resource_folder,
)
from bgmask_installer.flatpak import SandboxError, parse_probe  # noqa: E402
from bgmask_installer.paths import Platform  # noqa: E402
from bgmask_installer.winpython import store_python_reason  # noqa: E402

GIMP_APP = "org.gimp.GIMP"
KRITA_APP = "org.kde.krita"


def linux(home: Path, **env: str) -> Platform:
    return Platform("linux", {"PATH": str(home / "no-bin"), **env}, home, root=home / "root")


def summary(found: list) -> list[tuple[str, str, str, bool, bool, str | None]]:
    return [(f.editor, f.channel, str(f.folder), f.install, f.native, f.flatpak) for f in found]


# -- GIMP -----------------------------------------------------------------------------------

def test_flatpak_gimp_reads_the_profile_in_config_gimp(tmp_path):
    """Flathub's GIMP maps ~/.config/GIMP into its sandbox: with no native GIMP 3 on PATH,
    those profiles are served from inside the sandbox only; every 3.x profile counts."""
    tree(tmp_path, ".config/GIMP/3.0/", ".config/GIMP/3.2/", ".config/GIMP/2.10/",
         f".local/share/flatpak/app/{GIMP_APP}/")
    found = gimp_installations(linux(tmp_path))
    assert summary(found) == [
        ("GIMP 3.0", FLATPAK, str(tmp_path / ".config/GIMP/3.0"), True, False, GIMP_APP),
        ("GIMP 3.2", FLATPAK, str(tmp_path / ".config/GIMP/3.2"), True, False, GIMP_APP)]
    assert "xdg-config/GIMP" in found[0].note


def test_native_and_flatpak_gimp_share_the_profile(tmp_path):
    tree(tmp_path, ".config/GIMP/3.0/", "bin/gimp-3.0", f"root/var/lib/flatpak/app/{GIMP_APP}/")
    p = Platform("linux", {"PATH": str(tmp_path / "bin")}, tmp_path, root=tmp_path / "root")
    [gimp] = gimp_installations(p)
    assert (gimp.channel, gimp.native, gimp.flatpak) == (STANDARD, True, GIMP_APP)


def test_distribution_gimp_alone_and_the_flatpaks_own_profile(tmp_path):
    # A Flatpak's data folder outlives the app: without the app, it is not counted.
    tree(tmp_path, ".config/GIMP/3.0/", f".var/app/{GIMP_APP}/config/GIMP/3.2/")
    [native] = gimp_installations(linux(tmp_path))
    assert (native.channel, native.native, native.flatpak) == (STANDARD, True, None)
    tree(tmp_path, "root/etc/flatpak/installations.d/extra.conf", "extra/app/org.gimp.GIMP/")
    (tmp_path / "root/etc/flatpak/installations.d/extra.conf").write_text(
        f"[Installation \"extra\"]\nPath={tmp_path / 'extra'}\n")
    own = gimp_installations(linux(tmp_path))[-1]
    assert (own.channel, own.folder.name, own.native, own.flatpak) == (FLATPAK, "3.2", False,
                                                                        GIMP_APP)


def test_snap_gimp_is_named_and_left_alone(tmp_path):
    tree(tmp_path, "snap/gimp/393/.config/GIMP/3.0/")
    (tmp_path / "snap/gimp/current").symlink_to("393")
    [snap] = gimp_installations(linux(tmp_path))
    assert snap.channel == SNAP and not snap.install
    assert snap.folder == tmp_path / "snap/gimp/current/.config/GIMP/3.0"
    assert "confinement" in snap.note and "Flathub" in snap.note


@pytest.mark.parametrize("value", ["ABSOLUTE", "gimp-profile"])
def test_gimp3_directory_is_honoured(tmp_path, value):
    tree(tmp_path, "gimp-profile/", ".config/GIMP/3.0/")
    folder = str(tmp_path / "gimp-profile") if value == "ABSOLUTE" else value
    found = gimp_installations(linux(tmp_path, GIMP3_DIRECTORY=folder))
    assert [(f.channel, f.folder) for f in found] == [
        (CUSTOM, tmp_path / "gimp-profile"), (STANDARD, tmp_path / ".config/GIMP/3.0")]
    assert "GIMP3_DIRECTORY" in found[0].note


def test_gimp3_directory_not_made_yet_is_said_not_created(tmp_path):
    [found] = gimp_installations(linux(tmp_path, GIMP3_DIRECTORY="later"))
    assert not found.install and "start GIMP once" in found.note


def test_microsoft_store_gimp(tmp_path):
    tree(tmp_path, "Roaming/GIMP/3.0/",
         "Local/Packages/GIMP.GIMP_22mrwss6gm8jp/LocalCache/Roaming/GIMP/3.0/",
         "Local/Packages/Other.App_x/LocalCache/Roaming/GIMP/3.0/")
    p = Platform("win32", {"APPDATA": str(tmp_path / "Roaming"),
                           "LOCALAPPDATA": str(tmp_path / "Local")}, tmp_path)
    found = gimp_installations(p)
    assert [(f.channel, f.install) for f in found] == [(STANDARD, True), (STORE, True)]
    assert "GIMP.GIMP_22mrwss6gm8jp" in str(found[1].folder)
    assert "untested" in found[1].note


# -- Krita ----------------------------------------------------------------------------------

def test_krita_flatpak_and_its_moved_resource_folder(tmp_path):
    app = tmp_path / ".var/app" / KRITA_APP
    tree(tmp_path, f".var/app/{KRITA_APP}/data/krita/", ".local/share/krita/",
         f".local/share/flatpak/app/{KRITA_APP}/")
    (app / "config").mkdir(parents=True)
    (app / "config/kritarc").write_text(
        f"ResourceDirectory={tmp_path}/art\\sresources\n[General]\nx=1\n")
    found = krita_installations(linux(tmp_path))
    assert summary(found) == [
        ("Krita", STANDARD, str(tmp_path / ".local/share/krita"), True, True, None),
        ("Krita", FLATPAK, str(tmp_path / "art resources"), True, False, KRITA_APP)]
    assert found[1].kritarc == app / "config/kritarc"
    assert "ResourceDirectory" in found[1].note


def test_kritarc_resource_key_only_before_the_first_group(tmp_path):
    rc = tmp_path / "kritarc"
    p = linux(tmp_path, PICTURES="/data/pics")
    rc.write_text("[General]\nResourceDirectory=/elsewhere\n")
    assert kritarc_resource_folder(rc, p) is None
    rc.write_text("ResourceDirectory[$e]=$HOME/res\n")
    assert kritarc_resource_folder(rc, p) == tmp_path / "res"
    rc.write_text("ResourceDirectory[$e]=${PICTURES}/krita\n")
    assert kritarc_resource_folder(rc, p) == Path("/data/pics/krita")
    rc.write_text("ResourceDirectory=\n")
    assert kritarc_resource_folder(rc, p) is None
    assert kritarc_resource_folder(tmp_path / "missing", p) is None


def test_snap_krita_and_steam_krita_on_linux(tmp_path):
    tree(tmp_path, ".local/share/krita/", "snap/krita/20/.local/share/krita/",
         ".steam/steam/steamapps/libraryfolders.vdf",
         "games/steamapps/common/Krita/krita.exe")
    (tmp_path / ".steam/steam/steamapps/libraryfolders.vdf").write_text(
        f'"libraryfolders"\n{{\n "1"\n {{\n  "path"  "{tmp_path}/games"\n }}\n}}\n')
    found = krita_installations(linux(tmp_path))
    assert [(f.channel, f.install) for f in found] == [(STANDARD, True), (SNAP, False),
                                                       (STEAM, False)]
    assert found[2].folder == tmp_path / "games/steamapps/common/Krita"
    assert str(tmp_path / ".local/share/krita") in found[2].note


def test_windows_krita_from_the_store_and_from_steam(tmp_path):
    package = "Local/Packages/49800Krita_RG069hn5tdejj/LocalCache"
    tree(tmp_path, f"{package}/Roaming/krita/", f"{package}/Local/kritarc",
         "Program Files (x86)/Steam/steamapps/common/Krita/")
    p = Platform("win32", {"APPDATA": str(tmp_path / "Roaming"),
                           "LOCALAPPDATA": str(tmp_path / "Local"),
                           "ProgramFiles(x86)": str(tmp_path / "Program Files (x86)")},
                 tmp_path)
    found = krita_installations(p)
    assert [(f.channel, f.install) for f in found] == [(STORE, True), (STEAM, False)]
    assert found[0].kritarc == tmp_path / package / "Local/kritarc"
    # No standard Krita yet: Steam's Krita has not made its folder, and that is said.
    assert "start Krita once" in found[1].note


def test_folders_named_on_the_command_line_get_their_channel(tmp_path):
    p = linux(tmp_path)
    cases = {f".var/app/{GIMP_APP}/config/GIMP/3.0": (FLATPAK, False, GIMP_APP),
             "snap/gimp/current/.config/GIMP/3.0": (SNAP, False, None),
             "elsewhere/3.0": (CUSTOM, True, None)}
    for folder, (channel, native, app) in cases.items():
        found = classify(tmp_path / folder, p, [], "GIMP 3")
        assert (found.channel, found.native, found.flatpak, found.install) == (
            channel, native, app, True), folder
        assert found.editor == "GIMP 3.0"


# -- the sandbox's Python and the shared runtime folder ----------------------------------

def test_wheel_platforms_for_the_sandboxs_python():
    python = parse_probe('noise\n{"version": [3, 13], "machine": "x86_64", '
                         '"libc": "glibc 2.41"}\n')
    assert python.version_text == "3.13"
    tags = python.platforms()
    assert tags[0] == "manylinux_2_41_x86_64" and "manylinux_2_17_x86_64" in tags
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(tags)
    arm = parse_probe('{"version": [3, 12], "machine": "aarch64", "libc": "glibc 2.38"}')
    assert arm.platforms()[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_16_aarch64" not in arm.platforms()
    with pytest.raises(SandboxError):
        parse_probe("Traceback (most recent call last): ...")
    with pytest.raises(SandboxError):
        parse_probe('{"version": [3, 13], "machine": "x86_64", "libc": ""}').platforms()


def test_the_background_workers_folder_in_a_flatpak_is_the_one_shared_with_the_host(tmp_path):
    xdg = tmp_path / "run"
    xdg.mkdir(mode=0o700)
    shared = xdg / "app" / GIMP_APP
    shared.mkdir(parents=True, mode=0o700)
    inside = Settings.read({"XDG_RUNTIME_DIR": str(xdg), "FLATPAK_ID": GIMP_APP})
    assert runtime_dir(inside) == shared / "bgmask"
    # Not private: the shared folder is not used, and every other check still applies.
    shared.chmod(0o777)
    assert runtime_dir(inside) == xdg / "bgmask"
    shared.chmod(0o700)
    # Outside a sandbox nothing changes.
    assert runtime_dir(Settings.read({"XDG_RUNTIME_DIR": str(xdg)})) == xdg / "bgmask"
    # An id that would leave the folder is not followed.
    odd = Settings.read({"XDG_RUNTIME_DIR": str(xdg), "FLATPAK_ID": "../x"})
    assert runtime_dir(odd) == xdg / "bgmask"


# -- Windows' Python ------------------------------------------------------------------------

@pytest.mark.parametrize("path, store", [
    (r"C:\Users\u\AppData\Local\Microsoft\WindowsApps\PythonSoftwareFoundation.Python.3.12_"
     r"qbz5n2kfra8p0\python.exe", True),
    (r"C:\Program Files\WindowsApps\PythonSoftwareFoundation.Python.3.13_3.13.1_x64__"
     r"qbz5n2kfra8p0", True),
    (r"C:\Users\u\AppData\Local\Packages\PythonSoftwareFoundation.Python.3.12_qbz5n2kfra8p0"
     r"\LocalCache\local-packages", True),
    ("c:/program files/windowsapps/x/python.exe", True),
    (r"C:\Users\u\AppData\Local\Programs\Python\Python313\python.exe", False),
    (r"C:\Python312\python.exe", False),
    ("/usr/bin/python3", False),
])
def test_the_store_python_is_recognised_by_its_folders(path, store):
    assert (store_python_reason(path) is not None) == store


def test_the_installer_refuses_the_store_python(monkeypatch):
    p = Platform("win32", {}, Path("/nowhere"))
    monkeypatch.setattr(sys, "executable", r"C:\Users\u\AppData\Local\Microsoft\WindowsApps"
                                           r"\python3.exe")
    with pytest.raises(installer.InstallError, match="python.org"):
        installer.check_python(p)
    installer.check_python(Platform("linux", {}, Path("/nowhere")))  # elsewhere: no check


def test_the_windows_launcher_skips_the_store_python_and_checks_each_candidate():
    text = (ROOT / "installers" / "install.ps1").read_text()
    assert "check_python.py" in text and "WindowsApps" in text and "py -0p" in text
    result = subprocess.run([sys.executable, str(ROOT / "installers" / "check_python.py")])
    assert result.returncode == 0  # this Python is fine


# -- the Flatpak route, with a stand-in flatpak -----------------------------------------------

# Records each call; answers the probe; makes what venv, pip and the model fetch would make.
FAKE_FLATPAK = r'''#!/bin/sh
echo "$*" >> "$FAKE_FLATPAK_LOG"
command=""
for a in "$@"; do case "$a" in --command=*) command="${a#--command=}";; esac; done
case "$*" in
  *" -c "*) echo '{"version": [3, 13], "machine": "x86_64", "libc": "glibc 2.41"}';;
  *" -m venv "*) for last; do :; done; mkdir -p "$last/bin"
     printf 'home = /usr/bin\nversion = 3.13.5\n' > "$last/pyvenv.cfg";;
  *" models fetch "*) mkdir -p "$(dirname "$(dirname "$command")")/../models"
     : > "$(dirname "$(dirname "$command")")/../models/u2netp.onnx";;
esac
'''


@pytest.fixture
def fake_flatpak(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "flatpak").write_text(FAKE_FLATPAK)
    (bin_dir / "flatpak").chmod(0o755)
    log = tmp_path / "flatpak.log"
    monkeypatch.setenv("FAKE_FLATPAK_LOG", str(log))

    def wheels(pip, python, dest):
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "pip-25.0-py3-none-any.whl").write_text("")
        (dest / "bgmask-0.1.0-py3-none-any.whl").write_text("")
        wheels.asked = python  # type: ignore[attr-defined]
        return dest / "bgmask-0.1.0-py3-none-any.whl"

    monkeypatch.setattr(installer, "download_wheels", wheels)
    monkeypatch.setattr(installer, "host_pip", lambda scratch, platform: ["pip"])
    return bin_dir, log, wheels


def args(*extra: str) -> argparse.Namespace:
    return installer.parser().parse_args(list(extra))


def test_flatpak_krita_is_installed_into_its_sandbox_and_uninstalled(tmp_path, fake_flatpak,
                                                                       capsys):
    bin_dir, log, wheels = fake_flatpak
    home = tmp_path / "home"
    app = home / ".var/app" / KRITA_APP
    tree(home, f".var/app/{KRITA_APP}/data/krita/", f".local/share/flatpak/app/{KRITA_APP}/",
         ".local/share/bgmask/models/u2netp.onnx")
    (app / "config").mkdir(parents=True)
    kritarc_text = "MaxBrushSize=1000\n[General]\nx=1\n"
    (app / "config/kritarc").write_text(kritarc_text)
    before = snapshot(home)
    p = Platform("linux", {"PATH": f"{bin_dir}:/usr/bin:/bin"}, home, root=tmp_path / "root")

    installer.install(args("--dry-run"), p)
    out = capsys.readouterr().out
    assert f"found Krita (Flatpak {KRITA_APP}) in {app / 'data/krita'}" in out
    assert snapshot(home) == before

    installer.install(args("--krita", "--no-gimp"), p)
    record = json.loads((app / "config/bgmask/adapters.json").read_text())
    assert record["python"] == str(app / "data/bgmask/env/bin/python")
    assert (app / "data/krita/pykrita/bgmask_krita/__init__.py").exists()
    assert "enable_bgmask_krita=true" in (app / "config/kritarc").read_text()
    assert not (home / ".local/share/bgmask/env").exists(), "no environment outside"
    calls = log.read_text().splitlines()
    assert wheels.asked.version_text == "3.13"
    assert any(f"--command=python3 {KRITA_APP} -m venv --without-pip" in c for c in calls)
    pip_calls = [c for c in calls if " install " in c]
    assert pip_calls and all("--no-index" in c for c in pip_calls), pip_calls
    # The model came from this system's store, imported (and verified) inside the sandbox.
    assert any("models fetch u2netp --from" in c for c in calls), calls
    assert not (app / "cache/bgmask-install").exists(), "the downloads were not cleaned up"

    log.unlink()
    installer.install(args("--krita", "--no-gimp"), p)  # again: nothing to do
    assert "up to date" in capsys.readouterr().out
    assert " install " not in log.read_text()

    installer.uninstall(args("--uninstall"), p)
    assert str(app / "data/bgmask/models") in capsys.readouterr().out  # kept, and said so
    assert (app / "config/kritarc").read_text() == kritarc_text
    after = snapshot(home)
    models = f".var/app/{KRITA_APP}/data/bgmask"
    assert {k for k in after if "bgmask" in k} - set(before) == {
        models, f"{models}/models", f"{models}/models/u2netp.onnx"}
    assert not [k for k in before if after.get(k, "gone") != before[k]]


def test_a_flatpak_without_the_flatpak_command_is_said_and_skipped(tmp_path, capsys):
    home = tmp_path / "home"
    tree(home, f".local/share/flatpak/app/{GIMP_APP}/", ".config/GIMP/3.0/")
    p = Platform("linux", {"PATH": str(tmp_path / "empty")}, home, root=tmp_path / "root")
    with pytest.raises(installer.InstallError, match="flatpak command is not on PATH"):
        installer.install(args("--dry-run"), p)


def test_dry_run_in_a_subprocess_lists_every_channel(tmp_path):
    home = tmp_path
    tree(home, ".config/GIMP/3.0/", "snap/gimp/1/.config/GIMP/3.2/", ".local/share/krita/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "BGMASK_"))}
    result = subprocess.run([sys.executable, str(ROOT / "installers/install.py"), "--dry-run"],
                            capture_output=True, text=True,
                            env={**env, "HOME": str(home), "GIMP3_DIRECTORY": "custom"})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("found ")]
    assert len(lines) == 4, result.stdout
    assert "GIMP 3 (custom folder)" in lines[0] and "start GIMP once" in lines[0]
    assert "GIMP 3.0 (distribution package" in lines[1] and "plug-in goes here" in lines[1]
    assert "GIMP 3.2 (Snap)" in lines[2] and "not installed" in lines[2]
    assert "Krita (distribution package" in lines[3]
