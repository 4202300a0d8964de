"""The bgmask docker: settings, the button, a progress bar and a status line."""

from __future__ import annotations

from bgmask.host.catalogue import CATALOGUE
from bgmask.host.job import EXISTING, OUTPUTS, QUALITIES, SETTING_NAMES, JobSettings
from krita import DockWidget

from .job import RUNNER, JobResult
from .qt import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from .state import load_settings, save_settings

DOCKER_ID = "bgmask_docker"
# Transparency mask reads better than "layer mask" in Krita's own words.
KRITA_OUTPUTS = {**OUTPUTS, "mask": "Transparency mask"}


def _combo(name: str, options: dict[str, str], current: str) -> QComboBox:
    combo = QComboBox()
    combo.setObjectName(name)
    for key, label in options.items():
        combo.addItem(label, key)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo


class BgmaskDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("bgmask")
        settings = load_settings()
        models = {r.name: f"{r.name} ({r.licence})" for r in CATALOGUE.values()}
        self.model = _combo("bgmask_model", models, settings.model)
        self.refine = QCheckBox("Refine edges")
        self.refine.setObjectName("bgmask_refine")
        self.refine.setChecked(settings.refine)
        self.quality = _combo("bgmask_quality", QUALITIES, settings.quality)
        self.invert = QCheckBox("Invert (keep the background)")
        self.invert.setObjectName("bgmask_invert")
        self.invert.setChecked(settings.invert)
        self.use_selection = QCheckBox("Look only inside the selection")
        self.use_selection.setObjectName("bgmask_use_selection")
        self.use_selection.setChecked(settings.use_selection)
        self.existing = _combo("bgmask_existing", EXISTING, settings.existing)
        self.output = _combo("bgmask_output", KRITA_OUTPUTS, settings.output)
        self.decontaminate = QCheckBox("Clean edge colours (new layer)")
        self.decontaminate.setObjectName("bgmask_decontaminate")
        self.decontaminate.setChecked(settings.decontaminate)
        self.button = QPushButton("Remove Background")
        self.button.setObjectName("bgmask_run")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.status = QLabel("Masks the selected layers on this computer.")
        self.status.setObjectName("bgmask_status")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Quality", self.quality)
        form.addRow("", self.refine)
        form.addRow("", self.invert)
        form.addRow("", self.use_selection)
        form.addRow("Existing mask", self.existing)
        form.addRow("Output", self.output)
        form.addRow("", self.decontaminate)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addWidget(self.button)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        body = QWidget()
        body.setLayout(layout)
        self.setWidget(body)

        self.output.currentIndexChanged.connect(self._output_changed)
        self._output_changed()
        self.button.clicked.connect(self.remove_background)
        RUNNER.started.connect(self._started)
        RUNNER.progressed.connect(self._progressed)
        RUNNER.finished.connect(self._finished)
        self.button.setEnabled(not RUNNER.busy)

    def canvasChanged(self, canvas) -> None:  # noqa: N802, ANN001 (Krita's API)
        pass

    def settings(self) -> JobSettings:
        # A setting this docker has no widget for keeps its default.
        widgets = {name: getattr(self, name) for name in SETTING_NAMES if hasattr(self, name)}
        return JobSettings.from_mapping({
            name: w.isChecked() if isinstance(w, QCheckBox) else w.currentData()
            for name, w in widgets.items()})

    def _output_changed(self, *_: object) -> None:
        # Only a new layer has pixels of bgmask's own to clean: a mask or a selection never
        # changes the layer's pixels. The choice is kept for when the output comes back.
        self.decontaminate.setEnabled(self.output.currentData() == "layer")

    def remove_background(self) -> None:
        settings = self.settings()
        save_settings(settings)  # the action uses the docker's last settings
        RUNNER.run(settings)

    def _started(self) -> None:
        self.button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText("starting bgmask...")

    def _progressed(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.status.setText(text)

    def _finished(self, result: JobResult) -> None:
        self.button.setEnabled(not RUNNER.busy)
        self.progress.setVisible(RUNNER.busy)
        provider = result.provider.replace("ExecutionProvider", "")
        text = result.message if result.ok else f"Error: {result.message}"
        self.status.setText(f"{text}\n[{provider}]" if provider else text)
