"""An MCP client that reaches its tools through `charter mcp-gateway`.

    python agent.py gateway.json

It sends one internal and one external email; with the "Block external email" policy active,
the second comes back as a tool error naming the policy and rule, and never reaches the server.
"""

import os
import sys

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main(config: str) -> None:
    # The MCP client passes only a few safe variables to servers it starts: hand the gateway
    # its key (CHARTER_KEY, or whichever the configuration's key_env names) explicitly.
    keys = {name: value for name, value in os.environ.items() if name.startswith("CHARTER")}
    gateway = StdioServerParameters(
        command="charter", args=["mcp-gateway", "--config", config], env=keys
    )
    async with stdio_client(gateway) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for to in ["alice@acme.com", "bob@gmail.com"]:
                result = await session.call_tool("send_email", {"to": to, "body": "Quarterly numbers"})
                status = "REFUSED" if result.is_error else "ok"
                print(f"{to}: {status}: {result.content[0].text}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
