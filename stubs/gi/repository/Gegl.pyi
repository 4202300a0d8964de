"""The parts of GEGL 0.4 the GIMP plug-in uses (see stubs/README.md)."""

from typing import ClassVar

from gi.repository import GObject

class AbyssPolicy(GObject.GEnum):
    NONE: ClassVar[AbyssPolicy]
    CLAMP: ClassVar[AbyssPolicy]

class Rectangle:
    @staticmethod
    def new(x: int, y: int, width: int, height: int) -> Rectangle: ...

class Buffer(GObject.Object):
    def get(self, rect: Rectangle, scale: float, format_name: str | None,
            repeat_mode: AbyssPolicy) -> bytes: ...
    def set(self, rect: Rectangle, format_name: str, src: bytes) -> None: ...
    def flush(self) -> None: ...
