"""bgmask's version: the worker and the editor-side client compare it, so a plug-in never talks
to a worker of another release."""

VERSION = "0.1.0"
