"""`guard`: a governed function never runs when its call is refused, and its refused result
never leaves."""

from __future__ import annotations

import pytest

from charter import AsyncCharter, Blocked, Charter, CharterError, Halted, Unavailable, guard
from conftest import World, actions_of, closed_port_url


def test_allowed_call_runs_and_blocked_call_does_not(client: Charter) -> None:
    sent: list[str] = []

    @guard(namespace="gmail")
    def send_email(to: str, subject: str = "hi", **extra: str) -> str:
        sent.append(to)
        return f"sent to {to}"

    with client.start_run("bot") as run:
        assert send_email("alice@acme.com", cc="x") == "sent to alice@acme.com"
        with pytest.raises(Blocked) as caught:
            send_email(to="bob@gmail.com")
        assert caught.value.violations[0].matching_input == "bob@gmail.com"
    assert sent == ["alice@acme.com"]
    recorded = client.runs.get(run.id).actions
    assert recorded[0].action == {
        "kind": "tool_call",
        "tool": "gmail.send_email",
        "args": {"to": "alice@acme.com", "subject": "hi", "cc": "x"},
    }
    assert actions_of(client, run.id) == [
        ("tool_call", "gmail.send_email", "allow"),
        ("output", "sent to alice@acme.com", "allow"),
        ("tool_call", "gmail.send_email", "block"),
    ]
    assert client.runs.get(run.id).status == "completed"  # the block was caught inside the with


def test_blocked_output_is_withheld_or_masked(client: Charter) -> None:
    @guard(run=lambda: run, tool="read_notes", namespace="notes")
    def leak() -> dict[str, str]:
        return {"notes": "the TOP-SECRET plan"}

    @guard(run=lambda: run, namespace="billing", on_block="message")
    def card_number(customer: int) -> str:
        return "card 4111 1111 1111 1111"

    run = client.start_run("bot")
    with pytest.raises(Blocked) as caught:
        leak()
    assert caught.value.violations[0].rule_id == "no-secrets"
    refusal = card_number(7)
    assert isinstance(refusal, str) and refusal.startswith("Blocked by policy 'Block external email'")
    assert "no-secrets" in refusal and "4111 1111 1111 1111" not in refusal and "1111" in refusal
    run.end()
    assert [a[2] for a in actions_of(client, run.id)] == ["allow", "block", "allow", "block"]


def test_message_mode_returns_the_refusal_but_a_halt_raises(client: Charter) -> None:
    calls = []

    @guard(namespace="gmail", on_block="message", check_output=False)
    def send_email(to: str) -> str:
        calls.append(to)
        return "sent"

    with client.start_run("spender") as run:
        message = send_email("bob@gmail.com")
        assert message.startswith("Blocked by") and "bob@gmail.com" in message
        run.model_call("m", cost_usd="2")  # over the $1 cap: halts the run
        with pytest.raises(Halted):
            send_email("alice@acme.com")
    assert calls == []
    assert client.runs.get(run.id).status == "halted"
    # The block and the halt are the run's; the call on the halted run records nothing.
    assert actions_of(client, run.id) == [("tool_call", "gmail.send_email", "block"), ("model_call", "m", "halt")]


async def test_async_function(world: World, client: Charter) -> None:
    sent: list[str] = []

    @guard(namespace="gmail")
    async def send_email(to: str) -> str:
        sent.append(to)
        return "ok"

    async with AsyncCharter(world.url, world.key) as aclient:
        async with aclient.start_run("bot") as run:
            assert await send_email("alice@acme.com") == "ok"
            with pytest.raises(Blocked):
                await send_email("bob@gmail.com")
    assert sent == ["alice@acme.com"]
    assert actions_of(client, run.id)[-1] == ("tool_call", "gmail.send_email", "block")

    # An async function with a synchronous run works too.
    with client.start_run("bot") as sync_run:
        with pytest.raises(Blocked):
            await send_email("carol@gmail.com")
    assert sent == ["alice@acme.com"]
    assert actions_of(client, sync_run.id) == [("tool_call", "gmail.send_email", "block")]


def test_no_run_and_unreachable_charter_fail_closed() -> None:
    ran = []

    @guard()
    def tool() -> None:
        ran.append(1)

    with pytest.raises(CharterError) as caught:
        tool()
    assert caught.value.code == "no_run"

    down = Charter(closed_port_url(), "chk_x", timeout=2)
    from charter import Run, RunInfo

    fake = Run(down, RunInfo.from_json({"id": "run_x", "status": "running"}))
    with pytest.raises(Unavailable):
        guard(run=fake)(tool)()
    assert ran == []
