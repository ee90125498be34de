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
from ._arguments import (
    client_options,
    endpoint_arguments,
    port,
    refresh_interval,
    shard,
    timeout_arguments,
)
from ._output import EXIT_USAGE, PROG, Output, say
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
            "in the background every --interval seconds, never per scrape. With --config, "
            "many keys: each target's credits on /probe?target=NAME, as blackbox_exporter "
            f"does it (docs: Monitoring, Many keys). Needs {_INSTALL!r}."
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a TOML file of named targets, each with its key_env or key_file; the file's "
        "[exporter] table replaces --interval, --timeout, --base-url and --api-version",
    )
    parser.add_argument(
        "--shard",
        type=shard,
        metavar="K/N",
        help="with --config: refresh and serve only the targets Prometheus' hashmod of the "
        "target name over N puts in shard K (run N exporters with the same file)",
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
        type=refresh_interval,
        metavar="SECONDS",
        help=f"seconds between refreshes, at least 1 (default: {EXPORTER_INTERVAL:g})",
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
    if args.config is not None:
        return _run_targets(args, out, err)
    if args.shard is not None:
        err.print(f"{PROG}: error: --shard needs --config (the targets to share out)")
        return EXIT_USAGE
    from ..monitoring._exporter import run_exporter

    options = client_options(args, err)
    interval = EXPORTER_INTERVAL if args.interval is None else args.interval
    serve = partial(
        run_exporter, address=args.address, port=args.port, interval=interval, out=out.stream
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


def _run_targets(args: argparse.Namespace, out: Output, err: Output) -> int:
    from ..monitoring._exporter_config import ExporterConfigError, load_config
    from ..monitoring._probe_exporter import run_probe_exporter
    from ._recording import recording, show_warnings

    given = [
        option
        for option, value in (
            ("--base-url", args.base_url),
            ("--api-version", args.api_version),
            ("--timeout", args.timeout),
            ("--interval", args.interval),
        )
        if value is not None
    ]
    if given:
        err.print(
            f"{PROG}: error: {given[0]} does not go with --config: set it in the file "
            "(base_url and api_version per target, interval and timeout in [exporter])"
        )
        return EXIT_USAGE
    from .._http._backends import resolve_http_backend

    try:
        config = load_config(args.config)
        # A ConfigurationError (aiohttp asked for, not installed) is the CLI's usage error.
        backend = resolve_http_backend(args.http_backend, transport=None, environ=os.environ)
        show_warnings(err)
        return run_probe_exporter(
            config,
            address=args.address,
            port=args.port,
            http_backend=backend,
            history=recording(args),
            shard=args.shard,
            out=out.stream,
            log=lambda line: say(err, f"{PROG}: {line}"),
        )
    except ExporterConfigError as error:  # the file, or a target's client made from it
        err.print(f"{PROG}: error: {error}")
        return EXIT_USAGE
