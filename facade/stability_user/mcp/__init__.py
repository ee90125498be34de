"""Stability AI credits for agents: an MCP server on the official Python SDK (``mcp``).

``stability-user mcp`` runs it over stdio (``--transport http`` for streamable HTTP on
127.0.0.1). Its tools read the balance of an organization or of all of them, the account,
whether there are enough credits for a job, the prices (``list_prices``) and what a plan of
calls costs against the balance (``estimate_cost``); none spends credits. It is written on the
public API alone (``stability_user``, ``stability_user.prices``), and needs
``pip install 'stability-user[mcp]'``.
"""

from __future__ import annotations

from ._server import build_server, check_loopback, serve_http, serve_stdio
from ._tools import TOOL_TIMEOUT, describe_error

__all__ = [
    "TOOL_TIMEOUT",
    "build_server",
    "check_loopback",
    "describe_error",
    "serve_http",
    "serve_stdio",
]
