"""Telling the Microsoft Store's Python apart on Windows.

Windows runs the Store's Python as a packaged app: its writes to AppData land in its own
package folder (``%LOCALAPPDATA%\\Packages\\PythonSoftwareFoundation.Python.3.X_...``), where
GIMP and Krita never look, so an environment or plug-in it installed would be invisible to
them. Its interpreter lives under ``WindowsApps`` (the app-execution alias in
``%LOCALAPPDATA%\\Microsoft\\WindowsApps``, the files in ``C:\\Program Files\\WindowsApps``).
Standard library only; ``check_python.py`` runs this for install.ps1 before the installer.
"""

from __future__ import annotations

ADVICE = ("install Python from python.org (or run: winget install Python.Python.3.13), then "
          "run this installer again; bgmask's installer needs a Python that writes to the "
          "real AppData folder, where GIMP and Krita look")


def _normal(path: str) -> str:
    return path.replace("/", "\\").lower().rstrip("\\") + "\\"


def store_python_reason(*paths: str) -> str | None:
    """Why the Python at these paths (``sys.executable``, ``sys.prefix``,
    ``sys.base_prefix``) is the Microsoft Store's, or None when it is not."""
    for path in paths:
        text = _normal(path)
        if "\\windowsapps\\" in text or "\\packages\\pythonsoftwarefoundation.python." in text:
            return (f"{path.rstrip(chr(92))} belongs to the Microsoft Store's Python, whose "
                    "writes to AppData Windows redirects into its own package folder")
    return None
