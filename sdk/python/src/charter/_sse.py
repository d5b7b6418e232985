"""Server-sent events, parsed per the WHATWG framing rules: ``event``, ``data`` (joined by
newlines), ``id``, ``retry`` and comments (``:`` lines, the server's keep-alives)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its type (``message`` when unnamed), data and id."""

    event: str
    data: str
    id: str | None


@dataclass(frozen=True)
class SSEComment:
    """A comment line; keep-alives are empty ones."""

    text: str


class SSEDecoder:
    """Feed it lines (without their end-of-line); it returns what each completed."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] | None = None
        self._id: str | None = None
        self.last_event_id: str | None = None

    def feed(self, line: str) -> SSEEvent | SSEComment | None:
        if line == "":
            event, data, self._event, self._data = self._event, self._data, None, None
            if data is None:
                # A block without data dispatches nothing (its id still counts).
                return None
            return SSEEvent(event=event or "message", data="\n".join(data), id=self.last_event_id)
        if line.startswith(":"):
            text = line[1:]
            return SSEComment(text[1:] if text.startswith(" ") else text)
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            if self._data is None:
                self._data = []
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        # `retry` and unknown fields mean nothing to a client that does not reconnect.
        return None
