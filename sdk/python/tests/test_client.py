"""The synchronous client against a real Charter: runs, checks, policies, violations, errors."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from charter import (
    Blocked,
    Charter,
    CharterError,
    Halted,
    Unavailable,
    data_access,
    model_call,
    output,
    tool_call,
)
from conftest import World, actions_of, closed_port_url


def test_run_checks_allowed_and_blocked_then_end(client: Charter, world: World) -> None:
    run = client.start_run("bot", metadata={"ticket": "T-1"})
    assert run.id.startswith("run_")
    assert run.info.status == "running" and run.info.tenant_id == world.tenant
    assert run.info.metadata == {"ticket": "T-1"}
    pinned = [p["id"] for p in run.info.policy_set["policies"]]
    assert world.email_policy["id"] in pinned

    ok = run.tool_call("gmail.send_email", {"to": "alice@acme.com"})
    assert ok.allowed and not ok.blocked and ok.violations == () and ok.action_id

    no = run.tool_call("gmail.send_email", {"to": "bob@gmail.com"})
    assert no.decision == "block" and no.blocked and not no.halted
    (v,) = no.violations
    assert v.policy_id == world.email_policy["id"]
    assert v.policy_name == "Block external email"
    assert v.policy_version == 1
    assert v.rule_id == "external-email" and v.rule_type == "tool"
    assert v.matching_input == "bob@gmail.com"
    assert v.message

    assert run.data_access("crm/customers/42", "read", ["pii"]).allowed
    assert run.model_call("openai/gpt-4o", 100, 20, cost_usd=Decimal("0.01")).allowed
    masked = run.output("card 4111 1111 1111 1111")
    assert masked.blocked
    assert "4111 1111 1111 1111" not in (masked.violations[0].matching_input or "")

    ended = run.end()
    assert ended.status == "completed" and ended.ended_at
    assert actions_of(client, run.id) == [
        ("tool_call", "gmail.send_email", "allow"),
        ("tool_call", "gmail.send_email", "block"),
        ("data_access", None, "allow"),
        ("model_call", "openai/gpt-4o", "allow"),
        ("output", "card 4111 1111 1111 1111", "block"),
    ]


def test_check_raise_on_block_carries_the_decision(client: Charter, world: World) -> None:
    with client.start_run("bot") as run:
        with pytest.raises(Blocked) as caught:
            run.check(tool_call("crm.send_email", {"to": ["x@acme.com", "eve@evil.test"]}), raise_on_block=True)
        err = caught.value
        assert isinstance(err, CharterError)
        assert err.decision.decision == "block"
        assert err.violations[0].rule_id == "external-email"
        assert err.violations[0].matching_input == "eve@evil.test"
        assert "Block external email" in str(err)
        assert err.decision.action_id
        # Allowed checks do not raise.
        assert run.check(tool_call("crm.send_email", {"to": "x@acme.com"}), raise_on_block=True).allowed
    assert actions_of(client, run.id) == [
        ("tool_call", "crm.send_email", "block"),
        ("tool_call", "crm.send_email", "allow"),
    ]


def test_cost_rule_halts_the_run(client: Charter, world: World) -> None:
    run = client.start_run("spender")
    assert run.model_call("openai/gpt-4o", cost_usd="0.80").allowed
    with pytest.raises(Halted) as caught:
        run.model_call("openai/gpt-4o", cost_usd=Decimal("0.30"), raise_on_block=True)
    (v,) = caught.value.violations
    assert v.rule_type == "cost" and v.rule_id == "budget" and v.decision == "halt"
    assert v.policy_id == world.cost_policy["id"]
    # Every later action is refused with halt, and nothing more is recorded.
    later = run.tool_call("gmail.send_email", {"to": "alice@acme.com"})
    assert later.halted and later.action_id is None and later.violations[0].rule_id == "budget"
    assert run.get().status == "halted"
    assert run.end().status == "halted"
    assert actions_of(client, run.id) == [("model_call", "openai/gpt-4o", "allow"), ("model_call", "openai/gpt-4o", "halt")]


def test_run_context_manager_ends_the_run(client: Charter) -> None:
    with client.start_run("bot") as run:
        run.tool_call("gmail.send_email", {"to": "alice@acme.com"})
    assert client.runs.get(run.id).status == "completed"

    with pytest.raises(ZeroDivisionError):
        with client.start_run("bot") as failing:
            1 / 0
    assert client.runs.get(failing.id).status == "failed"

    # Ended inside the block: not ended twice.
    with client.start_run("bot") as explicit:
        explicit.end("failed")
    assert client.runs.get(explicit.id).status == "failed"


def test_runs_list_pages(client: Charter) -> None:
    started = [client.start_run("agentic").id for _ in range(3)]
    listed = [r.id for r in client.runs.list(agent_id="agentic", limit=2)]
    assert set(started) <= set(listed)
    assert len(listed) == len(set(listed))


def test_policies_list_get_export_import_round_trip(admin: Charter, world: World) -> None:
    listed = admin.policies.list(tenant_id=world.tenant, status="active")
    assert world.email_policy["id"] in [p["id"] for p in listed]
    got = admin.policies.get(world.email_policy["id"])
    assert got["name"] == "Block external email" and got["status"] == "active"

    document = admin.policies.export(world.email_policy["id"])
    assert document["format"] == "charter.policy/v1"
    (imported,) = admin.policies.import_(document)
    assert imported["status"] == "draft" and imported["id"] != got["id"]
    assert imported["name"] == got["name"] and imported["rules"] == got["rules"]
    assert imported["scope"] == got["scope"]
    again = admin.policies.export(imported["id"])
    assert {k: v for k, v in again.items() if k != "exported_from"} == {
        k: v for k, v in document.items() if k != "exported_from"
    }
    # Several at once, all or nothing.
    two = admin.policies.import_([document, document])
    assert len(two) == 2


def test_violations_list_pages_with_a_cursor(client: Charter) -> None:
    run = client.start_run("bot")
    made = [run.tool_call("gmail.send_email", {"to": f"p{i}@gmail.com"}).action_id for i in range(5)]
    run.end()
    first = client.violations.page(run_id=run.id, limit=2)
    assert len(first.items) == 2 and first.next_cursor
    events = list(client.violations.list(run_id=run.id, limit=2))
    assert [e.action_id for e in events] == list(reversed(made))  # newest first
    assert len({e.id for e in events}) == 5
    e = events[0]
    assert e.run_id == run.id and e.agent_id == "bot" and e.decision == "block"
    assert e.action_kind == "tool_call" and e.action_summary == "gmail.send_email"
    assert e.matching_input == "p4@gmail.com" and e.rule_id == "external-email"
    last = client.violations.page(run_id=run.id, limit=5)
    assert last.next_cursor is None and len(last.items) == 5


def test_violation_stream_receives_a_block_made_meanwhile(client: Charter, world: World) -> None:
    run = client.start_run("bot")
    with client.violations.stream(agent_id="bot", tenant_id=world.tenant) as events:
        # Subscribed: a block made now must arrive.
        decision = run.tool_call("gmail.send_email", {"to": "live@gmail.com"})
        assert decision.blocked
        watchdog = threading.Timer(20, events.close)  # never hang the suite
        watchdog.start()
        try:
            got = None
            for event in events:
                if event.action_id == decision.action_id:
                    got = event
                    break
        finally:
            watchdog.cancel()
    assert got is not None, "the block never came on the stream"
    assert got.matching_input == "live@gmail.com" and got.run_id == run.id
    assert events.last_event_id == got.id
    run.end()


def test_stream_errors_are_raised_when_opening(client: Charter) -> None:
    with pytest.raises(CharterError) as caught:
        with client.violations.stream(since="yesterday"):
            pass
    assert caught.value.status == 400 and caught.value.code == "invalid"
    assert caught.value.path == "query.since"


def test_error_not_found_for_another_tenant(client: Charter, admin: Charter, world: World) -> None:
    theirs = admin.start_run("bot", tenant_id=world.other)
    with pytest.raises(CharterError) as caught:
        client.runs.get(theirs.id)
    err = caught.value
    assert (err.status, err.code) == (404, "not_found") and err.message
    assert err.path is None
    with pytest.raises(CharterError) as caught:
        client.runs.check(theirs.id, tool_call("gmail.send_email", {"to": "bob@gmail.com"}))
    assert caught.value.status == 404
    theirs.end()


def test_error_invalid_with_its_path(client: Charter) -> None:
    run = client.start_run("bot")
    with pytest.raises(CharterError) as caught:
        run.check({"kind": "tool_call", "tool": "gmail.send_email", "args": {}, "bogus": 1})
    err = caught.value
    assert (err.status, err.code, err.path) == (400, "invalid", "bogus")
    assert err.details["path"] == "bogus"
    with pytest.raises(CharterError) as caught:
        run.check(data_access("crm/x", "read", cost_usd="-1"))
    assert caught.value.status == 400 and caught.value.path == "cost_usd"
    with pytest.raises(CharterError) as caught:
        client.start_run("no-such-agent")
    assert caught.value.status == 400 and caught.value.path == "agent_id"
    run.end()


def test_error_unauthenticated(world: World) -> None:
    with Charter(world.url, "chk_not_a_key") as bad:
        with pytest.raises(CharterError) as caught:
            bad.start_run("bot")
    assert (caught.value.status, caught.value.code) == (401, "unauthenticated")
    assert not isinstance(caught.value, Unavailable)


def test_error_conflict_on_an_ended_run(client: Charter) -> None:
    run = client.start_run("bot")
    run.end()
    with pytest.raises(CharterError) as caught:
        run.check(output("hello"))
    assert (caught.value.status, caught.value.code) == (409, "conflict")
    with pytest.raises(CharterError) as caught:
        client.runs.end(run.id)
    assert caught.value.status == 409


def test_unavailable_when_charter_is_down() -> None:
    with Charter(closed_port_url(), "chk_whatever", timeout=2) as down:
        with pytest.raises(Unavailable) as caught:
            down.start_run("bot")
        assert caught.value.status is None and caught.value.code == "unavailable"
        with pytest.raises(Unavailable):
            down.runs.check("run_x", tool_call("gmail.send_email", {"to": "a@acme.com"}))
        with pytest.raises(Unavailable):
            down.violations.stream().open()


def test_money_is_never_a_float() -> None:
    with pytest.raises(TypeError):
        tool_call("x.y", cost_usd=0.1)  # type: ignore[arg-type]
    assert model_call("m", cost_usd=Decimal("0.000001"))["cost_usd"] == "0.000001"
    assert output("t", "email", cost_usd=2)["cost_usd"] == 2


def test_missing_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHARTER_KEY", raising=False)
    with pytest.raises(ValueError):
        Charter("http://127.0.0.1:1")


def test_stream_closed_from_another_thread_ends_the_iteration(client: Charter, world: World) -> None:
    events = client.violations.stream(agent_id="nobody-here", tenant_id=world.tenant).open()
    closer = threading.Timer(0.5, events.close)
    closer.start()
    done = threading.Event()

    def read() -> None:
        for _ in events:
            pass
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert done.wait(10), "close() did not end the iteration"
    closer.cancel()
