#!/usr/bin/python3
"""A stand-in for ``flatpak run`` in tests: bubblewrap around a Debian chroot's /usr.

It builds the sandbox Flatpak 1.16 builds for an app with Flathub GIMP's permissions, as far
as bgmask can tell the difference: the host's /usr and /etc hidden and the "runtime's" (the
chroot's) in their place; the home folder shared (``--filesystem=host`` includes it; the rest
of the host is not shared here); ``$XDG_CONFIG_HOME``, ``$XDG_DATA_HOME`` and
``$XDG_CACHE_HOME`` in ``~/.var/app/ID``; the host's ``$XDG_CONFIG_HOME/GIMP`` mounted over
``~/.var/app/ID/config/GIMP`` (``xdg-config/GIMP:create``); a private ``/run/user/UID`` with
``app`` a link to ``/run/flatpak/app``, where only ``$XDG_RUNTIME_DIR/app/ID`` of the host is
mounted; private /tmp, PID, IPC and UTS namespaces; the network shared; ``FLATPAK_ID`` and
``/.flatpak-info``; the caller's environment passed on, as Flatpak does, except the
variables Flatpak resets. Not reproduced: seccomp filters, the portals, D-Bus, /app.

Configured by ``fake_flatpak.json`` beside this file: {"runtime": CHROOT, "xdg_config": [...]}.
Usage as flatpak's: ``flatpak run [--command=PROGRAM] [--env=VAR=VALUE] [OPTION...] ID [ARG...]``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# What Flatpak resets or drops from the caller's environment (flatpak-run.c).
RESET = ("PATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH", "PERLLIB", "PERL5LIB",
         "XCURSOR_PATH", "GST_PLUGIN_PATH", "KRB5CCNAME", "XKB_CONFIG_ROOT", "GIO_EXTRA_MODULES",
         "GDK_PIXBUF_MODULE_FILE", "TMPDIR")


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "run":
        print(f"fake flatpak: only 'run' is simulated, not {argv[:1]}", file=sys.stderr)
        return 2
    config = json.loads((HERE / "fake_flatpak.json").read_text())
    command, env_overrides, rest = None, {}, argv[1:]
    while rest and rest[0].startswith("--"):
        option = rest.pop(0)
        if option.startswith("--command="):
            command = option.split("=", 1)[1]
        elif option.startswith("--env="):
            key, _, value = option.split("=", 1)[1].partition("=")
            env_overrides[key] = value
    if not rest:
        print("fake flatpak: no application given", file=sys.stderr)
        return 2
    app, args = rest[0], rest[1:]
    if command is None:
        print("fake flatpak: --command is required here", file=sys.stderr)
        return 2

    runtime = Path(config["runtime"])
    home = Path(os.environ["HOME"])
    uid = os.getuid()
    host_runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    app_dir = home / ".var" / "app" / app
    for sub in ("config", "data", "cache", ".local/state"):
        (app_dir / sub).mkdir(parents=True, exist_ok=True)
    # Flatpak makes the host's $XDG_RUNTIME_DIR/app/ID (0700) for the app to share sockets.
    shared = host_runtime / "app" / app
    shared.mkdir(parents=True, exist_ok=True, mode=0o700)
    shared.parent.chmod(0o700)
    # /.flatpak-info from a pipe bwrap reads: nothing is left behind on the host.
    info, write_end = os.pipe()
    os.write(write_end, f"[Application]\nname={app}\n".encode())
    os.close(write_end)
    os.set_inheritable(info, True)

    inside_runtime = f"/run/user/{uid}"
    bwrap = ["bwrap", "--unshare-all", "--share-net", "--die-with-parent",
             "--ro-bind", str(runtime / "usr"), "/usr",
             "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
             "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
             "--ro-bind", str(runtime / "etc"), "/etc",
             "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm",
             "--tmpfs", "/tmp", "--tmpfs", "/var", "--tmpfs", "/run",
             "--perms", "0700", "--dir", inside_runtime,
             "--bind", str(shared), f"/run/flatpak/app/{app}",
             "--symlink", "/run/flatpak/app", f"{inside_runtime}/app",
             "--bind", str(home), str(home),
             "--ro-bind-data", str(info), "/.flatpak-info"]
    host_config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    for name in config.get("xdg_config", []):  # e.g. xdg-config/GIMP:create
        (host_config / name).mkdir(parents=True, exist_ok=True)
        bwrap += ["--bind", str(host_config / name), str(app_dir / "config" / name)]
    env = {k: v for k, v in os.environ.items() if k not in RESET and not k.startswith("XDG_")}
    env.update({"HOME": str(home), "PATH": "/app/bin:/usr/bin", "FLATPAK_ID": app,
                "XDG_CONFIG_HOME": str(app_dir / "config"), "XDG_DATA_HOME": str(app_dir / "data"),
                "XDG_CACHE_HOME": str(app_dir / "cache"),
                "XDG_STATE_HOME": str(app_dir / ".local/state"),
                "XDG_RUNTIME_DIR": inside_runtime, "container": "flatpak", **env_overrides})
    bwrap += ["--clearenv"]
    for key, value in sorted(env.items()):
        bwrap += ["--setenv", key, value]
    cwd = Path.cwd()
    bwrap += ["--chdir", str(cwd if cwd.is_relative_to(home) else home), "--", command, *args]
    os.execvp("bwrap", bwrap)
    return 127  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
