"""The asynchronous client against a real Charter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from charter import AsyncCharter, Blocked, Charter, CharterError, Halted, Unavailable, tool_call
from conftest import World, actions_of, closed_port_url


@pytest.fixture
async def aclient(world: World) -> AsyncIterator[AsyncCharter]:
    async with AsyncCharter(world.url, world.key) as c:
        yield c


async def test_async_run_checks_and_end(aclient: AsyncCharter, client: Charter, world: World) -> None:
    run = await aclient.start_run("bot", metadata={"a": 1})
    assert run.info.status == "running"
    assert (await run.tool_call("gmail.send_email", {"to": "alice@acme.com"})).allowed
    blocked = await run.tool_call("gmail.send_email", {"to": "bob@gmail.com"})
    assert blocked.decision == "block" and blocked.violations[0].matching_input == "bob@gmail.com"
    with pytest.raises(Blocked) as caught:
        await run.check(tool_call("gmail.send_email", {"to": "eve@gmail.com"}), raise_on_block=True)
    assert caught.value.violations[0].policy_name == "Block external email"
    ended = await run.end()
    assert ended.status == "completed"
    info = await aclient.runs.get(run.id)
    assert [a.decision for a in info.actions] == ["allow", "block", "block"]
    assert actions_of(client, run.id)[2] == ("tool_call", "gmail.send_email", "block")


async def test_async_halt(aclient: AsyncCharter) -> None:
    run = await aclient.start_run("spender")
    assert (await run.model_call("openai/gpt-4o", cost_usd="1.00")).allowed  # exactly the cap
    with pytest.raises(Halted):
        await run.model_call("openai/gpt-4o", cost_usd="0.000001", raise_on_block=True)
    assert (await run.output("hi")).halted
    assert (await run.end()).status == "halted"
    assert [(a.action["kind"], a.decision) for a in (await run.get()).actions] == [
        ("model_call", "allow"),
        ("model_call", "halt"),
    ]


async def test_async_context_manager_ends_the_run(aclient: AsyncCharter) -> None:
    async with aclient.start_run("bot") as run:
        await run.tool_call("gmail.send_email", {"to": "alice@acme.com"})
    assert (await aclient.runs.get(run.id)).status == "completed"

    with pytest.raises(RuntimeError):
        async with aclient.start_run("bot") as failing:
            raise RuntimeError("the agent crashed")
    assert (await aclient.runs.get(failing.id)).status == "failed"

    started = await aclient.start_run("bot")
    async with started:
        pass
    assert (await aclient.runs.get(started.id)).status == "completed"


async def test_async_policies(world: World) -> None:
    async with AsyncCharter(world.url, world.admin_key) as admin:
        doc = await admin.policies.export(world.email_policy["id"])
        (draft,) = await admin.policies.import_(doc)
        assert draft["status"] == "draft"
        assert (await admin.policies.get(draft["id"]))["rules"] == doc["rules"]
        assert draft["id"] in [p["id"] for p in await admin.policies.list(status="draft", tenant_id=world.tenant)]


async def test_async_violations_list_and_stream(aclient: AsyncCharter, world: World) -> None:
    run = await aclient.start_run("bot")
    made = [(await run.tool_call("gmail.send_email", {"to": f"a{i}@gmail.com"})).action_id for i in range(3)]
    listed = [e.action_id async for e in aclient.violations.list(run_id=run.id, limit=1)]
    assert listed == list(reversed(made))

    async with aclient.violations.stream(run_id=run.id) as events:
        decision = await run.tool_call("gmail.send_email", {"to": "stream@gmail.com"})

        async def first() -> str:
            async for event in events:
                return event.action_id
            return ""

        assert await asyncio.wait_for(first(), timeout=20) == decision.action_id
    await run.end()


async def test_async_errors(aclient: AsyncCharter, world: World) -> None:
    async with AsyncCharter(world.url, world.admin_key) as admin:
        theirs = await admin.start_run("bot", tenant_id=world.other)
    with pytest.raises(CharterError) as caught:
        await aclient.runs.get(theirs.id)
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    run = await aclient.start_run("bot")
    with pytest.raises(CharterError) as caught:
        await run.check({"kind": "output", "text": "x", "channel": ""})
    assert caught.value.status == 400 and caught.value.path == "channel"
    await run.end()
    with pytest.raises(CharterError) as caught:
        await run.end()
    assert (caught.value.status, caught.value.code) == (409, "conflict")
    async with AsyncCharter(world.url, "chk_bad") as bad:
        with pytest.raises(CharterError) as caught:
            await bad.start_run("bot")
    assert caught.value.status == 401


async def test_async_unavailable() -> None:
    async with AsyncCharter(closed_port_url(), "chk_x", timeout=2) as down:
        with pytest.raises(Unavailable):
            await down.start_run("bot")
        with pytest.raises(Unavailable):
            async with down.violations.stream():
                pass


async def test_async_stream_stops_on_cancel_and_close(aclient: AsyncCharter, world: World) -> None:
    events = await aclient.violations.stream(agent_id="nobody-here", tenant_id=world.tenant).open()

    async def drain() -> None:
        async for _ in events:
            pass

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(drain(), timeout=0.5)
    await events.aclose()
    assert [e async for e in events] == []
