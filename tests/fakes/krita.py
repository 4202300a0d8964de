"""A small fake of Krita's ``krita`` module: just what bgmask's plug-in touches, so its logic
can be tested without Krita. Nodes hold real bytes; actions are callables the test sets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class QRect:
    _x: int
    _y: int
    _w: int
    _h: int

    def x(self) -> int:
        return self._x

    def y(self) -> int:
        return self._y

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h

    def isEmpty(self) -> bool:  # noqa: N802 (Qt's name)
        return self._w <= 0 or self._h <= 0


_ids = iter(range(1, 1 << 30))


@dataclass(eq=False)
class Node:
    _name: str
    _type: str = "paintlayer"
    model: str = "RGBA"
    depth: str = "U8"
    rect: QRect = field(default_factory=lambda: QRect(0, 0, 2, 1))
    data: bytes = b""
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None
    conversions: list[tuple[str, str, str]] = field(default_factory=list)
    profile: str = "sRGB-elle-V2-srgbtrc.icc"
    _id: int = field(default_factory=lambda: next(_ids))

    def name(self) -> str:
        return self._name

    def setName(self, name: str) -> None:  # noqa: N802
        self._name = name

    def type(self) -> str:
        return self._type

    def uniqueId(self) -> int:  # noqa: N802
        return self._id

    def colorModel(self) -> str:  # noqa: N802
        return self.model

    def colorDepth(self) -> str:  # noqa: N802
        return self.depth

    def colorProfile(self) -> str:  # noqa: N802
        return self.profile

    def bounds(self) -> QRect:
        return self.rect

    def childNodes(self) -> list[Node]:  # noqa: N802
        return list(self.children)

    def parentNode(self) -> Node | None:  # noqa: N802
        return self.parent

    def addChildNode(self, child: Node, above: Node | None) -> bool:  # noqa: N802
        child.parent = self
        index = self.children.index(above) + 1 if above in self.children else 0
        self.children.insert(index, child)
        return True

    def setChildNodes(self, nodes: list[Node]) -> None:  # noqa: N802
        for child in self.children:
            child.parent = None
        self.children = list(nodes)
        for child in nodes:
            child.parent = self

    def remove(self) -> bool:
        if self.parent is not None:
            self.parent.children.remove(self)
        return True

    def duplicate(self) -> Node:
        return Node(self._name, self._type, self.model, self.depth, self.rect, self.data,
                    [], None)

    def setColorSpace(self, model: str, depth: str, profile: str) -> bool:  # noqa: N802
        self.conversions.append((model, depth, profile))
        self.model, self.depth = model, depth
        self.data = bytes([9]) * (self.rect.width() * self.rect.height() * 4)
        return True

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:  # noqa: N802
        return self.data

    def setPixelData(self, data: bytes, x: int, y: int, w: int, h: int) -> bool:  # noqa: N802
        self.data = bytes(data)
        self.rect = QRect(x, y, w, h)
        return True


class Selection:
    def __init__(self) -> None:
        self.parts: list[tuple[bytes, int, int, int, int]] = []

    def setPixelData(self, data: bytes, x: int, y: int, w: int, h: int) -> None:  # noqa: N802
        self.parts.append((bytes(data), x, y, w, h))

    def add(self, other: Selection) -> None:
        self.parts += other.parts

    # A selection made by one setPixelData: its bounds and values (0 outside).
    def x(self) -> int:
        return self.parts[0][1]

    def y(self) -> int:
        return self.parts[0][2]

    def width(self) -> int:
        return self.parts[0][3]

    def height(self) -> int:
        return self.parts[0][4]

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:  # noqa: N802
        data, sx, sy, sw, sh = self.parts[0]
        out = bytearray(w * h)
        for row in range(h):
            for col in range(w):
                ix, iy = x + col - sx, y + row - sy
                if 0 <= ix < sw and 0 <= iy < sh:
                    out[row * w + col] = data[iy * sw + ix]
        return bytes(out)


class Document:
    def __init__(self, root: Node) -> None:
        self.root = root
        self.active: Node | None = None
        self.current_selection: Selection | None = None

    def rootNode(self) -> Node:  # noqa: N802
        return self.root

    def activeNode(self) -> Node | None:  # noqa: N802
        return self.active

    def setActiveNode(self, node: Node) -> None:  # noqa: N802
        self.active = node

    def waitForDone(self) -> None:  # noqa: N802
        pass

    def setSelection(self, selection: Selection) -> None:  # noqa: N802
        self.current_selection = selection

    def selection(self) -> Selection | None:
        return self.current_selection

    def refreshProjection(self) -> None:  # noqa: N802
        pass


class Document52(Document):
    """Krita 5.2+: has createTransparencyMask."""

    def createTransparencyMask(self, name: str) -> Node:  # noqa: N802
        return Node(name, "transparencymask")


class View:
    def __init__(self, document: Document, selected: list[Node]) -> None:
        self._document, self.selected = document, selected

    def document(self) -> Document:
        return self._document

    def selectedNodes(self) -> list[Node]:  # noqa: N802
        return self.selected


class Window:
    def __init__(self, view: View | None) -> None:
        self.view = view

    def activeView(self) -> View | None:  # noqa: N802
        return self.view

    def qwindow(self) -> None:
        return None


class Action:
    def __init__(self) -> None:
        self.on_trigger: Callable[[], None] = lambda: None
        self.count = 0

    def trigger(self) -> None:
        self.count += 1
        self.on_trigger()


class Signal:
    def __init__(self) -> None:
        self.handlers: list[Callable[[], None]] = []

    def connect(self, handler: Callable[[], None]) -> None:
        self.handlers.append(handler)


class Notifier:
    def __init__(self) -> None:
        self.windowCreated = Signal()  # noqa: N815


class Krita:
    _instance: Krita | None = None

    def __init__(self) -> None:
        self.version_text = "5.1.5"
        self.settings: dict[tuple[str, str], str] = {}
        self.actions: dict[str, Action] = {}
        self.window: Window | None = None
        self.extensions: list[object] = []
        self.docker_factories: list[object] = []
        self._notifier = Notifier()

    @classmethod
    def instance(cls) -> Krita:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def version(self) -> str:
        return self.version_text

    def readSetting(self, group: str, key: str, default: str) -> str:  # noqa: N802
        return self.settings.get((group, key), default)

    def writeSetting(self, group: str, key: str, value: str) -> None:  # noqa: N802
        self.settings[(group, key)] = value

    def action(self, name: str) -> Action:
        return self.actions.setdefault(name, Action())

    def activeWindow(self) -> Window | None:  # noqa: N802
        return self.window

    def notifier(self) -> Notifier:
        return self._notifier

    def addExtension(self, extension: object) -> None:  # noqa: N802
        self.extensions.append(extension)

    def addDockWidgetFactory(self, factory: object) -> None:  # noqa: N802
        self.docker_factories.append(factory)


class Extension:
    def __init__(self, parent: object = None) -> None:
        self.parent = parent


class DockWidget:
    pass


class DockWidgetFactoryBase:
    DockRight = 1


class DockWidgetFactory:
    def __init__(self, *args: object) -> None:
        self.args = args
