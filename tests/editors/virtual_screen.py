"""The editors' GUI runs go through ``xvfb-run -a``, which can hand out a display whose server
is not serving (yet, or any more: the previous run's Xvfb on the same number still going
away). The editor then fails at once, before any of the test's work; such a start is tried
again, a real failure of the editor is not."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

ATTEMPTS = 3
PAUSE_S = 2.0
# What Qt (Krita) and GTK (GIMP) print when the display they were given does not answer.
NO_DISPLAY = ("could not connect to display", "cannot open display")

Run = TypeVar("Run")


def display_missing(output: str) -> bool:
    text = output.lower()
    return any(sign in text for sign in NO_DISPLAY)


def on_a_virtual_screen(start: Callable[[], Run], output: Callable[[Run], str],
                        failed: Callable[[Run], bool]) -> Run:
    """``start()`` again (up to ATTEMPTS in all) while its run failed for want of a display."""
    for _ in range(ATTEMPTS - 1):
        run = start()
        if not (failed(run) and display_missing(output(run))):
            return run
        time.sleep(PAUSE_S)
    return start()
