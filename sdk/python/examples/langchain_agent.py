"""A LangChain agent governed by Charter's "Block external email" policy.

    charter demo                       # prints `bootstrap key: ...` and `listening on http://...`
    export CHARTER_URL=http://127.0.0.1:8080 CHARTER_KEY=chk_...
    python examples/langchain_agent.py

The demo's tenant `acme` has the active policy "Block external email" on its agent `support`:
a tool rule that denies `*.send_email` when `to` does not end with `@acme.com`. The agent below
is asked to email an outsider and a colleague; Charter blocks the first call (the tool never
runs, the model reads the refusal) and allows the second.

Offline by default (a scripted chat model); set EXAMPLE_MODEL (e.g. `openai:gpt-4o`, with its
provider package and API key) to drive it with a real model.
"""

from __future__ import annotations

import os
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from charter import Charter
from charter.langchain import CharterMiddleware

SENT: list[str] = []


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"sent to {to}"


class ScriptedModel(GenericFakeChatModel):
    """A stand-in for a real chat model: asks for the two emails, then answers."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def model() -> Any:
    if os.environ.get("EXAMPLE_MODEL"):
        from langchain.chat_models import init_chat_model

        return init_chat_model(os.environ["EXAMPLE_MODEL"])
    calls = [("bob@gmail.com", "call_1"), ("alice@acme.com", "call_2")]
    turns: list[AIMessage] = [
        AIMessage(content="", tool_calls=[{"name": "send_email", "args": {"to": to, "body": "Hi!"}, "id": i}])
        for to, i in calls
    ]
    return ScriptedModel(messages=iter([*turns, AIMessage(content="Emailed Alice; Bob is outside acme.com.")]))


def main() -> None:
    # `namespace="gmail"`: the tool is `gmail.send_email` in Charter, which `*.send_email` matches.
    agent = create_agent(model=model(), tools=[send_email], middleware=[CharterMiddleware(namespace="gmail")])
    with Charter() as charter, charter.start_run("support", tenant_id="acme") as run:
        result = agent.invoke({"messages": [{"role": "user", "content": "Email bob@gmail.com and alice@acme.com"}]})
    for message in result["messages"]:
        if isinstance(message, ToolMessage):
            print(f"tool ({message.status}): {message.content}")
    print(f"agent: {result['messages'][-1].content}")
    print(f"emails sent: {SENT}")
    with Charter() as charter:
        for action in charter.runs.get(run.id).actions:
            print(f"charter: {action.action.get('tool') or action.action.get('kind')} -> {action.decision}")


if __name__ == "__main__":
    main()
