"""``python -m stability_user.testing serve``: the sample stand-in on loopback, from a shell."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._api import SAMPLE_API_KEY, StandInAPI


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m stability_user.testing``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m stability_user.testing",
        description="Serve a stand-in for Stability's user API, holding a sample account.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the sample stand-in until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    args = parser.parse_args(argv)
    # SIGTERM (a process manager, `kill`) stops it as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)

    with StandInAPI.sample().serve(args.host, args.port) as server:
        print(f"Stand-in for the Stability user API at {server.url}", flush=True)
        print(f"  export STABILITY_BASE_URL={server.url}", flush=True)
        print(f"  export STABILITY_API_KEY={SAMPLE_API_KEY}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
