# Runs inside gimp-console-3.0 (python-fu-eval batch interpreter), not under pytest.
# Reads job.json from the working folder, drives bgmask's procedure through the PDB in each
# scenario, and writes result.json plus raw mask files for the test on the host to check.
# Each scenario is independent: one that raises is recorded and the others still run.
import hashlib
import json
import os
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

WORK = os.environ.get("BGMASK_TEST_WORK", os.getcwd())
JOB = json.load(open(os.path.join(WORK, "job.json")))
PROCEDURE = "python-fu-bgmask-remove-background"
results = {}


def load(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


def raw(drawable, fmt):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))


def colour_digest(layer):
    # The colour channels only: adding a mask may add an alpha channel, never changes colours.
    fmt = "Y' u16" if layer.is_gray() else "R'G'B' u16"
    return hashlib.sha256(raw(layer, fmt)).hexdigest()


def run_bgmask(image, layers, **arguments):
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if procedure is None:
        raise RuntimeError(f"{PROCEDURE} is not registered")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", layers)
    for name, value in arguments.items():
        config.set_property(name, value)
    result = procedure.run(config)
    status = result.index(0)
    message = None
    if status != Gimp.PDBStatusType.SUCCESS:
        error = result.index(1) if result.length() > 1 else None
        message = getattr(error, "message", None) or str(error)
    return status == Gimp.PDBStatusType.SUCCESS, message


def save_mask(name, layer):
    mask = layer.get_mask()
    if mask is None:
        return None
    data = raw(mask, "Y u8")
    path = os.path.join(WORK, f"{name}.mask")
    with open(path, "wb") as f:
        f.write(data)
    return {"file": path, "width": mask.get_width(), "height": mask.get_height()}


def state(image):
    """Everything a failed run must leave as it was."""
    return [(layer.get_name(), layer.get_width(), layer.get_height(), layer.get_offsets()[1:],
             layer.get_mask() is not None, layer.has_alpha(), colour_digest(layer))
            for layer in image.get_layers()]


def scenario(name):
    def wrap(fn):
        if name not in JOB["scenarios"]:
            return fn
        try:
            results[name] = fn()
        except Exception:  # noqa: BLE001 (recorded for the test to report)
            results[name] = {"exception": traceback.format_exc()}
        return fn
    return wrap


PHOTO = JOB["photo"]


@scenario("basic")
def basic():
    image = load(PHOTO)
    layer = image.get_layers()[0]
    before = colour_digest(layer)
    ok, message = run_bgmask(image, [layer])
    return {"ok": ok, "message": message, "mask": save_mask("basic", layer),
            "colours_unchanged": colour_digest(layer) == before,
            "layers": len(image.get_layers())}


@scenario("two_layers_offset")
def two_layers_offset():
    image = load(PHOTO)
    first = image.get_layers()[0]
    second = first.copy()
    image.insert_layer(second, None, 0)
    second.set_offsets(37, -21)  # partly outside the canvas
    image.resize(image.get_width() - 60, image.get_height() - 40, -10, -10)
    image.set_selected_layers([first, second])
    ok, message = run_bgmask(image, [first, second])
    return {"ok": ok, "message": message, "first": save_mask("two_first", first),
            "second": save_mask("two_second", second),
            "second_offsets": list(second.get_offsets()[1:])}


@scenario("high_depth")
def high_depth():
    out = {}
    for label, precision in (("u16", Gimp.Precision.U16_NON_LINEAR),
                             ("float", Gimp.Precision.FLOAT_LINEAR)):
        image = load(PHOTO)
        image.convert_precision(precision)
        layer = image.get_layers()[0]
        ok, message = run_bgmask(image, [layer])
        out[label] = {"ok": ok, "message": message, "mask": save_mask(f"depth_{label}", layer)}
    return out


@scenario("grayscale")
def grayscale():
    image = load(PHOTO)
    image.convert_grayscale()
    layer = image.get_layers()[0]
    before = colour_digest(layer)
    ok, message = run_bgmask(image, [layer])
    return {"ok": ok, "message": message, "mask": save_mask("gray", layer),
            "colours_unchanged": colour_digest(layer) == before}


@scenario("existing_mask")
def existing_mask():
    out = {}
    for mode in ("replace", "intersect"):
        image = load(PHOTO)
        layer = image.get_layers()[0]
        layer.add_alpha()
        old = layer.create_mask(Gimp.AddMaskType.WHITE)
        layer.add_mask(old)
        w, h = layer.get_width(), layer.get_height()
        # The left half painted out by hand.
        half = bytes([0] * (w // 2) + [255] * (w - w // 2)) * h
        old.get_buffer().set(Gegl.Rectangle.new(0, 0, w, h), "Y u8", half)
        ok, message = run_bgmask(image, [layer], existing=mode)
        out[mode] = {"ok": ok, "message": message, "mask": save_mask(f"existing_{mode}", layer)}
    return out


@scenario("group_and_text")
def group_and_text():
    image = load(PHOTO)
    layer = image.get_layers()[0]
    group = Gimp.GroupLayer.new(image, "group")
    image.insert_layer(group, None, 0)
    inner = layer.copy()
    image.insert_layer(inner, group, 0)
    out = {}
    ok, message = run_bgmask(image, [group])
    out["group"] = {"ok": ok, "message": message, "mask": save_mask("group", group)}
    font = Gimp.context_get_font()
    text = Gimp.TextLayer.new(image, "bgmask", font, 120.0, Gimp.Unit.pixel())
    image.insert_layer(text, None, 0)
    ok, message = run_bgmask(image, [text])
    out["text"] = {"ok": ok, "message": message, "has_mask": text.get_mask() is not None}
    return out


@scenario("outputs")
def outputs():
    out = {}
    image = load(PHOTO)
    layer = image.get_layers()[0]
    ok, message = run_bgmask(image, [layer], output="selection")
    empty = Gimp.Selection.is_empty(image)
    out["selection"] = {"ok": ok, "message": message, "selection_empty": empty,
                        "layer_has_mask": layer.get_mask() is not None}
    image = load(PHOTO)
    layer = image.get_layers()[0]
    ok, message = run_bgmask(image, [layer], output="layer")
    layers = image.get_layers()
    out["layer"] = {"ok": ok, "message": message, "layers": [x.get_name() for x in layers],
                    "original_has_mask": layer.get_mask() is not None,
                    "new": save_mask("new_layer", layers[0]) if len(layers) > 1 else None}
    return out


@scenario("selection_hint")
def selection_hint():
    # The user's selection as a hint (job "box": x, y, w, h in the photo's pixels): without
    # one, a rectangle, the same with the layer moved (the selection follows it on the
    # canvas), a feathered one, one that misses the layer, and mask-to-selection.
    x, y, w, h = JOB["box"]
    out = {}

    def click(name, select=None, offsets=None, feather=0, **arguments):
        image = load(PHOTO)
        layer = image.get_layers()[0]
        if offsets is not None:
            layer.set_offsets(*offsets)
        if select is not None:
            image.select_rectangle(Gimp.ChannelOps.REPLACE, *select)
            if feather:
                Gimp.Selection.feather(image, feather)
        selection = raw(image.get_selection(), "Y u8")
        ok, message = run_bgmask(image, [layer], **arguments)
        found = {"ok": ok, "message": message, "mask": save_mask(name, layer),
                 "selection_unchanged": raw(image.get_selection(), "Y u8") == selection}
        path = os.path.join(WORK, f"{name}.selection")
        with open(path, "wb") as f:
            f.write(raw(image.get_selection(), "Y u8"))
        found["selection"] = {"file": path, "width": image.get_width(),
                              "height": image.get_height()}
        return found

    out["none"] = click("hint_none")
    out["box"] = click("hint_box", (x, y, w, h))
    out["moved"] = click("hint_moved", (x - 100, y - 50, w, h), offsets=(-100, -50))
    out["feathered"] = click("hint_feathered", (x, y, w, h), feather=60)
    out["missed"] = click("hint_missed", (1120, 860, 50, 30), offsets=(-100, -50))
    out["off"] = click("hint_off", (x, y, w, h), **{"use-selection": False})
    out["to_selection"] = click("hint_to_selection", (x, y, w, h), output="selection")
    return out


@scenario("failure_leaves_image")
def failure_leaves_image():
    image = load(PHOTO)
    layer = image.get_layers()[0]
    before = state(image)
    ok, message = run_bgmask(image, [layer])
    return {"ok": ok, "message": message, "unchanged": state(image) == before}


@scenario("killed_worker")
def killed_worker():
    """The background worker is killed while it masks: the click fails with a message, the
    image is as it was, and the next click starts a fresh worker and succeeds."""
    import signal
    import threading
    import time

    image = load(PHOTO)
    layer = image.get_layers()[0]
    image.scale(layer.get_width() * 6, layer.get_height() * 6)  # a longer request to cut
    layer = image.get_layers()[0]
    before = state(image)
    killed = []
    # Start the worker first, so the killer knows its idle CPU time.
    warm = load(PHOTO)
    run_bgmask(warm, [warm.get_layers()[0]])

    def cpu_ticks(pid):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def kill_worker_soon():
        """Kills this run's background worker as soon as it starts working on the click."""
        mine = os.environ["BGMASK_RUNTIME_DIR"].encode()  # /proc here is the whole machine's
        deadline = time.time() + 20
        baseline = {}
        clicking.wait(20)  # CPU time counts from the moment the click starts
        while time.time() < deadline and not killed:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read()
                    if not (b"bgmask.worker" in cmd and b"--socket" in cmd and mine in cmd):
                        continue
                    ticks = cpu_ticks(pid)
                except OSError:
                    continue
                if ticks - baseline.setdefault(pid, ticks) >= 3:  # busy with our request
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
            time.sleep(0.01)

    clicking = threading.Event()
    killer = threading.Thread(target=kill_worker_soon)
    killer.start()
    time.sleep(0.5)  # the worker has settled after the warm-up click
    clicking.set()
    # Refinement sends the full-size layer and works longer: a request to cut in the middle.
    ok, message = run_bgmask(image, [layer], refine=True)
    killer.join()
    first = {"ok": ok, "message": message, "killed": killed,
             "unchanged": state(image) == before}
    ok, message = run_bgmask(image, [layer])
    return {"first": first, "second": {"ok": ok, "message": message,
                                       "has_mask": layer.get_mask() is not None}}


def peak_rss_watch(marker):
    """Polls /proc for GIMP's child process whose command line has ``marker`` (the bgmask
    plug-in, started per click) and keeps its VmHWM; returns (stop, result)."""
    import threading
    import time

    gimp = str(os.getppid())  # this batch interpreter and the plug-in are both GIMP's children
    seen = {"kib": 0}
    stopping = threading.Event()

    def watch():
        while not stopping.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if marker not in open(f"/proc/{pid}/cmdline", "rb").read():
                        continue
                    status = open(f"/proc/{pid}/status").read().splitlines()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status if ":" in line)
                if fields.get("PPid", "").strip() == gimp and "VmHWM" in fields:
                    seen["kib"] = max(seen["kib"], int(fields["VmHWM"].split()[0]))
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()

    def stop():
        stopping.set()
        thread.join()
        return seen["kib"] / 1024

    return stop


@scenario("camera")
def camera():
    """Camera-size photos opened as a user opens them, each masked with the default options:
    its mask for the host to compare with the core's, the click's seconds, the plug-in
    process's peak memory, and how long a plain full-size read of the layer takes."""
    import time

    out = {}
    for name, filename in JOB["camera"].items():
        image = load(os.path.join(WORK, filename))
        layer = image.get_layers()[0]
        before = colour_digest(layer)
        stop = peak_rss_watch(b"bgmask-gimp.py")
        start = time.perf_counter()
        ok, message = run_bgmask(image, [layer])
        seconds = time.perf_counter() - start
        peak = stop()
        start = time.perf_counter()
        raw(layer, "R'G'B' u8")
        out[name] = {"ok": ok, "message": message, "mask": save_mask(f"camera_{name}", layer),
                     "colours_unchanged": colour_digest(layer) == before,
                     "precision": int(image.get_precision()), "click_seconds": seconds,
                     "plugin_peak_mib": peak,
                     "full_read_seconds": time.perf_counter() - start}
        image.delete()
    return out


def save_raw(name, data):
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


@scenario("clean_colours")
def clean_colours():
    """The New-layer output with clean edge colours on camera-size photos (job
    "clean_colours": name -> file, "offsets": where to move the layer first): the pixels of the
    original layer before and after and of the new layer, in the image's own sample type, and
    the new layer's mask, for the host to compare with the core's decontamination."""
    import time

    out = {}
    for name, filename in JOB["clean_colours"].items():
        image = load(os.path.join(WORK, filename))
        layer = image.get_layers()[0]
        layer.set_offsets(*JOB["offsets"])
        eight_bit = image.get_precision() in (Gimp.Precision.U8_NON_LINEAR,
                                              Gimp.Precision.U8_PERCEPTUAL)
        fmt = "R'G'B' u8" if eight_bit else "R'G'B' u16"
        before = raw(layer, fmt)
        start = time.perf_counter()
        ok, message = run_bgmask(image, [layer], output="layer", decontaminate=True)
        seconds = time.perf_counter() - start
        layers = image.get_layers()
        new = layers[0] if len(layers) == 2 else None
        result = {"ok": ok, "message": message, "click_seconds": seconds,
                  "layers": [x.get_name() for x in layers], "format": fmt,
                  "width": layer.get_width(), "height": layer.get_height(),
                  "original_unchanged": raw(layer, fmt) == before,
                  "original_has_mask": layer.get_mask() is not None,
                  "original": save_raw(f"clean_{name}.before", before)}
        if new is not None:
            result.update(new=save_raw(f"clean_{name}.new", raw(new, fmt)),
                          mask=save_mask(f"clean_{name}", new),
                          new_offsets=list(new.get_offsets()[1:]),
                          offsets=list(layer.get_offsets()[1:]),
                          new_opaque=set(raw(new, "R'G'B'A u8")[3::4]) == {255})
        out[name] = result
        image.delete()
    return out


@scenario("timing")
def timing():
    """Click-to-mask seconds for repeated clicks, each on a freshly loaded image (the load is
    not timed): the first click starts the background worker, later ones find it warm."""
    import time

    clicks = []
    for _ in range(JOB.get("clicks", 3)):
        image = load(PHOTO)
        layer = image.get_layers()[0]
        start = time.perf_counter()
        ok, message = run_bgmask(image, [layer])
        clicks.append(time.perf_counter() - start)
        if not ok:
            return {"ok": False, "message": message}
        image.delete()
    return {"ok": True, "clicks": clicks, "width": layer.get_width(),
            "height": layer.get_height()}


with open(os.path.join(WORK, "result.json"), "w") as f:
    json.dump(results, f, indent=1)
