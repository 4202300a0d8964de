"""Mask quality on folders laid out as images/ + masks/ (conventions: ../shared/evaldata).

    python bench/quality.py SET_DIR [--limit N]  ->  JSON rows on stdout

MAE and maxF come from pysodmetrics where its conventions are the set's: binary ground truth
with no pixels to leave out. It binarises the ground truth at 128 and cannot leave pixels out,
so on soft alpha mattes and on grabcut's "unknown" band (128) the hand-written metrics below
are used instead; IoU@0.5, the edge band and SAD are not in pysodmetrics at all. Where both
apply, the row also records how far the hand-written figures are from pysodmetrics'.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

UNKNOWN = 128  # grabcut's "unknown" band: left out of every score


def rows(isnet: Path | None = None):
    from bgmask.engine.pipeline import Masker, MaskOptions
    from rembg import new_session, remove

    session = new_session("u2netp")
    masker = Masker("u2netp")

    def rembg_mask(path: Path) -> np.ndarray:
        return np.asarray(remove(Image.open(path), session=session, only_mask=True).convert("L"))

    yield "rembg 2.0.86 u2netp (default)", rembg_mask
    for label, options in [
        ("bgmask u2netp (default)", MaskOptions()),
        ("bgmask u2netp --refine", MaskOptions(refine=True)),
        ("bgmask u2netp --quality best (plain + brightened views of a dark photo, "
         "subject zoom)",
         MaskOptions(quality="best")),
        ("bgmask u2netp --contrast 1 (no curve)", MaskOptions(contrast=1.0)),
    ]:
        yield label, (lambda path, o=options: masker.mask(path, o))
    if isnet is not None:  # a stronger model, local comparison only (bench/isnet.py)
        strong = Masker(model_file=isnet)
        yield "IS-Net small via --model-file (AGPL, local comparison only)", strong.mask


def edge_band(gt: np.ndarray, width: int = 10) -> np.ndarray:
    binary = Image.fromarray(((gt >= 0.5) * 255).astype(np.uint8))
    size = 2 * width + 1
    grown = np.asarray(binary.filter(ImageFilter.MaxFilter(size))) > 0
    shrunk = np.asarray(binary.filter(ImageFilter.MinFilter(size))) > 0
    return grown & ~shrunk


def score(pred8: np.ndarray, gt8: np.ndarray, alpha: bool,
          band: np.ndarray | None = None) -> dict[str, float]:
    """The metrics of one image; ``band`` is ``edge_band(gt)``, passed in when the caller
    scores several predictions against the same ground truth (the band filter is slow)."""
    valid = gt8 != UNKNOWN if not alpha else np.ones(gt8.shape, bool)
    pred, gt = pred8.astype(np.float64) / 255, gt8.astype(np.float64) / 255
    p, g = pred[valid], gt[valid]
    fg = g >= 0.5
    # F-beta at the 256 thresholds t = 0..255 (pred >= t), for averaging over images.
    fg_hist = np.bincount(pred8[valid][fg], minlength=256)[::-1].cumsum()[::-1]
    bg_hist = np.bincount(pred8[valid][~fg], minlength=256)[::-1].cumsum()[::-1]
    precision = fg_hist / np.maximum(fg_hist + bg_hist, 1)
    recall = fg_hist / max(fg.sum(), 1)
    f = 1.3 * precision * recall / np.maximum(0.3 * precision + recall, 1e-12)
    band = (edge_band(gt) if band is None else band) & valid
    inter = ((p >= 0.5) & fg).sum()
    union = ((p >= 0.5) | fg).sum()
    return {"mae": float(np.abs(p - g).mean()), "f": f.tolist(),
            "iou": float(inter / union) if union else 1.0,
            "band": float(np.abs(pred - gt)[band].mean()) if band.any() else 0.0,
            "sad": float(np.abs(pred - gt).sum() / 1000)}


class SodMetrics:
    """pysodmetrics' MAE and F-measure (beta^2 = 0.3, 256 thresholds, averaged per threshold)."""

    def __init__(self) -> None:
        import warnings

        import py_sod_metrics as psm

        with warnings.catch_warnings():  # Fmeasure works; it only announces a successor
            warnings.simplefilter("ignore", UserWarning)
            self.mae, self.fm = psm.MAE(), psm.Fmeasure()

    def step(self, pred8: np.ndarray, gt8: np.ndarray) -> None:
        self.mae.step(pred=pred8, gt=gt8)
        self.fm.step(pred=pred8, gt=gt8)

    def results(self) -> tuple[float, float]:
        return (float(self.mae.get_results()["mae"]),
                float(self.fm.get_results()["fm"]["curve"].max()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--isnet", type=Path, help="also score this IS-Net file (bench/isnet.py)")
    args = parser.parse_args()
    images = sorted((args.set_dir / "images").iterdir())
    if args.limit:
        images = images[: args.limit]
    alpha = "alpha" in args.set_dir.name
    truths = {image: np.asarray(Image.open(next((args.set_dir / "masks").glob(
        image.stem + ".*"))).convert("L")) for image in images}
    binary = all(np.isin(gt, (0, 255)).all() for gt in truths.values())
    bands = {image: edge_band(gt.astype(np.float64) / 255) for image, gt in truths.items()}
    for label, predict in rows(args.isnet):
        scores = []
        sod = SodMetrics() if binary else None
        for image in images:
            gt8 = truths[image]
            pred8 = predict(image)
            if pred8.shape != gt8.shape:
                print(f"{image}: size mismatch", file=sys.stderr)
                continue
            scores.append(score(pred8, gt8, alpha, bands[image]))
            if sod is not None:
                sod.step(pred8, gt8)
        row = {"set": args.set_dir.name, "row": label, "n": len(scores),
               "mae": float(np.mean([s["mae"] for s in scores])),
               "maxf": float(np.max(np.mean([s["f"] for s in scores], axis=0))),
               "iou": float(np.mean([s["iou"] for s in scores])),
               "band": float(np.mean([s["band"] for s in scores])),
               "metrics": "hand-written"}
        if sod is not None:
            mae, maxf = sod.results()
            row["check"] = max(abs(mae - row["mae"]), abs(maxf - row["maxf"]))
            row.update(mae=mae, maxf=maxf, metrics="pysodmetrics")
        if alpha:
            row["sad"] = float(np.mean([s["sad"] for s in scores]))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
