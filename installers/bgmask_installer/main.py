"""``python3 installers/install.py``: puts bgmask into GIMP 3 and Krita for this user.

What an install does, in this order, so a failure never leaves half an installation:
1. find the editors' folders and check each can be written (nothing is changed before this);
2. create or upgrade bgmask's private environment (a venv in bgmask's data folder) from this
   checkout, and fetch the default model with progress;
3. copy the plug-ins (with the stdlib-only part of bgmask they import), enable the Krita one
   in kritarc, and write the record the adapters read to find the worker;
4. write a manifest of everything added, which ``--uninstall`` removes and nothing else.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import kritarc
from .paths import (
    KritaPlace,
    Platform,
    bgmask_data_dir,
    env_python,
    gimp_profiles,
    krita_places,
)
from .stage import (
    GIMP_NAME,
    KRITA_NAME,
    PLUGINS,
    REPO,
    VENDORED_HOST,
    stage_gimp,
    stage_krita,
)

sys.path.insert(0, str(REPO / "core"))
# The editor-side tier of the checkout: standard library only, like this installer.
from bgmask.host.background import stop_background_worker  # noqa: E402
from bgmask.host.catalogue import DEFAULT_MODEL  # noqa: E402
from bgmask.host.install_record import config_path  # noqa: E402
from bgmask.host.settings import Settings  # noqa: E402
from bgmask.host.version import VERSION as __version__  # noqa: E402

MANIFEST = "install-manifest.json"


class InstallError(Exception):
    """A message for the user; the installer exits with 1 after printing it."""


@dataclass
class Targets:
    gimp: list[Path] = field(default_factory=list)  # GIMP profile folders
    krita: list[KritaPlace] = field(default_factory=list)


def host_settings(platform: Platform) -> Settings:
    """bgmask's settings as the editors on this platform will read them."""
    return Settings.read({**platform.env, "HOME": str(platform.home)})


def say(message: str) -> None:
    print(f"bgmask installer: {message}", flush=True)


def source_digest() -> str:
    """Changes whenever anything that goes into the environment or the plug-ins changes."""
    digest = hashlib.sha256()
    for base in (REPO / "core", PLUGINS, REPO / "pyproject.toml"):
        files = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


# -- preflight ------------------------------------------------------------------------------

def find_targets(args: argparse.Namespace, platform: Platform) -> Targets:
    targets = Targets()
    if not args.no_gimp:
        targets.gimp = [Path(p) for p in args.gimp_profile] or gimp_profiles(platform)
    if not args.no_krita:
        if args.krita_dir:
            targets.krita = [KritaPlace(Path(args.krita_dir),
                                        Path(args.kritarc or Path(args.krita_dir).parent /
                                             "kritarc"))]
        else:
            targets.krita = krita_places(platform)
    wanted_gimp = args.gimp or bool(args.gimp_profile)
    wanted_krita = args.krita or bool(args.krita_dir)
    if wanted_gimp and not targets.gimp:
        raise InstallError("GIMP 3 was not found: start GIMP 3 once so it creates its profile, "
                           "or give its profile folder with --gimp-profile.")
    if wanted_krita and not targets.krita:
        raise InstallError("Krita was not found: start Krita once so it creates its resource "
                           "folder, or give it with --krita-dir.")
    if not targets.gimp and not targets.krita:
        raise InstallError("neither GIMP 3 nor Krita was found for this user: start the editor "
                           "once so it creates its folders, or name them with --gimp-profile "
                           "or --krita-dir.")
    return targets


def check_writable(path: Path) -> None:
    """Writes and removes a probe file in ``path`` (or its nearest existing parent): only a
    real write tells, because permission bits say nothing about read-only mounts or root."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    try:
        if existing.is_file():
            with open(existing, "r+b"):  # opening for writing changes nothing by itself
                pass
            existing = existing.parent
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".bgmask-probe-"):
            pass
    except OSError as exc:
        raise InstallError(f"cannot write to {existing} ({exc.strerror or exc}): make it "
                           "writable for your user, or choose another folder.") from None


def planned_paths(targets: Targets, data_dir: Path, config: Path) -> list[Path]:
    paths = [data_dir / "env", config]
    for profile in targets.gimp:
        paths.append(profile / "plug-ins" / GIMP_NAME)
    for place in targets.krita:
        paths += [place.resources / "pykrita" / KRITA_NAME,
                  place.resources / "pykrita" / f"{KRITA_NAME}.desktop",
                  place.resources / "actions" / f"{KRITA_NAME}.action", place.kritarc]
    return paths


# -- the environment ------------------------------------------------------------------------

def run(command: list[str], what: str) -> None:
    try:
        subprocess.run(command, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise InstallError(f"{what} failed ({exc}). If this computer is offline, connect it "
                           "and run the installer again; nothing was left half-installed.") \
            from None


def check_can_create_environments() -> None:
    """``python3 -m venv`` needs ensurepip, which Debian and Ubuntu ship apart from Python
    (python3.X-venv); without it venv fails after creating half a folder, with a message our
    "offline?" hint would only obscure."""
    if importlib.util.find_spec("ensurepip") is None:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise InstallError(
            f"this Python ({sys.executable}) cannot create environments: its ensurepip module "
            f"is missing. On Debian or Ubuntu run: sudo apt install python{version}-venv "
            "(or python3-venv), then run the installer again; nothing was changed.")


def ensure_environment(data_dir: Path, previous: dict, platform: str) -> tuple[Path, bool]:
    """(the environment's Python, whether this run created the environment)."""
    env_dir = data_dir / "env"
    python = env_python(env_dir, platform)
    created = not python.exists()
    if not created and previous.get("source_digest") == source_digest():
        say(f"environment {env_dir} is up to date")
        return python, False
    if created:
        check_can_create_environments()
    try:
        if created:
            say(f"creating bgmask's environment in {env_dir}")
            run([sys.executable, "-m", "venv", str(env_dir)], "creating the environment")
        say("installing bgmask and onnxruntime into it (pip)")
        run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--upgrade", str(REPO)], "installing bgmask with pip")
    except InstallError:
        if created:
            shutil.rmtree(env_dir, ignore_errors=True)
        raise
    return python, created


def fetch_model(python: Path, model: str) -> None:
    say(f"fetching the {model} model (verified, cached for every later use)")
    try:
        subprocess.run([str(python), "-m", "bgmask", "models", "fetch", model], check=True)
    except (OSError, subprocess.CalledProcessError):
        raise InstallError(
            f"the {model} model could not be fetched (see the message above). Connect to the "
            "network and run the installer again, or put the file where that message says and "
            "run it with --no-model.") from None


# -- the plug-ins ---------------------------------------------------------------------------

def new_dirs(path: Path) -> list[Path]:
    """The folders that creating ``path`` would add (outermost first)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    return list(reversed(missing))


def install_plugins(targets: Targets, record: dict) -> None:
    files: list[str] = record.setdefault("files", [])
    dirs: list[str] = record.setdefault("dirs", [])
    for profile in targets.gimp:
        plugins = profile / "plug-ins"
        dirs += [str(d) for d in new_dirs(plugins / GIMP_NAME / VENDORED_HOST)]
        shutil.rmtree(plugins / GIMP_NAME, ignore_errors=True)  # an upgrade drops old files
        files += [str(p) for p in stage_gimp(plugins)]
        say(f"GIMP plug-in installed in {plugins / GIMP_NAME}")
    for place in targets.krita:
        pykrita = place.resources / "pykrita"
        actions = place.resources / "actions"
        dirs += [str(d) for d in new_dirs(pykrita / KRITA_NAME / VENDORED_HOST)]
        dirs += [str(d) for d in new_dirs(actions)]
        shutil.rmtree(pykrita / KRITA_NAME, ignore_errors=True)
        files += [str(p) for p in stage_krita(pykrita)]
        actions.mkdir(parents=True, exist_ok=True)
        action = actions / f"{KRITA_NAME}.action"
        shutil.copyfile(PLUGINS / "krita" / f"{KRITA_NAME}.action", action)
        files.append(str(action))
        text = place.kritarc.read_text(encoding="utf-8") if place.kritarc.exists() else None
        record.setdefault("kritarc", []).append(
            {"path": str(place.kritarc), "created": text is None,
             "added_group": text is not None and not kritarc.has_group(text)})
        dirs += [str(d) for d in new_dirs(place.kritarc.parent)]
        place.kritarc.parent.mkdir(parents=True, exist_ok=True)
        place.kritarc.write_text(kritarc.set_plugin_enabled(text or "", KRITA_NAME),
                                 encoding="utf-8")
        say(f"Krita plug-in installed in {pykrita} and enabled in {place.kritarc} "
            "(restart Krita if it is running)")


def merge_previous(record: dict, previous: dict) -> None:
    """On an upgrade, what the first install created still counts as ours."""
    record["dirs"] = sorted(set(previous.get("dirs", [])) | set(record.get("dirs", [])))
    first = {entry["path"]: entry for entry in previous.get("kritarc", [])}
    for entry in record.get("kritarc", []):
        if entry["path"] in first:  # what the first install found there is what to restore
            entry["created"] = first[entry["path"]]["created"]
            entry["added_group"] = first[entry["path"]]["added_group"]


def remove_recorded(record: dict, keep_models: bool, data_dir: Path) -> None:
    for name in record.get("files", []):
        Path(name).unlink(missing_ok=True)
    shutil.rmtree(data_dir / "env", ignore_errors=True)
    if not keep_models:
        shutil.rmtree(data_dir / "models", ignore_errors=True)
    for entry in record.get("kritarc", []):
        path = Path(entry["path"])
        if not path.exists():
            continue
        text = kritarc.remove_plugin(path.read_text(encoding="utf-8"), KRITA_NAME,
                                     drop_empty_group=entry["added_group"] or entry["created"])
        if entry["created"] and not text.strip():
            path.unlink()
        else:
            path.write_text(text, encoding="utf-8")
    for name in sorted(record.get("dirs", []), key=len, reverse=True):
        path = Path(name)
        for cache in path.glob("__pycache__"):  # the editors' Pythons compile our modules
            shutil.rmtree(cache, ignore_errors=True)
        try:
            path.rmdir()
        except OSError:
            pass  # not empty: something else lives there now
    try:
        data_dir.rmdir()
    except OSError:
        pass  # models kept, or files of the user's own


# -- commands -------------------------------------------------------------------------------

def adapter_config(platform: Platform) -> Path:
    """The record the adapters read (``bgmask.host.install_record`` computes the same path)."""
    return config_path(host_settings(platform), platform.name)


def manifest_path(platform: Platform) -> Path:
    return adapter_config(platform).with_name(MANIFEST)


def read_manifest(platform: Platform) -> dict:
    path = manifest_path(platform)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InstallError(f"{path} is damaged ({exc}); remove it and reinstall") from None


def install(args: argparse.Namespace, platform: Platform) -> None:
    data_dir = bgmask_data_dir(platform)
    targets = find_targets(args, platform)
    config = adapter_config(platform)
    paths = planned_paths(targets, data_dir, config)
    if args.dry_run:
        for path in paths:
            print(f"would write: {path}")
        if not args.no_model:
            print(f"would fetch the {args.model} model into {data_dir / 'models'}")
        return
    for path in paths:
        check_writable(path)
    previous = read_manifest(platform)
    created_data_dirs = new_dirs(data_dir)
    python, created = ensure_environment(data_dir, previous, platform.name)
    try:
        if not args.no_model:
            fetch_model(python, args.model)
    except InstallError:
        if created:
            shutil.rmtree(data_dir / "env", ignore_errors=True)
        raise
    record: dict = {"version": __version__, "source_digest": source_digest(),
                    "python": str(python)}
    stale = set(previous.get("files", []))
    install_plugins(targets, record)
    merge_previous(record, previous)
    for name in stale - set(record["files"]):
        Path(name).unlink(missing_ok=True)  # files an older version had and this one has not
    record["dirs"] = sorted(set(record["dirs"]) | {str(d) for d in new_dirs(config.parent)}
                            | set(map(str, created_data_dirs)))
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"python": str(python), "version": __version__}, indent=1),
                      encoding="utf-8")
    record["files"] = sorted(set(record["files"]) | {str(config)})
    manifest_path(platform).write_text(json.dumps(record, indent=1), encoding="utf-8")
    if stop_background_worker(host_settings(platform)):
        say("stopped the running bgmask worker: the next click starts the new version")
    say(f"done: bgmask {__version__} is installed. In GIMP 3: Layer > Mask > Remove "
        "Background (AI). In Krita: the bgmask docker, or Tools > Scripts > Remove Background.")


def uninstall(args: argparse.Namespace, platform: Platform) -> None:
    data_dir = bgmask_data_dir(platform)
    record = read_manifest(platform)
    if not record:
        raise InstallError("bgmask is not installed for this user (no manifest at "
                           f"{manifest_path(platform)}).")
    if args.dry_run:
        for name in record.get("files", []) + [str(data_dir / "env")]:
            print(f"would remove: {name}")
        for entry in record.get("kritarc", []):
            print(f"would edit: {entry['path']}")
        return
    manifest_path(platform).unlink(missing_ok=True)
    stop_background_worker(host_settings(platform))
    remove_recorded(record, keep_models=not args.purge_models, data_dir=data_dir)
    kept = "" if args.purge_models else f" (models kept in {data_dir / 'models'})"
    say(f"bgmask is uninstalled{kept}.")


def build_zips(out: Path) -> None:
    """Zips for manual installs: Krita's "Import Python Plugin from File" and GIMP's folder."""
    out.mkdir(parents=True, exist_ok=True)
    for name, stage, prefix in (("bgmask-krita.zip", stage_krita, ""),
                                ("bgmask-gimp.zip", stage_gimp, "")):
        with tempfile.TemporaryDirectory() as tmp:
            written = stage(Path(tmp))
            if stage is stage_krita:
                action = Path(tmp) / f"{KRITA_NAME}.action"
                shutil.copyfile(PLUGINS / "krita" / action.name, action)
                written.append(action)
            with zipfile.ZipFile(out / name, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in written:
                    info = zipfile.ZipInfo(prefix + str(path.relative_to(tmp)))
                    info.external_attr = (path.stat().st_mode & 0o777) << 16
                    archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        say(f"wrote {out / name}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="install.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--uninstall", action="store_true", help="remove what the install added")
    p.add_argument("--purge-models", action="store_true", help="with --uninstall: also models")
    p.add_argument("--dry-run", action="store_true", help="print every path, change nothing")
    p.add_argument("--gimp", action="store_true", help="fail if GIMP 3 is not found")
    p.add_argument("--krita", action="store_true", help="fail if Krita is not found")
    p.add_argument("--no-gimp", action="store_true", help="leave GIMP alone")
    p.add_argument("--no-krita", action="store_true", help="leave Krita alone")
    p.add_argument("--gimp-profile", action="append", default=[], metavar="DIR",
                   help="a GIMP 3 profile folder, e.g. ~/.config/GIMP/3.0 (repeatable)")
    p.add_argument("--krita-dir", metavar="DIR", help="Krita's resource folder")
    p.add_argument("--kritarc", metavar="FILE", help="Krita's kritarc (with --krita-dir)")
    p.add_argument("--no-model", action="store_true", help="do not fetch the default model")
    p.add_argument("--model", default=DEFAULT_MODEL, help="the model to fetch")
    p.add_argument("--zip", metavar="DIR", help="only build the manual-install zips into DIR")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    platform = Platform(sys.platform, os.environ, Path.home())
    try:
        if args.zip:
            build_zips(Path(args.zip))
        elif args.uninstall:
            uninstall(args, platform)
        else:
            install(args, platform)
    except InstallError as exc:
        print(f"bgmask installer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
