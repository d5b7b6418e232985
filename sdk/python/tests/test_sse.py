"""The SSE framing, fed line by line as httpx cuts them."""

from charter import SSEComment, SSEDecoder, SSEEvent


def feed(lines: list[str]) -> list[SSEEvent | SSEComment]:
    decoder = SSEDecoder()
    out = []
    for line in lines:
        item = decoder.feed(line)
        if item is not None:
            out.append(item)
    return out


def test_events_comments_and_ids() -> None:
    got = feed(
        [
            ":",
            "",
            "event: violation",
            "id: vio_1",
            'data: {"a": 1}',
            "",
            ": missed 3 events: read /v1/violations",
            "data: one",
            "data:two",
            "",
            "id: vio_2",
            "",
            "retry: 1000",
            "event: other",
            "data",
            "",
        ]
    )
    assert got == [
        SSEComment(""),
        SSEEvent("violation", '{"a": 1}', "vio_1"),
        SSEComment("missed 3 events: read /v1/violations"),
        SSEEvent("message", "one\ntwo", "vio_1"),
        SSEEvent("other", "", "vio_2"),
    ]


def test_a_block_without_data_dispatches_nothing() -> None:
    assert feed(["event: violation", "id: x", ""]) == []
