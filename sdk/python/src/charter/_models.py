"""Typed views of the API's answers. Each keeps the raw JSON in ``raw``: the API may add fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["allow", "block", "halt"]
RunStatus = Literal["running", "halted", "completed", "failed"]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _outcome(value: Any) -> Outcome:
    # Anything but a known outcome is read as a halt: a client never turns an answer it does
    # not understand into an allow.
    if value == "allow":
        return "allow"
    if value == "block":
        return "block"
    return "halt"


@dataclass(frozen=True)
class Violation:
    """One violated rule of a refused action."""

    policy_id: str
    policy_name: str
    policy_version: int
    lineage_id: str
    rule_id: str
    rule_type: str
    decision: Outcome
    message: str
    matching_input: str | None
    scope: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Violation:
        d = _dict(data)
        return cls(
            policy_id=_str(d.get("policy_id")),
            policy_name=_str(d.get("policy_name")),
            policy_version=_int(d.get("policy_version")),
            lineage_id=_str(d.get("lineage_id")),
            rule_id=_str(d.get("rule_id")),
            rule_type=_str(d.get("rule_type")),
            decision=_outcome(d.get("decision")),
            message=_str(d.get("message")),
            matching_input=_opt_str(d.get("matching_input")),
            scope=_dict(d.get("scope")),
        )


@dataclass(frozen=True)
class Decision:
    """Charter's answer to one action."""

    decision: Outcome
    run_id: str
    action_id: str | None
    violations: tuple[Violation, ...]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def blocked(self) -> bool:
        """Refused, whether blocked or halted."""
        return self.decision != "allow"

    @property
    def halted(self) -> bool:
        return self.decision == "halt"

    @classmethod
    def from_json(cls, data: Any) -> Decision:
        d = _dict(data)
        return cls(
            decision=_outcome(d.get("decision")),
            run_id=_str(d.get("run_id")),
            action_id=_opt_str(d.get("action_id")),
            violations=tuple(Violation.from_json(v) for v in d.get("violations") or []),
            raw=d,
        )


@dataclass(frozen=True)
class RunAction:
    """An action of a run as ``GET /v1/runs/{id}`` shows it, with its decision."""

    id: str
    at: str
    action: dict[str, Any]
    decision: Outcome | None

    @classmethod
    def from_json(cls, data: Any) -> RunAction:
        d = _dict(data)
        decision = d.get("decision")
        return cls(
            id=_str(d.get("id")),
            at=_str(d.get("at")),
            action=_dict(d.get("action")),
            decision=None if decision is None else _outcome(decision),
        )


@dataclass(frozen=True)
class RunInfo:
    """A run, as Charter records it (``actions`` only from ``GET /v1/runs/{id}``)."""

    id: str
    tenant_id: str
    agent_id: str
    status: RunStatus
    started_at: str
    ended_at: str | None
    metadata: dict[str, Any]
    policy_set: dict[str, Any]
    actions: tuple[RunAction, ...]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> RunInfo:
        d = _dict(data)
        status = d.get("status")
        return cls(
            id=_str(d.get("id")),
            tenant_id=_str(d.get("tenant_id")),
            agent_id=_str(d.get("agent_id")),
            status=status if status in ("running", "halted", "completed", "failed") else "halted",
            started_at=_str(d.get("started_at")),
            ended_at=_opt_str(d.get("ended_at")),
            metadata=_dict(d.get("metadata")),
            policy_set=_dict(d.get("policy_set")),
            actions=tuple(RunAction.from_json(a) for a in d.get("actions") or []),
            raw=d,
        )


@dataclass(frozen=True)
class ViolationEvent:
    """A block or halt as the Monitor lists and streams it (one per violated rule)."""

    id: str
    at: str
    decision: Outcome
    policy_id: str
    policy_name: str
    policy_version: int
    lineage_id: str
    rule_id: str
    rule_type: str
    tenant_id: str
    agent_id: str
    run_id: str
    action_id: str
    action_kind: str
    action_summary: str
    matching_input: str | None
    message: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> ViolationEvent:
        d = _dict(data)
        action = _dict(d.get("action"))
        return cls(
            id=_str(d.get("id")),
            at=_str(d.get("at")),
            decision=_outcome(d.get("decision")),
            policy_id=_str(d.get("policy_id")),
            policy_name=_str(d.get("policy_name")),
            policy_version=_int(d.get("policy_version")),
            lineage_id=_str(d.get("lineage_id")),
            rule_id=_str(d.get("rule_id")),
            rule_type=_str(d.get("rule_type")),
            tenant_id=_str(d.get("tenant_id")),
            agent_id=_str(d.get("agent_id")),
            run_id=_str(d.get("run_id")),
            action_id=_str(d.get("action_id")),
            action_kind=_str(action.get("kind")),
            action_summary=_str(action.get("summary")),
            matching_input=_opt_str(d.get("matching_input")),
            message=_str(d.get("message")),
            raw=d,
        )


@dataclass(frozen=True)
class Page:
    """One page of violation events, newest first; ``next_cursor`` is ``None`` on the last."""

    items: tuple[ViolationEvent, ...]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: Any) -> Page:
        d = _dict(data)
        return cls(
            items=tuple(ViolationEvent.from_json(v) for v in d.get("items") or []),
            next_cursor=_opt_str(d.get("next_cursor")),
        )
