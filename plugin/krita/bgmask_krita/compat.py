"""Which Krita this plug-in supports, and which Qt it runs on (no Qt import: testable anywhere).

Krita 5.1 up to 6.x: Krita 5 embeds Qt 5 and PyQt5, Krita 6 Qt 6 and PyQt6. The Qt major
decides (a later Krita on Qt 6 is accepted); the version only rules out Krita before 5.1.
"""

from __future__ import annotations

import re
import sys

OLDEST = (5, 1)
QT_MAJORS = (5, 6)
SUPPORTED_RANGE = "Krita 5.1 up to 6.x (Qt 5 or Qt 6)"


def parse_version(text: str) -> tuple[int, int]:
    match = re.match(r"\s*(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def qt_major() -> int:
    """The Qt major Krita runs on. Krita imports its ``pykrita`` module and its binding before
    any plug-in; 5.3 and later name the major there, 5.1 and 5.2 (Qt 5) do not."""
    named = getattr(sys.modules.get("pykrita"), "qt_major_version", None)
    if named is not None:
        return int(named())
    return 6 if "PyQt6" in sys.modules else 5


def unsupported_reason(version: str, qt: int | None = None) -> str | None:
    """None when this Krita is supported, else the message the user sees."""
    qt = qt_major() if qt is None else qt
    if parse_version(version) >= OLDEST and qt in QT_MAJORS:
        return None
    return (f"bgmask supports {SUPPORTED_RANGE}; this is Krita {version or 'unknown'} on "
            f"Qt {qt}. The plug-in is disabled: install a supported Krita, or a bgmask "
            "release for it.")
