"""The upstream MCP server of the gateway tests, written with the `mcp` package (2.3.0).

Run as `python fixture_server.py` it serves MCP on standard input and output; as
`python fixture_server.py http PORT`, Streamable HTTP at `http://127.0.0.1:PORT/mcp`. With
`FIXTURE_CALLS` set, every tool call appends the tool's name to that file, so tests can prove a
refused call never reached the server. With `FIXTURE_CRASH_ON_ECHO` set, `echo` kills the server
(a crashed upstream).
"""

import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

from fixture_calls import called


server = MCPServer("charter-fixture", instructions="A fixture for the Charter gateway tests.")


@server.tool()
def echo(text: str) -> str:
    """Returns its text."""
    called("echo")
    if os.environ.get("FIXTURE_CRASH_ON_ECHO"):
        os._exit(3)
    return text


@server.tool()
def send_email(to: str, body: str) -> str:
    """Pretends to send an email."""
    called("send_email")
    return f"queued a message of {len(body)} characters"


@server.tool()
def lookup_customer(name: str) -> dict[str, str]:
    """Returns a customer record as structured content (with an email address)."""
    called("lookup_customer")
    return {"name": name, "email": "bob.smith@gmail.com"}


@server.tool()
def delete_everything() -> str:
    """A tool a policy denies whatever the arguments."""
    called("delete_everything")
    return "deleted"


@server.tool()
async def count_to(n: int, ctx: Context) -> str:
    """Reports progress at every step."""
    called("count_to")
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i}")
    return f"counted to {n}"


class City(BaseModel):
    city: str


@server.tool()
async def ask_city(ctx: Context) -> str:
    """Asks the client (elicitation: a request from the server to the client)."""
    called("ask_city")
    answer = await ctx.elicit("Which city?", City)
    if answer.action == "accept":
        return f"the city is {answer.data.city}"
    return f"no city: {answer.action}"


@server.resource("test://greeting")
def greeting() -> str:
    """A plain resource."""
    return "hello from the fixture"


@server.prompt()
def summarize(topic: str) -> str:
    """A prompt with one argument."""
    return f"Summarize {topic}."


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
