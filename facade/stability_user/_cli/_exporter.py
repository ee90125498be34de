"""``stability-user exporter``: every organization's credits as Prometheus metrics."""

from __future__ import annotations

import os
from functools import partial

from .._constants import (
    AIOHTTP_INSTALL,
    EXPORTER_ADDRESS,
    EXPORTER_INTERVAL,
    EXPORTER_PORT,
    HTTP_BACKEND_ENV,
    HTTP_BACKENDS,
)
from ._arguments import client_options, endpoint_arguments, port, seconds, timeout_arguments
from ._output import EXIT_USAGE, PROG, Output
from ._recording import history_argument

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]

_INSTALL = "stability-user[exporter]"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "exporter",
        help="serve every organization's credits as Prometheus metrics",
        description=(
            "Serve /metrics (Prometheus exposition format) and /healthz. Balances are refreshed "
            "in the background every --interval seconds, never per scrape. Needs "
            f"{_INSTALL!r}."
        ),
    )
    endpoint_arguments(parser)
    timeout_arguments(parser)
    parser.add_argument(
        "--address", default=EXPORTER_ADDRESS, help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=port,
        default=EXPORTER_PORT,
        help="port; 0 for any free one (default: %(default)s)",
    )
    parser.add_argument(
        "--interval",
        type=seconds,
        default=EXPORTER_INTERVAL,
        metavar="SECONDS",
        help="seconds between refreshes (default: %(default)g)",
    )
    parser.add_argument(
        "--http-backend",
        choices=HTTP_BACKENDS,
        default=None,
        help=f"refresh with the async client on this HTTP backend (default: {HTTP_BACKEND_ENV}, "
        f"else httpx2 on the sync client); aiohttp needs {AIOHTTP_INSTALL!r}",
    )
    history_argument(parser)


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    try:
        import prometheus_client  # noqa: F401 (only: is it installed?)
    except ImportError:
        err.print(f"{PROG}: error: the exporter needs prometheus-client: pip install {_INSTALL!r}")
        return EXIT_USAGE
    from ..monitoring._exporter import run_exporter

    options = client_options(args, err)
    serve = partial(
        run_exporter, address=args.address, port=args.port, interval=args.interval, out=out.stream
    )
    if _backend(args) == "aiohttp":
        from .._async_client import AsyncStabilityUser

        # Made here, so that a missing aiohttp is a usage error before anything starts.
        client = AsyncStabilityUser(**options, http_backend="aiohttp")
        return serve(client)
    from .._client import StabilityUser

    with StabilityUser(**options) as sync_client:
        return serve(sync_client)


def _backend(args: argparse.Namespace) -> str | None:
    backend: str | None = args.http_backend or os.environ.get(HTTP_BACKEND_ENV) or None
    return backend.strip().lower() if backend else None
