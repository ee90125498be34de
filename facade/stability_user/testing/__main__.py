"""``python -m stability_user.testing``: ``serve`` the sample stand-in on loopback from a shell,
and ``spend`` a served stand-in's credits from another process (as a generation would)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .._constants import API_KEY_ENV, BASE_URL_ENV
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
    spend = commands.add_parser(
        "spend",
        help="spend credits on the stand-in at STABILITY_BASE_URL, as a generation would",
        description=(
            "Spend CREDITS of the stand-in served at STABILITY_BASE_URL, with the key in "
            "STABILITY_API_KEY: of --org, else of the key's default organization. Prints what "
            "is left."
        ),
    )
    spend.add_argument("credits", metavar="CREDITS", help="how many credits to spend")
    spend.add_argument("--org", metavar="ORG", help="organization id (default: the default one)")
    args = parser.parse_args(argv)
    if args.command == "spend":
        return _spend(args.credits, args.org)
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


def _spend(credits: str, organization: str | None) -> int:
    import httpx2

    from ._api import SPEND_PATH

    url, key = os.environ.get(BASE_URL_ENV), os.environ.get(API_KEY_ENV)
    if not url or not key:
        print(f"spend: set {BASE_URL_ENV} and {API_KEY_ENV} to the stand-in's", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {key}"}
    if organization:
        headers["Organization"] = organization
    try:
        answer = httpx2.post(
            url.rstrip("/") + SPEND_PATH, params={"credits": credits}, headers=headers, timeout=10
        )
    except httpx2.HTTPError as err:
        print(f"spend: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    body = answer.json()
    if answer.status_code != 200:
        print(f"spend: HTTP {answer.status_code}: {body.get('message')}", file=sys.stderr)
        return 1
    print(f"{body['credits']:g} credits left in {body['organization']}")
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
