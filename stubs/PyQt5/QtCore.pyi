"""PyQt5.QtCore: PyQt6's classes (see stubs/README.md), plus the unscoped enum names that
only PyQt5 has."""

from typing import ClassVar

from PyQt6.QtCore import QByteArray as QByteArray
from PyQt6.QtCore import QObject as QObject
from PyQt6.QtCore import QRect as QRect
from PyQt6.QtCore import Qt as _Qt
from PyQt6.QtCore import QTimer as QTimer
from PyQt6.QtCore import QUuid as QUuid
from PyQt6.QtCore import pyqtBoundSignal as pyqtBoundSignal
from PyQt6.QtCore import pyqtSignal as pyqtSignal

class Qt(_Qt):
    QueuedConnection: ClassVar[_Qt.ConnectionType]
