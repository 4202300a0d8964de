"""One "Remove Background" run: pixels are read and masks written on Krita's UI thread, the
worker is waited for on a Python thread, so Krita stays responsive while the network runs."""

from __future__ import annotations

import threading
import time

from bgmask.host.client import MaskReply
from bgmask.host.errors import BgmaskError
from bgmask.host.job import (
    CLOSED,
    NO_LAYER,
    JobSettings,
    PhaseTimer,
    done_message,
    failure_message,
)
from krita import Krita, Node

from . import host
from .qt import QMessageBox, QObject, Qt, QTimer, pyqtSignal
from .state import SESSION, WorkerSession

FRONT_TRIES, FRONT_WAIT_MS = 40, 50


class JobResult:
    def __init__(self, ok: bool, message: str, provider: str = "",
                 phases: dict[str, float] | None = None) -> None:
        self.ok, self.message, self.provider = ok, message, provider
        self.phases = phases or {}  # seconds spent reading, in the worker, writing


class MaskJob(QObject):
    """Signals cross from the waiting thread to the UI thread (queued connections)."""

    progressed = pyqtSignal(float, str)
    _replied = pyqtSignal(object, object)  # list of MaskReply or None, error text or None
    finished = pyqtSignal(object)  # JobResult

    def __init__(self, settings: JobSettings, session: WorkerSession = SESSION) -> None:
        super().__init__()
        self.settings, self.session = settings, session
        self._replied.connect(self._apply, Qt.ConnectionType.QueuedConnection)
        self._started = 0.0
        self._return_to = None  # the view the user was on, when a write brought ours forward
        self.timer = PhaseTimer()
        self.provider = ""
        self.notice: str | None = None

    def start(self) -> None:
        """Reads the layers (UI thread) and hands them to the worker; ``finished`` follows."""
        self._started = time.perf_counter()
        self.timer = PhaseTimer()
        doc = Krita.instance().activeDocument()
        if doc is None:
            self._finish(False, "Open a document first.")
            return
        self.doc = doc
        self.layers = host.target_layers(doc)
        if not self.layers:
            self._finish(False, NO_LAYER)
            return
        # Read before anything is written: the "selection" output replaces the selection.
        hint = doc.selection() if self.settings.use_selection else None
        try:
            self.inputs = [host.read_layer(layer, self.settings.combines_existing, hint)
                           for layer in self.layers]
        except (BgmaskError, MemoryError) as exc:
            self._finish(False, failure_message(exc))
            return
        self.timer.lap("read")
        self.progressed.emit(0.0, "starting bgmask...")
        threading.Thread(target=self._wait_for_worker, name="bgmask-job", daemon=True).start()

    def _wait_for_worker(self) -> None:
        # No Krita call here: this is not the UI thread (signals carry the results over).
        try:
            replies = self.session.masks([p.sent for p in self.inputs], self.settings,
                                         self.progressed.emit)
            if replies:
                self.provider, self.notice = replies[-1].provider, replies[-1].notice
            self._replied.emit(replies, None)
        except Exception as exc:  # noqa: BLE001 (a bug must never take Krita down)
            self._replied.emit(None, failure_message(exc))

    def _apply(self, replies: list[MaskReply] | None, error: str | None) -> None:
        self.timer.lap("worker")
        if replies is None:
            self._finish(False, error or "bgmask failed")
            return
        if self.doc not in Krita.instance().documents():
            self._finish(False, CLOSED)
            return
        self._write_when_in_front(replies, FRONT_TRIES)

    def _write_when_in_front(self, replies: list[MaskReply], tries: int,
                             copies: list[Node] | None = None, notes: list[str] | None = None
                             ) -> None:
        """On Krita 5.1 the user may have switched documents while the worker ran: bring this
        job's document forward, wait for Krita to switch, write, then go back. There a new
        layer gets its mask a turn of the event loop after it joins the image."""
        if host.needs_front(self.doc, self.settings.output) and \
                host.front_view(self.doc) is None:
            if tries == 0:
                self._finish(False, "Krita did not switch to the document to add its mask: "
                                    "show it and click Remove Background again.")
                return
            try:
                previous = host.bring_to_front(self.doc)
            except BgmaskError as exc:
                self._finish(False, str(exc))
                return
            if self._return_to is None:
                self._return_to = previous
            QTimer.singleShot(FRONT_WAIT_MS,
                              lambda: self._write_when_in_front(replies, tries - 1, copies,
                                                                notes))
            return
        if copies is None and host.needs_turn(self.doc, self.settings.output):
            try:
                copies, notes = host.add_copies(self.inputs, replies, self.settings)
            except BgmaskError as exc:
                host.show_view(self._return_to)
                self._finish(False, str(exc))
                return
            QTimer.singleShot(FRONT_WAIT_MS, lambda: self._write_when_in_front(
                replies, tries, copies, notes))
            return
        try:
            self._write(replies, copies, notes or [])
        finally:
            host.show_view(self._return_to)

    def _write(self, replies: list[MaskReply], copies: list[Node] | None,
               notes: list[str]) -> None:
        try:
            notes = notes + host.write_masks(self.doc, self.inputs, replies, self.settings,
                                             copies)
        except BgmaskError as exc:
            self._finish(False, str(exc))
            return
        self.timer.lap("write")
        self.timer.save()
        seconds = time.perf_counter() - self._started
        self._finish(True, "; ".join([done_message(len(replies), seconds, self.notice),
                                      *notes]))

    def _finish(self, ok: bool, message: str) -> None:
        self.finished.emit(JobResult(ok, message, self.provider, dict(self.timer.phases)))


class JobRunner(QObject):
    """Starts jobs for the docker and the action. Each job reads its layers when it starts, so
    a click on a second document while the first is masking gets its own job; the worker
    session serves them one after the other. Failures also get a message box that says what to
    do (the docker shows them in its status line as well)."""

    started = pyqtSignal()
    progressed = pyqtSignal(float, str)
    finished = pyqtSignal(object)  # JobResult

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[MaskJob] = []
        self.last: JobResult | None = None

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    def run(self, settings: JobSettings) -> None:
        job = MaskJob(settings)
        self.jobs.append(job)
        job.progressed.connect(self.progressed)
        job.finished.connect(lambda result, job=job: self._done(job, result))
        self.started.emit()
        job.start()

    def _done(self, job: MaskJob, result: JobResult) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        self.last = result
        self.finished.emit(result)
        if not result.ok:
            show_error(result.message)


def show_error(message: str) -> None:
    window = Krita.instance().activeWindow()
    parent = window.qwindow() if window is not None else None
    box = QMessageBox(QMessageBox.Icon.Warning, "bgmask", message,
                      QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("bgmask_error")
    box.open()  # not modal-blocking: tests and users can carry on


RUNNER = JobRunner()
