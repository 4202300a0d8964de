"""Which Krita versions this plug-in supports (no Krita import, so it is testable anywhere)."""

from __future__ import annotations

import re

SUPPORTED = ((5, 1), (6, 0))  # from 5.1 up to, not including, 6.0 (Qt 6 / PyQt6)


def parse_version(text: str) -> tuple[int, int]:
    match = re.match(r"\s*(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def unsupported_reason(version: str) -> str | None:
    """None when ``version`` is supported, else the message the user sees."""
    low, high = SUPPORTED
    found = parse_version(version)
    if low <= found < high:
        return None
    return (f"bgmask supports Krita 5.1 and 5.2; this is Krita {version or 'unknown'}. "
            "The plug-in is disabled: install a supported Krita, or a bgmask release for it.")
