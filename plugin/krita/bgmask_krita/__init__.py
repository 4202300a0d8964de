"""bgmask for Krita: a docker and an action that add an AI transparency mask.

Layout: ``compat`` (version and Qt gate), ``qt`` (the PyQt5 or PyQt6 names), ``host`` (Krita
API helpers: read a layer, write a mask), ``state`` (settings and the warm worker), ``job`` (one
run, off the UI thread), ``docker`` (widgets), ``extension`` (the action).
"""

import signal

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from . import vendor_path  # noqa: F401  (the vendored bgmask client, before anything imports it)
from .compat import unsupported_reason

_REASON = unsupported_reason(Krita.instance().version())

if _REASON is None:
    # Krita 5.1 to 6.0 leave SIGPIPE at its default, which ends the process: a worker dying
    # while a layer is written to it took Krita, and the user's work, down. Ignored (as Python
    # itself does in a program of its own), the write fails and the job reports the worker.
    if hasattr(signal, "SIGPIPE") and signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    from .docker import DOCKER_ID, BgmaskDocker
    from .extension import BgmaskExtension

    Krita.instance().addExtension(BgmaskExtension(Krita.instance()))
    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockPosition.DockRight, BgmaskDocker))
else:
    from .extension import refuse

    refuse(_REASON)
