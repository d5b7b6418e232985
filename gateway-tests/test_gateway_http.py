"""The gateway's Streamable HTTP front, end to end: the `mcp` client over Streamable HTTP →
`charter mcp-gateway` → the `mcp` fixture server over stdio, with a real `charter serve`."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import anyio
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from conftest import (
    FIXTURE,
    KEY_ENV,
    TENANT,
    Charter,
    free_port_url,
    gateway_command,
    mcp_session,
    tools_called,
    upstream,
    write_config,
)


def http_config(path: Path, charter: Charter, agent: str, calls: Path, **http: str) -> Path:
    path.write_text(json.dumps({
        "charter": {"url": charter.url, "key_env": KEY_ENV, "tenant": TENANT, "agent": agent},
        "upstreams": [upstream("fixture", calls)],
        "front": {"http": {"listen": "127.0.0.1:0", **http}},
    }))
    return path


@contextlib.contextmanager
def http_gateway(config: Path, key: str) -> Iterator[str]:
    """The gateway serving HTTP; yields its /mcp URL; stopped with SIGTERM."""
    gateway = subprocess.Popen(
        gateway_command(config),
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
        env=dict(os.environ, **{KEY_ENV: key, "RUST_LOG": "warn"}),
    )
    try:
        assert gateway.stdout is not None
        line = gateway.stdout.readline()
        assert line.startswith("listening on "), line
        yield line.split()[-1]
    finally:
        gateway.terminate()
        gateway.wait(timeout=15)


@contextlib.asynccontextmanager
async def http_session(url: str, **callbacks: Any) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, **callbacks) as session:
            await session.initialize()
            yield session


def test_over_http_calls_are_checked_outputs_withheld_and_the_run_ends_with_the_session(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent("http")
    config = http_config(tmp_path / "gw.json", charter, agent, calls)
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async def on_elicit(context: Any, params: Any) -> Any:
        return types.ElicitResult(action="accept", content={"city": "Oslo"})

    with http_gateway(config, charter.key) as url:

        async def scenario() -> None:
            async with http_session(url, elicitation_callback=on_elicit) as session:
                names = sorted(t.name for t in (await session.list_tools()).tools)
                assert "delete_everything" not in names and "send_email" in names
                echoed = await session.call_tool("echo", {"text": "over http"})
                assert not echoed.is_error and echoed.content[0].text == "over http"
                blocked = await session.call_tool("send_email", {"to": "eve@gmail.com", "body": "x"})
                assert blocked.is_error
                assert "rule external-email" in blocked.content[0].text
                withheld = await session.call_tool("lookup_customer", {"name": "Bob"})
                assert withheld.is_error and withheld.structured_content is None
                counted = await session.call_tool("count_to", {"n": 2}, progress_callback=on_progress)
                assert counted.content[0].text == "counted to 2"
                city = await session.call_tool("ask_city", {})
                assert city.content[0].text == "the city is Oslo"
                greeting = await session.read_resource("test://greeting")
                assert greeting.contents[0].text == "hello from the fixture"

        anyio.run(scenario)
        (run,) = charter.runs_of(agent)
        # The client's DELETE at the end of the session ended the run.
        assert run["status"] == "completed"

    assert progress == [1, 2]
    assert tools_called(calls) == ["echo", "lookup_customer", "count_to", "ask_city"]
    tools = [a["action"].get("tool") for a in run["actions"] if a["action"]["kind"] == "tool_call"]
    assert tools == [
        "fixture.echo", "fixture.send_email", "fixture.lookup_customer",
        "fixture.count_to", "fixture.ask_city",
    ]


def test_a_client_in_auto_mode_falls_back_to_sessions_over_http(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    """The HTTP front has no stateless 2026-07-28 mode yet: the `mcp` Client's probe is refused
    and it falls back to `initialize`, governed as usual."""
    agent = charter.new_agent("http")
    config = http_config(tmp_path / "gw.json", charter, agent, calls)
    with http_gateway(config, charter.key) as url:

        async def scenario() -> None:
            async with Client(url) as client:
                assert client.session.protocol_version == "2025-11-25"
                blocked = await client.call_tool("send_email", {"to": "bob@gmail.com", "body": "x"})
                assert blocked.is_error and "rule external-email" in blocked.content[0].text

        anyio.run(scenario)
    (run,) = charter.runs_of(agent)
    assert run["status"] == "completed"


def test_two_http_sessions_are_two_runs(charter: Charter, tmp_path: Path, calls: Path) -> None:
    agent = charter.new_agent("http")
    config = http_config(tmp_path / "gw.json", charter, agent, calls)
    with http_gateway(config, charter.key) as url:

        async def scenario() -> None:
            async with http_session(url) as one, http_session(url) as two:
                await one.call_tool("echo", {"text": "one"})
                await two.call_tool("echo", {"text": "two"})

        anyio.run(scenario)
    runs = charter.runs_of(agent)
    assert len(runs) == 2
    assert sorted(r["actions"][0]["action"]["args"]["text"] for r in runs) == ["one", "two"]


def test_http_refuses_foreign_hosts_and_unknown_sessions(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    config = http_config(tmp_path / "gw.json", charter, charter.new_agent("http"), calls)
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()

    def status(headers: dict[str, str]) -> int:
        request = urllib.request.Request(url, data=ping, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            **headers})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    with http_gateway(config, charter.key) as url:
        assert status({"Origin": "http://evil.example"}) == 403
        assert status({"Host": "evil.example"}) == 403
        assert status({"Mcp-Session-Id": "nope"}) == 404
        assert status({}) == 400


def test_an_idle_session_is_ended_with_its_run(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent("http")
    config = http_config(tmp_path / "gw.json", charter, agent, calls, idle_timeout="1s")
    initialize = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    with http_gateway(config, charter.key) as url:
        request = urllib.request.Request(url, data=initialize, method="POST", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            session_id = response.headers["Mcp-Session-Id"]
            response.read()
        (run,) = charter.runs_of(agent)
        assert run["status"] == "running"
        deadline = time.monotonic() + 10
        while run["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            (run,) = charter.runs_of(agent)
        # The agent went away without DELETE: the session expired, its run ended.
        assert run["status"] == "completed"
        ping = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"}).encode()
        request = urllib.request.Request(url, data=ping, method="POST",
                                         headers={**headers, "Mcp-Session-Id": session_id})
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(request, timeout=10)
        assert gone.value.code == 404


def test_stopping_the_gateway_ends_the_runs_of_open_sessions(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent("http")
    config = http_config(tmp_path / "gw.json", charter, agent, calls)
    initialize = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}}).encode()
    with http_gateway(config, charter.key) as url:
        request = urllib.request.Request(url, data=initialize, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Mcp-Session-Id"]
            body = response.read().decode()
        assert '"serverInfo"' in body and body.startswith("event: message")
        (run,) = charter.runs_of(agent)
        assert run["status"] == "running"
    # The session was never deleted; SIGTERM ended its run.
    (run,) = charter.runs_of(agent)
    assert run["status"] == "completed"


@contextlib.contextmanager
def http_fixture(calls: Path) -> Iterator[str]:
    """The fixture server over Streamable HTTP; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(FIXTURE), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, FIXTURE_CALLS=str(calls)),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP fixture did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_http_upstream_behind_the_stdio_front(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent("up-http")
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async def on_elicit(context: Any, params: Any) -> Any:
        return types.ElicitResult(action="accept", content={"city": "Turin"})

    with http_fixture(calls) as fixture_url:
        config = write_config(
            tmp_path / "gw.json", charter.url, agent, [{"name": "fixture", "url": fixture_url}]
        )

        async def scenario() -> None:
            async with mcp_session(config, charter.key, elicitation_callback=on_elicit) as session:
                names = sorted(t.name for t in (await session.list_tools()).tools)
                assert "delete_everything" not in names and "echo" in names
                echoed = await session.call_tool("echo", {"text": "via http upstream"})
                assert echoed.content[0].text == "via http upstream"
                blocked = await session.call_tool("send_email", {"to": "eve@gmail.com", "body": "x"})
                assert blocked.is_error and "rule external-email" in blocked.content[0].text
                withheld = await session.call_tool("lookup_customer", {"name": "Bob"})
                assert withheld.is_error and withheld.structured_content is None
                counted = await session.call_tool("count_to", {"n": 2}, progress_callback=on_progress)
                assert counted.content[0].text == "counted to 2"
                city = await session.call_tool("ask_city", {})
                assert city.content[0].text == "the city is Turin"
                greeting = await session.read_resource("test://greeting")
                assert greeting.contents[0].text == "hello from the fixture"

        anyio.run(scenario)

    assert progress == [1, 2]
    assert tools_called(calls) == ["echo", "lookup_customer", "count_to", "ask_city"]
    (run,) = charter.runs_of(agent)
    assert run["status"] == "completed"


def test_an_unreachable_http_upstream_fails_the_call_without_hanging(
    charter: Charter, tmp_path: Path
) -> None:
    agent = charter.new_agent("up-http")
    config = write_config(
        tmp_path / "gw.json", charter.url, agent, [{"name": "gone", "url": free_port_url() + "/mcp"}]
    )

    async def scenario() -> None:
        with anyio.fail_after(20):
            with pytest.raises(BaseException) as initialize:
                async with mcp_session(config, charter.key):
                    pass
        error = mcp_error_in(initialize.value)
        assert error is not None, initialize.value
        assert error.code == -32603
        assert "unreachable" in error.message

    anyio.run(scenario)


def mcp_error_in(error: BaseException) -> MCPError | None:
    """The MCPError in `error`, which anyio may have wrapped in exception groups."""
    if isinstance(error, MCPError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := mcp_error_in(inner)) is not None:
                return found
    return None
