"""``python -m bgmask.worker``: a long-lived process that keeps models loaded and answers
mask requests: on stdin/stdout for the editor that started it, or, with ``--socket``, as this
user's background worker (``bgmask.worker.server``).

stdout carries frames only: anything else that would print there is sent to stderr.
"""

from __future__ import annotations

import argparse
import sys

from ..engine.runtime import RuntimeOptions
from ..host.errors import UsageError, WorkerError
from .requests import Worker
from .server import serve_socket


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgmask.worker", description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: auto)")
    parser.add_argument("--providers", default=None,
                        help="comma-separated execution providers, e.g. cuda,cpu")
    parser.add_argument("--socket", default=None, metavar="PATH",
                        help="serve this user's clients on a Unix socket in the background")
    parser.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                        help="with --socket: exit after this long without requests "
                             "(default $BGMASK_WORKER_IDLE or 900)")
    args = parser.parse_args(argv)
    providers = tuple(args.providers.split(",")) if args.providers else None
    try:
        runtime = RuntimeOptions(providers, args.threads)
    except UsageError as exc:
        parser.error(str(exc))
    if args.socket:
        try:
            return serve_socket(args.socket, runtime, args.idle_timeout)
        except WorkerError as exc:
            print(f"bgmask worker: {exc}", file=sys.stderr)
            return 2
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must never corrupt the frame stream
    try:
        return Worker(stdin, stdout, runtime).serve()
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
