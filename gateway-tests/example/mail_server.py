"""An MCP server with one tool that sends email (pretend), for the gateway example."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("mail")


@server.tool()
def send_email(to: str, body: str) -> str:
    """Sends an email (here: only says it would)."""
    return f"sent {len(body)} characters to {to.split('@')[0]}"


if __name__ == "__main__":
    server.run()
