"""PyQt5.QtWidgets: PyQt6's classes (see stubs/README.md; PyQt5 keeps QAction here, PyQt6 in
QtGui), plus the unscoped enum names that only PyQt5 has."""

from typing import ClassVar

from PyQt6.QtGui import QAction as QAction
from PyQt6.QtWidgets import QAbstractButton as QAbstractButton
from PyQt6.QtWidgets import QBoxLayout as QBoxLayout
from PyQt6.QtWidgets import QCheckBox as QCheckBox
from PyQt6.QtWidgets import QComboBox as QComboBox
from PyQt6.QtWidgets import QDialog as QDialog
from PyQt6.QtWidgets import QDockWidget as QDockWidget
from PyQt6.QtWidgets import QFormLayout as QFormLayout
from PyQt6.QtWidgets import QLabel as QLabel
from PyQt6.QtWidgets import QLayout as QLayout
from PyQt6.QtWidgets import QMainWindow as QMainWindow
from PyQt6.QtWidgets import QMessageBox as _QMessageBox
from PyQt6.QtWidgets import QProgressBar as QProgressBar
from PyQt6.QtWidgets import QPushButton as QPushButton
from PyQt6.QtWidgets import QVBoxLayout as QVBoxLayout
from PyQt6.QtWidgets import QWidget as QWidget

class QMessageBox(_QMessageBox):
    Warning: ClassVar[_QMessageBox.Icon]
    Ok: ClassVar[_QMessageBox.StandardButton]
