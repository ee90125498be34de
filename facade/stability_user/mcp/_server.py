"""The MCP server: the tools on the official SDK's ``MCPServer``, over stdio or streamable HTTP.

One ``AsyncStabilityUser`` serves every call, so its rate limiter and connection pool are
shared, and it is closed when serving ends. Over HTTP the server listens on loopback only, with
the SDK's DNS-rebinding protection on: it spends the operator's key for whoever reaches it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from .. import AsyncStabilityUser, ConfigurationError, __version__
from ._tools import TOOL_TIMEOUT, register_tools

__all__ = ["build_server", "check_loopback", "serve_http", "serve_stdio"]

_INSTRUCTIONS = (
    "Read the Stability AI credits of the operator's key: the balance of an organization, of "
    "every organization, the account, and whether there are enough credits for a job; and "
    "what calls cost, from Stability's own price statements, alone or against the balance. "
    "Every tool is free to call and spends no credits: check before an expensive generation."
)
# uvicorn's own default backlog.
_BACKLOG = 2048
# What pydantic appends to a validation error: a link, on a line of its own.
_PYDANTIC_LINK = re.compile(r"^\s*For further information visit \S+\s*$", re.MULTILINE)


class _OneLineErrors:
    """Error results the SDK writes itself (arguments its model refuses, an unknown tool) in
    one line, as the tools write theirs."""

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/call":
            return result
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not (isinstance(result, dict) and result.get("isError")):
            return result
        texts = [
            block.get("text", "")
            for block in result.get("content", [])
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        line = " ".join(_PYDANTIC_LINK.sub("", " ".join(texts)).split())
        return {**result, "content": [{"type": "text", "text": line}]}


def build_server(
    client: AsyncStabilityUser, *, share_email: bool = False, tool_timeout: float = TOOL_TIMEOUT
) -> MCPServer:
    """The server, its tools calling ``client``.

    Args:
        client: The client every tool call uses; the caller closes it.
        share_email: Include the account's email address and picture in ``get_account``.
            Off by default: agent transcripts are logged and shared.
        tool_timeout: The longest a tool call takes, retries included; past it the call
            answers with an ``APITimeoutError`` result.
    """
    server: MCPServer = MCPServer(
        "stability-user",
        title="Stability AI credits",
        version=__version__,
        instructions=_INSTRUCTIONS,
        log_level="WARNING",  # on stderr; stdout is the protocol's alone
        middleware=[_OneLineErrors()],
    )
    register_tools(server, client, share_email=share_email, tool_timeout=tool_timeout)
    return server


async def serve_stdio(
    client: AsyncStabilityUser, *, share_email: bool = False, tool_timeout: float = TOOL_TIMEOUT
) -> None:
    """Serve over stdin and stdout until the client (the agent) closes stdin."""
    async with client:
        server = build_server(client, share_email=share_email, tool_timeout=tool_timeout)
        await server.run_stdio_async()


def check_loopback(host: str) -> str:
    """``host`` if it is a loopback address (``localhost`` is 127.0.0.1), else an error."""
    address = "127.0.0.1" if host == "localhost" else host
    try:
        loopback = ipaddress.IPv4Address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"Refusing to serve MCP on {host!r}: the server spends the API key for whoever "
            "reaches it, so it listens on loopback (127.0.0.1) only.",
            cli_message=f"refusing to serve on {host!r}: the server spends your API key for "
            "whoever reaches it, so it listens on 127.0.0.1 only",
        )
    return address


async def serve_http(
    client: AsyncStabilityUser,
    *,
    host: str = "127.0.0.1",
    port: int,
    share_email: bool = False,
    tool_timeout: float = TOOL_TIMEOUT,
    ready: Callable[[str], None] = lambda url: None,
) -> None:
    """Serve MCP's streamable HTTP at ``http://host:port/mcp`` until interrupted.

    Args:
        host: A loopback address; any other raises ``ConfigurationError``.
        port: The port; 0 for any free one.
        share_email: As for ``build_server``.
        tool_timeout: As for ``build_server``.
        ready: Told the URL once the port is bound, before the first request is served.
    """
    import socket

    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    address = check_loopback(host)
    # Closed however serving ends, cancellation included: uvicorn leaves given sockets open.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((address, port))
            # Listening now, before the URL is announced: a client that connects at once
            # queues until uvicorn accepts, instead of being refused.
            listener.listen(_BACKLOG)
        except OSError as error:  # the port is taken, or not ours to take
            raise OSError(
                error.errno, f"cannot listen on {address}:{port}: {error.strerror or error}"
            ) from error
        bound = listener.getsockname()[1]
        names = [f"{address}:{bound}", f"localhost:{bound}"]
        server = build_server(client, share_email=share_email, tool_timeout=tool_timeout)
        app = server.streamable_http_app(
            host=address,
            transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=names,
                allowed_origins=[f"http://{name}" for name in names],
            ),
        )
        http = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        async with client:
            ready(f"http://{address}:{bound}/mcp")
            await http.serve(sockets=[listener])
