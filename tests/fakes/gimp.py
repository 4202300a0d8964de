"""A small fake of GIMP 3's Python API (``gi.repository``: Gimp, Gegl, GLib, GObject, GimpUi):
just what bgmask's GIMP plug-in touches, so its logic can be tested without GIMP. Drawables hold
real bytes in their own babl format; the rules are GIMP's own (../shared/notes/real-editors.md,
GIMP's PDB and core source):

- a buffer read converts to the format asked for (alpha added or dropped, the sRGB curve applied
  between "Y"/"RGB" and "Y'"/"R'G'B'", samples u8, u16 or float: integers rounded and clipped,
  floats kept as they are); a layer mask is stored as linear "Y u8", so bytes written in that
  format are kept as they are; a scaled read returns zeros, as in plug-ins of GIMP 3.0 and 3.2;
- an image has a precision (``get_precision``); its layers are stored in a format of that
  precision, which a test chooses when it makes them;
- ``add_mask`` takes only a mask fresh from ``create_mask`` (a mask once added, even if removed
  since, is refused) of the layer's size, on a layer without one; ``remove_mask`` needs a layer
  in an image. A refused PDB call returns False and leaves a line in ``pdb_errors``, as GIMP
  returns a failure status and puts the message in its error console: it raises nothing;
- with one layer selected and its mask being edited (what ``add_mask`` leaves), the selected
  drawable GIMP hands a plug-in is the mask (``Image.selected_drawables``).

Every change to an image is logged with the depth of undo groups it happened in (``changes``).
"""

from __future__ import annotations

import array
import enum
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# -- enums ----------------------------------------------------------------------------------


class RunMode(enum.Enum):
    INTERACTIVE = 0
    NONINTERACTIVE = 1
    WITH_LAST_VALS = 2


class PDBProcType(enum.Enum):
    INTERNAL = 0
    PLUGIN = 1
    PERSISTENT = 2
    TEMPORARY = 3


class PDBStatusType(enum.Enum):
    EXECUTION_ERROR = 0
    CALLING_ERROR = 1
    PASS_THROUGH = 2
    SUCCESS = 3
    CANCEL = 4


class ProcedureSensitivityMask(enum.IntFlag):
    DRAWABLE = 1 << 0
    DRAWABLES = 1 << 2
    NO_DRAWABLES = 1 << 3
    NO_IMAGE = 1 << 4


class AddMaskType(enum.Enum):
    WHITE = 0
    BLACK = 1


class MaskApplyMode(enum.Enum):
    APPLY = 0
    DISCARD = 1


class ChannelOps(enum.Enum):
    ADD = 0
    SUBTRACT = 1
    REPLACE = 2
    INTERSECT = 3


class Precision(enum.IntEnum):
    """GimpPrecision's values: the sample type and the tone curve of an image's pixels."""

    U8_LINEAR = 100
    U8_NON_LINEAR = 150
    U8_PERCEPTUAL = 175
    U16_LINEAR = 200
    U16_NON_LINEAR = 250
    U16_PERCEPTUAL = 275
    U32_LINEAR = 300
    U32_NON_LINEAR = 350
    HALF_LINEAR = 500
    HALF_NON_LINEAR = 550
    FLOAT_LINEAR = 600
    FLOAT_NON_LINEAR = 650
    FLOAT_PERCEPTUAL = 675


class AbyssPolicy(enum.Enum):
    NONE = 0
    CLAMP = 1


class ParamFlags(enum.IntFlag):
    READABLE = 1
    WRITABLE = 2
    READWRITE = 3


# -- GLib -----------------------------------------------------------------------------------


class GError(Exception):
    def __init__(self, message: str = "", domain: int = 0, code: int = 0) -> None:
        super().__init__(message)
        self.message, self.domain, self.code = message, domain, code

    @classmethod
    def new_literal(cls, domain: int, message: str, code: int) -> GError:
        return cls(message, domain, code)


_quarks: dict[str, int] = {}


def quark_from_string(name: str) -> int:
    return _quarks.setdefault(name, len(_quarks) + 1)


# -- pixels (babl formats: u8, u16, float) --------------------------------------------------

# Sample types: (array typecode, largest integer value or None for float).
SAMPLES = {"u8": ("B", 255), "u16": ("H", 65535), "float": ("f", None)}


@dataclass(frozen=True)
class Format:
    """A babl format name taken apart: "R'G'B'A u8" is rgb, perceptual, with alpha, 8-bit."""

    name: str
    gray: bool
    perceptual: bool
    alpha: bool
    sample: str = "u8"

    @classmethod
    def parse(cls, name: str) -> Format:
        components, kind = name.split(" ")
        if kind not in SAMPLES:
            raise NotImplementedError(f"the fake knows u8, u16 and float only, not {name!r}")
        perceptual = "'" in components
        colour = components.replace("'", "").removesuffix("A")
        if colour not in ("Y", "RGB"):
            raise ValueError(f"babl knows no format {name!r}")
        return cls(name, colour == "Y", perceptual, components.endswith("A"), kind)

    @property
    def colours(self) -> int:
        return 1 if self.gray else 3

    @property
    def channels(self) -> int:
        return self.colours + self.alpha

    @property
    def bpp(self) -> int:
        """Bytes per pixel."""
        return self.channels * array.array(SAMPLES[self.sample][0]).itemsize


def _encode(v: float) -> float:
    return v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055


def _decode(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _curve(to_perceptual: bool) -> list[int]:
    f = _encode if to_perceptual else _decode
    return [round(f(i / 255) * 255) for i in range(256)]


def _samples(data: bytes, fmt: Format) -> list[float]:
    """The samples as numbers in 0..1 (floats as they are)."""
    code, top = SAMPLES[fmt.sample]
    values = array.array(code, data)
    return [v / top for v in values] if top is not None else list(values)


def _packed(values: list[float], fmt: Format) -> bytes:
    code, top = SAMPLES[fmt.sample]
    if top is None:
        return array.array(code, values).tobytes()
    return array.array(code, (round(min(max(v, 0.0), 1.0) * top) for v in values)).tobytes()


def convert(data: bytes, src: Format, dst: Format) -> bytes:
    """What GEGL does between two formats of the same colour model."""
    if src == dst:
        return bytes(data)
    if src.gray != dst.gray:
        raise NotImplementedError("the fake converts within one colour model only")
    if src.sample == dst.sample == "u8":  # a table: fast enough for camera-size layers
        curve = _curve(dst.perceptual) if src.perceptual != dst.perceptual else \
            list(range(256))
        out = bytearray()
        for at in range(0, len(data), src.bpp):
            pixel = data[at:at + src.bpp]
            out += bytes(curve[v] for v in pixel[:src.colours])
            if dst.alpha:
                out.append(pixel[src.colours] if src.alpha else 255)
        return bytes(out)
    tone = None if src.perceptual == dst.perceptual else _encode if dst.perceptual else _decode
    values = _samples(data, src)
    result: list[float] = []
    for at in range(0, len(values), src.channels):
        pixel = values[at:at + src.channels]
        colours = pixel[:src.colours]
        result += [tone(v) for v in colours] if tone is not None else colours
        if dst.alpha:
            result.append(pixel[src.colours] if src.alpha else 1.0)
    return _packed(result, dst)


# -- Gegl -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rectangle:
    x: int
    y: int
    width: int
    height: int

    @classmethod
    def new(cls, x: int, y: int, width: int, height: int) -> Rectangle:
        return cls(x, y, width, height)


class Buffer:
    """A drawable's pixels as a GeglBuffer: reads convert, writes land in the drawable."""

    def __init__(self, drawable: Drawable) -> None:
        self.drawable = drawable

    def get(self, rect: Rectangle, scale: float, fmt: str, abyss: AbyssPolicy) -> bytes:
        want = Format.parse(fmt)
        d = self.drawable
        d.reads.append(rect)
        if scale != 1.0:  # GIMP 3.0 and 3.2 plug-ins: scaled reads come back as zeros
            return bytes(int(rect.width * scale) * int(rect.height * scale) * want.bpp)
        own = d.format.bpp
        out = bytearray()
        for y in range(rect.y, rect.y + rect.height):
            row = bytearray(rect.width * own)  # outside the drawable: zeros (AbyssPolicy.NONE)
            if 0 <= y < d.height:
                left, right = max(rect.x, 0), min(rect.x + rect.width, d.width)
                if left < right:
                    start = (y * d.width + left) * own
                    row[(left - rect.x) * own:(right - rect.x) * own] = \
                        d.pixels[start:start + (right - left) * own]
            out += row
        return convert(bytes(out), d.format, want)

    def set(self, rect: Rectangle, fmt: str, data: bytes) -> None:
        d = self.drawable
        if d.is_group():  # its pixels are its layers' projection
            raise GError(f"Item '{d.name}' ({d.id}) cannot be modified: it is a group item")
        got = Format.parse(fmt)
        if len(data) != rect.width * rect.height * got.bpp:
            raise ValueError("Gegl.Buffer.set: data does not fill the rectangle")
        pixels = convert(bytes(data), got, d.format)
        own, row = d.format.bpp, rect.width * d.format.bpp
        for line in range(rect.height):
            start = ((rect.y + line) * d.width + rect.x) * own
            d.pixels[start:start + row] = pixels[line * row:(line + 1) * row]
        d.changed("buffer set")

    def flush(self) -> None:
        pass


# -- items ----------------------------------------------------------------------------------


pdb_errors: list[str] = []
_ids = iter(range(1, 1 << 30))


def _refuse(message: str) -> bool:
    """A PDB call GIMP refuses: the plug-in gets False, the user a line in the error console."""
    pdb_errors.append(message)
    return False


class Item:
    def __init__(self, name: str, width: int, height: int, fmt: str,
                 pixels: bytes | None = None, offsets: tuple[int, int] = (0, 0)) -> None:
        self.name, self.width, self.height = name, width, height
        self.format = Format.parse(fmt)
        size = width * height * self.format.bpp
        self.pixels = bytearray(pixels if pixels is not None else size)
        if len(self.pixels) != size:
            raise ValueError(f"{name}: {len(self.pixels)} bytes for {width}x{height} {fmt}")
        self.offsets = offsets
        self.image: Image | None = None
        self.reads: list[Rectangle] = []
        self.id = next(_ids)

    def get_name(self) -> str:
        return self.name

    def set_name(self, name: str) -> None:
        self.name = name
        self.changed("rename")

    def get_width(self) -> int:
        return self.width

    def get_height(self) -> int:
        return self.height

    def get_offsets(self) -> tuple[bool, int, int]:
        return True, *self.offsets

    def is_layer_mask(self) -> bool:
        return False

    def is_group(self) -> bool:
        return False

    def changed(self, what: str) -> None:
        if self.image is not None and self.attached:
            self.image.log(f"{what}: {self.name}")

    @property
    def attached(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} #{self.id}>"


class Drawable(Item):
    def get_buffer(self) -> Buffer:
        return Buffer(self)

    def has_alpha(self) -> bool:
        return self.format.alpha

    def is_gray(self) -> bool:
        return self.format.gray

    def is_rgb(self) -> bool:
        return not self.format.gray

    def update(self, x: int, y: int, width: int, height: int) -> bool:
        return True


class Channel(Drawable):
    """A saved selection or other channel: a drawable, not a layer."""

    def __init__(self, name: str, width: int, height: int, pixels: bytes | None = None
                 ) -> None:
        super().__init__(name, width, height, "Y u8", pixels)


class SelectionChannel(Channel):
    """The image's selection as GIMP's plug-ins see it: a channel the canvas's size, its
    pixels the image's own selection bytes (gimp_image_get_selection)."""

    def __init__(self, image: Image) -> None:
        super().__init__("Selection Mask", image.width, image.height)
        self.pixels = image.selection
        self.image = image


class Selection:
    @staticmethod
    def bounds(image: Image) -> tuple[bool, bool, int, int, int, int]:
        """(success, non_empty, x1, y1, x2, y2), x2 and y2 exclusive; the whole canvas when
        nothing is selected, as gimp_selection_bounds gives."""
        rows = [y for y in range(image.height)
                if any(image.selection[y * image.width:(y + 1) * image.width])]
        if not rows:
            return True, False, 0, 0, image.width, image.height
        columns = [x for x in range(image.width)
                   if any(image.selection[y * image.width + x] for y in rows)]
        return True, True, min(columns), rows[0], max(columns) + 1, rows[-1] + 1

    @staticmethod
    def is_empty(image: Image) -> bool:
        return not any(image.selection)


class LayerMask(Channel):
    def __init__(self, layer: Layer, fill: int) -> None:
        super().__init__(f"{layer.name} mask", layer.width, layer.height,
                         bytes([fill]) * (layer.width * layer.height))
        self.image = layer.image
        self.layer: Layer | None = None
        self.floating = True  # fresh from create_mask, never added to a layer

    def is_layer_mask(self) -> bool:
        return True

    @property
    def attached(self) -> bool:
        return self.layer is not None and self.layer.attached

    @property
    def offsets(self) -> tuple[int, int]:
        return self.layer.offsets if self.layer is not None else (0, 0)

    @offsets.setter
    def offsets(self, value: tuple[int, int]) -> None:
        pass


class Layer(Drawable):
    def __init__(self, name: str, width: int, height: int, fmt: str = "R'G'B'A u8",
                 pixels: bytes | None = None, offsets: tuple[int, int] = (0, 0)) -> None:
        super().__init__(name, width, height, fmt, pixels, offsets)
        self.mask: LayerMask | None = None
        self.edit_mask = False
        self.parent: Layer | None = None
        self.children: list[Layer] = []  # a layer group's layers, top first

    @staticmethod
    def from_mask(mask: LayerMask) -> Layer | None:
        return mask.layer

    @property
    def attached(self) -> bool:
        return self.image is not None and self in self.image.container(self.parent)

    def get_parent(self) -> Layer | None:
        return self.parent

    def get_mask(self) -> LayerMask | None:
        return self.mask

    def create_mask(self, kind: AddMaskType) -> LayerMask:
        return LayerMask(self, 255 if kind == AddMaskType.WHITE else 0)

    def add_mask(self, mask: LayerMask) -> bool:
        if not mask.floating:
            return _refuse(f"Item '{mask.name}' ({mask.id}) has already been added to an image")
        if self.mask is not None:
            return _refuse("Unable to add a layer mask since the layer already has one.")
        if (mask.width, mask.height) != (self.width, self.height):
            return _refuse("Cannot add layer mask of different dimensions than specified "
                           "layer.")
        mask.floating, mask.layer, mask.image = False, self, self.image
        self.mask, self.edit_mask = mask, True
        self.changed("add mask")
        return True

    def remove_mask(self, mode: MaskApplyMode) -> bool:
        if not self.attached:
            return _refuse(f"Item '{self.name}' ({self.id}) cannot be used because it has not "
                           "been added to an image")
        if self.mask is None:
            return _refuse(f"Layer '{self.name}' has no mask")
        if mode != MaskApplyMode.DISCARD:
            raise NotImplementedError("the fake discards masks only")
        self.mask.layer = None  # kept alive by the undo stack, never floating again
        self.mask, self.edit_mask = None, False
        self.changed("remove mask")
        return True

    def add_alpha(self) -> bool:
        if not self.format.alpha:
            with_alpha = Format.parse(self.format.name.replace(" ", "A "))
            self.pixels = bytearray(convert(bytes(self.pixels), self.format, with_alpha))
            self.format = with_alpha
            self.changed("add alpha")
        return True

    def copy(self) -> Layer:
        """A copy for this layer's image (its mask copied too), not yet in it."""
        twin = Layer(f"{self.name} copy", self.width, self.height, self.format.name,
                     bytes(self.pixels), self.offsets)
        twin.image = self.image
        if self.mask is not None:
            mask = twin.create_mask(AddMaskType.WHITE)
            mask.pixels[:] = self.mask.pixels
            twin.add_mask(mask)
        return twin


class GroupLayer(Layer):
    """A layer group: its pixels are its layers' projection, never written by a plug-in."""

    def is_group(self) -> bool:
        return True


class Image:
    def __init__(self, width: int, height: int,
                 precision: Precision = Precision.U8_NON_LINEAR) -> None:
        self.width, self.height = width, height
        self.precision = precision
        self.layers: list[Layer] = []  # top first
        self.selection = bytearray(width * height)
        self.undo_depth = 0
        self.undo_groups = 0
        self.changes: list[tuple[str, int]] = []  # (what, undo group depth at the time)

    def log(self, what: str) -> None:
        self.changes.append((what, self.undo_depth))

    def get_precision(self) -> Precision:
        return self.precision

    def get_selection(self) -> SelectionChannel:
        return SelectionChannel(self)

    def select_rectangle(self, x: int, y: int, width: int, height: int, value: int = 255
                         ) -> None:
        """Test set-up: a (soft, with ``value`` < 255) rectangle selected, nothing logged."""
        self.selection[:] = bytes(len(self.selection))
        for row in range(max(y, 0), min(y + height, self.height)):
            for column in range(max(x, 0), min(x + width, self.width)):
                self.selection[row * self.width + column] = value

    def container(self, parent: Layer | None) -> list[Layer]:
        return parent.children if parent is not None else self.layers

    def add(self, layer: Layer, parent: Layer | None = None) -> Layer:
        """Test set-up: the layer at the bottom of ``parent`` (or the image), not logged."""
        layer.image, layer.parent = self, parent
        self.container(parent).append(layer)
        if layer.mask is not None:
            layer.mask.image = self
        return layer

    def undo_group_start(self) -> bool:
        self.undo_depth += 1
        self.undo_groups += self.undo_depth == 1
        return True

    def undo_group_end(self) -> bool:
        self.undo_depth -= 1
        return True

    def insert_layer(self, layer: Layer, parent: Layer | None, position: int) -> bool:
        if layer.attached:
            return _refuse(f"Item '{layer.name}' ({layer.id}) has already been added to an "
                           "image")
        layer.image, layer.parent = self, parent
        self.container(parent).insert(position, layer)
        layer.changed("insert layer")
        return True

    def get_item_position(self, layer: Layer) -> int:
        return self.container(layer.parent).index(layer)

    def select_item(self, op: ChannelOps, item: Drawable) -> bool:
        """The selection from a channel or mask, at the item's offsets in the image."""
        if not item.attached:
            return _refuse(f"Item '{item.name}' ({item.id}) cannot be used because it has not "
                           "been added to an image")
        values = item.get_buffer().get(Rectangle(0, 0, item.width, item.height), 1.0, "Y u8",
                                       AbyssPolicy.NONE)
        if op == ChannelOps.REPLACE:
            self.selection[:] = bytes(len(self.selection))
        elif op != ChannelOps.ADD:
            raise NotImplementedError("the fake replaces or adds selections only")
        ox, oy = item.offsets
        for y in range(item.height):
            for x in range(item.width):
                if 0 <= x + ox < self.width and 0 <= y + oy < self.height:
                    at = (y + oy) * self.width + x + ox
                    self.selection[at] = max(self.selection[at], values[y * item.width + x])
        self.log(f"select: {item.name}")
        return True

    def selected_drawables(self, layers: list[Layer]) -> list[Drawable]:
        """What GIMP hands a plug-in run from its menu with ``layers`` selected: with one
        layer whose mask is being edited, the mask (gimp_image_get_selected_drawables)."""
        if len(layers) == 1 and layers[0].mask is not None and layers[0].edit_mask:
            return [layers[0].mask]
        return list(layers)


# -- Gimp: plug-in, procedures, progress ----------------------------------------------------


class Choice:
    def __init__(self) -> None:
        self.nicks: list[str] = []

    @classmethod
    def new(cls) -> Choice:
        return cls()

    def add(self, nick: str, ident: int, label: str, help_text: str) -> None:
        self.nicks.append(nick)


class ValueArray:
    def __init__(self, *values: Any) -> None:
        self.values = list(values)

    def index(self, i: int) -> Any:
        return self.values[i]

    def length(self) -> int:
        return len(self.values)


class ProcedureConfig:
    """A procedure's arguments by name: unknown names raise, as GObject properties do."""

    def __init__(self, values: dict[str, Any], choices: dict[str, Choice]) -> None:
        self.values, self.choices = values, choices

    def get_property(self, name: str) -> Any:
        if name not in self.values:
            raise TypeError(f"object has no property {name!r}")
        return self.values[name]

    def set_property(self, name: str, value: Any) -> None:
        self.get_property(name)
        if name in self.choices and value not in self.choices[name].nicks:
            raise ValueError(f"{value!r} is not a choice of {name!r}")
        self.values[name] = value


class Procedure:
    def __init__(self, plugin: PlugIn, name: str, kind: PDBProcType,
                 run: Callable[..., ValueArray], data: Any) -> None:
        self.name, self.kind, self.run_func = name, kind, run
        self.arguments: dict[str, Any] = {}
        self.choices: dict[str, Choice] = {}
        self.menu_paths: list[str] = []
        self.image_types = ""
        self.sensitivity = ProcedureSensitivityMask(0)

    @classmethod
    def new(cls, plugin: PlugIn, name: str, kind: PDBProcType,
            run: Callable[..., ValueArray], data: Any) -> Procedure:
        return cls(plugin, name, kind, run, data)

    def set_image_types(self, types_: str) -> None:
        self.image_types = types_

    def set_sensitivity_mask(self, mask: ProcedureSensitivityMask) -> None:
        self.sensitivity = mask

    def set_menu_label(self, label: str) -> None:
        self.menu_label = label

    def add_menu_path(self, path: str) -> None:
        self.menu_paths.append(path)

    def set_documentation(self, blurb: str, help_text: str, help_id: str) -> None:
        pass

    def set_attribution(self, authors: str, copyright_: str, date: str) -> None:
        pass

    def _argument(self, name: str, default: Any) -> None:
        if name in self.arguments:
            raise ValueError(f"argument {name!r} added twice")
        self.arguments[name] = default

    def add_choice_argument(self, name: str, nick: str, blurb: str, choice: Choice,
                            default: str, flags: ParamFlags) -> None:
        if default not in choice.nicks:
            raise ValueError(f"default {default!r} of {name!r} is not one of its choices")
        self._argument(name, default)
        self.choices[name] = choice

    def add_boolean_argument(self, name: str, nick: str, blurb: str, default: bool,
                             flags: ParamFlags) -> None:
        self._argument(name, default)

    def create_config(self) -> ProcedureConfig:
        return ProcedureConfig(dict(self.arguments), self.choices)

    def new_return_values(self, status: PDBStatusType, error: GError) -> ValueArray:
        return ValueArray(status, error)


class ImageProcedure(Procedure):
    pass


class PlugIn:
    __gtype__ = object()


main_calls: list[tuple[object, list[str]]] = []
progress: list[tuple[str, object]] = []


def main(gtype: object, argv: list[str]) -> int:
    """GIMP starts the plug-in here; the fake only notes the call."""
    main_calls.append((gtype, list(argv)))
    return 0


def _progress(kind: str) -> Callable[..., bool]:
    def record(*args: object) -> bool:
        progress.append((kind, args[0] if args else None))
        return True
    return record


# -- GimpUi ---------------------------------------------------------------------------------


class ProcedureDialog:
    """The settings dialog; ``answer`` is what the user does (True: OK, False: Cancel)."""

    answer = True
    shown: list[str] = []

    def __init__(self, procedure: Procedure, config: ProcedureConfig, title: str) -> None:
        self.title = title

    @classmethod
    def new(cls, procedure: Procedure, config: ProcedureConfig, title: str) -> ProcedureDialog:
        return cls(procedure, config, title)

    def fill(self, names: list[str] | None) -> None:
        pass

    def run(self) -> bool:
        ProcedureDialog.shown.append(self.title)
        return ProcedureDialog.answer

    def destroy(self) -> None:
        pass


# -- the modules ----------------------------------------------------------------------------


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


Gimp = _module(
    "gi.repository.Gimp", PlugIn=PlugIn, Procedure=Procedure, ImageProcedure=ImageProcedure,
    ProcedureConfig=ProcedureConfig, ValueArray=ValueArray, Choice=Choice, RunMode=RunMode,
    PDBProcType=PDBProcType, PDBStatusType=PDBStatusType,
    ProcedureSensitivityMask=ProcedureSensitivityMask, Item=Item, Drawable=Drawable,
    Channel=Channel, Selection=Selection, Layer=Layer, GroupLayer=GroupLayer,
    LayerMask=LayerMask, Image=Image,
    AddMaskType=AddMaskType, MaskApplyMode=MaskApplyMode, ChannelOps=ChannelOps,
    Precision=Precision, main=main,
    progress_init=_progress("init"), progress_set_text=_progress("text"),
    progress_update=_progress("update"), progress_end=_progress("end"),
    displays_flush=_progress("flush"))
Gegl = _module("gi.repository.Gegl", Rectangle=Rectangle, AbyssPolicy=AbyssPolicy,
               Buffer=Buffer)
GLib = _module("gi.repository.GLib", Error=GError, quark_from_string=quark_from_string)
GObject = _module("gi.repository.GObject", ParamFlags=ParamFlags)
GimpUi = _module("gi.repository.GimpUi", init=lambda name: True,
                 ProcedureDialog=ProcedureDialog)
repository = _module("gi.repository", Gimp=Gimp, Gegl=Gegl, GLib=GLib, GObject=GObject,
                     GimpUi=GimpUi)
versions: dict[str, str] = {}
gi = _module("gi", repository=repository,
             require_version=lambda name, version: versions.__setitem__(name, version))


def modules() -> dict[str, types.ModuleType]:
    """What to put in ``sys.modules`` for ``import gi`` to find this fake."""
    return {"gi": gi, "gi.repository": repository}


def reset() -> None:
    """Forget what earlier tests left: console lines, progress, dialog answers."""
    pdb_errors.clear()
    main_calls.clear()
    progress.clear()
    versions.clear()
    ProcedureDialog.answer = True
    ProcedureDialog.shown.clear()

