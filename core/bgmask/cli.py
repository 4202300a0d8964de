"""The ``bgmask`` command: masks and cutouts for files and folders, and model management.

Exit codes: 0 everything done, 1 some inputs failed (the rest were processed), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .engine import safewrite
from .engine.images import upright_size
from .engine.output import SUFFIXES, output_format
from .host.catalogue import CATALOGUE, DEFAULT_MODEL, InputSpec, get_record
from .host.errors import BgmaskError, UsageError
from .host.version import VERSION as __version__

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".jfif"}


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    replace: bool = False  # an existing file at target may be replaced
    redo: bool = False  # --skip-existing found an incomplete file there


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
                   help="best adds a brightened look at a dark photo, and a second look at a "
                        "small subject (2-4x the time)")
    p.add_argument("--threshold", type=float, help="hard mask: 0 < T < 1")
    p.add_argument("--box", metavar="X,Y,W,H",
                   help="mask only inside this box (pixels; 0 outside): point at the subject")
    p.add_argument("--decontaminate", action="store_true",
                   help="cutouts: replace the soft edge's colours by the subject's own")
    p.add_argument("--invert", action="store_true", help="keep the background instead")
    p.add_argument("--contrast", type=float,
                   help="edge steepness (1: as predicted; higher: harder edges)")
    p.add_argument("--jobs", type=int, default=1, help="images in flight at once")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: automatic)")
    p.add_argument("--providers", help="execution providers in order, e.g. cuda,cpu")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep outputs already there (only complete ones; others are redone)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files already in the output folder (a file named with -o "
                        "is always replaced)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="errors only: no progress, no line per input, no summary")
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


def collect_jobs(inputs: list[Path], output: Path,
                 recursive: bool) -> tuple[list[Job], list[str], Path | None]:
    """Input files paired with their output paths, one message per unusable input, and the
    output folder (None when ``output`` is a single file the user named)."""
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
        elif item.exists() or item.is_symlink():
            sources.append((item, Path(item.name)))
        else:
            problems.append(f"{item}: no such file or folder")
    suffix = output.suffix.lower()
    several = len(inputs) > 1 or inputs[0].is_dir()
    if several and not output.is_dir() and suffix in IMAGE_SUFFIXES:
        raise UsageError(f"{output} names one file, and several inputs need an output folder: "
                         f"give a folder, e.g. -o {output.with_suffix('')}/")
    if not output.is_dir() and suffix in IMAGE_SUFFIXES - SUFFIXES.keys():
        raise UsageError(f"{output}: write .png or .webp (cutouts and masks need lossless alpha)")
    if not several and not output.is_dir() and suffix in SUFFIXES:
        return [Job(s, output) for s, _ in sources], problems, None
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output} is a file; give a folder for several inputs")
    jobs = [Job(s, output / rel.with_suffix(".png")) for s, rel in sources]
    return jobs, problems, output


def _file_ids(path: Path) -> set[tuple[int, int]]:
    """(device, inode) of ``path`` and of what it links to: the same file under any name,
    through a hard link, a symlink or a bind mount, has the same pair."""
    ids = set()
    for look in (os.lstat, os.stat):
        try:
            st = look(path)
        except OSError:
            continue
        ids.add((st.st_dev, st.st_ino))
    return ids


def check_targets(jobs: list[Job]) -> None:
    """Usage errors that stop the run before any work: an output that is an input, two
    inputs written to one output."""
    inputs: set[tuple[int, int]] = set()
    for job in jobs:
        inputs |= _file_ids(job.source)
    seen: set[Path] = set()
    for job in jobs:
        if _file_ids(job.target) & inputs:
            raise UsageError(f"{job.target} is one of the inputs (the same file, by name, link "
                             "or mount); bgmask never overwrites an input: choose another "
                             "output")
        target = job.target.resolve()
        if target in seen:
            raise UsageError(f"two inputs would both be written to {job.target}; "
                             "rename one or use separate output folders")
        seen.add(target)
        output_format(job.target)


def plan(jobs: list[Job], root: Path | None, skip_existing: bool,
         overwrite: bool) -> tuple[list[Job], list[Job], list[str]]:
    """(jobs to run, jobs skipped, one message per job refused) under bgmask's rule: a file
    the user named with -o is replaced; in an output folder an existing file is never replaced
    without --overwrite, and --skip-existing keeps only complete outputs of the right size."""
    from .engine.output import check_fits, is_complete_output

    run: list[Job] = []
    skipped: list[Job] = []
    refused: list[str] = []
    for job in jobs:
        exists = os.path.lexists(job.target)
        replace = root is None or overwrite or (exists and skip_existing)
        redo = False
        try:
            if skip_existing and exists:
                if not job.target.is_symlink() and is_complete_output(
                        job.target, upright_size(job.source)):
                    skipped.append(job)
                    continue
                redo = True
            elif exists and not replace:
                refused.append(f"{job.target} already exists and bgmask did not write it in "
                               "this run: --overwrite replaces it, --skip-existing keeps it")
                continue
            if job.target.suffix.lower() == ".webp":
                check_fits(job.target, *upright_size(job.source))
        except BgmaskError as exc:
            refused.append(str(exc))
            continue
        except OSError as exc:
            refused.append(f"{job.target}: {exc.strerror or exc}")
            continue
        run.append(Job(job.source, job.target, replace, redo))
    return run, skipped, refused


class Report:
    """What the person running bgmask reads: a line per input on stdout (what was written or
    skipped), failures on stderr, '[done/total] ETA' progress (redrawn in place on a terminal
    only) and the counts at the end."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet
        self.done = self.written = self.skipped = self.failed = 0
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.drawn = False  # a progress line is on the terminal, not yet ended
        self.stdout_open = True

    def _clear(self) -> None:
        if self.drawn:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
            self.drawn = False

    def _out(self, line: str) -> None:
        if self.quiet or not self.stdout_open:
            return
        self._clear()
        try:
            print(line, flush=True)
        except BrokenPipeError:  # 'bgmask ... | head': the work goes on, unreported
            self.stdout_open = False

    def wrote(self, job: Job, notes: list[str]) -> None:
        self.written += 1
        if job.redo:
            notes = ["replaced an incomplete or different file", *notes]
        self._out(f"{job.source} -> {job.target}" + (f" ({'; '.join(notes)})" if notes else ""))

    def kept(self, job: Job) -> None:
        self.skipped += 1
        self._out(f"{job.source} -> {job.target}: skipped, already there")

    def fail(self, message: str) -> None:
        self.failed += 1
        self._clear()
        print(f"bgmask: {message}", file=sys.stderr, flush=True)

    def step(self, name: str) -> None:
        self.done += 1
        if self.quiet or self.total < 2:
            return
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * (self.total - self.done)
        line = f"[{self.done}/{self.total}] ETA {int(left) // 60}:{int(left) % 60:02d} {name}"
        if self.tty:
            print("\r\033[K" + line, end="" if self.done < self.total else "\n",
                  file=sys.stderr, flush=True)
            self.drawn = self.done < self.total
        else:
            print(line, file=sys.stderr, flush=True)

    def summary(self, ran_on: str | None, stopped: str | None = None) -> None:
        self._clear()
        if self.quiet and not stopped:
            return
        counts = f"{self.written} written, {self.skipped} skipped, {self.failed} failed"
        where = f" ({ran_on})" if ran_on else ""
        if stopped:
            counts += f"; {stopped}, the rest not done"
        print(f"bgmask: {counts}{where}", file=sys.stderr, flush=True)


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived (a BaseException, as KeyboardInterrupt is for SIGINT)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def _catch_stop_signals() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; an embedding program keeps its own
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _raise_stopped)


@dataclass(frozen=True)
class Outcome:
    job: Job
    notes: list[str]
    error: str | None


def run_masks(args: argparse.Namespace) -> int:
    from .engine.box import parse_box
    from .engine.output import save_cutout, save_mask
    from .engine.pipeline import Masker, MaskOptions
    from .engine.runtime import RuntimeOptions

    # The pipeline module is imported only here (it loads numpy), so MaskOptions keeps the
    # one default for the contrast.
    contrast = {} if args.contrast is None else {"contrast": args.contrast}
    box = None if args.box is None else parse_box(args.box)
    options = MaskOptions(refine=args.refine, quality=args.quality, threshold=args.threshold,
                          invert=args.invert, box=box, **contrast)
    if args.decontaminate and args.mask:
        raise UsageError("--decontaminate changes a cutout's edge colours; a --mask output has "
                         "none: drop one of them")
    if args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    if args.overwrite and args.skip_existing:
        raise UsageError("--overwrite and --skip-existing contradict each other; give one")
    jobs, problems, root = collect_jobs(args.inputs, args.output, args.recursive)
    check_targets(jobs)
    jobs, skipped, refused = plan(jobs, root, args.skip_existing, args.overwrite)
    report = Report(len(jobs), args.quiet)
    for message in problems + refused:
        report.fail(message)
    for job in skipped:
        report.kept(job)
    if not jobs:
        report.summary(None)
        return 1 if report.failed else 0

    masker = Masker(args.model, model_file=args.model_file, spec=_spec_from_args(args),
                    runtime=RuntimeOptions(_providers(args), args.threads),
                    progress=None if args.quiet else _download_bar())
    if masker.notice:
        print(f"bgmask: {masker.notice}", file=sys.stderr)
    ran_on = f"{masker.model_name} on {masker.provider}"

    def one(job: Job) -> Outcome:
        try:
            mask = masker.mask(job.source, options)
            if args.mask:
                notes = save_mask(mask, job.target, replace=job.replace, root=root)
            else:
                notes = save_cutout(job.source, mask, job.target, replace=job.replace,
                                    root=root, decontaminate=args.decontaminate)
            return Outcome(job, notes, None)
        except BgmaskError as exc:
            message = str(exc)
        except MemoryError:
            message = "not enough memory for this image; close other programs or reduce it"
        except OSError as exc:
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - one input must never stop a folder run
            message = (f"unexpected {type(exc).__name__} ({exc}); the rest were processed, "
                       "please report this file")
        if str(job.source) not in message and str(job.target) not in message:
            message = f"{job.source}: {message}"
        return Outcome(job, [], message)

    _catch_stop_signals()
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        for future in as_completed([pool.submit(one, job) for job in jobs]):
            outcome = future.result()
            if outcome.error is None:
                report.wrote(outcome.job, outcome.notes)
            else:
                report.fail(outcome.error)
            report.step(outcome.job.source.name)
        pool.shutdown()
    except (KeyboardInterrupt, Stopped) as exc:
        # Stop now, not after the queue: no new work, every temporary being written removed,
        # then out without waiting for the images in flight (their writes are refused).
        pool.shutdown(wait=False, cancel_futures=True)
        safewrite.abandon()
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        report.summary(ran_on, stopped=f"stopped by {signal.Signals(signum).name}")
        sys.stdout.flush()
        os._exit(128 + signum)
    report.summary(ran_on)
    return 1 if report.failed else 0


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


def _download_bar() -> Callable[[int, int | None], None]:  # a download.ProgressCallback
    """The model download's progress on stderr: redrawn in place on a terminal; elsewhere (a
    log file, a pipe) one line when it starts and one when it ends, with no control codes."""
    tty = sys.stderr.isatty()
    said: set[str] = set()

    def show(done: int, total: int | None) -> None:
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        finished = bool(total) and done >= (total or 0)
        if tty:
            end = "\n" if finished else ""
            print(f"\r\033[Kdownloading model {size}", end=end, file=sys.stderr, flush=True)
            return
        stage = "done" if finished else "start"
        if stage not in said:
            said.add(stage)
            what = f"model downloaded ({size})" if finished else "downloading the model..."
            print(f"bgmask: {what}", file=sys.stderr, flush=True)

    return show


# -- models ---------------------------------------------------------------------------------


def run_models(args: argparse.Namespace) -> int:
    from .engine.store import ModelStore

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
    except Stopped as exc:  # before or after the images: nothing of ours is half written
        print(f"bgmask: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:  # e.g. 'bgmask models list | head'
        return 0


if __name__ == "__main__":
    sys.exit(main())
