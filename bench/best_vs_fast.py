"""The fast and best settings side by side on evaluation folders (MAE, maxF, seconds):

    BGMASK_MODEL_DIR=.cache/models .venv/bin/python bench/best_vs_fast.py \
        ../shared/evaldata/grabcut ../shared/evaldata/alphamatting_lowres

Scored as bench/quality.py scores (its ``score``); the figures in docs/benchmarks.md's issue-17
section came from this script.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bgmask.engine.pipeline import Masker, MaskOptions  # noqa: E402

from bench.quality import edge_band, score  # noqa: E402


def main(folders: list[str]) -> None:
    masker = Masker()
    for folder in map(Path, folders):
        maes: dict[str, list[float]] = {"fast": [], "best": []}
        curves: dict[str, list[list[float]]] = {"fast": [], "best": []}
        seconds = dict.fromkeys(maes, 0.0)
        for image in sorted((folder / "images").iterdir()):
            gt = np.asarray(Image.open(next((folder / "masks").glob(image.stem + ".*")))
                            .convert("L"))
            band = edge_band(gt)
            for quality in maes:
                started = time.perf_counter()
                mask = masker.mask(image, MaskOptions(quality=quality))
                seconds[quality] += time.perf_counter() - started
                row = score(mask, gt, folder.name == "alphamatting_lowres", band)
                maes[quality].append(row["mae"])
                curves[quality].append(row["f"])
        for quality in maes:
            print(f"{folder.name} {quality}: MAE {np.mean(maes[quality]):.5f} maxF "
                  f"{np.max(np.mean(curves[quality], axis=0)):.4f} {seconds[quality]:.1f} s",
                  flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
