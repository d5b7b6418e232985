"""A real `charter demo` for the whole session (binary from CHARTER_BIN, default
target/debug/charter of the repository), and the tenants, agents, keys and policies the tests
use, made through the API."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from charter import Charter

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Server:
    url: str
    admin_key: str


@dataclass(frozen=True)
class World:
    """What the tests run against: tenant `tenant` (agents `bot` and `spender`), governed by
    the "Block external email" policy (plus an output rule), `spender` also by a $1.00 per-run
    cost cap; `other` is another tenant. `key` is a tenant key of `tenant` (read, execute)."""

    url: str
    admin_key: str
    key: str
    tenant: str
    other: str
    email_policy: dict[str, Any]
    cost_policy: dict[str, Any]

    def client(self) -> Charter:
        return Charter(self.url, self.key)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    binary = Path(os.environ.get("CHARTER_BIN") or ROOT / "target" / "debug" / "charter")
    if not binary.is_file():
        pytest.fail(f"no charter binary at {binary}: build it (cargo build -p charter-cli) or set CHARTER_BIN")
    data = tempfile.mkdtemp(prefix="charter-sdk-")
    err = open(Path(data) / "stderr.log", "w+b")
    proc = subprocess.Popen(
        [str(binary), "demo", "--listen", "127.0.0.1:0", "--data-dir", str(Path(data) / "db")],
        stdout=subprocess.PIPE,
        stderr=err,
        env={**os.environ, "RUST_LOG": "warn"},
        text=True,
    )
    url = key = None
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("bootstrap key: "):
            key = line.split(": ", 1)[1].strip()
        if line.startswith("listening on "):
            url = line.split(" on ", 1)[1].strip()
            break
    if not url or not key:
        proc.kill()
        err.seek(0)
        pytest.fail(f"charter demo did not start: {err.read().decode(errors='replace')[-2000:]}")
    try:
        yield Server(url, key)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        err.close()
        shutil.rmtree(data, ignore_errors=True)


EMAIL_RULE = {
    "id": "external-email",
    "type": "tool",
    "effect": "deny",
    "tools": ["*.send_email"],
    "when": [{"arg": "to", "op": "not_ends_with", "value": "@acme.com"}],
}
OUTPUT_RULE = {"id": "no-secrets", "type": "output", "deny_phrases": ["TOP-SECRET"], "pii": ["credit_card"]}
COST_RULE = {"id": "budget", "type": "cost", "max_usd": "1.00", "period": "run", "per": "run"}


@pytest.fixture(scope="session")
def world(server: Server) -> Iterator[World]:
    suffix = secrets.token_hex(3)
    tenant, other = f"sdk-{suffix}", f"other-{suffix}"
    with Charter(server.url, server.admin_key) as admin:
        admin.request("POST", "/v1/tenants", json={"id": tenant, "name": "SDK tests"})
        admin.request("POST", "/v1/tenants", json={"id": other, "name": "Another tenant"})
        for agent in ("bot", "spender", "agentic"):
            admin.request("POST", f"/v1/tenants/{tenant}/agents", json={"id": agent, "name": agent})
        admin.request("POST", f"/v1/tenants/{other}/agents", json={"id": "bot", "name": "bot"})
        email = admin.policies.create(
            "Block external email",
            {"type": "tenant", "tenant_id": tenant},
            [EMAIL_RULE, OUTPUT_RULE],
            description="Support agents never email outside acme.com",
        )
        email = admin.policies.activate(email["id"], force=True)
        cost = admin.policies.create(
            "Spend cap", {"type": "agent", "tenant_id": tenant, "agent_id": "spender"}, [COST_RULE]
        )
        cost = admin.policies.activate(cost["id"], force=True)
        key = admin.request(
            "POST", "/v1/keys", json={"name": "sdk tests", "tenant_id": tenant, "scopes": ["read", "execute"]}
        )["key"]
        yield World(server.url, server.admin_key, key, tenant, other, email, cost)


@pytest.fixture
def client(world: World) -> Iterator[Charter]:
    with world.client() as c:
        yield c


@pytest.fixture
def admin(world: World) -> Iterator[Charter]:
    with Charter(world.url, world.admin_key) as c:
        yield c


def closed_port_url() -> str:
    """The URL of a port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def actions_of(client: Charter, run_id: str) -> list[tuple[str, str | None, str | None]]:
    """(kind, tool or text, decision) of each recorded action of a run."""
    out = []
    for a in client.runs.get(run_id).actions:
        what = a.action.get("tool") or a.action.get("text") or a.action.get("model")
        out.append((a.action.get("kind", ""), what, a.decision))
    return out
