"""Charter guards for the OpenAI Agents SDK (``pip install charter-sdk[openai-agents]``).

Tool guardrails, attached per tool::

    from agents import function_tool
    from charter.openai_agents import charter_guardrails

    check_in, check_out = charter_guardrails(namespace="gmail")

    @function_tool(tool_input_guardrails=[check_in], tool_output_guardrails=[check_out])
    def send_email(to: str, body: str) -> str: ...

The input guardrail checks the call as a ``tool_call`` (its arguments parsed from the model's
JSON); the output guardrail checks the result as an ``output``. A block answers
``ToolGuardrailFunctionOutput.reject_content(refusal)``: the tool does not run (or its result
is withheld) and the model receives the refusal as the tool's output. A halt raises
:class:`charter.Halted` out of ``Runner.run``; a Charter that cannot be reached raises
:class:`charter.Unavailable` (never an allow). Both are also ``AgentsException``s, which the
Agents SDK passes through untouched (it wraps other exceptions of a tool in a ``UserError``).

The run is the one given, a callable's, the agent run's context when it is a Charter run
(``Runner.run(agent, input, context=run)``), or the current run of the enclosing ``with``
block.
"""

from __future__ import annotations

import json
from typing import Any

from agents import (
    AgentsException,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrail,
    ToolInputGuardrailData,
    ToolOutputGuardrail,
    ToolOutputGuardrailData,
)

from . import _actions as actions
from ._async import AsyncRun
from ._errors import Halted, Unavailable
from ._guard import AnyRun, RunSource, check_async, output_text, refusal_or_raise, resolve_run, tool_name
from ._models import Decision
from ._sync import Run

__all__ = ["AgentHalted", "AgentUnavailable", "charter_guardrails", "input_guardrail", "output_guardrail"]


class AgentHalted(Halted, AgentsException):
    """:class:`charter.Halted`, raised through ``Runner.run`` as it is."""


class AgentUnavailable(Unavailable, AgentsException):
    """:class:`charter.Unavailable`, raised through ``Runner.run`` as it is."""


async def _check(run: AnyRun, action: actions.Action) -> Decision:
    try:
        return await check_async(run, action)
    except Unavailable as exc:
        raise AgentUnavailable(exc.message, status=exc.status) from exc


def _resolve(source: RunSource, data: ToolInputGuardrailData) -> AnyRun:
    if source is None:
        context = getattr(data.context, "context", None)
        if isinstance(context, Run | AsyncRun):
            return context
    return resolve_run(source)


def _arguments(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        # Arguments the model wrote that are not JSON are checked as they are.
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def _answer(decision: Decision) -> ToolGuardrailFunctionOutput:
    if decision.halted:
        raise AgentHalted(decision)
    refusal = refusal_or_raise(decision, "message")
    if refusal is None:
        return ToolGuardrailFunctionOutput.allow(output_info=decision)
    return ToolGuardrailFunctionOutput.reject_content(refusal, output_info=decision)


def input_guardrail(
    run: RunSource = None, *, namespace: str | None = None, name: str = "charter_tool_call"
) -> ToolInputGuardrail[Any]:
    """A tool input guardrail: checks the call as a ``tool_call`` named
    ``namespace.tool_name``."""

    async def check(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        current = _resolve(run, data)
        tool = tool_name(data.context.tool_name, namespace)
        call = actions.tool_call(tool, _arguments(data.context.tool_arguments))
        return _answer(await _check(current, call))

    return ToolInputGuardrail(guardrail_function=check, name=name)


def output_guardrail(
    run: RunSource = None, *, channel: str | None = None, name: str = "charter_output"
) -> ToolOutputGuardrail[Any]:
    """A tool output guardrail: checks the tool's result as an ``output`` action."""

    async def check(data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
        text = output_text(data.output)
        if text is None:
            return ToolGuardrailFunctionOutput.allow()
        current = _resolve(run, data)
        return _answer(await _check(current, actions.output(text, channel)))

    return ToolOutputGuardrail(guardrail_function=check, name=name)


def charter_guardrails(
    run: RunSource = None, *, namespace: str | None = None, channel: str | None = None
) -> tuple[ToolInputGuardrail[Any], ToolOutputGuardrail[Any]]:
    """Both guardrails: ``function_tool(tool_input_guardrails=[first],
    tool_output_guardrails=[second])``."""
    return input_guardrail(run, namespace=namespace), output_guardrail(run, channel=channel)
