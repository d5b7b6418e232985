"""An OpenAI Agents SDK agent governed by Charter's "Block external email" policy.

    charter demo                       # prints `bootstrap key: ...` and `listening on http://...`
    export CHARTER_URL=http://127.0.0.1:8080 CHARTER_KEY=chk_...
    python examples/openai_agents_agent.py

The demo's tenant `acme` has the active policy "Block external email" on its agent `support`.
The tool's input guardrail asks Charter before each call: the email to an outsider is
rejected (the tool never runs; the model receives the refusal as the tool's output), the one
to a colleague runs, and its result passes the output guardrail.

Offline by default (a scripted model, tracing off); set EXAMPLE_MODEL (e.g. `gpt-4o`, with
OPENAI_API_KEY) to drive it with a real model.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from charter import AsyncCharter
from charter.openai_agents import charter_guardrails

SENT: list[str] = []

# `namespace="gmail"`: the tool is `gmail.send_email` in Charter, which `*.send_email` matches.
check_call, check_result = charter_guardrails(namespace="gmail")


@function_tool(tool_input_guardrails=[check_call], tool_output_guardrails=[check_result])
def send_email(to: str, body: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"sent to {to}"


class ScriptedModel(Model):
    """A stand-in for a real model: asks for the two emails, then answers."""

    def __init__(self) -> None:
        def call(to: str, call_id: str) -> ResponseFunctionToolCall:
            return ResponseFunctionToolCall(
                type="function_call", name="send_email", call_id=call_id, id=f"fc_{call_id}",
                arguments=f'{{"to": "{to}", "body": "Hi!"}}', status="completed",
            )  # fmt: skip

        answer = ResponseOutputMessage(
            id="msg_1", type="message", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", annotations=[],
                                        text="Emailed Alice; Bob is outside acme.com.")],
        )  # fmt: skip
        self.turns: list[list[Any]] = [[call("bob@gmail.com", "c1")], [call("alice@acme.com", "c2")], [answer]]
        self.seen: list[Any] = []

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        self.seen.append(input)
        return ModelResponse(output=self.turns.pop(0), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


async def main() -> None:
    model: Any = os.environ.get("EXAMPLE_MODEL")
    if not model:
        set_tracing_disabled(True)
        model = ScriptedModel()
    agent = Agent(name="support", instructions="You send emails for the support team.", model=model, tools=[send_email])
    async with AsyncCharter() as charter:
        # The run is the agent run's context: the guardrails check against it.
        async with charter.start_run("support", tenant_id="acme") as run:
            result = await Runner.run(agent, "Email bob@gmail.com and alice@acme.com", context=run)
        print(f"agent: {result.final_output}")
        print(f"emails sent: {SENT}")
        if isinstance(model, ScriptedModel):
            for item in model.seen[-1]:
                if isinstance(item, dict) and item.get("type") == "function_call_output":
                    print(f"tool output the model read: {item['output']}")
        for action in (await charter.runs.get(run.id)).actions:
            print(f"charter: {action.action.get('tool') or action.action.get('kind')} -> {action.decision}")


if __name__ == "__main__":
    asyncio.run(main())
