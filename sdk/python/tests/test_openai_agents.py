"""The OpenAI Agents SDK guards with the real openai-agents package, offline: a scripted Model
asks for tools; Charter decides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner, function_tool, set_tracing_disabled  # noqa: E402
from agents.items import ModelResponse  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.usage import Usage  # noqa: E402
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText  # noqa: E402

from charter import AsyncCharter, Charter, Halted  # noqa: E402
from charter.openai_agents import charter_guardrails  # noqa: E402
from conftest import World, actions_of  # noqa: E402

set_tracing_disabled(True)


def call(to: str, call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        type="function_call",
        name="send_email",
        call_id=call_id,
        arguments=f'{{"to": "{to}", "body": "hello"}}',
        id=f"fc_{call_id}",
        status="completed",
    )


def text(content: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=content, annotations=[])],
    )


class ScriptedModel(Model):
    """Answers the scripted turns in order and remembers the input it was given."""

    def __init__(self, turns: list[list[Any]]) -> None:
        self.turns = list(turns)
        self.inputs: list[Any] = []

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        self.inputs.append(input)
        return ModelResponse(output=self.turns.pop(0), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


def make_agent(sent: list[str], turns: list[list[Any]], **guard_kwargs: Any) -> tuple[Agent[Any], ScriptedModel]:
    check_in, check_out = charter_guardrails(namespace="gmail", **guard_kwargs)

    @function_tool(tool_input_guardrails=[check_in], tool_output_guardrails=[check_out])
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    model = ScriptedModel(turns)
    return Agent(name="support", instructions="help", model=model, tools=[send_email]), model


def outputs_for(model: ScriptedModel, call_id: str) -> list[str]:
    found = []
    for given in model.inputs:
        if isinstance(given, list):
            for item in given:
                if isinstance(item, dict) and item.get("type") == "function_call_output" and item.get("call_id") == call_id:
                    found.append(str(item.get("output")))
    return sorted(set(found))


async def test_guardrails_block_external_email(world: World, client: Charter) -> None:
    sent: list[str] = []
    agent, model = make_agent(
        sent, [[call("bob@gmail.com", "c1")], [call("alice@acme.com", "c2")], [text("done")]]
    )
    async with AsyncCharter(world.url, world.key) as aclient:
        async with aclient.start_run("bot") as run:
            result = await Runner.run(agent, "email bob and alice", context=run)
    assert result.final_output == "done"
    assert sent == ["alice@acme.com"]  # the blocked call never ran
    (refusal,) = outputs_for(model, "c1")
    assert "Block external email" in refusal and "bob@gmail.com" in refusal
    assert outputs_for(model, "c2") == ["sent to alice@acme.com"]
    assert actions_of(client, run.id) == [
        ("tool_call", "gmail.send_email", "block"),
        ("tool_call", "gmail.send_email", "allow"),
        ("output", "sent to alice@acme.com", "allow"),
    ]
    assert client.runs.get(run.id).status == "completed"


async def test_guardrails_with_a_sync_run_from_the_with_block(client: Charter) -> None:
    sent: list[str] = []
    agent, model = make_agent(sent, [[call("eve@evil.test", "c1")], [text("ok")]])
    with client.start_run("bot") as run:
        result = await Runner.run(agent, "go")
    assert result.final_output == "ok" and sent == []
    assert actions_of(client, run.id) == [("tool_call", "gmail.send_email", "block")]


async def test_guardrails_halt_raises(world: World, client: Charter) -> None:
    sent: list[str] = []
    agent, _ = make_agent(sent, [[call("alice@acme.com", "c1")], [text("never")]])
    async with AsyncCharter(world.url, world.key) as aclient:
        run = await aclient.start_run("spender")
        await run.model_call("openai/gpt-4o", cost_usd="3")
        with pytest.raises(Halted) as caught:
            await Runner.run(agent, "go", context=run)
        assert caught.value.violations[0].rule_type == "cost"
        assert caught.value.decision.halted
        await run.end()
    assert sent == []
    assert client.runs.get(run.id).status == "halted"
    assert actions_of(client, run.id) == [("model_call", "openai/gpt-4o", "halt")]


async def test_guardrails_fail_closed_when_charter_is_down() -> None:
    from charter import Unavailable
    from charter._models import RunInfo
    from charter._sync import Run
    from conftest import closed_port_url

    sent: list[str] = []
    down = Run(Charter(closed_port_url(), "chk_x", timeout=2), RunInfo.from_json({"id": "run_x"}))
    agent, _ = make_agent(sent, [[call("alice@acme.com", "c1")], [text("never")]], run=down)
    with pytest.raises(Unavailable):
        await Runner.run(agent, "go")
    assert sent == []
