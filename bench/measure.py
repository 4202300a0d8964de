"""One measurement in a fresh process, so peak memory of one tool never mixes with another's.

    python bench/measure.py TOOL IMAGE RUNS   ->  JSON on stdout
TOOL: rembg | bgmask | bgmask-array | floor (bare session.run of the same model at its input
size) | bgmask-best | bgmask-box (a centred box of half each side) | bgmask-decontaminate (the
mask, then the cutout's edge colours on decoded pixels).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    tool, image, runs = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    model = Path(os.environ["BGMASK_MODEL_DIR"]) / "u2netp.onnx"
    base = peak_rss_mb()
    if tool == "rembg":
        from PIL import Image
        from rembg import new_session, remove

        session = new_session("u2netp")

        def once() -> None:
            remove(Image.open(image), session=session, only_mask=True)
    elif tool == "bgmask":
        from bgmask.engine.pipeline import Masker

        masker = Masker("u2netp")

        def once() -> None:
            masker.mask(image)
    elif tool == "bgmask-array":  # decoded pixels in, as the editors send them
        import numpy as np
        from bgmask.engine.pipeline import Masker
        from PIL import Image

        masker = Masker("u2netp")
        pixels = np.asarray(Image.open(image).convert("RGB"))

        def once() -> None:
            masker.mask(pixels)
    elif tool in ("bgmask-best", "bgmask-box", "bgmask-decontaminate"):
        import numpy as np
        from bgmask.engine.decontaminate import foreground_colours
        from bgmask.engine.pipeline import Masker, MaskOptions
        from PIL import Image

        masker = Masker("u2netp")
        with Image.open(image) as opened:
            w, h = opened.size
        options = {"bgmask-best": MaskOptions(quality="best"),
                   "bgmask-box": MaskOptions(box=(w // 4, h // 4, w // 2, h // 2))}.get(tool)
        pixels = np.asarray(Image.open(image).convert("RGB")) \
            if tool == "bgmask-decontaminate" else None

        def once() -> None:
            mask = masker.mask(image, options)
            if pixels is not None:
                foreground_colours(pixels, mask)
    else:
        import numpy as np
        import onnxruntime as ort

        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)

        def once() -> None:
            session.run(None, {"input.1": x})
    once()  # warm-up: session creation and first-run allocations are not the steady state
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    print(json.dumps({"tool": tool, "median_s": statistics.median(times),
                      "peak_rss_mb": peak_rss_mb(), "start_rss_mb": base}))


if __name__ == "__main__":
    main()
