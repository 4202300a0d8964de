"""Every GIMP 3 and Krita this user has, by the channel it came through, and what the
installer does for each: the distribution package (or an AppImage, or an own build), Flatpak,
Snap, the Microsoft Store, Steam, or a folder the user chose (``GIMP3_DIRECTORY``, a Krita
resource folder moved in Krita's settings, ``--gimp-profile``, ``--krita-dir``).

Everything is computed from a ``Platform`` (system, environment, home, root), so each channel's
layout is testable with fake folder trees on any system.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from .paths import GIMP_SERIES, Platform

STANDARD = "standard"
FLATPAK = "Flatpak"
SNAP = "Snap"
STORE = "Microsoft Store"
STEAM = "Steam"
CUSTOM = "custom folder"

GIMP_FLATPAK = "org.gimp.GIMP"
KRITA_FLATPAK = "org.kde.krita"
# GIMP's own override of its profile folder (absolute, or relative to the home folder).
GIMP_DIRECTORY_VARIABLE = "GIMP3_DIRECTORY"
# Krita's moved resource folder (Settings > Manage Resources): this key, in kritarc's keys
# before the first group (KisResourceLocator::resourceLocationKey in Krita's source).
KRITA_RESOURCE_KEY = "ResourceDirectory"

SNAP_NOTE = ("not installed: a Snap's strict confinement hides ~/.local and ~/.config, where "
             "bgmask's environment and settings live, from the editor, and its plug-ins run "
             "the snap's own Python. Use the editor from Flathub or your distribution instead "
             "(bgmask installs into those when it finds them).")
STORE_NOTE = ("Microsoft Store apps keep their own copy of AppData: the plug-in goes into "
              "that copy (untested on this channel; if the menu item does not appear, use the "
              "installer from the editor's website)")


@dataclass(frozen=True)
class Found:
    """One editor installation, and what the installer does for it."""

    editor: str  # "GIMP 3.0", "GIMP 3", "Krita"
    channel: str
    folder: Path  # GIMP's profile, Krita's resource folder (Steam: where Krita is installed)
    kritarc: Path | None = None
    native: bool = True  # its worker runs from bgmask's environment on this system
    flatpak: str | None = None  # its worker runs inside this Flatpak app's sandbox
    install: bool = True  # the plug-in goes into ``folder``
    note: str = ""


def channel_label(found: Found, p: Platform) -> str:
    if found.channel == STANDARD:
        label = {"win32": "installer", "darwin": "app bundle"}.get(
            p.name, "distribution package, AppImage or own build")
        if found.flatpak:  # a folder Flathub's GIMP maps into its sandbox, too
            label += f", and Flatpak {found.flatpak}"
        return label
    if found.channel == FLATPAK and found.flatpak:
        return f"Flatpak {found.flatpak}"
    return found.channel


# -- helpers --------------------------------------------------------------------------------

def _series(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(d for d in parent.iterdir() if d.is_dir() and GIMP_SERIES.match(d.name))


def _on_path(p: Platform, *patterns: str) -> bool:
    """Whether a program matching one of ``patterns`` is on the platform's PATH."""
    for folder in (p.env.get("PATH") or "").split(":"):
        if folder and any(any(Path(folder).glob(pattern)) for pattern in patterns):
            return True
    return False


def flatpak_command(p: Platform) -> str | None:
    return shutil.which("flatpak", path=p.env.get("PATH") or None)


def flatpak_present(p: Platform, app_id: str) -> bool:
    """Whether ``app_id`` is installed: per user, system-wide, or in an installation that
    /etc/flatpak/installations.d names (its data folder alone may outlive the app)."""
    places = [Path(p.env.get("FLATPAK_USER_DIR") or p.xdg_data / "flatpak"),
              p.root / "var/lib/flatpak"]
    for conf in sorted((p.root / "etc/flatpak/installations.d").glob("*.conf")):
        try:
            text = conf.read_text(errors="replace")
        except OSError:
            continue
        places += [Path(line.split("=", 1)[1].strip()) for line in text.splitlines()
                   if line.strip().startswith("Path=")]
    return any((place / "app" / app_id).is_dir() for place in places)


def _unescape_kconfig(value: str) -> str:
    escapes = {"\\\\": "\\", "\\s": " ", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    return re.sub(r"\\[\\stnr]", lambda m: escapes[m.group(0)], value)


def kritarc_resource_folder(kritarc: Path, p: Platform) -> Path | None:
    """The resource folder set in kritarc (``ResourceDirectory``, before the first group),
    or None when the file or the key is absent or empty."""
    try:
        lines = kritarc.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    env = {**p.env, "HOME": str(p.home)}
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            break  # only the keys before the first group: Krita reads the default group
        key, sep, value = stripped.partition("=")
        key = key.strip()
        expand = key.endswith("[$e]")  # KConfig's marker for values with $VARIABLES
        if not sep or key.removesuffix("[$e]") != KRITA_RESOURCE_KEY:
            continue
        value = _unescape_kconfig(value.strip())
        if expand:
            value = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), value)
        return Path(value) if value else None
    return None


def _krita(channel: str, default: Path, kritarc: Path, p: Platform, native: bool = True,
           flatpak: str | None = None, note: str = "") -> Found:
    moved = kritarc_resource_folder(kritarc, p)
    folder = default
    if moved is not None and moved != default:
        folder = moved
        note = "; ".join(filter(None, [note, "the resource folder was moved in Krita's "
                                             f"settings: {KRITA_RESOURCE_KEY} in {kritarc}"]))
    return Found("Krita", channel, folder, kritarc, native=native, flatpak=flatpak, note=note)


def _steam_libraries(p: Platform) -> list[Path]:
    """Steam's own folder and every library folder its libraryfolders.vdf names."""
    if p.name.startswith("win"):
        roots = [Path(p.env[v]) / "Steam" for v in ("ProgramFiles(x86)", "ProgramFiles")
                 if p.env.get(v)]
    elif p.name == "darwin":
        roots = [p.mac_support / "Steam"]
    else:
        roots = [p.home / ".steam" / "steam", p.xdg_data / "Steam"]
    libraries: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        libraries.append(root)
        try:
            text = (root / "steamapps" / "libraryfolders.vdf").read_text(errors="replace")
        except OSError:
            continue
        for match in re.finditer(r'"path"\s+"((?:[^"\\]|\\.)*)"', text):
            libraries.append(Path(match.group(1).replace("\\\\", "\\")))
    unique: dict[Path, Path] = {}
    for library in libraries:
        unique.setdefault(library.resolve() if library.exists() else library, library)
    return list(unique.values())


def _snap_folders(p: Platform, snap: str, inside: str) -> list[Path]:
    """A snap's per-revision folders, the one "current" links to first."""
    found = (p.home / "snap" / snap).glob(f"*/{inside}")
    return sorted(found, key=lambda d: (d.relative_to(p.home / "snap" / snap).parts[0]
                                        != "current", str(d)))


def _store_packages(p: Platform, word: str) -> list[Path]:
    """Microsoft Store (MSIX) package folders of this user whose name holds ``word``."""
    packages = p.local_appdata / "Packages"
    if not packages.is_dir():
        return []
    return sorted(d for d in packages.iterdir() if d.is_dir() and word in d.name.lower())


# -- GIMP -----------------------------------------------------------------------------------

def _gimp_directory(p: Platform) -> list[Found]:
    value = p.env.get(GIMP_DIRECTORY_VARIABLE)
    if not value:
        return []
    folder = Path(value) if Path(value).is_absolute() else p.home / value
    if folder.is_dir():
        return [Found("GIMP 3", CUSTOM, folder, note=f"{GIMP_DIRECTORY_VARIABLE} names it")]
    return [Found("GIMP 3", CUSTOM, folder, install=False,
                  note=f"not installed: {GIMP_DIRECTORY_VARIABLE} names this folder, which "
                       "does not exist yet; start GIMP once, then run the installer again")]


def _gimp_linux(p: Platform) -> list[Found]:
    found = []
    flatpak = flatpak_present(p, GIMP_FLATPAK)
    # Flathub's GIMP maps ~/.config/GIMP into its sandbox (xdg-config/GIMP), so these
    # profiles are the Flatpak's as well; a GIMP 3 on PATH (or no Flatpak) is the native one.
    native = not flatpak or _on_path(p, "gimp-3*", "gimp-console-3*")
    mapped = "Flathub's GIMP reads this folder (its xdg-config/GIMP permission)"
    for profile in _series(p.xdg_config / "GIMP"):
        found.append(Found(f"GIMP {profile.name}", STANDARD if native else FLATPAK, profile,
                           native=native, flatpak=GIMP_FLATPAK if flatpak else None,
                           note=mapped if flatpak else ""))
    own = p.home / ".var" / "app" / GIMP_FLATPAK / "config" / "GIMP"
    for profile in _series(own) if flatpak else []:  # one without that permission: its own
        found.append(Found(f"GIMP {profile.name}", FLATPAK, profile, native=False,
                           flatpak=GIMP_FLATPAK))
    seen = set()
    for config in _snap_folders(p, "gimp", ".config/GIMP"):
        for profile in _series(config):
            key = profile.resolve()  # "current" links to a revision folder
            if key not in seen:
                seen.add(key)
                found.append(Found(f"GIMP {profile.name}", SNAP, profile, native=False,
                                   install=False, note=SNAP_NOTE))
    return found


def gimp_installations(p: Platform) -> list[Found]:
    """Every GIMP 3.x profile folder found, with its channel (each GIMP 3.x version keeps
    its own profile, so an upgrade from 3.0 to 3.2 adds one)."""
    if p.name.startswith("win"):
        found = [Found(f"GIMP {d.name}", STANDARD, d) for d in _series(p.appdata / "GIMP")]
        for package in _store_packages(p, "gimp"):
            found += [Found(f"GIMP {d.name}", STORE, d, note=STORE_NOTE)
                      for d in _series(package / "LocalCache" / "Roaming" / "GIMP")]
    elif p.name == "darwin":
        found = [Found(f"GIMP {d.name}", STANDARD, d) for d in _series(p.mac_support / "GIMP")]
    else:
        found = _gimp_linux(p)
    return _unique(_gimp_directory(p) + found)


# -- Krita ----------------------------------------------------------------------------------

def krita_installations(p: Platform) -> list[Found]:
    """Every Krita resource folder found (Krita makes it on its first start), with its
    channel; Steam's Krita is listed too, though it shares the standard folder."""
    found: list[Found] = []
    if p.name.startswith("win"):
        standard = (p.appdata / "krita", p.local_appdata / "kritarc")
        for package in _store_packages(p, "krita"):
            cache = package / "LocalCache"
            if (cache / "Roaming" / "krita").is_dir() or (cache / "Local" / "kritarc").is_file():
                found.append(_krita(STORE, cache / "Roaming" / "krita",
                                    cache / "Local" / "kritarc", p, note=STORE_NOTE))
    elif p.name == "darwin":
        standard = (p.mac_support / "krita", p.home / "Library" / "Preferences" / "kritarc")
    else:
        # The distribution package and the AppImage share the XDG folders.
        standard = (p.xdg_data / "krita", p.xdg_config / "kritarc")
        app = p.home / ".var" / "app" / KRITA_FLATPAK
        if flatpak_present(p, KRITA_FLATPAK) and ((app / "data" / "krita").is_dir()
                                                 or (app / "config" / "kritarc").is_file()):
            found.append(_krita(FLATPAK, app / "data" / "krita", app / "config" / "kritarc",
                                p, native=False, flatpak=KRITA_FLATPAK))
        seen = set()
        for data in _snap_folders(p, "krita", ".local/share/krita"):
            if data.resolve() not in seen:  # "current" links to a revision folder
                seen.add(data.resolve())
                found.append(Found("Krita", SNAP, data, native=False, install=False,
                                   note=SNAP_NOTE))
    has_standard = standard[0].is_dir() or standard[1].is_file()
    if has_standard:
        found.insert(0, _krita(STANDARD, standard[0], standard[1], p))
    for library in _steam_libraries(p):
        krita = library / "steamapps" / "common" / "Krita"
        if krita.is_dir():
            found.append(Found("Krita", STEAM, krita, install=False, note=_steam_note(
                p, standard[0] if not has_standard else found[0].folder, has_standard)))
    return _unique(found)


def _steam_note(p: Platform, folder: Path, has_standard: bool) -> str:
    if not has_standard:
        return (f"Krita from Steam keeps its resources in {folder}, which does not exist "
                "yet: start Krita once, then run the installer again")
    note = f"Krita from Steam reads the standard resource folder {folder}: the plug-in there " \
           "serves it (untested with Steam's build)"
    if p.name not in ("win32", "darwin"):
        note += ("; should Steam run it inside its runtime container, bgmask's environment "
                 "cannot start there: then use Krita from your distribution or Flathub")
    return note


def _unique(found: list[Found]) -> list[Found]:
    """One entry per folder (GIMP3_DIRECTORY may name a standard profile): the first wins."""
    seen: set[Path] = set()
    kept = []
    for entry in found:
        key = entry.folder.resolve() if entry.folder.exists() else entry.folder
        if key not in seen or not entry.install:
            seen.add(key)
            kept.append(entry)
    return kept


# -- folders the user names -----------------------------------------------------------------

def classify(folder: Path, p: Platform, detected: list[Found], editor: str,
             kritarc: Path | None = None) -> Found:
    """A folder given on the command line: as detected when it is a known one, else by where
    it lies (a Flatpak's, a Snap's or a Store app's folder, or the user's own)."""
    folder = folder.expanduser()
    for entry in detected:
        if entry.folder == folder or (folder.exists() and entry.folder.exists()
                                      and entry.folder.resolve() == folder.resolve()):
            return replace(entry, install=True, kritarc=kritarc or entry.kritarc,
                           note=entry.note if entry.install else "")
    name = editor if not editor.startswith("GIMP") or not GIMP_SERIES.match(folder.name) \
        else f"GIMP {folder.name}"
    parts = folder.parts
    home = p.home.parts
    inside = parts[len(home):] if parts[:len(home)] == home else ()
    if len(inside) > 2 and inside[:2] == (".var", "app"):
        return Found(name, FLATPAK, folder, kritarc, native=False, flatpak=inside[2])
    if len(inside) > 1 and inside[0] == "snap":
        return Found(name, SNAP, folder, kritarc, native=False,
                     note="installed as asked, but " + SNAP_NOTE.removeprefix("not installed: "))
    packages = (p.local_appdata / "Packages").parts
    if parts[:len(packages)] == packages:
        return Found(name, STORE, folder, kritarc, note=STORE_NOTE)
    return Found(name, CUSTOM, folder, kritarc)
