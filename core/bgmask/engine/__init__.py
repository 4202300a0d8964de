"""The masking engine: image decoding and views (``images``), the model store (``store``,
``download``), onnxruntime sessions (``runtime``), the mask pipeline and its parts
(``pipeline``, ``calibration``, ``fusion``, ``refine``, ``box``), and what is written
(``output``, ``decontaminate``, ``safewrite``). numpy, pillow, onnxruntime, platformdirs."""
