"""What the sync and async clients share: configuration, requests as data, answers to values."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ._errors import Blocked, CharterError, Halted, Unavailable
from ._models import Decision

if TYPE_CHECKING:
    from ._async import AsyncRun
    from ._sync import Run

DEFAULT_URL = "http://127.0.0.1:8080"
USER_AGENT = "charter-sdk-python/0.1.0"

# The run a `with client.start_run(...)` block (sync or async) is in: guards that are given no
# run use it.
_current_run: ContextVar[Run | AsyncRun | None] = ContextVar("charter_current_run", default=None)


def current_run() -> Run | AsyncRun | None:
    """The run of the innermost ``with``/``async with`` run block of this context, if any."""
    return _current_run.get()


_NO_BODY: Any = object()


@dataclass
class Request:
    method: str
    path: str
    body: Any = _NO_BODY
    params: dict[str, Any] = field(default_factory=dict)


def seg(value: str) -> str:
    """An id as one path segment."""
    return quote(value, safe="")


def params(**values: Any) -> dict[str, Any]:
    """Query parameters, without the ones left out."""
    return {k: v for k, v in values.items() if v is not None}


def config(url: str | None, key: str | None) -> tuple[str, str]:
    url = url or os.environ.get("CHARTER_URL") or DEFAULT_URL
    key = key or os.environ.get("CHARTER_KEY")
    if not key:
        raise ValueError("a Charter key is needed: pass key=... or set CHARTER_KEY")
    return url.rstrip("/"), key


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT, "Accept": "application/json"}


def build(client: httpx.Client | httpx.AsyncClient, req: Request) -> httpx.Request:
    if req.body is _NO_BODY:
        return client.build_request(req.method, req.path, params=req.params or None)
    return client.build_request(req.method, req.path, params=req.params or None, json=req.body)


def unreachable(exc: Exception, url: str) -> Unavailable:
    return Unavailable(f"Charter at {url} cannot be reached: {type(exc).__name__}: {exc}")


def error_from(response: httpx.Response) -> CharterError:
    """The error an unsuccessful answer means."""
    status = response.status_code
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = error.get("details")
        return CharterError(
            str(error.get("message") or error["code"]),
            status=status,
            code=error["code"],
            details=details if isinstance(details, dict) else {},
        )
    if status >= 500:
        return Unavailable(f"Charter answered {status} without an error body", status=status)
    return CharterError(f"HTTP {status} without an error body", status=status, code=f"http_{status}")


def answer(response: httpx.Response) -> Any:
    """The JSON of a successful answer, or the error it means."""
    if not response.is_success:
        raise error_from(response)
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise Unavailable(
            f"Charter answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
        ) from None


def decided(data: Any, raise_on_block: bool) -> Decision:
    if not isinstance(data, dict) or data.get("decision") not in ("allow", "block", "halt"):
        # Fail closed: an answer that is not a decision is not an allow.
        raise Unavailable("Charter's answer to a check is not a decision")
    decision = Decision.from_json(data)
    if raise_on_block:
        raise_if_refused(decision)
    return decision


def raise_if_refused(decision: Decision) -> None:
    """Raises :class:`Halted` or :class:`Blocked` for a refused decision."""
    if decision.decision == "halt":
        raise Halted(decision)
    if decision.decision == "block":
        raise Blocked(decision)


def new_run_body(agent_id: str, tenant_id: str | None, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"agent_id": agent_id}
    if tenant_id is not None:
        body["tenant_id"] = tenant_id
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body


def violation_filters(
    policy_id: str | None,
    lineage_id: str | None,
    agent_id: str | None,
    tenant_id: str | None,
    run_id: str | None,
    rule_type: str | None,
    decision: str | None,
    since: str | None,
    until: str | None,
) -> dict[str, Any]:
    return params(
        policy_id=policy_id,
        lineage_id=lineage_id,
        agent_id=agent_id,
        tenant_id=tenant_id,
        run_id=run_id,
        rule_type=rule_type,
        decision=decision,
        since=since,
        until=until,
    )


def stream_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    # A live stream is idle between events (keep-alives arrive every few seconds): no read
    # timeout, the others as configured.
    return httpx.Timeout(connect=timeout.connect, read=None, write=timeout.write, pool=timeout.pool)


def parse_json(data: str) -> Any:
    return json.loads(data)
