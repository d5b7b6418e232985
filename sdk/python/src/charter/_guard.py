"""``guard``: Charter in front of any Python function, sync or async, and the helpers the
framework guards share."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, cast, overload

from . import _actions as actions
from ._async import AsyncRun
from ._base import current_run, raise_if_refused
from ._errors import CharterError, Halted, Refused
from ._models import Decision
from ._sync import Run

P = ParamSpec("P")
T = TypeVar("T")

AnyRun = Run | AsyncRun
RunSource = AnyRun | Callable[[], AnyRun] | None
OnBlock = Literal["raise", "message"]


def resolve_run(source: RunSource) -> AnyRun:
    """The run to check against: the one given, the one a callable returns, or the current
    run of the enclosing ``with`` block."""
    if isinstance(source, Run | AsyncRun):
        return source
    run = source() if source is not None else current_run()
    if not isinstance(run, Run | AsyncRun):
        raise CharterError(
            "no Charter run: pass run=... or call inside `with client.start_run(...)`", code="no_run"
        )
    return run


def check_sync(run: AnyRun, action: actions.Action) -> Decision:
    if isinstance(run, AsyncRun):
        raise TypeError("a synchronous function needs a synchronous Run (Charter, not AsyncCharter)")
    return run.check(action)


async def check_async(run: AnyRun, action: actions.Action) -> Decision:
    if isinstance(run, AsyncRun):
        return await run.check(action)
    return await asyncio.to_thread(run.check, action)


def tool_name(name: str, namespace: str | None) -> str:
    """The tool's name in Charter: ``namespace.name`` (policies match ``*.send_email``)."""
    return f"{namespace}.{name}" if namespace else name


def jsonable(value: Any) -> Any:
    """A value as JSON can carry it (what JSON cannot becomes its ``str``)."""
    return json.loads(json.dumps(value, default=str))


def output_text(result: Any) -> str | None:
    """A result as the text that leaves through it (``None`` for no result)."""
    if result is None:
        return None
    if isinstance(result, str):
        return result
    return json.dumps(result, default=str, ensure_ascii=False)


def refusal_or_raise(decision: Decision, on_block: OnBlock) -> str | None:
    """``None`` for an allow; for a refusal, the message to return instead (a block with
    ``on_block="message"``) or the exception (a halt always raises)."""
    if decision.allowed:
        return None
    if decision.halted or on_block == "raise":
        raise_if_refused(decision)
    return Refused(decision).message


def bound_args(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name (defaults applied, ``**kwargs`` merged, ``self``/``cls``
    left out), as JSON."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for index, (name, value) in enumerate(bound.arguments.items()):
        kind = signature.parameters[name].kind
        if index == 0 and name in ("self", "cls"):
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    result: dict[str, Any] = jsonable(out)
    return result


class _RaisingGuard(Protocol):
    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]: ...


class _MessageGuard(Protocol):
    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]], /
    ) -> Callable[P, Coroutine[Any, Any, T | str]]: ...
    @overload
    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T | str]: ...


@overload
def guard(
    *,
    run: RunSource = None,
    tool: str | None = None,
    namespace: str | None = None,
    check_output: bool = True,
    channel: str | None = None,
    on_block: Literal["raise"] = "raise",
) -> _RaisingGuard: ...
@overload
def guard(
    *,
    run: RunSource = None,
    tool: str | None = None,
    namespace: str | None = None,
    check_output: bool = True,
    channel: str | None = None,
    on_block: Literal["message"],
) -> _MessageGuard: ...
def guard(
    *,
    run: RunSource = None,
    tool: str | None = None,
    namespace: str | None = None,
    check_output: bool = True,
    channel: str | None = None,
    on_block: OnBlock = "raise",
) -> _RaisingGuard | _MessageGuard:
    """Governs a function (sync or async) as a tool.

    Before each call, Charter checks a ``tool_call`` named ``namespace.tool`` (``tool``
    defaults to the function's name) whose ``args`` are the call's arguments by name; a
    refused call never runs. After it, the result (as text) is checked as an ``output``
    action (``check_output=False`` skips that). A block raises :class:`Blocked`, or with
    ``on_block="message"`` the function returns the refusal message (policy, rule, reason,
    masked match) instead; a halt always raises :class:`Halted`. ``run`` is a run, a callable
    returning one, or ``None`` for the current run of the enclosing ``with`` block. A
    Charter that cannot be reached raises :class:`Unavailable`: the call does not run.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn)
        name = tool_name(tool or fn.__name__, namespace)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                current = resolve_run(run)
                call = actions.tool_call(name, bound_args(signature, args, kwargs))
                refusal = refusal_or_raise(await check_async(current, call), on_block)
                if refusal is not None:
                    return refusal
                result = await cast(Callable[..., Awaitable[Any]], fn)(*args, **kwargs)
                text = output_text(result) if check_output else None
                if text is not None:
                    refusal = refusal_or_raise(await check_async(current, actions.output(text, channel)), on_block)
                    if refusal is not None:
                        return refusal
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            current = resolve_run(run)
            call = actions.tool_call(name, bound_args(signature, args, kwargs))
            refusal = refusal_or_raise(check_sync(current, call), on_block)
            if refusal is not None:
                return refusal
            result = fn(*args, **kwargs)
            text = output_text(result) if check_output else None
            if text is not None:
                refusal = refusal_or_raise(check_sync(current, actions.output(text, channel)), on_block)
                if refusal is not None:
                    return refusal
            return result

        return wrapper

    return cast(_RaisingGuard | _MessageGuard, decorate)


__all__ = ["guard"]
