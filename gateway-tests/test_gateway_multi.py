"""The gateway with several upstreams, end to end, over the stdio and the Streamable HTTP
fronts: the `mcp` client → `charter mcp-gateway` → two `mcp` servers (fixture_server.py as
`mail`, docs_server.py as `docs`), with a real `charter serve` deciding. Lists merged from every
page, prompts and resources routed to their upstream, `tools/list_changed` passed on only when
the visible tools changed, cancellations routed both ways, progress kept."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import anyio
import pytest
from mcp import types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from conftest import (
    KEY_ENV,
    TENANT,
    Charter,
    HERE,
    mcp_session,
    tools_called,
    upstream,
)
from test_gateway_http import http_gateway, http_session

DOCS = HERE / "docs_server.py"


def docs_upstream(calls: Path) -> dict[str, Any]:
    return {
        "name": "docs",
        "command": sys.executable,
        "args": [str(DOCS)],
        "env": {"FIXTURE_CALLS": str(calls)},
    }


def config(
    path: Path, charter: Charter, agent: str, upstreams: list[dict[str, Any]], front: str
) -> Path:
    body: dict[str, Any] = {
        "charter": {"url": charter.url, "key_env": KEY_ENV, "tenant": TENANT, "agent": agent},
        "upstreams": upstreams,
    }
    if front == "http":
        body["front"] = {"http": {"listen": "127.0.0.1:0"}}
    path.write_text(json.dumps(body))
    return path


def mail_and_docs(charter: Charter, tmp_path: Path, agent: str, front: str) -> tuple[Path, Path, Path]:
    """A gateway in front of `mail` and `docs` for a new agent named after `agent`: its
    configuration and the two upstreams' call logs."""
    mail_calls, docs_calls = tmp_path / "mail.log", tmp_path / "docs.log"
    path = config(
        tmp_path / "gw.json",
        charter,
        charter.new_agent(agent),
        [upstream("mail", mail_calls), docs_upstream(docs_calls)],
        front,
    )
    return path, mail_calls, docs_calls


@contextlib.asynccontextmanager
async def through(front: str, url_or_config: Any, key: str, **callbacks: Any) -> AsyncIterator[ClientSession]:
    if front == "http":
        async with http_session(url_or_config, **callbacks) as session:
            yield session
    else:
        async with mcp_session(url_or_config, key, **callbacks) as session:
            yield session


def run(front: str, path: Path, key: str, scenario: Callable[[Any], Any]) -> None:
    """Runs `scenario(target)` with the gateway of `path` serving `front`."""
    if front == "http":
        with http_gateway(path, key) as url:
            anyio.run(scenario, url)
    else:
        anyio.run(scenario, path)


async def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        await anyio.sleep(0.05)


FRONTS = ["stdio", "http"]


@pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")
@pytest.mark.parametrize("front", FRONTS)
def test_several_upstreams_merge_every_page_and_route_to_the_owner(
    charter: Charter, tmp_path: Path, front: str
) -> None:
    path, mail_calls, docs_calls = mail_and_docs(charter, tmp_path, "multi", front)
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async def scenario(target: Any) -> None:
        async with through(front, target, charter.key) as session:
            resources = await session.list_resources()
            assert [str(r.uri) for r in resources.resources] == [
                "test://greeting",
                "docs://readme",
                "docs://changelog",  # the docs upstream's second page
            ]
            assert resources.next_cursor is None
            templates = await session.list_resource_templates()
            assert [t.uri_template for t in templates.resource_templates] == ["docs://pages/{page}"]
            prompts = await session.list_prompts()
            assert [p.name for p in prompts.prompts] == [
                "mail__summarize",
                "docs__outline",
                "docs__review",
            ]
            assert prompts.next_cursor is None
            with pytest.raises(MCPError) as bad_cursor:
                await session.list_prompts(params=types.PaginatedRequestParams(cursor="1"))
            assert bad_cursor.value.code == -32602

            for uri, text in [
                ("test://greeting", "hello from the fixture"),
                ("docs://changelog", "everything changed"),
                ("docs://pages/intro", "the page intro"),
            ]:
                read = await session.read_resource(uri)
                assert read.contents[0].text == text
            with pytest.raises(MCPError) as unknown:
                await session.read_resource("nowhere://x")
            assert unknown.value.code == -32002

            outline = await session.get_prompt("docs__outline", {"topic": "gateways"})
            assert outline.messages[0].content.text == "Outline gateways."
            summary = await session.get_prompt("mail__summarize", {"topic": "mail"})
            assert summary.messages[0].content.text == "Summarize mail."
            with pytest.raises(MCPError) as unprefixed:
                await session.get_prompt("outline", {"topic": "x"})
            assert unprefixed.value.code == -32602

            completed = await session.complete(
                types.PromptReference(name="docs__outline"), {"name": "topic", "value": "g"}
            )
            assert completed.completion.values == ["docs-topic"]
            completed = await session.complete(
                types.ResourceTemplateReference(uri="docs://pages/{page}"),
                {"name": "page", "value": ""},
            )
            assert completed.completion.values == ["docs-page"]

            await session.subscribe_resource("docs://readme")
            await session.unsubscribe_resource("docs://readme")

            found = await session.call_tool("docs__search", {"query": "cursors"})
            assert found.content[0].text == "found cursors in the docs"
            counted = await session.call_tool(
                "mail__count_to", {"n": 2}, progress_callback=on_progress
            )
            assert counted.content[0].text == "counted to 2"

    run(front, path, charter.key, scenario)
    # Progress reached the agent under its own token, each subscription its owner only.
    assert progress == [1, 2]
    assert tools_called(docs_calls) == ["subscribe", "docs://readme", "unsubscribe", "docs://readme", "search"]
    assert tools_called(mail_calls) == ["count_to"]


def test_a_uri_several_upstreams_could_serve_is_refused(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent("multi")
    path = config(
        tmp_path / "gw.json",
        charter,
        agent,
        [upstream("mail", calls), upstream("other", calls)],
        "stdio",
    )

    async def scenario(target: Any) -> None:
        async with through("stdio", target, charter.key) as session:
            with pytest.raises(MCPError) as ambiguous:
                await session.read_resource("test://greeting")
            assert ambiguous.value.code == -32602
            assert "Ambiguous resource test://greeting" in ambiguous.value.message
            assert "mail, other" in ambiguous.value.message

    run("stdio", path, charter.key, scenario)


@pytest.mark.parametrize(("front", "several"), [("stdio", False), ("stdio", True), ("http", True)])
def test_tools_list_changed_reaches_the_agent_only_when_what_it_sees_changed(
    charter: Charter, tmp_path: Path, calls: Path, front: str, several: bool
) -> None:
    agent = charter.new_agent("changes")
    upstreams = [upstream("mail", calls), docs_upstream(calls)] if several else [docs_upstream(calls)]
    path = config(tmp_path / "gw.json", charter, agent, upstreams, front)
    prefix = "docs__" if several else ""
    seen: list[str] = []

    async def on_message(message: Any) -> None:
        seen.append(getattr(message, "method", type(message).__name__))

    async def scenario(target: Any) -> None:
        async with through(front, target, charter.key, message_handler=on_message) as session:
            before = {t.name for t in (await session.list_tools()).tools}
            assert f"{prefix}grow" in before
            # A change the agent cannot see: the new tool is hidden by "no-deletes".
            await session.call_tool(f"{prefix}add_hidden", {})
            await session.call_tool(f"{prefix}grow", {})
            await eventually(lambda: "notifications/tools/list_changed" in seen)
            after = {t.name for t in (await session.list_tools()).tools}
            assert after == before | {f"{prefix}extra"}
            await anyio.sleep(0.5)
            assert seen.count("notifications/tools/list_changed") == 1, seen
            # Resources and prompts: passed on.
            await session.call_tool(f"{prefix}announce", {})
            await eventually(
                lambda: "notifications/resources/list_changed" in seen
                and "notifications/prompts/list_changed" in seen
            )

    run(front, path, charter.key, scenario)


@pytest.mark.parametrize("front", FRONTS)
def test_cancellations_reach_the_right_side_under_its_own_id(
    charter: Charter, tmp_path: Path, front: str
) -> None:
    path, mail_calls, docs_calls = mail_and_docs(charter, tmp_path, "cancel", front)
    asked: list[str] = []

    async def on_elicit(context: Any, params: Any) -> Any:
        asked.append("asked")
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            asked.append("cancelled")
            raise
        return types.ElicitResult(action="decline")

    async def scenario(target: Any) -> None:
        async with through(front, target, charter.key, elicitation_callback=on_elicit) as session:
            # The agent gives up on a call: its notifications/cancelled reaches the docs
            # upstream (which stops the tool), never the mail upstream.
            with pytest.raises(MCPError):
                await session.call_tool("docs__sleep", {"seconds": 30}, read_timeout_seconds=2)
            await eventually(lambda: "sleep-cancelled" in tools_called(docs_calls))
            # The upstream gives up on its question: the agent's handler is cancelled, which
            # needs the id the agent saw (the gateway renamed it).
            gave_up = await session.call_tool("docs__ask_briefly", {})
            assert gave_up.content[0].text == "gave up: MCPError"
            await eventually(lambda: asked == ["asked", "cancelled"])
            found = await session.call_tool("docs__search", {"query": "after"})
            assert found.content[0].text == "found after in the docs"

    run(front, path, charter.key, scenario)
    assert tools_called(mail_calls) == []
