"""The LangChain guards with the real langchain package, offline: a scripted chat model asks
for tools; Charter decides."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402

from charter import AsyncCharter, Charter, Halted  # noqa: E402
from charter.langchain import CharterMiddleware, guard_tool  # noqa: E402
from conftest import World, actions_of  # noqa: E402


class ScriptedModel(GenericFakeChatModel):
    """Answers the scripted messages in order and remembers what it was shown."""

    seen: list[list[BaseMessage]] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def email_call(to: str, call_id: str) -> dict[str, Any]:
    return {"name": "send_email", "args": {"to": to, "body": "hello"}, "id": call_id, "type": "tool_call"}


def make_agent(sent: list[str], middleware: list[Any]) -> tuple[Any, ScriptedModel]:
    @tool
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    model = ScriptedModel(
        messages=iter(
            [
                AIMessage(content="", tool_calls=[email_call("bob@gmail.com", "call_1")]),
                AIMessage(content="", tool_calls=[email_call("alice@acme.com", "call_2")]),
                AIMessage(content="done"),
            ]
        ),
        seen=[],
    )
    return create_agent(model=model, tools=[send_email], middleware=middleware), model


def refusals(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage) and m.status == "error"]


def test_middleware_blocks_external_email(client: Charter) -> None:
    sent: list[str] = []
    agent, model = make_agent(sent, [CharterMiddleware(namespace="gmail")])
    with client.start_run("bot") as run:
        result = agent.invoke({"messages": [{"role": "user", "content": "email bob and alice"}]})
    assert sent == ["alice@acme.com"]  # the blocked call never ran
    (refused,) = refusals(result["messages"])
    assert refused.tool_call_id == "call_1" and "Block external email" in str(refused.content)
    assert "bob@gmail.com" in str(refused.content)
    # The model saw the refusal as the tool's answer before its next turn.
    assert any(refusals(shown) for shown in model.seen[1:])
    assert result["messages"][-1].content == "done"
    assert actions_of(client, run.id) == [
        ("tool_call", "gmail.send_email", "block"),
        ("tool_call", "gmail.send_email", "allow"),
        ("output", "sent to alice@acme.com", "allow"),
    ]
    assert client.runs.get(run.id).status == "completed"


async def test_async_middleware_with_the_run_as_context(world: World, client: Charter) -> None:
    sent: list[str] = []
    agent, model = make_agent(sent, [CharterMiddleware(namespace="gmail")])
    async with AsyncCharter(world.url, world.key) as aclient:
        run = await aclient.start_run("bot")
        result = await agent.ainvoke({"messages": [{"role": "user", "content": "go"}]}, context=run)
        await run.end()
    assert sent == ["alice@acme.com"]
    assert len(refusals(result["messages"])) == 1
    assert [a[2] for a in actions_of(client, run.id)] == ["block", "allow", "allow"]


def test_middleware_halt_raises(client: Charter) -> None:
    sent: list[str] = []
    agent, _ = make_agent(sent, [CharterMiddleware(namespace="gmail")])
    with pytest.raises(Halted):
        with client.start_run("spender") as run:
            run.model_call("openai/gpt-4o", cost_usd="5")
            agent.invoke({"messages": [{"role": "user", "content": "go"}]})
    assert sent == []
    assert client.runs.get(run.id).status == "halted"
    # The halting action is recorded; a check on the halted run records nothing.
    assert actions_of(client, run.id) == [("model_call", "openai/gpt-4o", "halt")]


def test_guard_tool_wraps_a_plain_tool(client: Charter) -> None:
    sent: list[str] = []

    @tool
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    run = client.start_run("bot")
    governed = guard_tool(send_email, run, namespace="gmail")
    assert governed.name == "send_email"
    message = governed.invoke(email_call("bob@gmail.com", "call_9"))
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert "Block external email" in str(message.content)
    assert governed.invoke({"to": "alice@acme.com", "body": "hi"}) == "sent to alice@acme.com"
    assert sent == ["alice@acme.com"]
    run.end()
    assert actions_of(client, run.id) == [
        ("tool_call", "gmail.send_email", "block"),
        ("tool_call", "gmail.send_email", "allow"),
        ("output", "sent to alice@acme.com", "allow"),
    ]
