"""The Krita plug-in's own logic, outside Krita, against a small fake of the ``krita`` module
(tests/fakes/krita.py). The real Krita runs it in tests/editors/test_krita.py."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest
from bgmask.host.errors import BgmaskError

from .fakes import krita as fake

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installers"))
from bgmask_installer.stage import stage_krita  # noqa: E402


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The staged plug-in package, imported in a Krita whose version the test sets first."""
    fake.Krita._instance = None
    monkeypatch.setitem(sys.modules, "krita", fake)
    stage_krita(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("bgmask_krita")]:
        monkeypatch.delitem(sys.modules, name)

    def load(version: str = "4.4.8") -> types.ModuleType:
        fake.Krita.instance().version_text = version
        return importlib.import_module("bgmask_krita")
    return load


@pytest.mark.parametrize("version, qt, supported", [
    ("5.1.5", 5, True), ("5.2.9-git", 5, True), ("5.3.4.1", 5, True), ("6.0.4.1", 6, True),
    ("5.0.9", 5, False), ("4.4.8", 5, False), ("7.0.0", 7, False), ("", 5, False)])
def test_version_gate(plugin, version, qt, supported):
    """Krita 5.1 up to 6.x on Qt 5 or 6 runs; anything else is refused, naming the range."""
    plugin()
    from bgmask_krita.compat import SUPPORTED_RANGE, unsupported_reason

    reason = unsupported_reason(version, qt)
    assert (reason is None) == supported
    if reason:
        assert SUPPORTED_RANGE in reason and "disabled" in reason


def test_unsupported_krita_registers_nothing_and_tells_the_user(plugin, monkeypatch):
    shown = []
    widgets = types.ModuleType("PyQt5.QtWidgets")
    widgets.QMessageBox = types.SimpleNamespace(  # type: ignore[attr-defined]
        warning=lambda parent, title, text: shown.append(text))
    monkeypatch.setitem(sys.modules, "PyQt5", types.ModuleType("PyQt5"))
    monkeypatch.setitem(sys.modules, "PyQt5.QtWidgets", widgets)
    plugin("4.4.8")
    app = fake.Krita.instance()
    assert app.extensions == [] and app.docker_factories == []
    for handler in app.notifier().windowCreated.handlers:
        handler()
    assert len(shown) == 1 and "Krita 4.4.8" in shown[0]


def photo_layer(**kw) -> fake.Node:
    return fake.Node("photo", rect=fake.QRect(10, 20, 2, 1), data=bytes(range(8)), **kw)


def document_with(*layers: fake.Node, cls: type = fake.Document) -> fake.Document:
    root = fake.Node("root", "grouplayer")
    for layer in layers:
        root.addChildNode(layer, None)
    return cls(root)


def test_selected_masks_stand_for_their_layers_once(plugin):
    plugin()
    from bgmask_krita import host

    layer, other = photo_layer(), photo_layer()
    mask = fake.Node("m", "transparencymask")
    layer.addChildNode(mask, None)
    doc = document_with(layer, other)
    fake.Krita.instance().window = fake.Window(fake.View(doc, [mask, layer, other]))
    assert host.target_layers(doc) == [layer, other]
    fake.Krita.instance().window = fake.Window(fake.View(doc, []))
    doc.setActiveNode(other)
    assert host.target_layers(doc) == [other]


def test_eight_bit_rgba_is_sent_as_krita_keeps_it(plugin):
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    pixels = host.read_layer(layer, intersect=False)
    assert (pixels.sent.fmt, pixels.sent.pixels) == ("bgra8", bytes(range(8)))
    assert (pixels.x, pixels.y, pixels.sent.width, pixels.sent.height) == (10, 20, 2, 1)
    assert layer.conversions == []


def test_gamma_encoded_sixteen_bit_goes_to_the_worker_as_it_is(plugin):
    """16-bit sRGB is what a 16-bit PNG or TIFF opens as: the worker gets Krita's own values
    (converting a 12 MP copy in Krita 5.1 crashed it), and rounds them as the core does."""
    plugin()
    from bgmask_krita import host

    layer = photo_layer(model="RGBA", depth="U16")
    pixels = host.read_layer(layer, intersect=False)
    assert (pixels.sent.fmt, pixels.sent.pixels) == ("bgra16", bytes(range(8)))
    assert layer.conversions == []


@pytest.mark.parametrize("model, depth, profile", [
    ("CMYKA", "U8", "Chemical proof"), ("RGBA", "U16", "sRGB-elle-V2-g10.icc"),
    ("LABA", "U16", "Lab identity built-in"), ("RGBA", "F32", "sRGB-elle-V2-g10.icc"),
    ("GRAYA", "F16", "Gray-D50-elle-V2-g10.icc")])
def test_other_colour_spaces_are_converted_on_a_copy_never_the_layer(plugin, model, depth,
                                                                    profile):
    plugin()
    from bgmask_krita import host

    layer = photo_layer(model=model, depth=depth, profile=profile)
    pixels = host.read_layer(layer, intersect=False)
    assert pixels.sent.fmt == "bgra8" and pixels.sent.pixels == bytes([9]) * 8
    assert layer.conversions == [] and (layer.model, layer.depth) == (model, depth)


def test_empty_layer_is_a_clear_error(plugin):
    plugin()
    from bgmask_krita import host

    with pytest.raises(BgmaskError, match="empty"):
        host.read_layer(fake.Node("blank", rect=fake.QRect(0, 0, 0, 0)), intersect=False)


def test_intersect_reads_the_existing_mask(plugin):
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    layer.addChildNode(fake.Node("old", "transparencymask", data=b"\x00\xff"), None)
    assert host.read_layer(layer, intersect=True).sent.base_mask == b"\x00\xff"
    assert host.read_layer(layer, intersect=False).sent.base_mask is None


def test_krita_51_makes_the_mask_with_its_action_and_replaces_the_old_one(plugin):
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    old = fake.Node("old", "transparencymask")
    layer.addChildNode(old, None)
    doc = document_with(layer)
    app = fake.Krita.instance()
    # Krita's actions work on the active node, as the real ones do.
    app.action("add_new_transparency_mask").on_trigger = lambda: doc.activeNode().addChildNode(
        fake.Node("Transparency Mask", "transparencymask"), None)
    app.action("remove_layer").on_trigger = lambda: doc.activeNode().remove()
    pixels = host.read_layer(layer, intersect=False)
    host.write_mask(doc, pixels, b"\x01\x02", "mask", None)
    masks = host.transparency_masks(layer)
    assert [m.name() for m in masks] == ["bgmask"]
    assert masks[0].data == b"\x01\x02" and masks[0].rect == fake.QRect(10, 20, 2, 1)


def test_krita_52_uses_create_transparency_mask(plugin):
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    doc = document_with(layer, cls=fake.Document52)
    host.write_mask(doc, host.read_layer(layer, False), b"\x07\x08", "mask", None)
    assert fake.Krita.instance().action("add_new_transparency_mask").count == 0
    assert [m.data for m in host.transparency_masks(layer)] == [b"\x07\x08"]


def test_selection_and_new_layer_outputs_leave_the_layer_alone(plugin):
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    doc = document_with(layer, cls=fake.Document52)
    pixels = host.read_layer(layer, False)
    selection = host.write_mask(doc, pixels, b"\x05\x06", "selection", None)
    assert selection.parts == [(b"\x05\x06", 10, 20, 2, 1)]
    host.write_mask(doc, pixels, b"\x05\x06", "layer", None)
    assert host.transparency_masks(layer) == []
    names = [n.name() for n in doc.rootNode().childNodes()]
    assert names == ["photo", "photo (bgmask)"]


def test_the_selection_is_sent_as_a_box_and_a_plane_on_the_layers_own_pixels(plugin):
    """A selection in image coordinates becomes the layer's box (offsets taken off) and its
    values over the layer, 0 where it does not reach."""
    plugin()
    from bgmask_krita import host

    layer = fake.Node("photo", rect=fake.QRect(10, 20, 4, 2), data=bytes(32))
    hint = fake.Selection()
    hint.setPixelData(bytes([200, 255]), 12, 21, 2, 1)  # x 12-13, y 21: inside the layer
    sent = host.read_layer(layer, False, hint).sent
    assert sent.box == (2, 1, 2, 1)
    assert sent.selection == bytes([0, 0, 0, 0, 0, 0, 200, 255])


def test_a_selection_beside_the_layer_is_a_clear_error(plugin):
    plugin()
    from bgmask_krita import host

    hint = fake.Selection()
    hint.setPixelData(bytes([255]), 100, 100, 1, 1)
    with pytest.raises(BgmaskError, match="does not touch layer 'photo'"):
        host.read_layer(fake.Node("photo", rect=fake.QRect(10, 20, 4, 2), data=bytes(32)),
                        False, hint)


def test_settings_survive_a_restart_and_bad_values_fall_back(plugin):
    plugin()
    from bgmask.host.job import JobSettings
    from bgmask_krita import state

    state.save_settings(JobSettings(refine=True, quality="best", output="selection"))
    assert state.load_settings() == JobSettings(refine=True, quality="best", output="selection")
    fake.Krita.instance().writeSetting("bgmask", "output", "somewhere")
    assert state.load_settings() == JobSettings()


def test_clean_edge_colours_setting_survives_a_restart(plugin):
    plugin()
    from bgmask.host.job import JobSettings
    from bgmask_krita import state

    state.save_settings(JobSettings(output="layer", decontaminate=True))
    assert state.load_settings() == JobSettings(output="layer", decontaminate=True)
    state.save_settings(JobSettings(output="layer"))
    assert not state.load_settings().decontaminate


class RecordingClient:
    """A worker client that answers every layer with a fixed mask and, when asked, its pixels
    with every colour byte set to 200 (what "cleaned" looks like here)."""

    def __init__(self) -> None:
        self.colours_asked: list[bool] = []

    def mask(self, pixels, width, height, fmt, colours=False, **_):  # noqa: ANN001, ANN003, ANN201
        from bgmask.host.client import MaskReply

        self.colours_asked.append(colours)
        cleaned = bytes(200 if i % 4 != 3 else b for i, b in enumerate(pixels))
        return MaskReply(bytes([128]) * (width * height), width, height, "CPU", None,
                         cleaned if colours else None)


def masked(layers: list[fake.Node], doc: fake.Document, **settings: object
           ) -> tuple[list[str], RecordingClient]:
    """A whole job on ``layers`` through the worker session and the writes, as the docker
    runs it (without Qt's threads)."""
    from bgmask.host.job import JobSettings
    from bgmask_krita import host
    from bgmask_krita.state import WorkerSession

    client = RecordingClient()
    job = JobSettings(**settings)  # type: ignore[arg-type]
    inputs = [host.read_layer(layer, job.combines_existing) for layer in layers]
    replies = WorkerSession(lambda: client).masks(  # type: ignore[arg-type, return-value]
        [p.sent for p in inputs], job, lambda fraction, text: None)
    copies, notes = None, []
    if host.needs_turn(doc, job.output):  # Krita 5.1: the job writes the masks a turn later
        copies, notes = host.add_copies(inputs, replies, job)
    return notes + host.write_masks(doc, inputs, replies, job, copies), client


def test_new_layer_gets_the_clean_edge_colours_before_it_joins_the_image(plugin):
    """The worker's cleaned pixels go into the "(bgmask)" copy, written before the copy is
    added (Krita's one undo of the addition takes them along); the user's layer keeps its
    own pixels and gets no mask."""
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    doc = document_with(layer, cls=fake.Document52)
    root = doc.rootNode()
    when_added = []
    add = root.addChildNode
    root.addChildNode = lambda child, above: (  # type: ignore[method-assign]
        when_added.append((child.data, [m.data for m in child.children])), add(child, above))[1]
    notes, client = masked([layer], doc, output="layer", decontaminate=True)
    assert notes == [] and client.colours_asked == [True]
    copy = root.childNodes()[1]
    cleaned = bytes([200, 200, 200, 3, 200, 200, 200, 7])  # colours cleaned, alpha as it was
    assert copy.name() == "photo (bgmask)" and copy.data == cleaned
    # Krita 5.2+: colours and mask in place before the copy joins the image.
    assert when_added == [(cleaned, [bytes([128, 128])])]
    assert copy.rect == fake.QRect(10, 20, 2, 1)
    assert [m.data for m in host.transparency_masks(copy)] == [bytes([128, 128])]
    assert layer.data == bytes(range(8)) and host.transparency_masks(layer) == []


def test_krita_51_adds_the_clean_copy_then_its_mask_with_the_action(plugin):
    """Krita 5.1 makes masks only with its action, on the active layer: the copy joins the
    image with its cleaned colours, then (a turn later) gets its mask."""
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    doc = document_with(layer)
    fake.Krita.instance().action("add_new_transparency_mask").on_trigger = \
        lambda: doc.activeNode().addChildNode(fake.Node("Mask", "transparencymask"), None)
    notes, _ = masked([layer], doc, output="layer", decontaminate=True)
    copy = doc.rootNode().childNodes()[1]
    assert notes == [] and copy.data == bytes([200, 200, 200, 3, 200, 200, 200, 7])
    assert [(m.name(), m.data) for m in host.transparency_masks(copy)] == [
        ("bgmask", bytes([128, 128]))]
    assert layer.data == bytes(range(8)) and host.transparency_masks(layer) == []


def test_krita_51_never_masks_the_wrong_layer(plugin):
    """When Krita 5.1 does not make the new layer active, its action would mask the active
    one, the user's own: a clear error instead."""
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    doc = document_with(layer)
    doc.setActiveNode = lambda node: None  # type: ignore[method-assign]
    doc.active = layer
    action = fake.Krita.instance().action("add_new_transparency_mask")
    with pytest.raises(BgmaskError, match="active layer"):
        masked([layer], doc, output="layer", decontaminate=True)
    assert action.count == 0 and host.transparency_masks(layer) == []


def test_a_copy_holding_masks_gets_its_new_mask_in_the_image(plugin):
    """A layer with a mask of its own: its copy's last mask is replaced in the image, as for
    any other mask (the copy's other children stay)."""
    plugin()
    from bgmask_krita import host

    layer = photo_layer()
    layer.addChildNode(fake.Node("old", "transparencymask", data=b"\x00\xff"), None)
    doc = document_with(layer, cls=fake.Document52)
    masked([layer], doc, output="layer", decontaminate=True)
    copy = doc.rootNode().childNodes()[1]
    assert [m.data for m in host.transparency_masks(copy)] == [bytes([128, 128])]
    assert [m.data for m in host.transparency_masks(layer)] == [b"\x00\xff"]


@pytest.mark.parametrize("output", ["mask", "selection"])
def test_clean_edge_colours_never_touch_a_layers_pixels(plugin, output):
    """With the setting on, a mask or a selection asks the worker for no colours and leaves
    every layer's pixels as they were."""
    plugin()
    layer = photo_layer()
    doc = document_with(layer, cls=fake.Document52)
    notes, client = masked([layer], doc, output=output, decontaminate=True)
    assert notes == [] and client.colours_asked == [False]
    assert [n.data for n in doc.rootNode().childNodes()] == [bytes(range(8))]


def test_new_layer_without_the_setting_keeps_the_layers_colours(plugin):
    plugin()
    layer = photo_layer()
    doc = document_with(layer, cls=fake.Document52)
    notes, client = masked([layer], doc, output="layer")
    assert notes == [] and client.colours_asked == [False]
    assert doc.rootNode().childNodes()[1].data == bytes(range(8))


@pytest.mark.parametrize("model, depth, profile, named", [
    ("RGBA", "F32", "sRGB-elle-V2-g10.icc", "linear RGBA F32"),
    ("RGBA", "U16", "sRGB-elle-V2-g10.icc", "linear RGBA U16"),
    ("CMYKA", "U8", "Chemical proof", "CMYKA U8")])
def test_a_layer_sent_as_a_converted_copy_is_reported_not_written(plugin, model, depth,
                                                                  profile, named):
    """The worker cleaned an 8-bit sRGB copy: its values would be wrong in the layer's own
    colour space, so the new layer keeps the layer's pixels and the message says why."""
    plugin()
    layer = photo_layer(model=model, depth=depth, profile=profile)
    plain = photo_layer()
    plain.setName("plain")
    doc = document_with(layer, plain, cls=fake.Document52)
    notes, client = masked([layer, plain], doc, output="layer", decontaminate=True)
    assert notes == [f"edge colours not cleaned on 'photo': Krita cannot hand bgmask its "
                     f"{named} pixels as they are"]
    assert client.colours_asked == [False, True]  # no cleaning that would be thrown away
    copies = {n.name(): n for n in doc.rootNode().childNodes()}
    assert copies["photo (bgmask)"].data == bytes(range(8))  # the layer's own pixels
    assert copies["plain (bgmask)"].data == bytes([200, 200, 200, 3, 200, 200, 200, 7])
    assert (layer.model, layer.depth, layer.data) == (model, depth, bytes(range(8)))


def test_a_layer_without_pixels_of_its_own_is_reported(plugin):
    plugin()
    group = fake.Node("group", "grouplayer", data=bytes(range(8)), rect=fake.QRect(0, 0, 2, 1))
    doc = document_with(group, cls=fake.Document52)
    notes, client = masked([group], doc, output="layer", decontaminate=True)
    assert notes == ["edge colours not cleaned on 'group': a group layer has no pixels of its "
                     "own to change"]
    assert client.colours_asked == [False]
    assert doc.rootNode().childNodes()[1].data == bytes(range(8))
