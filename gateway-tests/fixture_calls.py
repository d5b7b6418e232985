"""What the upstream fixtures of the gateway tests (fixture_server.py, docs_server.py) were
asked to do, for the tests to read (`conftest.tools_called`): with `FIXTURE_CALLS` set, each
`called(name)` appends the name as a line of that file."""

import os


def called(name: str) -> None:
    path = os.environ.get("FIXTURE_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(name + "\n")
