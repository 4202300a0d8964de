#!/usr/bin/env python3
"""bgmask for GIMP 3: Layer > Mask > Remove Background (AI).

Predicts a soft alpha matte for each selected layer with bgmask's worker, a separate process in
bgmask's own environment, and writes it as a layer mask (or a selection, or a new layer with the
mask). The layer's pixels are never changed and everything lands in one undo group. With a
selection, the network looks only inside it (its bounding box on each layer; the mask is 0
outside the selection and never above its value), so a user can point at a missed subject.
With "Clean edge colours" the new layer of the New-layer output gets the subject's own colours
in the mask's soft edge (the worker computes them), not the old background's.

Sections: imports, registration, dialog, run (read, mask, write), error reporting,
process end.
"""

from __future__ import annotations

import os
import sys
from typing import Any, cast

import bgmask_vendor  # noqa: F401  (puts the vendored bgmask on sys.path, before it is imported)
import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from bgmask.host.catalogue import CATALOGUE, DEFAULT_MODEL  # noqa: E402
from bgmask.host.client import MaskReply  # noqa: E402
from bgmask.host.errors import UsageError  # noqa: E402
from bgmask.host.job import (  # noqa: E402
    COPY_SUFFIX,
    EXISTING,
    NO_LAYER,
    OUTPUTS,
    QUALITIES,
    SETTING_NAMES,
    Box,
    JobSettings,
    LayerInput,
    PhaseTimer,
    click_client,
    failure_message,
    mask_layers,
    selection_box,
)
from bgmask.host.version import VERSION  # noqa: E402
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PROCEDURE = "python-fu-bgmask-remove-background"
READWRITE = GObject.ParamFlags.READWRITE
MASK_FORMAT = "Y u8"  # masks are linear coverage: bytes written in this format are kept as-is
# (babl format, worker format) to read a layer in, by (gray, has alpha): 8-bit non-linear, or
# float where the pixels come back to be written and 8 bits would lose some (see pixel_format).
EIGHT_BIT = {(True, True): ("Y'A u8", "graya8"), (True, False): ("Y' u8", "gray8"),
             (False, True): ("R'G'B'A u8", "rgba8"), (False, False): ("R'G'B' u8", "rgb8")}
FLOAT = {(True, True): ("Y'A float", "grayaf32"), (True, False): ("Y' float", "grayf32"),
         (False, True): ("R'G'B'A float", "rgbaf32"), (False, False): ("R'G'B' float", "rgbf32")}
PIXEL_BYTES = {MASK_FORMAT: 1, "Y' u8": 1, "Y'A u8": 2, "R'G'B' u8": 3, "R'G'B'A u8": 4,
               "Y' float": 4, "Y'A float": 8, "R'G'B' float": 12, "R'G'B'A float": 16}
# The precisions whose pixels "R'G'B'A u8" and its kin hold exactly.
EIGHT_BIT_NON_LINEAR = (Gimp.Precision.U8_NON_LINEAR, Gimp.Precision.U8_PERCEPTUAL)
STRIP_PIXELS = 1 << 20


# -- registration ---------------------------------------------------------------------------

def _choice(options: dict[str, str]) -> Any:
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(options.items()):
        choice.add(nick, index, label, "")
    return choice


class BgmaskPlugIn(Gimp.PlugIn):
    def do_query_procedures(self) -> list[str]:
        return [PROCEDURE]

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                       | Gimp.ProcedureSensitivityMask.DRAWABLES)
        procedure.set_menu_label("Remove _Background (AI)...")
        procedure.add_menu_path("<Image>/Layer/Mask")
        procedure.add_menu_path("<Layers>/Layers Menu")
        procedure.set_documentation(
            "Add an AI background-removal mask to each selected layer",
            "Predicts the subject of each selected layer on this computer with bgmask and adds "
            "it as a layer mask (or a selection, or a new layer carrying the mask). The layer's "
            "pixels are not changed; one undo removes everything.", name)
        procedure.set_attribution("bgmask developers", "bgmask developers", "2026")
        models = {r.name: f"{r.name}: {r.description}" for r in CATALOGUE.values()}
        add_choice = procedure.add_choice_argument
        add_choice("model", "_Model", "Which network predicts the mask",
                   _choice(models), DEFAULT_MODEL, READWRITE)
        procedure.add_boolean_argument("refine", "_Refine edges",
                                       "Fit the mask's edges to the photo (guided filter)",
                                       False, READWRITE)
        add_choice("quality", "_Quality",
                   "Best adds a brightened look, and a closer one at a small subject",
                   _choice(QUALITIES), "fast", READWRITE)
        procedure.add_boolean_argument("invert", "_Invert", "Keep the background instead",
                                       False, READWRITE)
        add_choice("existing", "_Existing mask", "What to do with a mask the layer already has",
                   _choice(EXISTING), "replace", READWRITE)
        add_choice("output", "_Output", "Where the mask goes",
                   _choice(OUTPUTS), "mask", READWRITE)
        procedure.add_boolean_argument(
            argument_name("use_selection"), "Look only inside the _selection",
            "With a selection, mask only inside it: point at the subject the network missed",
            True, READWRITE)
        procedure.add_boolean_argument(
            argument_name("decontaminate"), "Clean _edge colours (new layer)",
            "For the New-layer output only: the new layer's soft edge gets the subject's own "
            "colours instead of the old background's. A layer mask never changes pixels",
            False, READWRITE)
        return procedure


# -- dialog ---------------------------------------------------------------------------------

def ask_settings(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig) -> bool:
    """The interactive dialog; GIMP stores the values for next time. False: cancelled."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(PROCEDURE)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Remove Background (bgmask)")
    dialog.fill(None)
    try:
        return bool(dialog.run())
    finally:
        dialog.destroy()


def argument_name(setting: str) -> str:
    """A procedure argument's name for a setting: GIMP wants dashes ("use-selection")."""
    return setting.replace("_", "-")


def settings_from(config: Gimp.ProcedureConfig) -> JobSettings:
    return JobSettings.from_mapping({name: config.get_property(argument_name(name))
                                     for name in SETTING_NAMES})


# -- run ------------------------------------------------------------------------------------

def run(procedure: Gimp.Procedure, run_mode: Gimp.RunMode, image: Gimp.Image,
        drawables: list[Gimp.Drawable], config: Gimp.ProcedureConfig,
        data: Any) -> Gimp.ValueArray:
    layers = target_layers(drawables)
    if not layers:
        return failure(procedure, NO_LAYER)
    if run_mode == Gimp.RunMode.INTERACTIVE and not ask_settings(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    timer = PhaseTimer()
    try:
        settings = settings_from(config)
        Gimp.progress_init("Removing background...")
        # Every mask is computed before the image is touched: a failure leaves it as it was.
        # The per-user background worker keeps the model loaded between clicks.
        with click_client() as client:
            timer.lap("connect")
            replies = mask_layers(client, len(layers),
                                  lambda index: read_layer(image, layers[index], settings),
                                  settings, report_progress, timer)
        write_all(image, layers, replies, settings)
        timer.lap("write")
        timer.save()
    except Exception as exc:  # noqa: BLE001 (the user reads a message, never a traceback)
        return failure(procedure, failure_message(exc))
    finally:
        Gimp.progress_end()
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def target_layers(drawables: list[Gimp.Drawable]) -> list[Gimp.Layer]:
    """The layers to mask. A layer mask stands for its layer: GIMP hands the plug-in the mask
    while it is being edited, as it is once added (by bgmask's last click, say)."""
    layers: list[Gimp.Layer] = []
    for drawable in drawables:
        layer = Gimp.Layer.from_mask(cast("Gimp.LayerMask", drawable)) \
            if drawable.is_layer_mask() else drawable
        if isinstance(layer, Gimp.Layer) and layer not in layers:
            layers.append(layer)
    return layers


def report_progress(fraction: float, text: str) -> None:
    Gimp.progress_set_text(f"Removing background: {text}")
    Gimp.progress_update(fraction)


def pixel_format(image: Gimp.Image, layer: Gimp.Layer, written_back: bool) -> tuple[str, str]:
    """(babl format, worker format) to read a layer in: 8-bit non-linear whatever the image
    precision, because the network sees 8-bit sRGB anyway and GEGL converts exactly. Pixels
    that come back to be written (clean edge colours) must lose nothing on the way: 8-bit
    non-linear images keep those 8 bits, every other precision (8-bit linear, 16 and 32-bit,
    half, float) goes as float."""
    exact = not written_back or image.get_precision() in EIGHT_BIT_NON_LINEAR
    return (EIGHT_BIT if exact else FLOAT)[layer.is_gray(), layer.has_alpha()]


def read(drawable: Gimp.Drawable, babl_format: str,
         area: tuple[int, int, int, int] | None = None) -> bytearray:
    """The drawable's pixels at full size (or over ``area``, x, y, width, height in its own
    pixels, 0 beyond its edges), fetched in strips so that a big layer is held once (a single
    read would hold it twice: GEGL's copy and Python's)."""
    left, origin, width, height = area or (0, 0, drawable.get_width(), drawable.get_height())
    row_bytes = width * PIXEL_BYTES[babl_format]
    pixels = bytearray(row_bytes * height)
    buffer = drawable.get_buffer()
    rows = max(1, STRIP_PIXELS // width)
    for top in range(0, height, rows):
        count = min(rows, height - top)
        strip = buffer.get(Gegl.Rectangle.new(left, origin + top, width, count), 1.0,
                           babl_format, Gegl.AbyssPolicy.NONE)
        pixels[top * row_bytes:(top + count) * row_bytes] = strip
    return pixels


def read_selection(image: Gimp.Image, layer: Gimp.Layer) -> tuple[Box, bytearray] | None:
    """The image's selection over the layer, in the layer's own pixels (the selection
    channel covers the canvas; the layer may sit anywhere on or off it): its bounding box
    clipped to the layer, and its values over the whole layer; None without a selection.
    A UsageError (nothing is written) when the selection misses the layer."""
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    if not non_empty:
        return None
    _, dx, dy = layer.get_offsets()
    width, height = layer.get_width(), layer.get_height()
    box = selection_box(layer.get_name(), x1 - dx, y1 - dy, x2 - dx, y2 - dy, width, height)
    # Linear "Y u8", as masks are read: a selection's values are coverage, not colours.
    return box, read(image.get_selection(), MASK_FORMAT, (dx, dy, width, height))


def read_layer(image: Gimp.Image, layer: Gimp.Layer, settings: JobSettings) -> LayerInput:
    """The layer at its own size, from its own pixels, with its mask where the job combines
    it and the selection as a hint where the settings use it. Never a copy scaled by GEGL:
    its scaled reads return zeros in plug-ins of GIMP 3.0 and 3.2 (an empty mask on every big
    layer), and even where they work, u2netp's mask moves by several levels for input changes
    of a fraction of a level."""
    if settings.cleans_colours and layer.is_group():
        raise UsageError(f"Clean edge colours writes pixels, and the layer group "
                         f"'{layer.get_name()}' has none of its own: turn it off, or mask the "
                         "group's layers")
    babl_format, worker_format = pixel_format(image, layer, settings.cleans_colours)
    hint = read_selection(image, layer) if settings.use_selection else None
    old = layer.get_mask()
    base = read(old, MASK_FORMAT) if old is not None and settings.combines_existing else None
    return LayerInput(layer.get_name(), read(layer, babl_format), layer.get_width(),
                      layer.get_height(), worker_format, bytes(base) if base else None,
                      *(hint or (None, None)))


def write_all(image: Gimp.Image, layers: list[Gimp.Layer], replies: list[MaskReply],
              settings: JobSettings) -> None:
    image.undo_group_start()
    try:
        for number, (layer, reply) in enumerate(zip(layers, replies, strict=True)):
            mask = reply.mask
            if settings.output == "layer":
                copy = layer.copy()
                copy.set_name(layer.get_name() + COPY_SUFFIX)
                image.insert_layer(copy, layer.get_parent(), image.get_item_position(layer))
                if reply.colours is not None:
                    # The copy's own pixels, in the format they were read in; the layer keeps
                    # its own. A new layer: undoing its insertion takes these along.
                    write(copy, pixel_format(image, layer, True)[0], reply.colours)
                set_mask(copy, mask)
            elif settings.output == "selection":
                # A layer mask turned into a selection honours the layer's offsets. GIMP
                # refuses to add back a mask once removed: the old one returns as a copy.
                # With a selection hint each mask is already within the old selection, so
                # replacing it selects the subject found inside it.
                had = layer.get_mask()
                old = bytes(read(had, MASK_FORMAT)) if had is not None else None
                temporary = set_mask(layer, mask)
                op = Gimp.ChannelOps.REPLACE if number == 0 else Gimp.ChannelOps.ADD
                image.select_item(op, temporary)
                layer.remove_mask(Gimp.MaskApplyMode.DISCARD)
                if old is not None:
                    set_mask(layer, old)
            else:
                set_mask(layer, mask)
    finally:
        image.undo_group_end()


def write(drawable: Gimp.Drawable, babl_format: str, pixels: bytes) -> None:
    """Replaces the drawable's pixels (full size, in ``babl_format``), in strips as ``read``
    fetches them, so that GEGL never holds a second copy of a big layer."""
    width, height = drawable.get_width(), drawable.get_height()
    row_bytes = width * PIXEL_BYTES[babl_format]
    if len(pixels) != row_bytes * height:
        raise ValueError(f"{len(pixels)} bytes of {babl_format} for a {width}x{height} layer")
    buffer = drawable.get_buffer()
    rows = max(1, STRIP_PIXELS // width)
    for top in range(0, height, rows):
        count = min(rows, height - top)
        buffer.set(Gegl.Rectangle.new(0, top, width, count), babl_format,
                   pixels[top * row_bytes:(top + count) * row_bytes])
    buffer.flush()
    drawable.update(0, 0, width, height)


def set_mask(layer: Gimp.Layer, mask: bytes) -> Gimp.LayerMask:
    """Replaces the layer's mask with these bytes (add/remove are what GIMP's undo records)."""
    if layer.get_mask() is not None:
        layer.remove_mask(Gimp.MaskApplyMode.DISCARD)
    if not layer.has_alpha():
        layer.add_alpha()  # GIMP masks need an alpha channel; colour pixels stay as they are
    width, height = layer.get_width(), layer.get_height()
    new = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(new)
    buffer = new.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), MASK_FORMAT, mask)
    buffer.flush()
    new.update(0, 0, width, height)
    return new


# -- error reporting ------------------------------------------------------------------------

def failure(procedure: Gimp.Procedure, message: str) -> Gimp.ValueArray:
    """An execution error GIMP shows to the user (and returns to a calling script)."""
    text = f"bgmask {VERSION}: {message}"
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                       GLib.Error.new_literal(GLib.quark_from_string("bgmask"),
                                                              text, 0))


# -- process end ----------------------------------------------------------------------------

def end_process(status: int) -> None:
    """Ends the plug-in's process as soon as GIMP is done with it. By then GIMP has its reply
    and libgimp has closed the connection and GEGL: nothing is left to do, yet Python's own
    teardown (gi, the modules) takes a few hundred milliseconds of CPU. GIMP 3.2 does not
    wait for a plug-in's process, and one still tearing down when GIMP quits is reported as
    "Zombie plug-in: ... never exited". Ending here takes milliseconds."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


STATUS = Gimp.main(BgmaskPlugIn.__gtype__, sys.argv)
if __name__ == "__main__":  # GIMP runs the file as a script; tests import it
    end_process(STATUS)
