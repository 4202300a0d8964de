"""The parts of GObject the GIMP plug-in uses (see stubs/README.md)."""

from typing import Any, ClassVar

from typing_extensions import Self

class GType: ...

class GEnum(int): ...

class GFlags(int):
    def __or__(self, other: int) -> Self: ...

class ParamFlags(GFlags):
    READABLE: ClassVar[ParamFlags]
    WRITABLE: ClassVar[ParamFlags]
    READWRITE: ClassVar[ParamFlags]

class Object:
    __gtype__: ClassVar[GType]
    def get_property(self, property_name: str) -> Any: ...
    def set_property(self, property_name: str, value: Any) -> None: ...
