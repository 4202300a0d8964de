# Runs inside the full GIMP 3 UI under Xvfb (python-fu-eval batch), not under pytest.
# Masks a layer through bgmask's procedure with the image on screen (job "arguments": the
# procedure's, e.g. the New-layer output), then presses Ctrl+Z in GIMP's window with xdotool
# (the GIMP core handles the key while this script waits) and records whether one undo step
# removed everything the plug-in added, and whether redo brings it back.
import hashlib
import json
import os
import subprocess
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

WORK = os.environ["BGMASK_TEST_WORK"]
JOB = json.load(open(os.path.join(WORK, "job.json")))
ARGUMENTS = JOB.get("arguments", {})
result = {}


def digest(layer):
    """The layer's colours (an alpha channel added for a mask never changes them)."""
    rect = Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height())
    data = layer.get_buffer().get(rect, 1.0, "R'G'B' u8", Gegl.AbyssPolicy.NONE)
    return hashlib.sha256(bytes(data)).hexdigest()


def press(keys):
    ids = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "gimp"],
                         capture_output=True, text=True).stdout.split()
    result.setdefault("windows", []).append(len(ids))
    for wid in ids[-1:]:
        subprocess.run(["xdotool", "windowactivate", "--sync", wid], capture_output=True)
        subprocess.run(["xdotool", "windowfocus", "--sync", wid], capture_output=True)
        subprocess.run(["xdotool", "key", "--clearmodifiers", keys], capture_output=True)


def wait_for(condition, seconds=15.0):
    end = time.time() + seconds
    while time.time() < end:
        if condition():
            return True
        time.sleep(0.2)
    return False


try:
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(JOB["photo"]))
    layer = image.get_layers()[0]
    Gimp.Display.new(image)
    Gimp.displays_flush()
    time.sleep(2.0)
    procedure = Gimp.get_pdb().lookup_procedure("python-fu-bgmask-remove-background")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    for name, value in ARGUMENTS.items():
        config.set_property(name, value)
    before = digest(layer)
    status = procedure.run(config).index(0)
    result["ok"] = status == Gimp.PDBStatusType.SUCCESS
    if ARGUMENTS.get("output") == "layer":
        new = image.get_layers()[0]
        result["layers_after_run"] = len(image.get_layers())
        result["new_has_mask"] = new.get_mask() is not None
        cleaned = digest(new)
        result["new_colours_differ"] = cleaned != before
        press("ctrl+z")
        result["new_layer_gone_after_one_undo"] = wait_for(
            lambda: len(image.get_layers()) == 1)
        result["original_unchanged"] = (digest(layer) == before and layer.get_mask() is None
                                        and not layer.has_alpha())
        press("ctrl+y")
        result["new_layer_back_after_redo"] = wait_for(lambda: len(image.get_layers()) == 2)
        result["redo_keeps_its_colours"] = digest(image.get_layers()[0]) == cleaned
    else:
        result["mask_after_run"] = layer.get_mask() is not None
        result["alpha_after_run"] = layer.has_alpha()
        press("ctrl+z")
        result["mask_gone_after_one_undo"] = wait_for(lambda: layer.get_mask() is None)
        result["alpha_after_undo"] = layer.has_alpha()
        press("ctrl+y")
        result["mask_back_after_redo"] = wait_for(lambda: layer.get_mask() is not None)
    image.clean_all()
except Exception:  # noqa: BLE001 (recorded for the test)
    result["exception"] = traceback.format_exc()

with open(os.path.join(WORK, "result.json"), "w") as f:
    json.dump(result, f)
