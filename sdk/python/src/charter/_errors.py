"""The exceptions: every API error, a refused action, and an unreachable Charter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Decision, Violation


class CharterError(Exception):
    """An error answered by Charter (or met on the way to it).

    ``status`` is the HTTP status (``None`` when no answer came), ``code`` the API's error code
    (``invalid``, ``unauthenticated``, ``forbidden``, ``not_found``, ``conflict``, ...),
    ``message`` its explanation, ``path`` the JSON path of the bad field (``details.path``, for
    ``invalid``) and ``details`` the raw ``details`` object.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        path = self.details.get("path")
        self.path: str | None = path if isinstance(path, str) else None

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}{where}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, path={self.path!r})"
        )


class Unavailable(CharterError):
    """Charter could not be reached, or did not answer as Charter does.

    Fail closed: an action whose check raised this was not allowed.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, code="unavailable")


class Refused(CharterError):
    """An action Charter refused: the base of :class:`Blocked` and :class:`Halted`."""

    decision: Decision

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(refusal_message(decision), code=decision.decision)

    @property
    def violations(self) -> tuple[Violation, ...]:
        """Every violated rule."""
        return self.decision.violations

    def __str__(self) -> str:
        return self.message


class Blocked(Refused):
    """The action was blocked; the run may go on."""


class Halted(Refused):
    """The action was refused and the run is halted: every later action will be refused."""


def refusal_message(decision: Decision) -> str:
    """The text a model or a caller is shown for a refused action: which policy, which rule,
    why, and what matched (Charter masks personal data in it)."""
    verb = "Halted" if decision.decision == "halt" else "Blocked"
    if not decision.violations:
        return f"{verb} by Charter."
    parts = []
    for v in decision.violations:
        text = f"policy '{v.policy_name}' v{v.policy_version}, rule {v.rule_id} ({v.rule_type}): {v.message}"
        if v.matching_input:
            text += f" [matched: {v.matching_input}]"
        parts.append(text)
    return f"{verb} by " + "; ".join(parts)
