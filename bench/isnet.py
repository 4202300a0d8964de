"""A stronger second model for the benchmark's local comparison only: the IS-Net "small" build
in img.ly's npm package @imgly/background-removal-data 1.4.5 (AGPL-3.0). It is never shipped
and never a default; here it shows how far a 1024 px model moves the scores, and that bgmask's
pipeline runs a model given as ``--model-file`` with a sidecar description.

    python bench/isnet.py   ->  prints the path of .cache/isnet/isnet-small.onnx

The package is fetched with ``npm pack`` (the user's npm settings apply); its model is split
into 4 MiB chunks named by their sha256, listed in ``dist/resources.json``: each is checked.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / ".cache" / "isnet"
PACKAGE = "@imgly/background-removal-data@1.4.5"
TARBALL = "imgly-background-removal-data-1.4.5.tgz"
MODEL = FOLDER / "isnet-small.onnx"
# Input [1, 3, 1024, 1024], RGB/255 - 0.5, first output already a probability map.
SIDECAR = {"size": 1024, "mean": [0.5, 0.5, 0.5], "std": [1.0, 1.0, 1.0], "sigmoid": False,
           "output_index": 0}


def assemble() -> Path:
    if MODEL.exists():
        return MODEL
    FOLDER.mkdir(parents=True, exist_ok=True)
    if not (FOLDER / TARBALL).exists():
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=FOLDER, check=True,
                       stdout=subprocess.DEVNULL)
    with tarfile.open(FOLDER / TARBALL) as tar:
        resources = json.load(tar.extractfile("package/dist/resources.json"))  # type: ignore[arg-type]
        entry = resources["/models/small"]
        part = MODEL.with_suffix(".part")
        with open(part, "wb") as out:
            for chunk in entry["chunks"]:
                data = tar.extractfile(f"package/dist/{chunk['hash']}").read()  # type: ignore[union-attr]
                if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                    raise SystemExit(f"chunk {chunk['hash']} is damaged")
                out.write(data)
    if part.stat().st_size != entry["size"]:
        raise SystemExit(f"assembled {part.stat().st_size} bytes, expected {entry['size']}")
    MODEL.with_name(MODEL.name + ".json").write_text(json.dumps(SIDECAR))
    part.rename(MODEL)
    return MODEL


if __name__ == "__main__":
    sys.stdout.write(f"{assemble()}\n")
