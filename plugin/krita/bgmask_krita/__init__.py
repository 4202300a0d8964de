"""bgmask for Krita: a docker and an action that add an AI transparency mask.

Layout: ``compat`` (version gate), ``host`` (Krita API helpers: read a layer, write a mask),
``state`` (settings and the warm worker), ``job`` (one run, off the UI thread), ``docker``
(widgets), ``extension`` (the action).
"""

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from . import vendor_path  # noqa: F401  (the vendored bgmask client, before anything imports it)
from .compat import unsupported_reason

_REASON = unsupported_reason(Krita.instance().version())

if _REASON is None:
    from .docker import DOCKER_ID, BgmaskDocker
    from .extension import BgmaskExtension

    Krita.instance().addExtension(BgmaskExtension(Krita.instance()))
    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, BgmaskDocker))
else:
    from .extension import refuse

    refuse(_REASON)
