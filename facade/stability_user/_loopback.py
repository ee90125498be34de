"""Loopback, once: which hosts are this machine, and which names a loopback server answers to.

The client sends the key over plain ``http://`` only to a loopback host (``_config``); the
exporters, listening on loopback, answer only requests that name them by a loopback name, so
that a web page whose DNS name was rebound to 127.0.0.1 cannot read them. The MCP server allows
the same two names through the MCP SDK's own check (``stability_user.mcp`` takes nothing but
the public API, so it spells them itself).
"""

from __future__ import annotations

import ipaddress

__all__ = ["LOOPBACK_NAMES", "is_loopback", "loopback_authorities"]

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine's
    loopback."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def loopback_authorities(address: str, port: int) -> tuple[str, ...]:
    """The ``Host`` values a server bound to loopback ``address`` on ``port`` answers: its
    address and ``localhost``, each with the port (what a browser or a scraper sends)."""
    return tuple(dict.fromkeys((f"{address}:{port}", f"localhost:{port}")))
