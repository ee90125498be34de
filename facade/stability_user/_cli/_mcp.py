"""``stability-user mcp``: the credits for agents, as an MCP server (the ``mcp`` extra).

Over stdio by default, what desktop and CLI agents launch; ``--transport http`` serves MCP's
streamable HTTP on 127.0.0.1. The key and the rest come from the environment, as for every
command; a missing key is refused before anything is served.
"""

from __future__ import annotations

from .._constants import (
    DEFAULT_TIMEOUT,
    HTTP_BACKEND_ENV,
    HTTP_BACKENDS,
    MCP_INSTALL,
    MCP_PORT,
    MCP_TOOL_TIMEOUT,
)
from ._arguments import client_options, endpoint_arguments, port, seconds
from ._output import EXIT_OK, EXIT_USAGE, PROG, Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "mcp",
        help="serve the credits to agents over the Model Context Protocol",
        description=(
            "Serve tools that read the credits (an organization's balance, every "
            "organization's, the account, and whether there are enough for a job) to MCP "
            f"clients, over stdio or streamable HTTP on 127.0.0.1. Needs {MCP_INSTALL!r}."
        ),
    )
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio (what agents launch) or http, MCP's streamable HTTP (default: %(default)s)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="with http: a loopback address; any other is refused (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=port,
        default=MCP_PORT,
        help="with http: the port; 0 for any free one (default: %(default)s)",
    )
    parser.add_argument(
        "--share-email",
        action="store_true",
        help="include the account's email address and picture in get_account (off: agent "
        "transcripts are logged and shared)",
    )
    parser.add_argument(
        "--http-backend",
        choices=HTTP_BACKENDS,
        default=None,
        help=f"the client's HTTP backend (default: {HTTP_BACKEND_ENV}, else httpx2)",
    )
    endpoint_arguments(parser)
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=MCP_TOOL_TIMEOUT,
        metavar="SECONDS",
        help="the longest a tool call takes, retries included; past it the call answers "
        "with an APITimeoutError (default: %(default)g, under the 60 s MCP clients allow)",
    )


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    try:
        from ..mcp import check_loopback, serve_http, serve_stdio
    except ImportError:
        err.print(f"{PROG}: error: the MCP server needs the MCP SDK: {MCP_INSTALL}")
        return EXIT_USAGE
    import anyio

    from .. import AsyncStabilityUser

    if args.transport == "http":
        check_loopback(args.host)  # refused before the client is made
    # Made before anything is served: a missing key or a bad setting is a usage error now.
    # Without --http-backend the client reads STABILITY_HTTP_BACKEND itself. --timeout bounds
    # a whole tool call; a request gets the client's default, or less when that is shorter.
    options = {**client_options(args), "timeout": min(args.timeout, DEFAULT_TIMEOUT)}
    client = AsyncStabilityUser(**options, http_backend=args.http_backend)
    shared = {"share_email": args.share_email, "tool_timeout": args.timeout}
    if args.transport == "stdio":
        anyio.run(lambda: serve_stdio(client, **shared))
        return EXIT_OK

    def ready(url: str) -> None:
        err.print(f"Serving MCP (streamable HTTP) at {url}")
        err.stream.flush()

    anyio.run(lambda: serve_http(client, host=args.host, port=args.port, ready=ready, **shared))
    return EXIT_OK
