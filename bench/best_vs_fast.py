"""The fast and best settings side by side on evaluation folders (MAE, maxF, seconds):

    BGMASK_MODEL_DIR=.cache/models .venv/bin/python bench/best_vs_fast.py \
        ../shared/evaldata/grabcut ../shared/evaldata/alphamatting_lowres

``--box`` adds both settings with a user's box: the ground truth's bounding box with a 10%
margin, the rectangle a GrabCut user draws (what the editors' selection hint sends).
``--largest-subject`` adds best with all but its largest subject erased: a measurement only,
not an option (it needs scipy: run it with .cache/bench-venv/bin/python).

Scored as bench/quality.py scores (its ``score``); the figures in docs/benchmarks.md's issue-17
section came from this script.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bgmask.engine.pipeline import Masker, MaskOptions  # noqa: E402

from bench.quality import edge_band, score  # noqa: E402

BOX_MARGIN = 0.1

# (masker, photo, ground truth) -> the mask scored for one setting
Setting = Callable[[Masker, Path, np.ndarray], np.ndarray]


def truth_box(gt: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, width, height) around every pixel the ground truth does not call background,
    with BOX_MARGIN of its size on each side, clipped to the photo."""
    rows, cols = np.nonzero(gt > 0)
    h, w = gt.shape
    y0, y1, x0, x1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    my, mx = int(BOX_MARGIN * (y1 - y0)), int(BOX_MARGIN * (x1 - x0))
    y0, y1, x0, x1 = max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)
    return x0, y0, x1 - x0, y1 - y0


def largest_subject(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every subject (8-connected at >= 128) but the largest set to 0, its own
    soft edge (8 px) kept."""
    from scipy import ndimage

    labels, count = ndimage.label(mask >= 128, structure=np.ones((3, 3)))
    if count < 2:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    keep = ndimage.binary_dilation(labels == 1 + int(np.argmax(sizes)), iterations=8)
    return np.where(keep, mask, 0).astype(np.uint8)


def settings(box: bool, largest: bool) -> dict[str, Setting]:
    chosen: dict[str, Setting] = {
        "fast": lambda m, p, gt: m.mask(p, MaskOptions()),
        "best": lambda m, p, gt: m.mask(p, MaskOptions(quality="best")),
    }
    if box:
        chosen["fast + box"] = lambda m, p, gt: m.mask(p, MaskOptions(box=truth_box(gt)))
        chosen["best + box"] = lambda m, p, gt: m.mask(
            p, MaskOptions(quality="best", box=truth_box(gt)))
    if largest:
        chosen["best, largest subject only"] = lambda m, p, gt: largest_subject(
            m.mask(p, MaskOptions(quality="best")))
    return chosen


def main(folders: list[Path], chosen: dict[str, Setting]) -> None:
    masker = Masker()
    for folder in folders:
        maes: dict[str, list[float]] = {name: [] for name in chosen}
        curves: dict[str, list[list[float]]] = {name: [] for name in chosen}
        seconds = dict.fromkeys(chosen, 0.0)
        for image in sorted((folder / "images").iterdir()):
            gt = np.asarray(Image.open(next((folder / "masks").glob(image.stem + ".*")))
                            .convert("L"))
            band = edge_band(gt)
            for name, setting in chosen.items():
                started = time.perf_counter()
                mask = setting(masker, image, gt)
                seconds[name] += time.perf_counter() - started
                row = score(mask, gt, folder.name == "alphamatting_lowres", band)
                maes[name].append(row["mae"])
                curves[name].append(row["f"])
        for name in chosen:
            print(f"{folder.name} {name}: MAE {np.mean(maes[name]):.5f} maxF "
                  f"{np.max(np.mean(curves[name], axis=0)):.4f} {seconds[name]:.1f} s",
                  flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--box", action="store_true", help="add both settings with a box")
    parser.add_argument("--largest-subject", action="store_true",
                        help="add best keeping only its largest subject (needs scipy)")
    args = parser.parse_args()
    main(args.folders, settings(args.box, args.largest_subject))
