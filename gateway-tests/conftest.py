"""Fixtures of the gateway tests: a real `charter serve` with the policies the tests need, and
gateway configurations in front of the `mcp` fixture server (fixture_server.py).

`CHARTER_BIN` names the `charter` binary (scripts/gateway-tests sets it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixture_server.py"
CHARTER_BIN = os.environ.get("CHARTER_BIN", str(HERE.parent / "target" / "debug" / "charter"))
TENANT = "acme"
KEY_ENV = "CHARTER_GATEWAY_TEST_KEY"

# The tenant's policies: a conditional deny (external email), an unconditional deny (hidden
# from tools/list), and an output rule (no email addresses out).
MAIL_POLICY = {
    "name": "Block external email",
    "scope": {"type": "tenant", "tenant_id": TENANT},
    "rules": [
        {
            "id": "external-email",
            "type": "tool",
            "effect": "deny",
            "tools": ["*.send_email"],
            "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}],
        },
        {"id": "no-deletes", "type": "tool", "effect": "deny", "tools": ["*.delete_everything"]},
    ],
}
OUTPUT_POLICY = {
    "name": "No personal data out",
    "scope": {"type": "tenant", "tenant_id": TENANT},
    "rules": [{"id": "no-pii", "type": "output", "pii": ["email"]}],
}


@dataclass
class Charter:
    url: str
    key: str

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read().decode()}") from e

    def new_agent(self, prefix: str = "bot") -> str:
        agent = f"{prefix}-{secrets.token_hex(4)}"
        self.api("POST", f"/v1/tenants/{TENANT}/agents", {"id": agent, "name": agent})
        return agent

    def activate(self, policy: dict[str, Any]) -> dict[str, Any]:
        draft = self.api("POST", "/v1/policies", policy)
        return self.api("POST", f"/v1/policies/{draft['id']}/activate", {"force": True})

    def runs_of(self, agent: str) -> list[dict[str, Any]]:
        """The runs of `agent`, each with its actions."""
        items = self.api("GET", f"/v1/runs?agent_id={agent}")["items"]
        return [self.api("GET", f"/v1/runs/{run['id']}") for run in items]


def _start_charter(data_dir: Path, key: str) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, CHARTER_BOOTSTRAP_KEY=key, RUST_LOG="warn")
    server = subprocess.Popen(
        [CHARTER_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
        env=env,
    )
    assert server.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        if line.startswith("listening on "):
            return server, line.split()[-1]
    server.kill()
    raise RuntimeError("charter serve did not start")


@pytest.fixture(scope="session")
def charter(tmp_path_factory: pytest.TempPathFactory) -> Any:
    key = "gw-" + secrets.token_urlsafe(24)
    server, url = _start_charter(tmp_path_factory.mktemp("charter"), key)
    try:
        c = Charter(url, key)
        c.api("POST", "/v1/tenants", {"id": TENANT, "name": "Acme"})
        c.activate(MAIL_POLICY)
        c.activate(OUTPUT_POLICY)
        yield c
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    """The file where the fixture server logs the tools it ran."""
    return tmp_path / "calls.log"


def tools_called(calls: Path) -> list[str]:
    return calls.read_text().split() if calls.exists() else []


def upstream(name: str, calls: Path) -> dict[str, Any]:
    return {
        "name": name,
        "command": sys.executable,
        "args": [str(FIXTURE)],
        "env": {"FIXTURE_CALLS": str(calls)},
    }


def write_config(
    path: Path, url: str, agent: str, upstreams: list[dict[str, Any]]
) -> Path:
    path.write_text(
        json.dumps(
            {
                "charter": {"url": url, "key_env": KEY_ENV, "tenant": TENANT, "agent": agent},
                "upstreams": upstreams,
            }
        )
    )
    return path


def gateway_command(config: Path) -> list[str]:
    return [CHARTER_BIN, "mcp-gateway", "--config", str(config)]


@contextlib.asynccontextmanager
async def mcp_session(config: Path, key: str, **callbacks: Any) -> AsyncIterator[ClientSession]:
    """An initialized `mcp` client session with the gateway, spawned over stdio; `callbacks`
    go to `ClientSession` (`elicitation_callback=...`)."""
    params = StdioServerParameters(
        command=CHARTER_BIN,
        args=["mcp-gateway", "--config", str(config)],
        env={KEY_ENV: key, "RUST_LOG": "warn"},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, **callbacks) as session:
            await session.initialize()
            yield session


def free_port_url() -> str:
    """The URL of a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
