"""The GIMP plug-in's own logic, outside GIMP, against a small fake of GIMP 3's Python API
(tests/fakes/gimp.py) and a stand-in for the worker. The real GIMP 3.0 and 3.2 run it in
tests/editors/test_gimp.py; the real worker is tested elsewhere."""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from bgmask.host.client import MaskReply
from bgmask.host.errors import WorkerError
from bgmask.host.job import NO_LAYER, JobSettings, failure_message
from bgmask.host.protocol import parse_format
from bgmask.host.version import VERSION

from .fakes import gimp as fake

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installers"))
from bgmask_installer.stage import stage_gimp  # noqa: E402


def staged(tmp_path, monkeypatch) -> Path:
    """The plug-in's folder as the installer stages it, importable with the fake ``gi``."""
    fake.reset()
    for name, module in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "bgmask_vendor", raising=False)
    stage_gimp(tmp_path)
    folder = tmp_path / "bgmask-gimp"
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """bgmask-gimp.py as the installer stages it, run as GIMP runs it, with the fake ``gi``."""
    folder = staged(tmp_path, monkeypatch)
    spec = importlib.util.spec_from_file_location("bgmask_gimp", folder / "bgmask-gimp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bgmask_vendor", None)
    assert fake.pdb_errors == [], "GIMP refused a call the plug-in made"


def cleaned(pixels: bytes, width: int, height: int, fmt: str, mask: bytes) -> bytes:
    """What the stand-in worker sends back as clean edge colours: the pixels as sent, their
    colour channels inverted where the mask is soft (0 < mask < 255), alpha untouched."""
    channels, sample = parse_format(fmt)
    dtype = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<f4")}[sample]
    out = np.frombuffer(pixels, dtype).reshape(height, width, channels).copy()
    colour = channels - 1 if fmt.startswith(("graya", "rgba")) else channels
    band = np.frombuffer(mask, np.uint8).reshape(height, width)
    band = (band > 0) & (band < 255)
    top = np.iinfo(dtype).max if dtype.kind == "u" else 1.0
    out[band, :colour] = top - out[band, :colour]
    return out.tobytes()


class Worker:
    """Stands in for bgmask's worker: each mask is a pattern of its own, the same size as the
    pixels sent, with ``cleaned`` colours when asked; ``fail`` raises that error on the
    ``fail_at``-th layer (1-based)."""

    def __init__(self, fail: BaseException | None = None, fail_at: int = 1) -> None:
        self.fail, self.fail_at = fail, fail_at
        self.sent: list[dict] = []
        self.masks: list[bytes] = []

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def mask(self, pixels, width, height, fmt, *, model, options=None, progress=None,
             base_mask=None, base_masks=(), mask_size=None, colours=False) -> MaskReply:
        self.sent.append({"pixels": bytes(pixels), "size": (width, height), "fmt": fmt,
                          "base_mask": base_mask, "model": model, "options": options,
                          "base_masks": [bytes(plane) for plane in base_masks],
                          "colours": colours})
        if self.fail is not None and len(self.sent) == self.fail_at:
            raise self.fail
        if progress is not None:
            progress("inference", 0, None)
        mask = bytearray((37 * i + 11 * len(self.sent)) % 256 for i in range(width * height))
        # As the real worker does: 0 outside the box, never above a base plane.
        x, y, w, h = (options or {}).get("box", (0, 0, width, height))
        for i in range(width * height):
            if not (x <= i % width < x + w and y <= i // width < y + h):
                mask[i] = 0
            for plane in [*([base_mask] if base_mask is not None else []), *base_masks]:
                mask[i] = min(mask[i], plane[i])
        mask = bytes(mask)
        self.masks.append(mask)
        return MaskReply(mask, width, height, "CPUExecutionProvider", None,
                         cleaned(bytes(pixels), width, height, fmt, mask) if colours else None)


@pytest.fixture
def worker(plugin, monkeypatch) -> Worker:
    found = Worker()
    monkeypatch.setattr(plugin, "click_client", lambda: found)
    return found


def click(plugin: types.ModuleType, image: fake.Image, drawables: list,
          mode: fake.RunMode = fake.RunMode.NONINTERACTIVE, **settings) -> tuple[bool, str]:
    """Runs the menu item as GIMP does: the registered procedure, its config, its run."""
    procedure = plugin.BgmaskPlugIn().do_create_procedure(plugin.PROCEDURE)
    config = procedure.create_config()
    for name, value in settings.items():
        config.set_property(name, value)
    result = procedure.run_func(procedure, mode, image, drawables, config, None)
    return result.index(0), result.index(1).message


def photo(name: str = "photo", width: int = 5, height: int = 3, fmt: str = "R'G'B'A u8",
          offsets: tuple[int, int] = (0, 0)) -> fake.Layer:
    size = width * height * fake.Format.parse(fmt).bpp
    return fake.Layer(name, width, height, fmt, os.urandom(size), offsets)


def mask_of(drawable: fake.Drawable) -> bytes | None:
    mask = drawable.get_mask()
    if mask is None:
        return None
    rect = fake.Rectangle(0, 0, mask.width, mask.height)
    return mask.get_buffer().get(rect, 1.0, "Y u8", fake.AbyssPolicy.NONE)


def give_mask(layer: fake.Layer, values: bytes) -> None:
    """Set-up: the layer already has a mask (added before the test starts watching)."""
    mask = layer.create_mask(fake.AddMaskType.WHITE)
    mask.pixels[:] = values
    assert layer.add_mask(mask)
    layer.edit_mask = False
    if layer.image is not None:
        layer.image.changes.clear()


def test_the_menu_item_offers_every_setting_with_the_jobs_defaults(plugin):
    assert fake.main_calls, "GIMP runs the file as a script: it must hand GIMP the plug-in"
    assert fake.versions == {"Gimp": "3.0", "Gegl": "0.4"}
    procedure = plugin.BgmaskPlugIn().do_create_procedure(plugin.PROCEDURE)
    assert plugin.BgmaskPlugIn().do_query_procedures() == [plugin.PROCEDURE]
    assert "<Image>/Layer/Mask" in procedure.menu_paths
    assert procedure.image_types == "RGB*, GRAY*"
    assert plugin.settings_from(procedure.create_config()) == JobSettings()


@pytest.mark.parametrize("width, height", [(7, 23), (1, 130), (100, 3), (9, 9)])
def test_strip_reads_reassemble_the_layer_exactly(plugin, worker, monkeypatch, width, height):
    monkeypatch.setattr(plugin, "STRIP_PIXELS", 64)  # strips of 64 // width rows (at least 1)
    image = fake.Image(width, height)
    layer = image.add(photo(width=width, height=height, fmt="R'G'B' u8"))
    before = bytes(layer.pixels)
    assert click(plugin, image, [layer]) == (fake.PDBStatusType.SUCCESS, "")
    rows = max(1, 64 // width)
    assert len(layer.reads) == -(-height // rows) > 1  # taller than one strip
    assert worker.sent[0]["pixels"] == before
    assert worker.sent[0]["size"] == (width, height)


def test_a_camera_size_layer_is_read_in_strips_at_the_real_strip_size(plugin, worker):
    image = fake.Image(1001, 1100)
    layer = image.add(photo(width=1001, height=1100, fmt="R'G'B'A u8"))
    before = bytes(layer.pixels)
    click(plugin, image, [layer])
    assert len(layer.reads) == 2 and worker.sent[0]["pixels"] == before
    assert max(r.width * r.height for r in layer.reads) <= plugin.STRIP_PIXELS


@pytest.mark.parametrize("fmt, sent", [
    ("R'G'B'A u8", "rgba8"), ("R'G'B' u8", "rgb8"), ("Y'A u8", "graya8"), ("Y' u8", "gray8"),
    ("RGBA u8", "rgba8"), ("Y u8", "gray8")])
def test_each_layer_type_goes_to_the_worker_as_8_bit_non_linear(plugin, worker, fmt, sent):
    """Linear layers (a linear-light image) are sent with the sRGB curve applied, as the
    network expects 8-bit sRGB."""
    image = fake.Image(5, 3)
    layer = image.add(photo(fmt=fmt))
    own = fake.Format.parse(fmt)
    asked = fake.Format.parse(fmt.replace("RGB", "R'G'B'").replace("Y", "Y'")
                              if not own.perceptual else fmt)
    pixels = fake.convert(bytes(layer.pixels), own, asked)
    click(plugin, image, [layer])
    assert (worker.sent[0]["fmt"], worker.sent[0]["pixels"]) == (sent, pixels)


def test_the_mask_is_the_workers_bytes_and_replaces_the_old_one(plugin, worker):
    image = fake.Image(5, 3)
    layer = image.add(photo(fmt="R'G'B' u8"))
    colours = bytes(layer.pixels)
    give_mask(layer, bytes(range(15)))
    old = layer.get_mask()
    assert click(plugin, image, [layer])[0] == fake.PDBStatusType.SUCCESS
    assert layer.get_mask() is not old and mask_of(layer) == worker.masks[0]
    # An alpha channel is added (the mask applies on export); the colours stay as they were.
    assert layer.has_alpha()
    assert bytes(fake.convert(bytes(layer.pixels), layer.format,
                              fake.Format.parse("R'G'B' u8"))) == colours


@pytest.mark.parametrize("existing, output, sends_old", [
    ("intersect", "mask", True), ("intersect", "layer", True), ("replace", "mask", False),
    ("intersect", "selection", False), ("replace", "selection", False)])
def test_only_intersect_sends_the_old_mask_and_never_for_a_selection(plugin, worker, existing,
                                                                     output, sends_old):
    image = fake.Image(5, 3)
    layer = image.add(photo())
    give_mask(layer, bytes(range(100, 115)))
    assert click(plugin, image, [layer], existing=existing, output=output)[0] == \
        fake.PDBStatusType.SUCCESS
    assert worker.sent[0]["base_mask"] == (bytes(range(100, 115)) if sends_old else None)


def test_settings_reach_the_worker(plugin, worker):
    image = fake.Image(5, 3)
    layer = image.add(photo())
    click(plugin, image, [layer], model="u2net", refine=True, quality="best", invert=True)
    assert worker.sent[0]["model"] == "u2net"
    assert worker.sent[0]["options"] == {"refine": True, "quality": "best", "invert": True}


def test_layer_output_adds_a_masked_copy_above_and_leaves_the_layer_alone(plugin, worker):
    image = fake.Image(8, 8)
    group = image.add(fake.GroupLayer("group", 8, 8))
    image.add(photo("above"), group)
    layer = image.add(photo("photo", offsets=(2, 1)), group)
    give_mask(layer, bytes(range(15)))
    before = bytes(layer.pixels)
    assert click(plugin, image, [layer], output="layer")[0] == fake.PDBStatusType.SUCCESS
    assert [child.get_name() for child in group.children] == ["above", "photo (bgmask)",
                                                             "photo"]
    copy = group.children[1]
    assert mask_of(copy) == worker.masks[0]
    assert bytes(copy.pixels) == before and copy.get_offsets() == layer.get_offsets()
    assert bytes(layer.pixels) == before and mask_of(layer) == bytes(range(15))
    assert [layer.name for layer in image.layers] == ["group"]


def pixels_of(drawable: fake.Drawable, fmt: str) -> bytes:
    rect = fake.Rectangle(0, 0, drawable.width, drawable.height)
    return drawable.get_buffer().get(rect, 1.0, fmt, fake.AbyssPolicy.NONE)


def test_clean_edge_colours_is_an_option_off_by_default(plugin):
    procedure = plugin.BgmaskPlugIn().do_create_procedure(plugin.PROCEDURE)
    assert procedure.arguments["decontaminate"] is False
    config = procedure.create_config()
    config.set_property("decontaminate", True)
    assert plugin.settings_from(config) == JobSettings(decontaminate=True)


@pytest.mark.parametrize("fmt", ["R'G'B'A u8", "R'G'B' u8", "Y'A u8", "Y' u8"])
def test_a_new_layer_with_clean_colours_gets_the_workers_colours_and_the_layer_keeps_its_own(
        plugin, worker, fmt):
    image = fake.Image(8, 8)
    layer = image.add(photo("photo", fmt=fmt, offsets=(2, 1)))
    give_mask(layer, bytes(range(15)))
    before = bytes(layer.pixels)
    assert click(plugin, image, [layer], output="layer", decontaminate=True) == \
        (fake.PDBStatusType.SUCCESS, "")
    sent = worker.sent[0]
    assert sent["colours"] and sent["pixels"] == before  # an 8-bit image goes as it is
    copy = image.layers[0]
    assert copy.get_name() == "photo (bgmask)" and copy.get_offsets() == layer.get_offsets()
    want = cleaned(before, 5, 3, sent["fmt"], worker.masks[0])
    assert pixels_of(copy, fmt) == want != before
    assert mask_of(copy) == worker.masks[0]
    assert bytes(layer.pixels) == before and mask_of(layer) == bytes(range(15))
    assert [x.get_name() for x in image.layers] == ["photo (bgmask)", "photo"]


@pytest.mark.parametrize("output", ["mask", "selection"])
def test_clean_colours_ask_for_nothing_and_change_no_pixels_without_a_new_layer(
        plugin, worker, output):
    image = fake.Image(5, 3)
    layer = image.add(photo(fmt="R'G'B'A u8"))
    before = bytes(layer.pixels)
    assert click(plugin, image, [layer], output=output, decontaminate=True)[0] == \
        fake.PDBStatusType.SUCCESS
    assert worker.sent[0]["colours"] is False and worker.sent[0]["fmt"] == "rgba8"
    assert bytes(layer.pixels) == before and [x.get_name() for x in image.layers] == ["photo"]


def photo_in(fmt: str, width: int, height: int) -> fake.Layer:
    """A layer stored in ``fmt`` (u16 and float ones with values 8 bits cannot hold)."""
    own = fake.Format.parse(fmt)
    source = fake.Format.parse(fmt.replace(own.sample, "u8" if own.sample == "u8" else "u16"))
    pixels = fake.convert(os.urandom(width * height * source.bpp), source, own)
    return fake.Layer("photo", width, height, fmt, pixels)


def samples(data: bytes, fmt: str) -> np.ndarray:
    """A format's samples as numbers in 0..1 (floats as they are), one row a pixel."""
    own = fake.Format.parse(fmt)
    dtype = {"u8": np.dtype("u1"), "u16": np.dtype("u2"), "float": np.dtype("f4")}[own.sample]
    values = np.frombuffer(data, dtype).reshape(-1, own.channels).astype(np.float64)
    return values if dtype.kind == "f" else values / np.iinfo(dtype).max


@pytest.mark.parametrize("precision, fmt, read_as, sent", [
    (fake.Precision.U8_PERCEPTUAL, "R'G'B'A u8", "R'G'B'A u8", "rgba8"),
    (fake.Precision.U8_LINEAR, "RGBA u8", "R'G'B'A float", "rgbaf32"),
    (fake.Precision.U16_NON_LINEAR, "R'G'B' u16", "R'G'B' float", "rgbf32"),
    (fake.Precision.U16_LINEAR, "YA u16", "Y'A float", "grayaf32"),
    (fake.Precision.FLOAT_LINEAR, "RGBA float", "R'G'B'A float", "rgbaf32"),
    (fake.Precision.FLOAT_NON_LINEAR, "Y' float", "Y' float", "grayf32")])
def test_clean_colours_of_a_high_precision_image_go_as_float_and_lose_nothing(
        plugin, worker, precision, fmt, read_as, sent):
    """Without clean colours the worker gets 8 bits, as always; with them every precision but
    8-bit non-linear goes as float, so the copy keeps every value the mask leaves alone."""
    before = bytes(photo_in(fmt, 6, 4).pixels)

    def image_with_layer() -> tuple[fake.Image, fake.Layer]:
        image = fake.Image(6, 4, precision)
        layer = image.add(fake.Layer("photo", 6, 4, fmt, before))
        image.select_rectangle(0, 0, 3, 4)  # the mask is 0 right of it: colours kept there
        return image, layer

    image, layer = image_with_layer()
    assert click(plugin, image, [layer])[0] == fake.PDBStatusType.SUCCESS
    assert worker.sent[0]["fmt"].endswith("8") and not worker.sent[0]["colours"]
    image, layer = image_with_layer()
    assert click(plugin, image, [layer], output="layer", decontaminate=True)[0] == \
        fake.PDBStatusType.SUCCESS
    request = worker.sent[1]
    own, wire = fake.Format.parse(fmt), fake.Format.parse(read_as)
    assert request["fmt"] == sent and request["pixels"] == fake.convert(before, own, wire)
    copy = image.layers[0]
    got = samples(pixels_of(copy, fmt), fmt)
    colours = cleaned(request["pixels"], 6, 4, sent, worker.masks[1])
    assert np.array_equal(got, samples(fake.convert(colours, wire, own), fmt))
    kept = np.frombuffer(worker.masks[1], np.uint8) == 0
    assert kept.any() and not kept.all()
    lost = np.abs(got[kept] - samples(before, fmt)[kept]).max()
    assert lost <= (1e-6 if own.sample == "float" else 0)
    assert np.abs(got[~kept] - samples(before, fmt)[~kept]).max() > 0.01  # the band cleaned
    assert bytes(layer.pixels) == before


def test_clean_colours_refuse_a_layer_group_before_anything_is_written(plugin, worker):
    """A group's pixels are its layers': there is nothing of its own to clean."""
    image = fake.Image(5, 3)
    group = image.add(fake.GroupLayer("group", 5, 3))
    image.add(photo("inside"), group)
    status, message = click(plugin, image, [group], output="layer", decontaminate=True)
    assert status == fake.PDBStatusType.EXECUTION_ERROR and "layer group 'group'" in message
    assert image.changes == [] and worker.sent == []
    assert click(plugin, image, [group], decontaminate=True)[0] == fake.PDBStatusType.SUCCESS


def test_selection_output_selects_the_masks_and_keeps_the_layers_masks(plugin, worker):
    image = fake.Image(8, 6)
    first = image.add(photo("first", offsets=(0, 0)))
    second = image.add(photo("second", offsets=(3, 2)))
    give_mask(second, bytes(range(50, 65)))
    old = bytes(image.selection)
    assert click(plugin, image, [first, second], output="selection") == \
        (fake.PDBStatusType.SUCCESS, "")
    assert image.selection != old
    want = bytearray(8 * 6)
    for layer, mask in zip((first, second), worker.masks, strict=True):
        ox, oy = layer.offsets
        for y in range(layer.height):
            for x in range(layer.width):
                if x + ox < 8 and y + oy < 6:
                    at = (y + oy) * 8 + x + ox
                    want[at] = max(want[at], mask[y * layer.width + x])
    assert image.selection == want
    assert first.get_mask() is None
    assert mask_of(second) == bytes(range(50, 65))


@pytest.mark.parametrize("error", [WorkerError("the worker stopped: out of disk"),
                                   MemoryError(), RuntimeError("a bug")])
def test_a_failure_on_any_layer_leaves_the_image_as_it_was_and_says_why(plugin, monkeypatch,
                                                                       error):
    found = Worker(fail=error, fail_at=2)
    monkeypatch.setattr(plugin, "click_client", lambda: found)
    image = fake.Image(5, 3)
    first, second = image.add(photo("first")), image.add(photo("second", fmt="R'G'B' u8"))
    give_mask(second, bytes(range(15)))
    status, message = click(plugin, image, [first, second])
    assert status == fake.PDBStatusType.EXECUTION_ERROR
    assert message == f"bgmask {VERSION}: {failure_message(error)}"
    assert image.changes == [] and image.undo_groups == 0
    assert first.get_mask() is None and mask_of(second) == bytes(range(15))
    assert not second.has_alpha()
    assert fake.progress[-1][0] == "end"  # the progress bar does not stay behind


def test_a_worker_that_cannot_start_is_reported(plugin, monkeypatch):
    def no_worker():
        raise WorkerError("bgmask's Python was not found: run the installer again")

    monkeypatch.setattr(plugin, "click_client", no_worker)
    image = fake.Image(5, 3)
    layer = image.add(photo())
    status, message = click(plugin, image, [layer])
    assert status == fake.PDBStatusType.EXECUTION_ERROR
    assert message.endswith("run the installer again") and image.changes == []


def test_a_channel_is_not_a_layer(plugin, worker):
    image = fake.Image(5, 3)
    channel = fake.Channel("saved selection", 5, 3)
    status, message = click(plugin, image, [channel])
    assert (status, message) == (fake.PDBStatusType.EXECUTION_ERROR,
                                 f"bgmask {VERSION}: {NO_LAYER}")
    assert worker.sent == []


def test_clicking_again_on_a_layer_whose_mask_is_selected_masks_that_layer(plugin, worker):
    """After a mask is added GIMP edits it, and hands the plug-in the mask, not its layer:
    a second click (intersect with it, or replace it) must still reach the layer."""
    image = fake.Image(5, 3)
    layer = image.add(photo())
    click(plugin, image, image.selected_drawables([layer]))
    selected = image.selected_drawables([layer])
    assert selected == [layer.get_mask()]
    status, message = click(plugin, image, selected, existing="intersect")
    assert (status, message) == (fake.PDBStatusType.SUCCESS, "")
    assert worker.sent[1]["base_mask"] == worker.masks[0]
    assert mask_of(layer) == worker.masks[1]


@pytest.mark.parametrize("output, decontaminate", [
    ("mask", False), ("layer", False), ("selection", False), ("layer", True)])
def test_everything_lands_in_one_undo_group(plugin, worker, output, decontaminate):
    image = fake.Image(6, 6)
    first = image.add(photo("first", fmt="R'G'B' u8"))
    second = image.add(photo("second", offsets=(1, 1)))
    give_mask(second, bytes(15))
    assert click(plugin, image, [first, second], output=output,
                 decontaminate=decontaminate)[0] == fake.PDBStatusType.SUCCESS
    assert image.changes, "the click changed nothing"
    assert {depth for _, depth in image.changes} == {1}
    assert (image.undo_groups, image.undo_depth) == (1, 0)


def test_cancelling_the_dialog_changes_nothing(plugin, worker):
    fake.ProcedureDialog.answer = False
    image = fake.Image(5, 3)
    layer = image.add(photo())
    status, _ = click(plugin, image, [layer], mode=fake.RunMode.INTERACTIVE)
    assert status == fake.PDBStatusType.CANCEL
    assert fake.ProcedureDialog.shown and worker.sent == [] and image.changes == []
    fake.ProcedureDialog.answer = True
    assert click(plugin, image, [layer], mode=fake.RunMode.INTERACTIVE)[0] == \
        fake.PDBStatusType.SUCCESS
    assert mask_of(layer) == worker.masks[0]


def selected(image: fake.Image, layer: fake.Layer) -> bytes:
    """The image's selection over ``layer``, in the layer's pixels (0 off the canvas)."""
    ox, oy = layer.offsets
    return bytes(image.selection[(y + oy) * image.width + x + ox]
                 if 0 <= x + ox < image.width and 0 <= y + oy < image.height else 0
                 for y in range(layer.height) for x in range(layer.width))


def test_a_selection_is_sent_as_a_box_and_a_plane_in_the_layers_own_pixels(plugin, worker):
    """A soft rectangle (value 200) over part of a layer at offsets (2, 1) that also hangs
    off the canvas: its bounding box clipped to the layer, its values under the layer."""
    image = fake.Image(8, 6)
    layer = image.add(photo("photo", width=7, height=4, offsets=(2, 1)))
    image.select_rectangle(3, 2, 4, 6, value=200)  # image x 3..6, y 2..5 (canvas ends at 6)
    old = bytes(image.selection)
    assert click(plugin, image, [layer]) == (fake.PDBStatusType.SUCCESS, "")
    sent = worker.sent[0]
    assert sent["options"]["box"] == [1, 1, 4, 3]  # layer x 1..4, y 1..3
    assert sent["base_masks"] == [selected(image, layer)]
    assert sent["base_masks"][0].count(200) == 12 and sent["base_mask"] is None
    mask = mask_of(layer)
    assert mask is not None and all(m <= s for m, s in zip(mask, sent["base_masks"][0],
                                                            strict=True))
    assert image.selection == old  # the selection is a hint: the output was the layer mask


def test_without_a_selection_or_with_the_setting_off_the_whole_layer_is_masked(plugin,
                                                                                worker):
    image = fake.Image(5, 3)
    layer = image.add(photo())
    assert click(plugin, image, [layer])[0] == fake.PDBStatusType.SUCCESS
    image.select_rectangle(1, 1, 2, 2)
    assert click(plugin, image, [layer], **{"use-selection": False})[0] == \
        fake.PDBStatusType.SUCCESS
    image.select_rectangle(0, 0, 5, 3)  # Select All: a hint that changes nothing, not sent
    assert click(plugin, image, [layer])[0] == fake.PDBStatusType.SUCCESS
    for sent in worker.sent:
        assert "box" not in sent["options"] and sent["base_masks"] == []


def test_a_selection_that_misses_the_layer_writes_nothing_and_says_so(plugin, worker):
    image = fake.Image(10, 4)
    first = image.add(photo("first"))  # x 0..4
    second = image.add(photo("second", offsets=(6, 0)))  # x 6..10
    give_mask(second, bytes(range(15)))
    image.select_rectangle(0, 0, 3, 3)  # on the first layer only
    status, message = click(plugin, image, [first, second])
    assert status == fake.PDBStatusType.EXECUTION_ERROR
    assert "selection does not touch layer 'second'" in message
    assert image.changes == [] and first.get_mask() is None
    assert mask_of(second) == bytes(range(15))


def test_intersect_sends_the_old_mask_and_the_selection(plugin, worker):
    image = fake.Image(5, 3)
    layer = image.add(photo())
    give_mask(layer, bytes(range(100, 115)))
    image.select_rectangle(1, 0, 3, 2, value=128)
    assert click(plugin, image, [layer], existing="intersect")[0] == fake.PDBStatusType.SUCCESS
    sent = worker.sent[0]
    assert sent["base_mask"] == bytes(range(100, 115))
    assert sent["base_masks"] == [selected(image, layer)] and sent["options"]["box"] == \
        [1, 0, 3, 2]


def test_selection_output_with_a_selection_selects_the_subject_inside_it(plugin, worker):
    """Mask to selection with a selection: the new selection is the subject found inside the
    old one (never beyond it), on the canvas where the layer sits."""
    image = fake.Image(8, 6)
    layer = image.add(photo("photo", offsets=(2, 2)))
    image.select_rectangle(3, 2, 3, 2)
    old = bytes(image.selection)
    assert click(plugin, image, [layer], output="selection") == (fake.PDBStatusType.SUCCESS, "")
    assert worker.sent[0]["options"]["box"] == [1, 0, 3, 2]
    assert any(image.selection) and image.selection != old
    assert all(new <= was for new, was in zip(image.selection, old, strict=True))
    assert layer.get_mask() is None


def test_run_as_gimp_runs_it_the_process_ends_with_gimps_status_at_once(tmp_path,
                                                                        monkeypatch):
    """GIMP 3.2 does not wait for a plug-in's process: one still in Python's teardown when
    GIMP quits is reported as a "Zombie plug-in". Run as a script, the plug-in ends its
    process as soon as Gimp.main returns, with its status; imported, it does not."""
    folder = staged(tmp_path, monkeypatch)
    monkeypatch.setattr(fake.Gimp, "main", lambda gtype, argv: 3)
    ended: list[int] = []

    class Ended(BaseException):
        pass

    def exit_now(status: int) -> None:
        ended.append(status)
        raise Ended

    monkeypatch.setattr(os, "_exit", exit_now)
    with pytest.raises(Ended):
        runpy.run_path(str(folder / "bgmask-gimp.py"), run_name="__main__")
    assert ended == [3]
    spec = importlib.util.spec_from_file_location("bgmask_gimp", folder / "bgmask-gimp.py")
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert ended == [3]
    sys.modules.pop("bgmask_vendor", None)
