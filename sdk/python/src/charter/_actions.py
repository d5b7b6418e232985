"""Actions (product.md §3): one builder per kind, with the kind's fields as keyword arguments.

Money is exact: ``cost_usd`` takes a ``Decimal``, an ``int`` or a decimal string, never a float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

Action = dict[str, Any]
Money = Decimal | int | str
Operation = Literal["read", "write", "delete"]


def money(value: Money) -> str | int:
    """``cost_usd`` as the API takes it: an integer or a decimal string."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("cost_usd must be a Decimal, an int or a decimal string, not a float")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("cost_usd must be finite")
        return format(value, "f")
    if isinstance(value, int | str):
        return value
    raise TypeError(f"cost_usd must be a Decimal, an int or a decimal string, not {type(value).__name__}")


def _with_cost(action: Action, cost_usd: Money | None) -> Action:
    if cost_usd is not None:
        action["cost_usd"] = money(cost_usd)
    return action


def tool_call(tool: str, args: Mapping[str, Any] | None = None, *, cost_usd: Money | None = None) -> Action:
    """A call to a tool, e.g. ``tool_call("gmail.send_email", {"to": "bob@gmail.com"})``."""
    return _with_cost({"kind": "tool_call", "tool": tool, "args": dict(args or {})}, cost_usd)


def data_access(
    resource: str,
    operation: Operation,
    labels: Iterable[str] | None = None,
    *,
    cost_usd: Money | None = None,
) -> Action:
    """A read, write or delete of a ``/``-separated resource, with its data labels."""
    action: Action = {"kind": "data_access", "resource": resource, "operation": operation}
    if labels is not None:
        action["labels"] = list(labels)
    return _with_cost(action, cost_usd)


def output(text: str, channel: str | None = None, *, cost_usd: Money | None = None) -> Action:
    """Text about to leave the platform (optionally on a named channel)."""
    action: Action = {"kind": "output", "text": text}
    if channel is not None:
        action["channel"] = channel
    return _with_cost(action, cost_usd)


def model_call(
    model: str,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    *,
    cost_usd: Money | None = None,
) -> Action:
    """A call to a model, e.g. ``model_call("openai/gpt-4o", 1200, 300, cost_usd="0.02")``."""
    action: Action = {"kind": "model_call", "model": model}
    if input_tokens is not None:
        action["input_tokens"] = input_tokens
    if output_tokens is not None:
        action["output_tokens"] = output_tokens
    return _with_cost(action, cost_usd)
