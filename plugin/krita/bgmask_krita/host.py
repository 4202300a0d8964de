"""Krita API helpers: which layers a job works on, their pixels in a format bgmask's worker
reads, and writing a mask back (transparency mask, selection, or new layer, the new layer with
its edge colours cleaned where asked).

Krita 5.1 has no ``Document.createTransparencyMask`` and a mask made by ``createNode`` has no
pixel storage, so there the built-in ``add_new_transparency_mask`` action makes the mask (which
also puts it on Krita's undo stack); 5.2 and later use the API call.
"""

from __future__ import annotations

from dataclasses import dataclass

from bgmask.host.client import MaskReply
from bgmask.host.errors import BgmaskError
from bgmask.host.job import COPY_SUFFIX, MASK_NAME, JobSettings, LayerInput, selection_box
from krita import Document, Krita, Node, Selection

SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"
TRANSPARENCY_MASK = "transparencymask"
MASK_TYPES = {"transparencymask", "filtermask", "transformmask", "selectionmask",
              "colorizemask"}
LAYER_TYPES = {"paintlayer", "grouplayer", "filllayer", "clonelayer", "vectorlayer",
               "filelayer"}
# Read as they are: Krita keeps 8-bit RGBA as B, G, R, A; 8-bit gray as gray, alpha.
NATIVE_FORMATS = {("RGBA", "U8"): "bgra8", ("GRAYA", "U8"): "graya8",
                  ("RGBA", "U16"): "bgra16", ("GRAYA", "U16"): "graya16"}
# Profiles whose values are linear light: the worker expects gamma-encoded values, so these
# are converted on a copy (Krita's built-in linear profiles say so in their names).
LINEAR_MARKERS = ("g10", "linear")


@dataclass
class LayerPixels:
    """A layer's pixels as sent to the worker, and where in the image they came from."""

    node: Node
    x: int
    y: int
    sent: LayerInput
    # The layer's own pixels as Krita holds them (not a converted 8-bit copy): only these can
    # come back into the layer's colour space, as cleaned edge colours.
    native: bool = True


def target_layers(doc: Document) -> list[Node]:
    """The selected layers (a selected mask stands for its layer), else the active one."""
    window = Krita.instance().activeWindow()
    view = window.activeView() if window else None
    nodes = list(view.selectedNodes()) if view is not None and view.document() == doc else []
    if not nodes and (active := doc.activeNode()) is not None:
        nodes = [active]
    layers: list[Node] = []
    for node in nodes:
        if node.type() in MASK_TYPES:
            node = node.parentNode()
        if node is not None and node.type() in LAYER_TYPES and \
                all(node.uniqueId() != x.uniqueId() for x in layers):
            layers.append(node)
    return layers


def transparency_masks(node: Node) -> list[Node]:
    return [child for child in node.childNodes() if child.type() == TRANSPARENCY_MASK]


def read_layer(node: Node, intersect: bool, hint: Selection | None = None) -> LayerPixels:
    """The layer's pixels inside its own bounds at full size, converted on a copy when the
    worker cannot read the layer's colour space as it is (linear 16-bit, float, CMYK, Lab,
    XYZ, YCbCr...). Gamma-encoded 16-bit is sent as Krita holds it (native-endian; the
    worker reads little-endian, which every platform Krita ships on is). Never a scaled
    copy: u2netp's mask moves by levels for input changes of a fraction of a level, so only
    the layer's own pixels give the mask the core computes for them. With ``hint`` (the
    document's selection), the network looks only at its bounding box on the layer and the
    mask stays within the selection's values there."""
    rect = node.bounds()
    if rect.isEmpty():
        raise BgmaskError(f"The layer '{node.name()}' is empty: there is nothing to mask.")
    x, y, w, h = rect.x(), rect.y(), rect.width(), rect.height()
    fmt = NATIVE_FORMATS.get((node.colorModel(), node.colorDepth()))
    if fmt is not None and fmt.endswith("16") \
            and any(m in node.colorProfile().lower() for m in LINEAR_MARKERS):
        fmt = None
    source = node
    native = fmt is not None
    if fmt is None:
        source = node.duplicate()  # never convert the user's layer
        if not source.setColorSpace("RGBA", "U8", SRGB_PROFILE):
            raise BgmaskError(f"Krita could not convert a copy of '{node.name()}' "
                              f"({node.colorModel()} {node.colorDepth()}) to 8-bit RGB.")
        fmt = "bgra8"
    data = bytes(source.pixelData(x, y, w, h))
    base = None
    old = transparency_masks(node)
    if intersect and old:
        base = bytes(old[-1].pixelData(x, y, w, h))
    box, plane = None, None
    if hint is not None:  # image coordinates, like the layer's bounds
        box = selection_box(node.name(), hint.x() - x, hint.y() - y,
                            hint.x() + hint.width() - x, hint.y() + hint.height() - y, w, h)
        plane = bytes(hint.pixelData(x, y, w, h))
    pixels = LayerPixels(node, x, y, LayerInput(node.name(), data, w, h, fmt, base, box, plane),
                         native)
    pixels.sent.cleanable = colours_refusal(pixels) is None  # else the worker need not clean
    return pixels


def colour_space_name(node: Node) -> str:
    """The layer's pixel format as a user reads it: "RGBA F32", "linear RGBA U16"."""
    linear = any(m in node.colorProfile().lower() for m in LINEAR_MARKERS)
    return f"{'linear ' if linear else ''}{node.colorModel()} {node.colorDepth()}"


def colours_refusal(pixels: LayerPixels) -> str | None:
    """Why the new layer made from ``pixels`` keeps its edge colours as they are, or None when
    the worker's cleaned colours can be written into it."""
    name = pixels.node.name()
    if not pixels.native:  # the cleaned pixels are 8-bit sRGB, the layer is not
        return (f"edge colours not cleaned on '{name}': Krita cannot hand bgmask its "
                f"{colour_space_name(pixels.node)} pixels as they are")
    if pixels.node.type() != "paintlayer":  # Krita draws these from their own source
        kind = pixels.node.type().replace("layer", " layer")
        return (f"edge colours not cleaned on '{name}': a {kind} has no pixels of its own "
                "to change")
    return None


def add_transparency_mask(doc: Document, node: Node, name: str) -> Node:
    if hasattr(doc, "createTransparencyMask"):  # Krita 5.2+
        mask = doc.createTransparencyMask(name)
        node.addChildNode(mask, None)
        return mask
    before = {m.uniqueId() for m in transparency_masks(node)}
    doc.setActiveNode(node)
    active = doc.activeNode()
    if active is None or active.uniqueId() != node.uniqueId():  # the action would mask it
        raise BgmaskError(f"Krita did not make '{node.name()}' the active layer to add its "
                          "mask: click Remove Background again.")
    Krita.instance().action("add_new_transparency_mask").trigger()
    doc.waitForDone()
    new = [m for m in transparency_masks(node) if m.uniqueId() not in before]
    if not new:
        raise BgmaskError("Krita did not create the transparency mask: show the document in a "
                          "window and try again.")
    new[-1].setName(name)
    return new[-1]


def needs_front(doc: Document, output: str) -> bool:
    """Krita 5.1 makes masks with an action, and actions work on the active view's document."""
    return output != "selection" and not hasattr(doc, "createTransparencyMask")


def needs_turn(doc: Document, output: str) -> bool:
    """Krita 5.1, output "layer": its action masks the active layer, and a layer a script
    added can be made active only after a turn of Krita's event loop (before it, Krita's
    layer list does not know it and the original layer stays active)."""
    return output == "layer" and not hasattr(doc, "createTransparencyMask")


def front_view(doc: Document):  # noqa: ANN201 (a krita.View or None)
    window = Krita.instance().activeWindow()
    view = window.activeView() if window is not None else None
    return view if view is not None and view.document() == doc else None


def bring_to_front(doc: Document):  # noqa: ANN201 (the view that was in front, or None)
    """Shows ``doc``'s view (Krita switches on its next event-loop turn); the caller waits for
    ``front_view`` before relying on it."""
    window = Krita.instance().activeWindow()
    if window is None:
        raise BgmaskError("Krita has no window to show the document in.")
    previous = window.activeView()
    target = next((v for v in window.views() if v.document() == doc), None)
    if target is None:
        raise BgmaskError("The document is not shown in a window any more: show it and click "
                          "Remove Background again.")
    window.showView(target)
    target.setVisible()  # what makes it the active sub-window in Krita 5.1
    return previous


def show_view(view) -> None:  # noqa: ANN001 (a krita.View)
    window = Krita.instance().activeWindow()
    if window is not None and view is not None:
        window.showView(view)
        view.setVisible()


def remove_node(doc: Document, node: Node) -> None:
    """Removes a node, through Krita's own (undoable) action where the API has no undo."""
    if hasattr(doc, "createTransparencyMask"):
        node.remove()
        return
    doc.setActiveNode(node)
    Krita.instance().action("remove_layer").trigger()
    doc.waitForDone()


def make_copy(pixels: LayerPixels, colours: bytes | None) -> Node:
    """The "layer" output's new layer, not yet in the image: a copy of the layer named
    "<name> (bgmask)", holding ``colours`` (the pixels as sent, edges cleaned) where given."""
    copy = pixels.node.duplicate()
    copy.setName(pixels.node.name() + COPY_SUFFIX)
    if colours is not None:
        # Written before the copy joins the image, so the undo of its addition takes them
        # along; the user's layer is never written.
        copy.setPixelData(colours, pixels.x, pixels.y, pixels.sent.width, pixels.sent.height)
    return copy


def write_mask(doc: Document, pixels: LayerPixels, mask: bytes, output: str,
               selection: Selection | None, colours: bytes | None = None,
               copy: Node | None = None) -> Selection | None:
    """Puts one layer's mask where ``output`` says; returns the selection built so far.
    ``colours`` (the "layer" output only): the new layer's pixels, as ``pixels`` were sent;
    ``copy``: the new layer, already in the image (see ``add_copies``)."""
    if output == "selection":
        part = Selection()
        part.setPixelData(mask, pixels.x, pixels.y, pixels.sent.width, pixels.sent.height)
        if selection is None:
            return part
        selection.add(part)
        return selection
    target = pixels.node
    if output == "layer" and copy is not None:
        target = copy
    elif output == "layer":
        target = make_copy(pixels, colours)
        if hasattr(doc, "createTransparencyMask") and not target.childNodes():
            # Krita 5.2+: the mask goes in before the copy joins the image (setChildNodes
            # is not on the undo stack), so one undo removes the new layer and all it holds.
            new = doc.createTransparencyMask(MASK_NAME)
            target.setChildNodes([new])
            new.setPixelData(mask, pixels.x, pixels.y, pixels.sent.width, pixels.sent.height)
            pixels.node.parentNode().addChildNode(target, pixels.node)
            return selection
        pixels.node.parentNode().addChildNode(target, pixels.node)
    old = transparency_masks(target)
    if old:  # the mask we replace or intersected with (the last one, as read_layer took)
        remove_node(doc, old[-1])
    new = add_transparency_mask(doc, target, MASK_NAME)
    new.setPixelData(mask, pixels.x, pixels.y, pixels.sent.width, pixels.sent.height)
    return selection


def new_colours(pixels: LayerPixels, reply: MaskReply, settings: JobSettings,
                notes: list[str]) -> bytes | None:
    """The cleaned colours for ``pixels``' new layer, or None (with the reason in ``notes``
    where they were asked for but cannot be used)."""
    if not settings.cleans_colours:
        return None
    refusal = colours_refusal(pixels)
    if refusal is not None:
        notes.append(refusal)
        return None
    return reply.colours


def add_copies(layers: list[LayerPixels], replies: list[MaskReply], settings: JobSettings
               ) -> tuple[list[Node], list[str]]:
    """The "layer" output on Krita 5.1 (see ``needs_turn``): each layer's new layer joins the
    image above it, to get its mask on a later turn; with the notes ``write_masks`` gives."""
    notes: list[str] = []
    copies = []
    for pixels, reply in zip(layers, replies, strict=True):
        copy = make_copy(pixels, new_colours(pixels, reply, settings, notes))
        pixels.node.parentNode().addChildNode(copy, pixels.node)
        copies.append(copy)
    return copies, notes


def write_masks(doc: Document, layers: list[LayerPixels], replies: list[MaskReply],
                settings: JobSettings, copies: list[Node] | None = None) -> list[str]:
    """Writes each layer's reply where the settings say (into ``copies``, where
    ``add_copies`` made them); returns what was not done as asked (a new layer whose edge
    colours stay as they were, and why)."""
    notes: list[str] = []
    selection = None
    for index, (pixels, reply) in enumerate(zip(layers, replies, strict=True)):
        colours = None if copies else new_colours(pixels, reply, settings, notes)
        selection = write_mask(doc, pixels, reply.mask, settings.output, selection, colours,
                               copies[index] if copies else None)
    if selection is not None:
        doc.setSelection(selection)
    doc.refreshProjection()
    return notes
