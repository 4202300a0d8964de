# Runs inside the real Krita (through the test-only bgmask_test_driver plug-in), not pytest.
# Each scenario opens the photo, sets a document up, starts bgmask through its action or its
# docker button, waits for the job without blocking Krita's event loop, and records what the
# document looks like afterwards. Masks are written as raw files for the host test to compare.
# Runs unchanged in Krita 5.1 to 6 (PyQt5 or PyQt6: scoped enums only).
import hashlib
import json
import os
import signal
import time
import traceback

from bgmask_test_driver import qt_major
from krita import Krita, Selection

if qt_major() >= 6:
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QCheckBox, QComboBox, QLabel, QMessageBox, QPushButton
else:
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QCheckBox, QComboBox, QLabel, QMessageBox, QPushButton

WORK = os.environ["BGMASK_TEST_WORK"]
JOB = json.load(open(os.path.join(WORK, "job.json")))
APP = Krita.instance()
# A timed click waits, after opening its document, until Krita has used under a tenth of a
# core over this window (its drawing threads are done), or this many seconds at most.
SETTLE_WINDOW_MS = 300
SETTLE_LIMIT_S = 30
# Krita 5.2 selects a new view's layer only once its main loop has run (a nested event loop
# is not enough): a document is used this long after it was opened.
TURN_MS = 200
results = {}
_keep = []


def open_photo(name, then, path=None):
    """Opens the photo in a new view, then calls ``then(doc, layer)`` from Krita's main loop
    with the photo's layer active."""
    if path is not None:
        APP.setBatchmode(True)  # an import that would ask something takes its defaults
    doc = APP.openDocument(path or JOB["photo"])
    APP.setBatchmode(False)
    APP.activeWindow().addView(doc)
    if path is None:
        doc.setName(name)
    doc.waitForDone()
    layer = [n for n in doc.rootNode().childNodes() if n.type() == "paintlayer"][-1]

    def ready():
        doc.setActiveNode(layer)
        then(doc, layer)
    later(ready)


def later(then, ms=TURN_MS):
    QTimer.singleShot(ms, then)


def digest(node):
    r = node.bounds()
    return hashlib.sha256(bytes(node.pixelData(r.x(), r.y(), r.width(), r.height()))).hexdigest()


def masks_of(node):
    return [c for c in node.childNodes() if c.type() == "transparencymask"]


def save_mask(name, layer):
    masks = masks_of(layer)
    if not masks:
        return None
    r = layer.bounds()
    data = bytes(masks[-1].pixelData(r.x(), r.y(), r.width(), r.height()))
    path = os.path.join(WORK, f"{name}.mask")
    with open(path, "wb") as f:
        f.write(data)
    return {"file": path, "x": r.x(), "y": r.y(), "width": r.width(), "height": r.height(),
            "count": len(masks)}


def runner():
    from bgmask_krita.job import RUNNER
    return RUNNER


def docker_widget(kind, name):
    return APP.activeWindow().qwindow().findChild(kind, name)


def start_with(how):
    if how == "action":
        APP.action("bgmask_remove_background").trigger()
    else:
        docker_widget(QPushButton, "bgmask_run").click()


def after_job(then, timeout=240.0):
    """Calls then(result, busy_seen) once the running job ends, polling from a Qt timer."""
    began = time.time()
    seen = {"busy": runner().busy,
            "button_disabled": not docker_widget(QPushButton, "bgmask_run").isEnabled()}

    def poll():
        if runner().busy and time.time() - began < timeout:
            QTimer.singleShot(20, poll)
            return
        then(runner().last, seen)

    QTimer.singleShot(20, poll)


# -- scenarios: each calls step(next) -------------------------------------------------------

def scenario_action(done):
    def opened(doc, layer):
        before = digest(layer)
        runner().last = None
        start_with("action")

        def check(result, seen):
            r = {"ok": result.ok, "message": result.message, "provider": result.provider,
                 "ui_free_while_running": seen["busy"], "mask": save_mask("action", layer),
                 "pixels_unchanged": digest(layer) == before,
                 "sigpipe_ignored": signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN}
            APP.action("edit_undo").trigger()
            doc.waitForDone()
            r["masks_after_one_undo"] = len(masks_of(layer))
            results["action"] = r
            done()
        after_job(check)
    open_photo("action", opened)


def scenario_hint(done):
    """A rectangle selected around the small subject the network misses on the whole photo."""
    def opened(doc, layer):
        hint = Selection()
        hint.select(*JOB["hint_box"], 255)
        doc.setSelection(hint)
        before = digest(layer)
        start_with("action")

        def check(result, seen):
            results["hint"] = {"ok": result.ok, "message": result.message,
                               "mask": save_mask("hint", layer),
                               "pixels_unchanged": digest(layer) == before}
            done()
        after_job(check)
    open_photo("hint", opened, JOB["hint_photo"])


def scenario_docker(done):
    def opened(doc, layer):
        start_with("docker")

        def check(result, seen):
            results["docker"] = {"ok": result.ok, "message": result.message,
                                 "button_disabled_while_running": seen["button_disabled"],
                                 "status": docker_widget(QLabel, "bgmask_status").text(),
                                 "mask": save_mask("docker", layer)}
            done()
        after_job(check)
    open_photo("docker", opened)


def scenario_colour_space(model, depth, profile):
    def run(done):
        def opened(doc, layer):
            doc.setColorSpace(model, depth, profile)
            doc.waitForDone()
            before = digest(layer)
            space = [layer.colorModel(), layer.colorDepth()]
            start_with("action")

            def check(result, seen):
                results[f"{model}{depth}"] = {
                    "ok": result.ok, "message": result.message, "space": space,
                    "mask": save_mask(f"{model}{depth}", layer),
                    "pixels_unchanged": digest(layer) == before,
                    "space_unchanged": [layer.colorModel(), layer.colorDepth()] == space}
                done()
            after_job(check)
        open_photo(f"{model}{depth}", opened)
    return run


def scenario_offset(done):
    def opened(doc, layer):
        layer.move(40, 25)
        doc.waitForDone()
        start_with("action")

        def check(result, seen):
            results["offset"] = {"ok": result.ok, "message": result.message,
                                 "mask": save_mask("offset", layer)}
            done()
        after_job(check)
    open_photo("offset", opened)


def scenario_two_layers(done):
    def opened(doc, layer):
        second = layer.duplicate()
        second.setName("copy")
        doc.rootNode().addChildNode(second, layer)
        doc.waitForDone()
        later(lambda: select(second, layer))

    def select(second, layer):
        APP.action("select_all_layers").trigger()
        later(lambda: start(second, layer))

    def start(second, layer):
        start_with("docker")

        def check(result, seen):
            results["two_layers"] = {"ok": result.ok, "message": result.message,
                                     "first": save_mask("two_first", layer),
                                     "second": save_mask("two_second", second)}
            done()
        after_job(check)
    open_photo("two", opened)


def scenario_existing(done):
    def opened(doc, layer):
        APP.action("add_new_transparency_mask").trigger()
        doc.waitForDone()
        old = masks_of(layer)[-1]
        r = layer.bounds()
        w, h = r.width(), r.height()
        old.setPixelData(bytes([0] * (w // 2) + [255] * (w - w // 2)) * h, r.x(), r.y(), w, h)
        combo = docker_widget(QComboBox, "bgmask_existing")
        combo.setCurrentIndex(combo.findData("intersect"))
        start_with("docker")

        def check(result, seen):
            results["intersect"] = {"ok": result.ok, "message": result.message,
                                    "mask": save_mask("intersect", layer)}
            combo.setCurrentIndex(combo.findData("replace"))
            done()
        after_job(check)
    open_photo("existing", opened)


def scenario_failure(done):
    def opened(doc, layer):
        before = (digest(layer), len(doc.rootNode().childNodes()), len(layer.childNodes()))
        start_with("action")

        def check(result, seen):
            box = APP.activeWindow().qwindow().findChild(QMessageBox, "bgmask_error")
            after = (digest(layer), len(doc.rootNode().childNodes()), len(layer.childNodes()))
            results["failure"] = {"ok": result.ok, "message": result.message,
                                  "unchanged": after == before,
                                  "message_box": box.text() if box is not None else None}
            done()
        after_job(check)
    open_photo("failure", opened)


def when_idle(then):
    """Call ``then`` once this Krita process (all its threads) has gone quiet."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    last = time.process_time()

    def check():
        nonlocal last
        now = time.process_time()
        used, last = now - last, now
        if used < 0.1 * SETTLE_WINDOW_MS / 1000 or time.monotonic() > deadline:
            then()
        else:
            QTimer.singleShot(SETTLE_WINDOW_MS, check)
    QTimer.singleShot(SETTLE_WINDOW_MS, check)


def scenario_timing(done):
    """Seconds from the action to the mask in place, for repeated clicks on fresh documents
    (the document load is not timed); the first click starts the worker. Each click waits
    until Krita has drawn the new document (canvas, thumbnails): a user clicks on a photo
    already on screen, and that drawing would otherwise share the CPU with the worker."""
    clicks = []
    phases = []

    def click():
        if len(clicks) == JOB.get("clicks", 3):
            results["timing"] = {"ok": True, "clicks": clicks, "phases": phases}
            done()
            return
        open_photo(f"timing{len(clicks)}", lambda doc, _: when_idle(lambda: click_on(doc)))

    def click_on(doc):
        start = time.perf_counter()
        start_with("action")

        def check(result, seen):
            if not result.ok:
                results["timing"] = {"ok": False, "message": result.message}
                done()
                return
            clicks.append(time.perf_counter() - start)
            phases.append(result.phases)
            doc.setModified(False)
            doc.close()
            click()
        after_job(check, timeout=600)
    click()


def own_workers():
    """This Krita's bgmask worker processes (children of this process)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = open(f"/proc/{pid}/status").read()
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        parent = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")]
        if b"bgmask.worker" in cmd and parent == [str(os.getpid())]:
            found.append(int(pid))
    return found


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def scenario_killed_worker(done):
    """The worker is killed while it masks: an error, the document as it was; the next click
    starts a fresh worker and succeeds."""
    import signal

    state = {"killed": []}

    def opened(doc, layer):
        doc.scaleImage(layer.bounds().width() * 6, layer.bounds().height() * 6, 72, 72,
                       "bilinear")
        doc.waitForDone()
        state["layer"] = layer
        state["before"] = (digest(layer), len(layer.childNodes()))
        state["baseline"] = {pid: cpu_ticks(pid) for pid in own_workers()}  # warm, idle
        start_with("action")
        QTimer.singleShot(0, kill)
        after_job(first)

    def kill():
        """Kills the worker as soon as it is busy with this click (polled off the UI's back)."""
        baseline = state["baseline"]
        for pid in own_workers():
            if cpu_ticks(pid) - baseline.setdefault(pid, cpu_ticks(pid)) >= 3:
                os.kill(pid, signal.SIGKILL)
                state["killed"].append(pid)
        if not state["killed"] and runner().busy:
            QTimer.singleShot(10, kill)

    def first(result, seen):
        layer = state["layer"]
        state["first"] = {"ok": result.ok, "message": result.message,
                          "unchanged": (digest(layer), len(layer.childNodes())) == state["before"]}
        start_with("action")
        after_job(second)

    def second(result, seen):
        layer = state.pop("layer")
        del state["before"], state["baseline"]
        results["killed_worker"] = {**state, "second": {
            "ok": result.ok, "message": result.message, "masks": len(masks_of(layer))}}
        done()

    open_photo("killed", opened)


def scenario_big_layer(done):
    """A layer larger than the 1024 px the network sees: read scaled down, mask at full size.
    Its full-size pixels are saved for the host to compute the core's mask from."""
    def opened(doc, layer):
        doc.scaleImage(layer.bounds().width() * 4, layer.bounds().height() * 4, 72, 72,
                       "bicubic")
        doc.waitForDone()
        r = layer.bounds()
        path = os.path.join(WORK, "big.bgra")
        with open(path, "wb") as f:
            f.write(bytes(layer.pixelData(r.x(), r.y(), r.width(), r.height())))
        start_with("action")

        def check(result, seen):
            results["big_layer"] = {"ok": result.ok, "message": result.message,
                                    "pixels": path, "mask": save_mask("big", layer)}
            done()
        after_job(check)
    open_photo("big", opened)


def scenario_camera(done):
    """Camera-size photos opened as a user opens them (a JPEG, a PNG with alpha, a 16-bit
    PNG), each masked through the action: its mask, the click's seconds."""
    queue = list(JOB["camera"].items())

    def next_photo():
        if not queue:
            done()
            return
        name, path = queue.pop(0)
        open_photo(name, lambda doc, layer: click(name, doc, layer), path=path)

    def click(name, doc, layer):
        before = digest(layer)
        # The pixels Krita holds, for the host to compute the core's mask from.
        r = layer.bounds()
        pixels = os.path.join(WORK, f"camera_{name}.pixels")
        with open(pixels, "wb") as f:
            f.write(bytes(layer.pixelData(r.x(), r.y(), r.width(), r.height())))
        start = time.perf_counter()
        start_with("action")

        def check(result, seen):
            results.setdefault("camera", {})[name] = {
                "ok": result.ok, "message": result.message,
                "click_seconds": time.perf_counter() - start,
                "depth": layer.colorDepth(), "pixels": pixels,
                "mask": save_mask(f"camera_{name}", layer),
                "pixels_unchanged": digest(layer) == before}
            APP.action("edit_undo").trigger()
            doc.waitForDone()
            results["camera"][name]["masks_after_one_undo"] = len(masks_of(layer))
            doc.setModified(False)
            doc.close()
            next_photo()
        after_job(check, timeout=600)

    next_photo()


def save_pixels(name, node, r):
    """``node``'s pixels over the rectangle ``r``, as Krita holds them, in a file."""
    path = os.path.join(WORK, f"{name}.pixels")
    with open(path, "wb") as f:
        f.write(bytes(node.pixelData(r.x(), r.y(), r.width(), r.height())))
    return path


def scenario_decontaminate(done):
    """The new-layer output with clean edge colours, through the docker: the checkbox follows
    the output; for each case (a photo file, or the small photo converted to a colour space),
    the new layer's pixels and mask, the user's layer as it was, then one undo."""
    cases = list(JOB["decontaminate"])
    output = docker_widget(QComboBox, "bgmask_output")
    clean = docker_widget(QCheckBox, "bgmask_decontaminate")
    found = results["decontaminate"] = {"checkbox": {}}
    output.setCurrentIndex(output.findData("mask"))
    found["checkbox"]["enabled_for_mask"] = clean.isEnabled()
    output.setCurrentIndex(output.findData("layer"))
    found["checkbox"]["enabled_for_layer"] = clean.isEnabled()
    clean.setChecked(True)

    def next_case():
        if not cases:
            found["saved"] = APP.readSetting("bgmask", "decontaminate", "")
            output.setCurrentIndex(output.findData("mask"))
            clean.setChecked(False)
            done()
            return
        case = cases.pop(0)
        open_photo(f"clean {case['name']}", lambda doc, layer: click(case, doc, layer),
                   path=case.get("path"))

    def click(case, doc, layer):
        name = case["name"]
        if case.get("space"):
            doc.setColorSpace(*case["space"])
            doc.waitForDone()
        r = layer.bounds()
        before = digest(layer)
        info = found[name] = {"depth": layer.colorDepth(),
                              "width": r.width(), "height": r.height()}
        if case.get("files"):
            info["pixels"] = save_pixels(f"clean_{name}", layer, r)
        start_with("docker")

        def copies():
            return [n for n in doc.rootNode().childNodes()
                    if n.name() == layer.name() + " (bgmask)"]

        def check(result, seen):
            info.update({"ok": result.ok, "message": result.message,
                         "pixels_unchanged": digest(layer) == before,
                         "masks_on_layer": len(masks_of(layer)), "copies": len(copies())})
            if copies():
                copy = copies()[-1]
                masks = masks_of(copy)
                info["copy_masks"] = len(masks)
                data = bytes(copy.pixelData(r.x(), r.y(), r.width(), r.height()))
                info["copy_equals_layer"] = data == bytes(
                    layer.pixelData(r.x(), r.y(), r.width(), r.height()))
                if case.get("files"):
                    info["copy"] = {"pixels": save_pixels(f"clean_{name}_copy", copy, r)}
                    if masks:
                        info["mask"] = {"file": save_pixels(f"clean_{name}_mask", masks[-1], r),
                                        "width": r.width(), "height": r.height()}
            APP.action("edit_undo").trigger()
            doc.waitForDone()
            info["copies_after_one_undo"] = len(copies())
            info["copy_masks_after_one_undo"] = [len(masks_of(c)) for c in copies()]
            info["layers_after_one_undo"] = [n.name() for n in doc.rootNode().childNodes()]
            if copies():  # Krita 5.1: the mask (made by its action) is a step of its own
                APP.action("edit_undo").trigger()
                doc.waitForDone()
                info["copies_after_two_undos"] = len(copies())
            doc.setModified(False)
            doc.close()
            next_case()
        after_job(check, timeout=600)

    next_case()


def scenario_two_documents(done):
    """The action on one document, then on a second while the first still masks (Krita
    switches the active document through its event loop, hence the short timers)."""
    state = {"messages": []}
    docs = {}
    runner().finished.connect(lambda r: state["messages"].append([r.ok, r.message]))

    def show(doc):
        window = APP.activeWindow()
        view = next(v for v in window.views() if v.document() == doc)
        window.showView(view)
        view.setVisible()

    def opened(name, doc, layer):
        docs[name] = (doc, layer)
        if len(docs) == 1:
            open_photo("second document", lambda d, n: opened("second", d, n))
            return
        show(docs["first"][0])
        QTimer.singleShot(150, click_first)

    def click_first():
        first_doc, first = docs["first"]
        first_doc.setActiveNode(first)
        start_with("action")
        state["busy_after_first"] = runner().busy
        show(docs["second"][0])
        QTimer.singleShot(150, click_second)

    def click_second():
        second_doc, second = docs["second"]
        state["active_before_second"] = APP.activeDocument().name()
        second_doc.setActiveNode(second)
        start_with("action")
        state["targets"] = [j.doc.name() for j in runner().jobs]
        after_job(check)

    def check(result, seen):
        results["two_documents"] = {
            "ok": result.ok, "message": result.message, **state,
            "first": save_mask("doc_first", docs["first"][1]),
            "second": save_mask("doc_second", docs["second"][1])}
        done()

    open_photo("first document", lambda d, n: opened("first", d, n))


SCENARIOS = {
    "camera": scenario_camera,
    "decontaminate": scenario_decontaminate,
    "big_layer": scenario_big_layer,
    "killed_worker": scenario_killed_worker,
    "two_documents": scenario_two_documents,
    "timing": scenario_timing,
    "action": scenario_action, "docker": scenario_docker, "hint": scenario_hint,
    "RGBAU16": scenario_colour_space("RGBA", "U16", "sRGB-elle-V2-g10.icc"),
    "CMYKAU8": scenario_colour_space("CMYKA", "U8", "Chemical proof"),
    "offset": scenario_offset, "two_layers": scenario_two_layers,
    "existing": scenario_existing, "failure": scenario_failure,
}


def main():
    queue = [SCENARIOS[name] for name in JOB["scenarios"]]
    # The docker must exist for its button: show it like a user would.
    dock = next((d for d in APP.dockers() if d.objectName() == "bgmask_docker"), None)
    if dock is not None:
        dock.show()

    def step():
        if not queue:
            finish(results)  # noqa: F821 (given by the bgmask_test_driver plug-in)
            return
        scenario = queue.pop(0)
        # Which scenario was running when a Krita died without a result.
        with open(os.path.join(WORK, "progress.txt"), "a") as f:
            f.write(scenario.__name__ + "\n")
        try:
            scenario(lambda: QTimer.singleShot(0, step))
        except Exception:  # noqa: BLE001 (recorded; the other scenarios still run)
            results[scenario.__name__] = {"exception": traceback.format_exc()}
            QTimer.singleShot(0, step)

    step()
