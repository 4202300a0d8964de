"""The editor-side tier: everything a plug-in imports inside GIMP's or Krita's own Python.

Standard library only, and nothing outside this folder (tests/test_tiers.py parses every
module, imports inside functions included). The installer copies the folder as a whole into
each plug-in's ``vendor/bgmask/host``.
"""
