"""The asynchronous client: :class:`AsyncCharter`, its resources, an :class:`AsyncRun` and the
live violation stream. The same calls as the synchronous client, awaited."""

from __future__ import annotations

import builtins

from collections.abc import AsyncIterator, Coroutine, Generator, Mapping
from contextvars import Token
from types import TracebackType
from typing import Any, Literal

import httpx

from . import _actions as actions
from ._actions import Action, Money, Operation
from ._base import (
    Request,
    _current_run,
    answer,
    build,
    config,
    decided,
    error_from,
    headers,
    new_run_body,
    params,
    parse_json,
    seg,
    stream_timeout,
    unreachable,
    violation_filters,
)
from ._errors import CharterError
from ._models import Decision, Page, RunInfo, ViolationEvent
from ._sse import SSEComment, SSEDecoder, SSEEvent


class AsyncCharter:
    """A client of Charter's API v1.

    ``url`` and ``key`` default to ``CHARTER_URL`` and ``CHARTER_KEY``. Every error Charter
    answers raises :class:`CharterError`; a Charter that cannot be reached raises
    :class:`Unavailable` (never an allow).
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url, key = config(url, key)
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers(key), timeout=self._timeout, transport=transport
        )
        self.runs = AsyncRuns(self)
        self.policies = AsyncPolicies(self)
        self.violations = AsyncViolations(self)

    async def request(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Any call of the API (``path`` like ``/v1/tenants``): its JSON answer."""
        req = Request(method, path, params=dict(params or {}))
        if json is not None:
            req.body = json
        return await self._send(req)

    async def _send(self, req: Request) -> Any:
        try:
            response = await self._http.send(build(self._http, req))
        except httpx.TransportError as exc:
            raise unreachable(exc, self.url) from exc
        return answer(response)

    def start_run(
        self, agent_id: str, *, tenant_id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> StartingRun:
        """Starts a run (``POST /v1/runs``): ``run = await client.start_run(...)``, or
        ``async with client.start_run(...) as run:`` to end it at the end of the block."""
        return StartingRun(self.runs.start(agent_id, tenant_id=tenant_id, metadata=metadata))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncCharter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class StartingRun:
    """A run being started: await it for the :class:`AsyncRun`, or use it in ``async with``."""

    def __init__(self, starting: Coroutine[Any, Any, AsyncRun]) -> None:
        self._starting = starting
        self._run: AsyncRun | None = None

    def __await__(self) -> Generator[Any, None, AsyncRun]:
        return self._starting.__await__()

    async def __aenter__(self) -> AsyncRun:
        self._run = await self._starting
        return await self._run.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._run is not None:
            await self._run.__aexit__(exc_type, exc, tb)


class AsyncRuns:
    """Runs and checks (``/v1/runs``)."""

    def __init__(self, client: AsyncCharter) -> None:
        self._c = client

    async def start(
        self, agent_id: str, *, tenant_id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> AsyncRun:
        data = await self._c._send(Request("POST", "/v1/runs", new_run_body(agent_id, tenant_id, metadata)))
        return AsyncRun(self._c, RunInfo.from_json(data))

    async def check(self, run_id: str, action: Action, *, raise_on_block: bool = False) -> Decision:
        """Asks whether ``action`` may happen; with ``raise_on_block``, a refusal raises
        :class:`Blocked` or :class:`Halted` instead of returning."""
        data = await self._c._send(Request("POST", f"/v1/runs/{seg(run_id)}/check", action))
        return decided(data, raise_on_block)

    async def end(self, run_id: str, status: Literal["completed", "failed"] = "completed") -> RunInfo:
        data = await self._c._send(Request("POST", f"/v1/runs/{seg(run_id)}/end", {"status": status}))
        return RunInfo.from_json(data)

    async def get(self, run_id: str) -> RunInfo:
        """The run with its actions and their decisions."""
        return RunInfo.from_json(await self._c._send(Request("GET", f"/v1/runs/{seg(run_id)}")))

    async def list(
        self,
        *,
        agent_id: str | None = None,
        tenant_id: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[RunInfo]:
        """Every matching run, newest first, fetching pages as the iteration goes."""
        query = params(agent_id=agent_id, tenant_id=tenant_id, status=status, since=since, limit=limit)
        cursor: str | None = None
        while True:
            data = await self._c._send(Request("GET", "/v1/runs", params={**query, **params(cursor=cursor)}))
            for item in data.get("items") or []:
                yield RunInfo.from_json(item)
            cursor = data.get("next_cursor")
            if not cursor:
                return


class AsyncPolicies:
    """Policies (``/v1/policies``), as the API's JSON objects."""

    def __init__(self, client: AsyncCharter) -> None:
        self._c = client

    async def list(
        self,
        *,
        status: str | None = None,
        scope_type: str | None = None,
        tenant_id: str | None = None,
        agent_id: str | None = None,
        q: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        query = params(status=status, scope_type=scope_type, tenant_id=tenant_id, agent_id=agent_id, q=q)
        items: builtins.list[dict[str, Any]] = (await self._c._send(Request("GET", "/v1/policies", params=query)))["items"]
        return items

    async def get(self, policy_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._c._send(Request("GET", f"/v1/policies/{seg(policy_id)}"))
        return data

    async def create(
        self,
        name: str,
        scope: Mapping[str, Any],
        rules: builtins.list[dict[str, Any]] | None = None,
        *,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A new draft policy."""
        body: dict[str, Any] = {"name": name, "scope": dict(scope)}
        if rules is not None:
            body["rules"] = rules
        if description is not None:
            body["description"] = description
        data: dict[str, Any] = await self._c._send(Request("POST", "/v1/policies", body))
        return data

    async def activate(self, policy_id: str, *, force: bool = False, supersede: bool = False) -> dict[str, Any]:
        body = {"force": force, "supersede": supersede}
        data: dict[str, Any] = await self._c._send(Request("POST", f"/v1/policies/{seg(policy_id)}/activate", body))
        return data

    async def export(self, policy_id: str) -> dict[str, Any]:
        """The policy as a portable ``charter.policy/v1`` document."""
        data: dict[str, Any] = await self._c._send(Request("GET", f"/v1/policies/{seg(policy_id)}/export"))
        return data

    async def import_(self, documents: dict[str, Any] | builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
        """Imports one document or several (all or nothing): the new drafts, in order."""
        items: builtins.list[dict[str, Any]] = (await self._c._send(Request("POST", "/v1/policies/import", documents)))["items"]
        return items


class AsyncViolations:
    """The Monitor: every block and halt (``/v1/violations``)."""

    def __init__(self, client: AsyncCharter) -> None:
        self._c = client

    async def page(
        self,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        policy_id: str | None = None,
        lineage_id: str | None = None,
        agent_id: str | None = None,
        tenant_id: str | None = None,
        run_id: str | None = None,
        rule_type: str | None = None,
        decision: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Page:
        """One page, newest first."""
        query = violation_filters(policy_id, lineage_id, agent_id, tenant_id, run_id, rule_type, decision, since, until)
        query.update(params(cursor=cursor, limit=limit))
        return Page.from_json(await self._c._send(Request("GET", "/v1/violations", params=query)))

    async def list(
        self,
        *,
        limit: int | None = None,
        policy_id: str | None = None,
        lineage_id: str | None = None,
        agent_id: str | None = None,
        tenant_id: str | None = None,
        run_id: str | None = None,
        rule_type: str | None = None,
        decision: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AsyncIterator[ViolationEvent]:
        """Every matching event, newest first; pages of ``limit`` are fetched as it goes."""
        cursor: str | None = None
        while True:
            page = await self.page(
                cursor=cursor, limit=limit, policy_id=policy_id, lineage_id=lineage_id, agent_id=agent_id,
                tenant_id=tenant_id, run_id=run_id, rule_type=rule_type, decision=decision, since=since,
                until=until,
            )  # fmt: skip
            for item in page.items:
                yield item
            cursor = page.next_cursor
            if not cursor:
                return

    def stream(
        self,
        *,
        policy_id: str | None = None,
        lineage_id: str | None = None,
        agent_id: str | None = None,
        tenant_id: str | None = None,
        run_id: str | None = None,
        rule_type: str | None = None,
        decision: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AsyncViolationStream:
        """New violations live, as they are committed (``GET /v1/violations/stream``).

        Use it as ``async with client.violations.stream(...) as events: async for event in
        events: ...``; the subscription is in place once the ``async with`` is entered.
        ``await events.aclose()`` (or
        leaving the block, or breaking out of it) stops it."""
        query = violation_filters(policy_id, lineage_id, agent_id, tenant_id, run_id, rule_type, decision, since, until)
        return AsyncViolationStream(self._c, query)


class AsyncViolationStream:
    """The live stream of violation events: an async iterator, and an async context manager that closes it.

    ``missed`` counts the events the server reported dropped because the reader fell behind
    (read them with :meth:`Violations.list`); ``last_event_id`` is the id of the last event."""

    def __init__(self, client: AsyncCharter, query: dict[str, Any]) -> None:
        self._c = client
        self._query = query
        self._response: httpx.Response | None = None
        self._closed = False
        self.missed = 0
        self.last_event_id: str | None = None

    async def open(self) -> AsyncViolationStream:
        """Subscribes (once): when it returns, every violation committed from now on comes."""
        if self._response is not None or self._closed:
            return self
        http = self._c._http
        request = http.build_request(
            "GET", "/v1/violations/stream", params=self._query,
            headers={"Accept": "text/event-stream"}, timeout=stream_timeout(self._c._timeout),
        )  # fmt: skip
        try:
            response = await http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise unreachable(exc, self._c.url) from exc
        if not response.is_success:
            try:
                await response.aread()
            finally:
                await response.aclose()
            raise error_from(response)
        self._response = response
        return self

    async def __aenter__(self) -> AsyncViolationStream:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def __aiter__(self) -> AsyncIterator[ViolationEvent]:
        await self.open()
        if self._response is None:
            return
        decoder = SSEDecoder()
        try:
            async for line in self._response.aiter_lines():
                item = decoder.feed(line)
                if isinstance(item, SSEComment):
                    self._comment(item.text)
                elif isinstance(item, SSEEvent) and item.event == "violation":
                    self.last_event_id = item.id
                    yield ViolationEvent.from_json(parse_json(item.data))
        except (httpx.TransportError, httpx.StreamError) as exc:
            if self._closed:
                return
            raise unreachable(exc, self._c.url) from exc

    def _comment(self, text: str) -> None:
        words = text.split()
        if len(words) >= 2 and words[0] == "missed" and words[1].isdigit():
            self.missed += int(words[1])

    async def aclose(self) -> None:
        """Stops the stream; an iteration in progress ends."""
        self._closed = True
        if self._response is not None:
            await self._response.aclose()


class AsyncRun:
    """A started run: check its actions, then end it.

    As an async context manager it is the current run of the block (guards given no run use it) and
    ends it on the way out: ``completed``, or ``failed`` when the block raised (a halted run
    stays ``halted``)."""

    def __init__(self, client: AsyncCharter, info: RunInfo) -> None:
        self.client = client
        self.info = info
        self.id = info.id
        self.ended = False
        self._tokens: list[Token[Any]] = []

    def __repr__(self) -> str:
        return f"AsyncRun(id={self.id!r}, agent_id={self.info.agent_id!r}, tenant_id={self.info.tenant_id!r})"

    async def check(self, action: Action, *, raise_on_block: bool = False) -> Decision:
        return await self.client.runs.check(self.id, action, raise_on_block=raise_on_block)

    async def tool_call(
        self,
        tool: str,
        args: Mapping[str, Any] | None = None,
        *,
        cost_usd: Money | None = None,
        raise_on_block: bool = False,
    ) -> Decision:
        return await self.check(actions.tool_call(tool, args, cost_usd=cost_usd), raise_on_block=raise_on_block)

    async def data_access(
        self,
        resource: str,
        operation: Operation,
        labels: builtins.list[str] | None = None,
        *,
        cost_usd: Money | None = None,
        raise_on_block: bool = False,
    ) -> Decision:
        action = actions.data_access(resource, operation, labels, cost_usd=cost_usd)
        return await self.check(action, raise_on_block=raise_on_block)

    async def output(
        self,
        text: str,
        channel: str | None = None,
        *,
        cost_usd: Money | None = None,
        raise_on_block: bool = False,
    ) -> Decision:
        return await self.check(actions.output(text, channel, cost_usd=cost_usd), raise_on_block=raise_on_block)

    async def model_call(
        self,
        model: str,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        *,
        cost_usd: Money | None = None,
        raise_on_block: bool = False,
    ) -> Decision:
        action = actions.model_call(model, input_tokens, output_tokens, cost_usd=cost_usd)
        return await self.check(action, raise_on_block=raise_on_block)

    async def end(self, status: Literal["completed", "failed"] = "completed") -> RunInfo:
        info = await self.client.runs.end(self.id, status)
        self.ended = True
        return info

    async def get(self) -> RunInfo:
        """The run as Charter has it now, with its actions."""
        return await self.client.runs.get(self.id)

    async def __aenter__(self) -> AsyncRun:
        self._tokens.append(_current_run.set(self))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tokens:
            _current_run.reset(self._tokens.pop())
        if self.ended:
            return
        if exc_type is None:
            await self.end("completed")
            return
        try:
            await self.end("failed")
        except CharterError:
            # The block's own exception is the one to see.
            pass
