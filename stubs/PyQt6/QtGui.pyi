"""The parts of PyQt6.QtGui the Krita plug-in uses (see stubs/README.md)."""

from typing import ClassVar

from PyQt6.QtCore import QObject, pyqtSignal

class QAction(QObject):
    triggered: ClassVar[pyqtSignal]
    def trigger(self) -> None: ...
