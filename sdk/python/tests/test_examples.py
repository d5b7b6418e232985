"""The documented examples run as written against `charter demo` (whose tenant `acme` has the
"Block external email" policy on its agent `support`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["langchain_agent.py", "openai_agents_agent.py"])
def test_example_blocks_the_external_email(server: Server, name: str) -> None:
    env = {**os.environ, "CHARTER_URL": server.url, "CHARTER_KEY": server.admin_key}
    env.pop("EXAMPLE_MODEL", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "emails sent: ['alice@acme.com']" in out, out
    assert "Blocked by policy 'Block external email'" in out, out
    assert "charter: gmail.send_email -> block" in out and "charter: gmail.send_email -> allow" in out, out
