"""Test-only Krita plug-in: once the main window exists, runs the script named by
$BGMASK_KRITA_DRIVER, which calls ``finish(result)`` when done (possibly later, from a Qt
timer); the result is written as JSON to $BGMASK_TEST_WORK/result.json and Krita exits."""

import json
import os
import sys
import traceback

from krita import Krita


def qt_major():
    """Krita 5.3+ names its Qt; 5.1 and 5.2 do not, and every Krita imported its binding
    before any plug-in (Krita 5.3 and 6 refuse the other one)."""
    try:
        import pykrita

        return int(pykrita.qt_major_version())
    except (ImportError, AttributeError):
        return 6 if "PyQt6" in sys.modules else 5


if qt_major() >= 6:
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication, QLabel
else:
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication, QLabel

WORK = os.environ.get("BGMASK_TEST_WORK", "")
DRIVER = os.environ.get("BGMASK_KRITA_DRIVER", "")
WATCHDOG_MS = int(os.environ.get("BGMASK_KRITA_WATCHDOG_MS", "240000"))
_timers = []


def finish(result):
    with open(os.path.join(WORK, "result.json"), "w") as f:
        json.dump(result, f, indent=1, default=repr)
    for doc in Krita.instance().documents():
        doc.setModified(False)
    # QApplication.quit() segfaults in Krita 5.1; leaving the process directly is reliable.
    os._exit(0)


def start():
    try:
        namespace = {"finish": finish, "__name__": "bgmask_driver"}
        with open(DRIVER) as f:
            exec(compile(f.read(), DRIVER, "exec"), namespace)
        namespace["main"]()
    except Exception:  # noqa: BLE001 (reported as the test's result)
        finish({"exception": traceback.format_exc()})


def visible_windows():
    """What is on screen when the driver is stuck (a modal dialog, most often)."""
    found = []
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible():
            texts = [label.text() for label in widget.findChildren(QLabel) if label.text()]
            found.append({"class": type(widget).__name__, "title": widget.windowTitle(),
                          "modal": widget.isModal(), "texts": texts[:10]})
    return found


def on_window():
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(start)
    timer.start(500)
    watchdog = QTimer()
    watchdog.setSingleShot(True)
    watchdog.timeout.connect(lambda: finish({"exception": "watchdog: the driver never finished",
                                             "windows": visible_windows()}))
    watchdog.start(WATCHDOG_MS)
    _timers.extend([timer, watchdog])


if DRIVER and WORK:
    Krita.instance().notifier().windowCreated.connect(on_window)
