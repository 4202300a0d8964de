"""The ``bgmask`` command: masks and cutouts for files and folders, and model management.

Exit codes: 0 everything done, 1 some inputs failed (the rest were processed), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .catalogue import CATALOGUE, DEFAULT_MODEL, InputSpec, get_record
from .errors import BgmaskError, UsageError
from .output import SUFFIXES, output_format

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".jfif"}


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def _floats(text: str) -> tuple[float, float, float]:
    parts = [float(v) for v in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("give three comma-separated numbers")
    return parts[0], parts[1], parts[2]


def _input_size(text: str) -> int:
    size = int(text)
    if not 16 <= size <= 4096:
        raise argparse.ArgumentTypeError(f"{size} is outside 16..4096")
    return size


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bgmask",
        description="Remove the background of photos with a local AI model. "
                    "'bgmask models --help' manages the models.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE",
                   help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output file (.png or .webp) for one input, else an output folder")
    p.add_argument("--mask", action="store_true", help="write the mask only (grayscale)")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"catalogue model (default {DEFAULT_MODEL}; see 'bgmask models list')")
    p.add_argument("--model-file", type=Path, help="an ONNX model file of your own (no network)")
    p.add_argument("--input-size", type=_input_size, help="--model-file: the network's input size")
    p.add_argument("--mean", type=_floats, help="--model-file: per-channel mean, e.g. 0.5,0.5,0.5")
    p.add_argument("--std", type=_floats, help="--model-file: per-channel std, e.g. 1,1,1")
    p.add_argument("--sigmoid", action="store_true", help="--model-file: the output is logits")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=False,
                   help="fit the mask to the photo's own edges (guided filter)")
    p.add_argument("--quality", choices=("fast", "best"), default="fast",
                   help="best also masks the mirrored photo and averages (twice the time)")
    p.add_argument("--threshold", type=float, help="hard mask: 0 < T < 1")
    p.add_argument("--invert", action="store_true", help="keep the background instead")
    p.add_argument("--contrast", type=float,
                   help="edge steepness (1: as predicted; higher: harder edges)")
    p.add_argument("--jobs", type=int, default=1, help="images in flight at once")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: automatic)")
    p.add_argument("--providers", help="execution providers in order, e.g. cuda,cpu")
    p.add_argument("--skip-existing", action="store_true", help="leave existing outputs alone")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--version", action="version", version=f"bgmask {__version__}")
    return p


def build_models_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bgmask models", description="Manage bgmask's models.")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the catalogue, with licences and what is downloaded")
    fetch = sub.add_parser("fetch", help="download (or import) a model and verify it")
    fetch.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    fetch.add_argument("--force", action="store_true", help="download again even if present")
    fetch.add_argument("--from", dest="from_file", type=Path, help="import this local file")
    verify = sub.add_parser("verify", help="re-hash downloaded models")
    verify.add_argument("name", nargs="?")
    path = sub.add_parser("path", help="where a model file lives (or the store folder)")
    path.add_argument("name", nargs="?")
    return p


# -- the main job ---------------------------------------------------------------------------


def collect_jobs(inputs: list[Path], output: Path, recursive: bool) -> tuple[list[Job], list[str]]:
    """Input files paired with their output paths, plus one message per unusable input."""
    sources: list[tuple[Path, Path]] = []  # (file, path relative to the output folder)
    problems: list[str] = []
    for item in inputs:
        if item.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(f for f in item.glob(pattern)
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            sources += [(f, f.relative_to(item)) for f in found]
            if not found:
                problems.append(f"{item}: no images found" + ("" if recursive else
                                                            " (use -r for sub-folders)"))
        elif item.exists():
            sources.append((item, Path(item.name)))
        else:
            problems.append(f"{item}: no such file or folder")
    if output.suffix.lower() in IMAGE_SUFFIXES - SUFFIXES.keys():
        raise UsageError(f"{output}: write .png or .webp (cutouts and masks need lossless alpha)")
    single = (len(inputs) == 1 and not inputs[0].is_dir()
              and output.suffix.lower() in SUFFIXES)
    if single:
        return [Job(s, output) for s, _ in sources], problems
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output} is a file; give a folder for several inputs")
    jobs = [Job(s, output / rel.with_suffix(".png")) for s, rel in sources]
    return jobs, problems


def check_targets(jobs: list[Job]) -> None:
    inputs = {j.source.resolve() for j in jobs}
    seen: set[Path] = set()
    for job in jobs:
        target = job.target.resolve()
        if target in inputs:
            raise UsageError(f"{job.target} is one of the inputs; bgmask never overwrites an input")
        if target in seen:
            raise UsageError(f"two inputs would both be written to {job.target}; "
                             "rename one or use separate output folders")
        seen.add(target)
        output_format(job.target)


class Progress:
    """'[done/total] ETA m:ss name' on stderr, redrawn in place on a terminal."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.done, self.quiet = total, 0, quiet or total < 2
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.tty = sys.stderr.isatty()

    def step(self, name: str) -> None:
        with self.lock:
            self.done += 1
            if self.quiet:
                return
            elapsed = time.monotonic() - self.start
            left = elapsed / self.done * (self.total - self.done)
            line = f"[{self.done}/{self.total}] ETA {int(left) // 60}:{int(left) % 60:02d} {name}"
            end = "" if self.tty and self.done < self.total else "\n"
            print(("\r\033[K" if self.tty else "") + line, end=end, file=sys.stderr, flush=True)


def run_masks(args: argparse.Namespace) -> int:
    from .output import save_cutout, save_mask
    from .pipeline import Masker, MaskOptions
    from .runtime import RuntimeOptions

    # The pipeline module is imported only here (it loads numpy), so MaskOptions keeps the
    # one default for the contrast.
    contrast = {} if args.contrast is None else {"contrast": args.contrast}
    options = MaskOptions(refine=args.refine, quality=args.quality, threshold=args.threshold,
                          invert=args.invert, **contrast)
    if args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    jobs, problems = collect_jobs(args.inputs, args.output, args.recursive)
    check_targets(jobs)
    if args.skip_existing:
        jobs = [j for j in jobs if not j.target.exists()]
    for message in problems:
        print(f"bgmask: {message}", file=sys.stderr)
    if not jobs:
        return 1 if problems else 0

    masker = Masker(args.model, model_file=args.model_file, spec=_spec_from_args(args),
                    runtime=RuntimeOptions(_providers(args), args.threads),
                    progress=None if args.quiet else _download_bar())
    if masker.notice:
        print(f"bgmask: {masker.notice}", file=sys.stderr)
    progress = Progress(len(jobs), args.quiet)
    failures: list[str] = list(problems)

    def one(job: Job) -> None:
        try:
            mask = masker.mask(job.source, options)
            if args.mask:
                save_mask(mask, job.target)
            else:
                save_cutout(job.source, mask, job.target)
        except BgmaskError as exc:
            failures.append(str(exc))
            print(f"bgmask: {exc}", file=sys.stderr)
        except (OSError, MemoryError) as exc:
            failures.append(f"{job.source}: {exc}")
            print(f"bgmask: {job.source}: {exc}", file=sys.stderr)
        progress.step(job.source.name)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, jobs))
    if failures:
        print(f"bgmask: {len(failures)} of {len(jobs) + len(problems)} inputs failed",
              file=sys.stderr)
        return 1
    return 0


def _providers(args: argparse.Namespace) -> tuple[str, ...] | None:
    return tuple(args.providers.split(",")) if args.providers else None


def _spec_from_args(args: argparse.Namespace) -> InputSpec | None:
    given = [args.input_size, args.mean, args.std] + ([True] if args.sigmoid else [])
    if not any(v is not None for v in given):
        return None  # the catalogue record's, or the sidecar's
    if args.model_file is None:
        raise UsageError("--input-size, --mean, --std and --sigmoid describe a --model-file")
    base = InputSpec()
    return InputSpec(size=args.input_size or base.size, mean=args.mean or base.mean,
                     std=args.std or base.std, sigmoid=args.sigmoid)


def _download_bar():  # noqa: ANN202 (returns a ProgressCallback)
    def show(done: int, total: int | None) -> None:
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        end = "\n" if total and done >= total else ""
        print(f"\r\033[Kdownloading model {size}", end=end, file=sys.stderr, flush=True)

    return show


# -- models ---------------------------------------------------------------------------------


def run_models(args: argparse.Namespace) -> int:
    from .store import ModelStore

    store = ModelStore()
    if args.action == "list":
        for record in CATALOGUE.values():
            here = "downloaded" if store.path_for(record).exists() else "-"
            flag = "" if record.commercial_use else "  [NON-COMMERCIAL or unclear licence]"
            default = " (default)" if record.name == DEFAULT_MODEL else ""
            print(f"{record.name:24} {here:11} {record.licence}{flag}\n"
                  f"{'':24} {record.description}{default}")
        return 0
    if args.action == "path":
        print(store.path_for(get_record(args.name)) if args.name else store.root)
        return 0
    if args.action == "verify":
        names = [args.name] if args.name else [r.name for r in CATALOGUE.values()
                                               if store.path_for(r).exists()]
        for name in names:
            print(f"{name}: ok ({store.verify(get_record(name), force=True)})")
        if not names:
            print(f"no models downloaded yet in {store.root}")
        return 0
    record = get_record(args.name)
    if not record.commercial_use:
        print(f"bgmask: note: {record.name} is licensed {record.licence}; "
              "it may not be used commercially.", file=sys.stderr)
    if args.from_file:
        path = store.import_file(record, args.from_file)
    else:
        path = store.fetch(record, _download_bar(), force=args.force) if args.force \
            else store.ensure(record, _download_bar())
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    models = bool(argv) and argv[0] == "models"
    parser = build_models_parser() if models else build_parser()
    try:
        args = parser.parse_args(argv[1:] if models else argv)
    except SystemExit as exc:  # argparse has printed the usage message
        return 0 if exc.code in (0, None) else 2
    try:
        return run_models(args) if models else run_masks(args)
    except UsageError as exc:
        print(f"bgmask: error: {exc}", file=sys.stderr)
        return 2
    except BgmaskError as exc:
        print(f"bgmask: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bgmask: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'bgmask models list | head'
        return 0


if __name__ == "__main__":
    sys.exit(main())
