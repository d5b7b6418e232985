"""Charter guards for LangChain 1.x (``pip install charter-sdk[langchain]``).

- :class:`CharterMiddleware`: agent middleware for ``create_agent(..., middleware=[...])``.
  Every tool call is checked as a ``tool_call`` before it runs; a blocked call never runs and
  the model receives a ``ToolMessage(status="error")`` carrying the refusal (policy, rule,
  reason, masked match). The tool's result is checked as an ``output`` and replaced the same
  way when refused. A halt raises :class:`charter.Halted`; a Charter that cannot be reached
  raises :class:`charter.Unavailable` (the call does not run).
- :func:`guard_tool`: the same for a plain ``BaseTool`` outside an agent: a refusal becomes a
  ``ToolException``, which the tool reports as an error message.

The run is the one given, a callable's, the agent's runtime context when it is a Charter run
(``agent.invoke(..., context=run)``), or the current run of the enclosing ``with`` block.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ToolCallRequest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langgraph.types import Command

from . import _actions as actions
from ._async import AsyncRun
from ._guard import (
    AnyRun,
    RunSource,
    check_async,
    check_sync,
    jsonable,
    output_text,
    refusal_or_raise,
    resolve_run,
    tool_name,
)
from ._sync import Run

__all__ = ["CharterMiddleware", "guard_tool"]


def _message_text(message: ToolMessage) -> str | None:
    return output_text(message.content)


class CharterMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Checks every tool call of a LangChain agent with Charter (see the module's doc).

    ``namespace`` prefixes tool names in Charter (``gmail`` makes ``send_email`` the action's
    ``gmail.send_email``); ``check_output=False`` skips checking results.
    """

    def __init__(
        self,
        run: RunSource = None,
        *,
        namespace: str | None = None,
        check_output: bool = True,
        channel: str | None = None,
    ) -> None:
        super().__init__()
        self._run = run
        self.namespace = namespace
        self.check_output = check_output
        self.channel = channel

    @property
    def name(self) -> str:
        return "CharterMiddleware"

    def _resolve(self, request: ToolCallRequest) -> AnyRun:
        if self._run is None:
            context = getattr(request.runtime, "context", None)
            if isinstance(context, Run | AsyncRun):
                return context
        return resolve_run(self._run)

    def _call(self, request: ToolCallRequest) -> actions.Action:
        call = request.tool_call
        return actions.tool_call(tool_name(call["name"], self.namespace), jsonable(call.get("args") or {}))

    def _refused(self, request: ToolCallRequest, refusal: str) -> ToolMessage:
        call = request.tool_call
        return ToolMessage(content=refusal, tool_call_id=call.get("id") or "", name=call["name"], status="error")

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        run = self._resolve(request)
        refusal = refusal_or_raise(check_sync(run, self._call(request)), "message")
        if refusal is not None:
            return self._refused(request, refusal)
        result = handler(request)
        if self.check_output and isinstance(result, ToolMessage):
            text = _message_text(result)
            if text is not None:
                refusal = refusal_or_raise(check_sync(run, actions.output(text, self.channel)), "message")
                if refusal is not None:
                    return self._refused(request, refusal)
        return result

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        run = self._resolve(request)
        refusal = refusal_or_raise(await check_async(run, self._call(request)), "message")
        if refusal is not None:
            return self._refused(request, refusal)
        result = await handler(request)
        if self.check_output and isinstance(result, ToolMessage):
            text = _message_text(result)
            if text is not None:
                decision = await check_async(run, actions.output(text, self.channel))
                refusal = refusal_or_raise(decision, "message")
                if refusal is not None:
                    return self._refused(request, refusal)
        return result


def guard_tool(
    tool: BaseTool,
    run: RunSource = None,
    *,
    namespace: str | None = None,
    check_output: bool = True,
    channel: str | None = None,
) -> StructuredTool:
    """``tool`` governed by Charter: same name, description and arguments; a refused call
    does not run and answers an error with the refusal (a halt raises
    :class:`charter.Halted`)."""
    name = tool_name(tool.name, namespace)

    def func(**kwargs: Any) -> Any:
        current = resolve_run(run)
        refusal = refusal_or_raise(check_sync(current, actions.tool_call(name, jsonable(kwargs))), "message")
        if refusal is not None:
            raise ToolException(refusal)
        result = tool.invoke(kwargs)
        text = output_text(result) if check_output else None
        if text is not None:
            refusal = refusal_or_raise(check_sync(current, actions.output(text, channel)), "message")
            if refusal is not None:
                raise ToolException(refusal)
        return result

    async def coroutine(**kwargs: Any) -> Any:
        current = resolve_run(run)
        decision = await check_async(current, actions.tool_call(name, jsonable(kwargs)))
        refusal = refusal_or_raise(decision, "message")
        if refusal is not None:
            raise ToolException(refusal)
        result = await tool.ainvoke(kwargs)
        text = output_text(result) if check_output else None
        if text is not None:
            refusal = refusal_or_raise(await check_async(current, actions.output(text, channel)), "message")
            if refusal is not None:
                raise ToolException(refusal)
        return result

    return StructuredTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema if tool.args_schema is not None else tool.get_input_schema(),
        func=func,
        coroutine=coroutine,
        handle_tool_error=True,
    )
