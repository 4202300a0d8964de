"""Click-to-mask time for a 12 MP layer in the real GIMP 3 and Krita, beside the core's own time
for the same pixels (warm ``Masker.mask``, median of 3) in the same environment.

Run as root with the editors provisioned (``bash scripts/test.sh`` does that):

    BGMASK_MODEL_DIR=$PWD/.cache/models .venv/bin/python bench/editors.py

Writes docs/benchmarks-editors.md and puts the same table into docs/benchmarks.md between
its editor markers. Nothing here asserts speed.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.run import machine  # noqa: E402
from tests.editors.gimp_host import (  # noqa: E402
    DEPS_PYTHON,
    SUITES,
    gimp_series,
    in_chroot,
    require_gimp,
    run_gimp,
)
from tests.editors.krita_host import require_krita, run_krita  # noqa: E402

SIZE = (4000, 3000)
CLICKS = 3
START, END = "<!-- editors:start -->", "<!-- editors:end -->"
CORE_TIMER = """
import json, statistics, sys, time
import numpy as np
from PIL import Image
from bgmask import Masker
pixels = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
masker = Masker("u2netp")
masker.mask(pixels)
times = []
for _ in range(3):
    start = time.perf_counter()
    masker.mask(pixels)
    times.append(time.perf_counter() - start)
print(json.dumps(statistics.median(times)))
"""


def make_photo(folder: Path) -> Path:
    path = folder / "photo12mp.png"
    Image.open(ROOT / "samples" / "astronaut.png").convert("RGB").resize(
        SIZE, Image.Resampling.LANCZOS).save(path, compress_level=1)
    return path


def core_seconds_here(photo: Path) -> float:
    import subprocess

    out = subprocess.run([sys.executable, "-c", CORE_TIMER, str(photo)], check=True,
                         capture_output=True, text=True).stdout
    return float(json.loads(out))


def gimp_figures(suite: str, photo: Path, model_file: Path
                 ) -> tuple[str, list[float], float, list[dict[str, float]]]:
    root = require_gimp(suite)
    trace = "/home/gimpuser/bgmask-test/timing/trace.jsonl"
    run = run_gimp(root, "timing", {"scenarios": ["timing"], "clicks": CLICKS}, [photo],
                   model_file, env={"BGMASK_TRACE_FILE": trace})
    result = run.results()["timing"]
    if not result.get("ok"):
        raise SystemExit(f"GIMP timing failed: {result}")
    phases = [json.loads(line) for line in
              (run.work / "trace.jsonl").read_text().splitlines()]
    inside = Path("/home/gimpuser/bgmask-test/timing") / photo.name
    core = in_chroot(root, [DEPS_PYTHON, "-c", CORE_TIMER, str(inside)],
                     {"BGMASK_MODEL_DIR": "/home/gimpuser/bgmask-test/timing/models"})
    if core.returncode != 0:
        raise SystemExit(core.stderr)
    return gimp_series(root), result["clicks"], float(json.loads(core.stdout)), phases


def krita_figures(photo: Path, model_dir: Path) -> tuple[list[float], list[dict[str, float]]]:
    require_krita()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_krita(Path(tmp), ROOT / "tests" / "editors" / "krita_e2e_driver.py",
                        {"photo": str(photo), "scenarios": ["timing"], "clicks": CLICKS},
                        env={"BGMASK_PYTHON": sys.executable,
                             "BGMASK_MODEL_DIR": str(model_dir)}, timeout=900)
        result = run.results()["timing"]
    if not result.get("ok"):
        raise SystemExit(f"Krita timing failed: {result}")
    return result["clicks"], result["phases"]


def phase_row(editor: str, clicks: list[float], phases: list[dict[str, float]]) -> str:
    """Medians over the later clicks; "editor" is what the phases do not cover (plug-in
    start in GIMP, event-loop hops in Krita)."""
    later = phases[1:]

    def median(name: str) -> float:
        return statistics.median(p.get(name, 0.0) for p in later)

    total = statistics.median(clicks[1:])
    parts = {name: median(name) for name in ("read", "worker", "write")}
    rest = total - sum(parts.values()) - median("connect")
    return (f"| {editor} | {parts['read']:.2f} s | {median('connect') + parts['worker']:.2f} s "
            f"| {parts['write']:.2f} s | {rest:.2f} s |")


def row(editor: str, clicks: list[float], core: float, where: str) -> str:
    later = statistics.median(clicks[1:])
    return (f"| {editor} | {clicks[0]:.2f} s | {later:.2f} s | {core:.2f} s ({where}) | "
            f"{clicks[0] / core:.2f}x | **{later / core:.2f}x** |")


def main() -> None:
    from bgmask.engine.store import default_store_dir

    model_dir = default_store_dir()
    with tempfile.TemporaryDirectory() as tmp:
        photo = make_photo(Path(tmp))
        gimps = [gimp_figures(suite, photo, model_dir / "u2netp.onnx") for suite in SUITES]
        krita_clicks, krita_phases = krita_figures(photo, model_dir)
        host_core = core_seconds_here(photo)
    lines = [
        START,
        "## In the editors: click to mask, 12 MP layer",
        "",
        f"Machine: {machine()}.  ",
        f"Command: `BGMASK_MODEL_DIR=$PWD/.cache/models .venv/bin/python bench/editors.py` "
        f"({time.strftime('%Y-%m-%d')}), as root after `bash scripts/test.sh` provisioned "
        "GIMP 3.0 and 3.2 (Debian trixie and forky chroots) and Krita 5.1.5 (Xvfb). Both "
        "editors send the whole layer at full size.",
        "",
        f"A {SIZE[0]}x{SIZE[1]} RGB layer. A click is timed from the PDB call (GIMP) or the "
        "action's trigger (Krita) to the mask being in place: reading the layer, the worker, "
        "writing the mask. The core column is `Masker.mask` on the same pixels, warm, median "
        "of 3, in the same Python environment the editor's worker uses. Bar: <= 1.3x.",
        "",
        "| editor | first click | later clicks (median) | core, same pixels | first / core "
        "| later / core |",
        "|---|---|---|---|---|---|",
        *(row(f"GIMP {series}", clicks, core, "chroot env")
          for series, clicks, core, _ in gimps),
        row("Krita 5.1.5", krita_clicks, host_core, "host env"),
        "",
        "The first click includes starting the worker and loading the model (GIMP: the "
        "per-user background worker, which later clicks reuse although GIMP starts a new "
        "plug-in process each time; Krita: the worker its plug-in keeps for the session).",
        "",
        "Where a later click's time goes (medians; `BGMASK_TRACE_FILE` records the phases):",
        "",
        "| editor | read the layer | worker (transfer + mask) | write the mask | the rest |",
        "|---|---|---|---|---|",
        *(phase_row(f"GIMP {series}", clicks, phases) for series, clicks, _, phases in gimps),
        phase_row("Krita", krita_clicks, krita_phases),
        "",
        "Writing is the editors' own API: in GIMP, adding a mask to a 12 MP layer without "
        "alpha (add alpha, create, add) and setting its buffer; in Krita 5.1, its "
        "add-transparency-mask action and the projection refresh that makes the mask show. "
        "GIMP's rest is mostly starting the plug-in process, which GIMP does on every call. "
        "These editor-side costs alone exceed 0.3x of the core's time at 12 MP, so the "
        "1.3x bar does not hold in either editor; the worker column is what bgmask controls.",
        "",
        "Krita's worker column is longer than GIMP's for the same request because Krita "
        "keeps drawing while the worker runs: under Xvfb its canvas is rendered by software "
        "OpenGL (llvmpipe), and its main thread and the llvmpipe threads took about 0.3 s of "
        "CPU during a 0.45 s worker phase on these 2 cores (per-thread CPU from /proc, one "
        "click). Each timed Krita click starts once Krita has gone quiet after opening the "
        "document, as a user's click on a photo already on screen would.",
        END,
    ]
    text = "\n".join(lines) + "\n"
    (ROOT / "docs" / "benchmarks-editors.md").write_text(text)
    doc = ROOT / "docs" / "benchmarks.md"
    current = doc.read_text() if doc.exists() else ""
    if START in current and END in current:
        head, rest = current.split(START, 1)
        current = head + text.rstrip("\n") + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text
    doc.write_text(current)
    print(text)


if __name__ == "__main__":
    main()
