"""The "Remove Background (bgmask)" action (Tools > Scripts, can take a shortcut); it runs
with the docker's last settings. Also the message shown when this Krita is not supported."""

from __future__ import annotations

from krita import Extension, Krita

from .compat import qt_major

ACTION_ID = "bgmask_remove_background"


class BgmaskExtension(Extension):
    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:  # noqa: N802, ANN001 (Krita's API)
        action = window.createAction(ACTION_ID, "Remove Background (bgmask)", "tools/scripts")
        action.triggered.connect(self.remove_background)

    def remove_background(self) -> None:
        from .job import RUNNER
        from .state import load_settings

        RUNNER.run(load_settings())


def refuse(reason: str) -> None:
    """Tells the user once, when the first window opens, why the plug-in is not active."""
    def tell() -> None:
        # Only QtWidgets, of the binding Krita runs (Krita 5.3 and 6 refuse the other one).
        if qt_major() >= 6:
            from PyQt6.QtWidgets import QMessageBox
        else:
            from PyQt5.QtWidgets import QMessageBox

        window = Krita.instance().activeWindow()
        QMessageBox.warning(window.qwindow() if window else None, "bgmask", reason)

    Krita.instance().notifier().windowCreated.connect(tell)
