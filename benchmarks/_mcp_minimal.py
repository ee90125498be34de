"""Row 11's baseline: the smallest server the MCP SDK makes, one constant tool, over stdio."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server: MCPServer = MCPServer("minimal", log_level="WARNING")


@server.tool()
def constant() -> str:
    """Always the same answer."""
    return "42"


if __name__ == "__main__":
    server.run()
