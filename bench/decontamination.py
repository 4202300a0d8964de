"""Edge colour decontamination against the true composite (alphamatting_lowres' true mattes).

    python bench/decontamination.py SET_DIR  ->  one JSON row on stdout

Each photo is taken as the subject's colours with its true alpha, composited over one
background, cut out with that alpha (plain, and decontaminated) and placed on another; the
score is the mean absolute difference from the true composite on the second background, over
the soft band (0 < alpha < 1), in 8-bit levels. Backgrounds: green screen to white wall, and
two pairs of grabcut photos when that folder is beside SET_DIR.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from bgmask.engine.decontaminate import foreground_colours
from PIL import Image

SOLIDS = {"green": (40, 200, 60), "white": (230, 230, 235)}


def background(name: str, width: int, height: int, photos: list[Path]) -> np.ndarray:
    if name in SOLIDS:
        return np.broadcast_to(np.array(SOLIDS[name], np.float32), (height, width, 3))
    photo = photos[int(name) % len(photos)]
    return np.asarray(Image.open(photo).convert("RGB").resize((width, height)), np.float32)


def main() -> None:
    set_dir = Path(sys.argv[1])
    others = set_dir.parent / "grabcut" / "images"
    photos = sorted(others.iterdir()) if others.is_dir() else []
    pairs = [("green", "white")] + ([("10", "white"), ("15", "green"), ("20", "25")]
                                    if photos else [])
    plain, cleaned, seconds = [], [], []
    for image in sorted((set_dir / "images").iterdir()):
        subject = np.asarray(Image.open(image).convert("RGB"), np.float32)
        alpha8 = np.asarray(Image.open(next((set_dir / "masks").glob(image.stem + ".*")))
                            .convert("L"))
        a = alpha8[:, :, None] / 255.0
        band = (alpha8 > 0) & (alpha8 < 255)
        h, w = alpha8.shape
        for first, second in pairs:
            b1, b2 = background(first, w, h, photos), background(second, w, h, photos)
            cut = np.clip(a * subject + (1 - a) * b1 + 0.5, 0, 255).astype(np.uint8)
            truth = a * subject + (1 - a) * b2
            t = time.perf_counter()
            colours = foreground_colours(cut, alpha8)
            seconds.append(time.perf_counter() - t)
            for out, rgb in ((plain, cut), (cleaned, colours)):
                placed = a * rgb.astype(np.float32) + (1 - a) * b2
                out.append(float(np.abs(placed - truth)[band].mean()))
    print(json.dumps({"set": set_dir.name, "n": len(plain), "pairs": len(pairs),
                      "plain": float(np.mean(plain)), "decontaminated": float(np.mean(cleaned)),
                      "better": int(sum(c < p for c, p in zip(cleaned, plain, strict=True))),
                      "median_s": float(np.median(seconds))}))


if __name__ == "__main__":
    main()
