"""The Qt names the plug-in uses, from the binding Krita runs on: PyQt5 in Krita 5 (Qt 5),
PyQt6 in Krita 6 (Qt 6).

Krita 5.3 and 6 refuse an import of the other binding (their import hook raises
ModuleNotFoundError), so the binding is chosen by Krita's Qt major, never by trial. Code using
these names writes enums scoped (``Qt.ConnectionType.QueuedConnection``) and calls ``exec()``:
PyQt5 5.15 accepts both spellings, PyQt6 only these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .compat import qt_major

QT_MAJOR = qt_major()

# Type-checked as PyQt6 (stubs/PyQt5 re-exports the same classes).
if TYPE_CHECKING or QT_MAJOR >= 6:
    from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
    from PyQt6.QtWidgets import (
        QCheckBox,
        QComboBox,
        QFormLayout,
        QLabel,
        QMessageBox,
        QProgressBar,
        QPushButton,
        QVBoxLayout,
        QWidget,
    )
else:
    from PyQt5.QtCore import QObject, Qt, QTimer, pyqtSignal
    from PyQt5.QtWidgets import (
        QCheckBox,
        QComboBox,
        QFormLayout,
        QLabel,
        QMessageBox,
        QProgressBar,
        QPushButton,
        QVBoxLayout,
        QWidget,
    )

__all__ = ["QT_MAJOR", "QCheckBox", "QComboBox", "QFormLayout", "QLabel", "QMessageBox",
           "QObject", "QProgressBar", "QPushButton", "QTimer", "QVBoxLayout", "QWidget", "Qt",
           "pyqtSignal"]
