"""The gateway over stdio, end to end: the `mcp` client → `charter mcp-gateway` → the `mcp`
fixture server, with a real `charter serve` deciding."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from conftest import (
    CHARTER_BIN,
    FIXTURE,
    MAIL_POLICY,
    TENANT,
    _start_charter,
    KEY_ENV,
    Charter,
    gateway_command,
    free_port_url,
    mcp_session,
    tools_called,
    upstream,
    write_config,
)


class Lines:
    """A process spoken to in newline-delimited JSON-RPC, for byte-level comparisons."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            text=True,
            env=dict(os.environ, **env),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def answer(self, id: Any) -> str:
        """The line answering request `id` (notifications before it are skipped)."""
        deadline = time.monotonic() + 20
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if json.loads(line).get("id") == id and "method" not in json.loads(line):
                return line

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


SCRIPT: list[dict[str, Any]] = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"x-unknown": {"kept": True}},
        "clientInfo": {"name": "lines", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": "two", "method": "tools/call", "params": {
        "name": "echo", "arguments": {"text": "hello"}, "_meta": {"progressToken": "p-1"}}},
    {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "test://greeting"}},
    {"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": {
        "name": "summarize", "arguments": {"topic": "the weather"}}},
    {"jsonrpc": "2.0", "id": 5, "method": "ping"},
    {"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {
        "name": "send_email", "arguments": {"to": "alice@acme.com", "body": "hi"}}},
    {"jsonrpc": "2.0", "id": 7, "method": "resources/list"},
    {"jsonrpc": "2.0", "id": 8, "method": "nonexistent/method"},
]


def actions(run: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """A run's actions as (kind, tool, decision)."""
    return [(a["action"]["kind"], a["action"].get("tool"), a["decision"]) for a in run["actions"]]


def transcript(process: Lines) -> list[str]:
    answers = []
    for message in SCRIPT:
        process.send(message)
        if "id" in message:
            answers.append(process.answer(message["id"]))
    process.close()
    return answers


def test_allowed_calls_and_everything_else_pass_unchanged(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    direct = transcript(
        Lines([sys.executable, str(FIXTURE)], {"FIXTURE_CALLS": str(tmp_path / "direct.log")})
    )
    agent = charter.new_agent()
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])
    through = transcript(Lines(gateway_command(config), {KEY_ENV: charter.key}))
    # Byte for byte: initialize, the allowed tool calls, resources, prompts, ping, an error.
    assert through == direct
    assert json.loads(through[1])["result"]["content"][0]["text"] == "hello"
    assert tools_called(calls) == ["echo", "send_email"]
    # Both calls were checked, each with its result, as actions of the session's run.
    (run,) = charter.runs_of(agent)
    assert run["status"] == "completed"
    # echo's result is a text block and structuredContent {"result": "hello"}: two outputs.
    assert actions(run) == [
        ("tool_call", "fixture.echo", "allow"),
        ("output", None, "allow"),
        ("output", None, "allow"),
        ("tool_call", "fixture.send_email", "allow"),
        ("output", None, "allow"),
        ("output", None, "allow"),
    ]
    assert run["actions"][0]["action"]["args"] == {"text": "hello"}
    outputs = [a["action"] for a in run["actions"] if a["action"]["kind"] == "output"]
    assert outputs[0] == {"kind": "output", "text": "hello", "channel": "mcp"}
    assert outputs[1]["text"] == '{"result":"hello"}'


def test_a_blocked_call_is_a_tool_error_naming_the_policy_and_never_reaches_the_server(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent()
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])

    async def scenario() -> None:
        async with mcp_session(config, charter.key) as session:
            result = await session.call_tool(
                "send_email", {"to": "bob@gmail.com", "body": "our secrets"}
            )
            assert result.is_error
            text = result.content[0].text
            assert "Charter blocked the call to fixture.send_email" in text
            assert 'policy "Block external email"' in text
            assert "version 1" in text
            assert "rule external-email (tool)" in text
            assert "bob@gmail.com" in text
            assert result.structured_content is None
            # The session goes on: an allowed call still works.
            ok = await session.call_tool("send_email", {"to": "carol@acme.com", "body": "hi"})
            assert not ok.is_error

    anyio.run(scenario)
    assert tools_called(calls) == ["send_email"]
    (run,) = charter.runs_of(agent)
    decisions = actions(run)
    assert decisions[0] == ("tool_call", "fixture.send_email", "block")
    assert decisions[1] == ("tool_call", "fixture.send_email", "allow")
    assert run["actions"][0]["action"]["args"] == {"to": "bob@gmail.com", "body": "our secrets"}


def test_a_blocked_output_is_withheld(charter: Charter, tmp_path: Path, calls: Path) -> None:
    agent = charter.new_agent()
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])

    async def scenario() -> None:
        async with mcp_session(config, charter.key) as session:
            await session.list_tools()
            result = await session.call_tool("lookup_customer", {"name": "Bob"})
            assert result.is_error
            assert result.structured_content is None
            (block,) = result.content
            assert block.text.startswith("Charter withheld the result of fixture.lookup_customer")
            assert 'policy "No personal data out"' in block.text
            assert "rule no-pii (output)" in block.text
            assert "bob.smith@gmail.com" not in block.text

    anyio.run(scenario)
    assert tools_called(calls) == ["lookup_customer"]  # it ran; its result never left
    (run,) = charter.runs_of(agent)
    assert actions(run) == [
        ("tool_call", "fixture.lookup_customer", "allow"),
        ("output", None, "block"),
    ]


def test_tools_list_leaves_out_what_is_blocked_whatever_the_arguments(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent()
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])

    async def scenario() -> None:
        async with mcp_session(config, charter.key) as session:
            tools = await session.list_tools()
            # send_email stays: only some arguments are blocked.
            assert sorted(t.name for t in tools.tools) == [
                "ask_city", "count_to", "echo", "lookup_customer", "send_email",
            ]
            # Hiding is not enforcement: calling the hidden tool is still refused.
            result = await session.call_tool("delete_everything", {})
            assert result.is_error
            assert "rule no-deletes" in result.content[0].text

    anyio.run(scenario)
    assert tools_called(calls) == []


def test_a_halt_refuses_every_later_call_of_the_session(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    # The run starts during `initialize`, so its clock runs while the upstream process starts
    # (seconds on a loaded machine): the limit leaves room for that, and the wait is counted
    # from the session being open, by which time the run has surely started.
    limit = 8.0
    agent = charter.new_agent("halt")
    charter.activate(
        {
            "name": "Eight seconds per run",
            "scope": {"type": "agent", "tenant_id": "acme", "agent_id": agent},
            "rules": [{"id": "short", "type": "time", "max_run_duration": f"{limit:.0f}s"}],
        }
    )
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])

    async def scenario() -> None:
        async with mcp_session(config, charter.key) as session:
            opened = time.monotonic()
            first = await session.call_tool("echo", {"text": "in time"})
            assert not first.is_error
            await anyio.sleep(max(0.0, opened + limit + 0.3 - time.monotonic()))
            halted = await session.call_tool("echo", {"text": "too late"})
            assert halted.is_error
            assert "Charter halted this run" in halted.content[0].text
            assert 'policy "Eight seconds per run"' in halted.content[0].text
            again = await session.call_tool("echo", {"text": "still there?"})
            assert again.is_error
            assert "Every later tool call of this session will be refused" in again.content[0].text

    anyio.run(scenario)
    assert tools_called(calls) == ["echo"]
    (run,) = charter.runs_of(agent)
    assert run["status"] == "halted"


def test_charter_unreachable_fails_closed(tmp_path: Path, calls: Path) -> None:
    config = write_config(
        tmp_path / "gw.json", free_port_url(), "bot", [upstream("fixture", calls)]
    )

    async def scenario() -> None:
        async with mcp_session(config, "any-key") as session:
            with pytest.raises(MCPError) as call:
                await session.call_tool("echo", {"text": "hello"})
            assert call.value.code == -32603
            assert "Charter" in call.value.message
            with pytest.raises(MCPError) as listing:
                await session.list_tools()
            assert listing.value.code == -32603
            # What Charter does not govern still works.
            await session.send_ping()

    anyio.run(scenario)
    assert tools_called(calls) == []


def test_charter_going_down_mid_session_fails_closed(tmp_path: Path, calls: Path) -> None:
    key = "gw-down-" + os.urandom(8).hex()
    server, url = _start_charter(tmp_path / "charter", key)
    try:
        charter = Charter(url, key)
        charter.api("POST", "/v1/tenants", {"id": TENANT, "name": "Acme"})
        charter.activate(MAIL_POLICY)
        agent = charter.new_agent()
        config = write_config(tmp_path / "gw.json", url, agent, [upstream("fixture", calls)])

        async def scenario() -> None:
            async with mcp_session(config, key) as session:
                assert not (await session.call_tool("echo", {"text": "before"})).is_error
                server.terminate()
                server.wait(timeout=10)
                with pytest.raises(MCPError) as call:
                    await session.call_tool("send_email", {"to": "a@acme.com", "body": "b"})
                assert call.value.code == -32603
                assert "not made" in call.value.message

        anyio.run(scenario)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert tools_called(calls) == ["echo"]


def test_a_key_that_cannot_read_policies_lists_every_tool_but_still_refuses(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent()
    made = charter.api(
        "POST", "/v1/keys", {"name": f"execute only {agent}", "tenant_id": TENANT, "scopes": ["execute"]}
    )
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])

    async def scenario() -> None:
        async with mcp_session(config, made["key"]) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            assert "delete_everything" in names
            refused = await session.call_tool("delete_everything", {})
            assert refused.is_error
            assert "rule no-deletes" in refused.content[0].text

    anyio.run(scenario)
    assert tools_called(calls) == []


def test_several_upstreams_prefix_their_tools(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent()
    config = write_config(
        tmp_path / "gw.json",
        charter.url,
        agent,
        [upstream("mail", calls), upstream("docs", calls)],
    )

    async def scenario() -> None:
        async with mcp_session(config, charter.key) as session:
            names = sorted(t.name for t in (await session.list_tools()).tools)
            assert names == [
                f"{server}__{tool}"
                for server in ["docs", "mail"]
                for tool in ["ask_city", "count_to", "echo", "lookup_customer", "send_email"]
            ]
            echoed = await session.call_tool("docs__echo", {"text": "via docs"})
            assert echoed.content[0].text == "via docs"
            blocked = await session.call_tool("mail__send_email", {"to": "x@gmail.com", "body": "b"})
            assert blocked.is_error
            assert "mail.send_email" in blocked.content[0].text
            with pytest.raises(MCPError) as unknown:
                await session.call_tool("echo", {"text": "no prefix"})
            assert unknown.value.code == -32602
            # Resources keep their URIs (both list the same one: reading it is ambiguous, see
            # test_gateway_multi.py); prompts are prefixed like tools.
            resources = await session.list_resources()
            assert [str(r.uri) for r in resources.resources] == ["test://greeting"] * 2
            prompts = await session.list_prompts()
            assert [p.name for p in prompts.prompts] == ["mail__summarize", "docs__summarize"]
            await session.send_ping()

    anyio.run(scenario)
    (run,) = charter.runs_of(agent)
    tools = [tool for kind, tool, _ in actions(run) if kind == "tool_call"]
    assert tools == ["docs.echo", "mail.send_email"]


def test_progress_and_requests_of_the_server_to_the_client_pass_through(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent()
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])
    progress: list[tuple[float, float | None, str | None]] = []
    asked: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def on_elicit(context: Any, params: Any) -> Any:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"city": "Lyon"})

    async def scenario() -> None:
        async with mcp_session(config, charter.key, elicitation_callback=on_elicit) as session:
            counted = await session.call_tool("count_to", {"n": 3}, progress_callback=on_progress)
            assert counted.content[0].text == "counted to 3"
            city = await session.call_tool("ask_city", {})
            assert not city.is_error
            assert city.content[0].text == "the city is Lyon"

    anyio.run(scenario)
    assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert asked == ["Which city?"]
    (run,) = charter.runs_of(agent)
    assert [tool for kind, tool, _ in actions(run) if kind == "tool_call"] == [
        "fixture.count_to",
        "fixture.ask_city",
    ]


def test_a_batch_is_refused_and_nothing_in_it_is_forwarded(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent()
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])
    gateway = Lines(gateway_command(config), {KEY_ENV: charter.key})
    gateway.send(SCRIPT[0])
    gateway.answer(1)
    assert gateway.process.stdin is not None
    batch = [{"jsonrpc": "2.0", "id": 9, "method": "tools/call",
              "params": {"name": "send_email", "arguments": {"to": "bob@gmail.com", "body": "x"}}}]
    gateway.process.stdin.write(json.dumps(batch) + "\n")
    gateway.process.stdin.flush()
    refused = json.loads(gateway.answer(None))
    assert refused["error"]["code"] == -32600
    gateway.close()
    assert tools_called(calls) == []


def test_a_crashed_upstream_fails_calls_instead_of_hanging(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    agent = charter.new_agent()
    crashing = upstream("fixture", calls)
    crashing["env"]["FIXTURE_CRASH_ON_ECHO"] = "1"
    config = write_config(tmp_path / "gw.json", charter.url, agent, [crashing])

    async def scenario() -> None:
        with anyio.fail_after(30):
            async with mcp_session(config, charter.key) as session:
                with pytest.raises(MCPError) as crashed:
                    await session.call_tool("echo", {"text": "boom"})
                assert crashed.value.code == -32603
                assert "closed" in crashed.value.message
                with pytest.raises(MCPError) as after:
                    await session.call_tool("send_email", {"to": "a@acme.com", "body": "b"})
                assert after.value.code == -32603

    anyio.run(scenario)
    assert tools_called(calls) == ["echo"]


def test_the_documented_example_runs(charter: Charter, tmp_path: Path) -> None:
    """docs/gateway.md's example: example/agent.py through the gateway to example/mail_server.py."""
    example = Path(__file__).resolve().parent / "example"
    agent = charter.new_agent()
    config = write_config(tmp_path / "gateway.json", charter.url, agent, [
        {"name": "mail", "command": sys.executable, "args": [str(example / "mail_server.py")]}
    ])
    bin_dir = str(Path(CHARTER_BIN).parent)
    done = subprocess.run(
        [sys.executable, str(example / "agent.py"), str(config)],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], **{KEY_ENV: charter.key}),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "alice@acme.com: ok: sent 17 characters to alice"
    assert lines[1].startswith("bob@gmail.com: REFUSED: Charter blocked the call to mail.send_email.")
    assert 'policy "Block external email"' in done.stdout


def test_a_2026_client_without_initialize_is_governed_the_same(
    charter: Charter, tmp_path: Path, calls: Path
) -> None:
    """The `mcp` Client's default mode probes `server/discover` (2026-07-28): no `initialize`,
    every request names its version, and results must say `resultType`."""
    agent = charter.new_agent()
    config = write_config(tmp_path / "gw.json", charter.url, agent, [upstream("fixture", calls)])
    params = StdioServerParameters(
        command=CHARTER_BIN, args=["mcp-gateway", "--config", str(config)], env={KEY_ENV: charter.key}
    )

    async def scenario() -> None:
        async with Client(params) as client:
            assert client.session.protocol_version == "2026-07-28"
            names = [t.name for t in (await client.list_tools()).tools]
            assert "delete_everything" not in names and "send_email" in names
            blocked = await client.call_tool("send_email", {"to": "bob@gmail.com", "body": "x"})
            assert blocked.is_error and "rule external-email" in blocked.content[0].text
            withheld = await client.call_tool("lookup_customer", {"name": "Bob"})
            assert withheld.is_error and withheld.structured_content is None
            echoed = await client.call_tool("echo", {"text": "modern"})
            assert not echoed.is_error and echoed.content[0].text == "modern"

    anyio.run(scenario)
    assert tools_called(calls) == ["lookup_customer", "echo"]
    (run,) = charter.runs_of(agent)
    assert run["status"] == "completed"
    assert actions(run)[0] == ("tool_call", "fixture.send_email", "block")


def test_a_bad_configuration_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({
        "charter": {"url": "http://127.0.0.1:1", "agent": "bot"},
        "upstreams": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}],
    }))
    done = subprocess.run(gateway_command(config), capture_output=True, text=True, timeout=10)
    assert done.returncode == 2
    assert "two upstreams are named \"a\"" in done.stderr
    assert done.stdout == ""
