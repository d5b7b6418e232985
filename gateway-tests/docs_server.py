"""A second upstream of the gateway tests (beside fixture_server.py), written with the `mcp`
package (2.3.0), with tools, resources, a resource template and prompts of its own. Its
resources and prompts are listed one per page, so a gateway that reads only the first page
misses some. Some tools change its tool list and say so (`notifications/tools/list_changed`),
one sleeps until cancelled, one asks the client and cancels the question.

`python docs_server.py` serves stdio. With `FIXTURE_CALLS` set, tools and subscriptions append
a line to that file (`sleep-cancelled` when a sleep was cancelled).
"""

from typing import Any

import anyio
from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata

from fixture_calls import called


server = MCPServer("charter-docs-fixture", instructions="The docs fixture.")


@server.tool()
def search(query: str) -> str:
    """Searches the docs."""
    called("search")
    return f"found {query} in the docs"


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleeps; a cancellation is logged as `sleep-cancelled`."""
    called("sleep")
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        called("sleep-cancelled")
        raise
    return "slept"


@server.tool()
async def ask_briefly(ctx: Context) -> str:
    """Asks the client, gives up after half a second (the server cancels its request)."""
    called("ask_briefly")
    request = types.ElicitRequest(
        params=types.ElicitRequestFormParams(
            message="Quick?",
            requested_schema={"type": "object", "properties": {"x": {"type": "string"}}},
        )
    )
    try:
        await ctx.session.send_request(
            request,
            types.ElicitResult,
            request_read_timeout_seconds=0.5,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
    except (MCPError, TimeoutError) as e:
        return f"gave up: {type(e).__name__}"
    return "answered"


def extra() -> str:
    """A tool added while the session runs."""
    return "extra"


def delete_everything() -> str:
    """A tool added while the session runs that the tests' policy hides."""
    return "deleted"


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool `extra` and says the tool list changed."""
    server.add_tool(extra, name="extra")
    await ctx.session.send_tool_list_changed()
    return "grown"


@server.tool()
async def add_hidden(ctx: Context) -> str:
    """Adds `delete_everything` (which a policy hides) and says the tool list changed."""
    server.add_tool(delete_everything, name="delete_everything")
    await ctx.session.send_tool_list_changed()
    return "added a hidden tool"


@server.tool()
async def announce(ctx: Context) -> str:
    """Says its resource and prompt lists changed."""
    await ctx.session.send_resource_list_changed()
    await ctx.session.send_prompt_list_changed()
    return "announced"


@server.resource("docs://readme", name="readme", mime_type="text/plain")
def readme() -> str:
    return "read me first"


@server.resource("docs://changelog", name="changelog", mime_type="text/plain")
def changelog() -> str:
    return "everything changed"


@server.resource("docs://pages/{page}", name="page", mime_type="text/plain")
def page(page: str) -> str:
    return f"the page {page}"


@server.prompt()
def outline(topic: str) -> str:
    """Outlines a topic."""
    return f"Outline {topic}."


@server.prompt()
def review() -> str:
    """Reviews the docs."""
    return "Review the docs."


@server.completion()
async def complete(ref: Any, argument: Any, context: Any) -> types.Completion:
    return types.Completion(values=[f"docs-{argument.name}"], total=1, has_more=False)


RESOURCES = [
    types.Resource(uri="docs://readme", name="readme", mime_type="text/plain"),
    types.Resource(uri="docs://changelog", name="changelog", mime_type="text/plain"),
]
PROMPTS = [
    types.Prompt(
        name="outline",
        description="Outlines a topic.",
        arguments=[types.PromptArgument(name="topic", required=True)],
    ),
    types.Prompt(name="review", description="Reviews the docs."),
]


def page_of(items: list[Any], cursor: str | None) -> tuple[list[Any], str | None]:
    at = int(cursor or 0)
    return items[at : at + 1], (str(at + 1) if at + 1 < len(items) else None)


async def list_resources(ctx: Any, params: types.PaginatedRequestParams) -> types.ListResourcesResult:
    items, next_cursor = page_of(RESOURCES, params.cursor)
    return types.ListResourcesResult(resources=items, next_cursor=next_cursor)


async def list_prompts(ctx: Any, params: types.PaginatedRequestParams) -> types.ListPromptsResult:
    items, next_cursor = page_of(PROMPTS, params.cursor)
    return types.ListPromptsResult(prompts=items, next_cursor=next_cursor)


async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    called(f"subscribe {params.uri}")
    return types.EmptyResult()


async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    called(f"unsubscribe {params.uri}")
    return types.EmptyResult()


lowlevel = server._lowlevel_server  # noqa: SLF001 (paged lists and subscriptions)
lowlevel.add_request_handler("resources/list", types.PaginatedRequestParams, list_resources)
lowlevel.add_request_handler("prompts/list", types.PaginatedRequestParams, list_prompts)
lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)


if __name__ == "__main__":
    server.run()
