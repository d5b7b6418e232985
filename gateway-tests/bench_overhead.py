"""Overhead per tool call through `charter mcp-gateway`, against calling the upstream directly,
measured in one run (scripts/bench-gateway): stdio and Streamable HTTP, p50 and p99, and the
Charter checks' own round trips (one `tool_call` and one `output` check per call, the same two
the gateway makes) timed by themselves against the same server.

    python bench_overhead.py --binary target/release/charter --calls 500
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "conformance_server.py"
TOOL = "test_simple_text"  # one text block: one output check per call


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str] | None = None) -> Any:
    p = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, **(env or {})))
    try:
        yield p
    finally:
        p.terminate()
        p.wait(timeout=15)


async def time_calls(session: ClientSession, calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await session.call_tool(TOOL, {})
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await session.call_tool(TOOL, {})
        samples.append((time.perf_counter() - start) * 1000)
    return samples


@contextlib.asynccontextmanager
async def stdio_session(command: str, args: list[str], env: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with stdio_client(StdioServerParameters(command=command, args=args, env=env)) as (r, w):
        async with ClientSession(r, w) as session:
            await session.initialize()
            yield session


@contextlib.asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (r, w):
        async with ClientSession(r, w) as session:
            await session.initialize()
            yield session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    a = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    key = "bench-" + secrets.token_urlsafe(24)
    env_key = {"CHARTER_BENCH_KEY": key, "RUST_LOG": "warn"}
    results: dict[str, list[float]] = {}

    with process([a.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(work / "charter")],
                 {"CHARTER_BOOTSTRAP_KEY": key, "RUST_LOG": "warn"}) as serve:
        assert serve.stdout is not None
        line = ""
        while not line.startswith("listening on "):
            line = serve.stdout.readline()
            if not line:
                raise RuntimeError("charter serve did not start")
        url = line.split()[-1]
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port))

        def api(method: str, path: str, body: Any) -> Any:
            conn.request(method, path, json.dumps(body), {
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            assert response.status < 300, (path, response.status, data)
            return json.loads(data)

        api("POST", "/v1/tenants", {"id": "bench", "name": "Bench"})
        api("POST", "/v1/tenants/bench/agents", {"id": "bench", "name": "Bench"})

        def config(upstream: dict[str, Any], front: Any = "stdio") -> Path:
            path = work / f"gw-{secrets.token_hex(4)}.json"
            path.write_text(json.dumps({
                "charter": {"url": url, "key_env": "CHARTER_BENCH_KEY", "tenant": "bench", "agent": "bench"},
                "upstreams": [upstream], "front": front}))
            return path

        stdio_upstream = {"name": "fx", "command": sys.executable, "args": [str(FIXTURE)]}

        async def stdio_runs() -> None:
            async with stdio_session(sys.executable, [str(FIXTURE)], {}) as s:
                results["stdio direct"] = await time_calls(s, a.calls, a.warmup)
            gw = config(stdio_upstream)
            async with stdio_session(a.binary, ["mcp-gateway", "--config", str(gw)], env_key) as s:
                results["stdio through gateway"] = await time_calls(s, a.calls, a.warmup)

        anyio.run(stdio_runs)

        fixture_port = free_port()
        with process([sys.executable, str(FIXTURE), "http", str(fixture_port)]):
            wait_port(fixture_port)
            gw_port = free_port()
            gw = config({"name": "fx", "url": f"http://127.0.0.1:{fixture_port}/mcp"},
                        {"http": {"listen": f"127.0.0.1:{gw_port}"}})
            with process([a.binary, "mcp-gateway", "--config", str(gw)], env_key):
                wait_port(gw_port)

                async def http_runs() -> None:
                    async with http_session(f"http://127.0.0.1:{fixture_port}/mcp") as s:
                        results["http direct"] = await time_calls(s, a.calls, a.warmup)
                    async with http_session(f"http://127.0.0.1:{gw_port}/mcp") as s:
                        results["http through gateway"] = await time_calls(s, a.calls, a.warmup)

                anyio.run(http_runs)

        # The checks by themselves: the gateway's two per call, on one kept-alive connection.
        run = api("POST", "/v1/runs", {"agent_id": "bench", "tenant_id": "bench"})["id"]
        checks = []
        for i in range(a.warmup + a.calls):
            start = time.perf_counter()
            api("POST", f"/v1/runs/{run}/check", {"kind": "tool_call", "tool": f"fx.{TOOL}", "args": {}})
            api("POST", f"/v1/runs/{run}/check", {
                "kind": "output", "text": "This is a simple text response for testing.", "channel": "mcp"})
            if i >= a.warmup:
                checks.append((time.perf_counter() - start) * 1000)
        results["the two checks alone"] = checks

    p: Callable[[str, float], float] = lambda name, q: percentile(results[name], q)
    print(f"binary: {a.binary}; {a.calls} calls each after {a.warmup} warm-up calls; ms")
    print("| measure | p50 | p99 |")
    print("|---|---:|---:|")
    for name in results:
        print(f"| {name} | {p(name, 50):.3f} | {p(name, 99):.3f} |")
    for transport in ("stdio", "http"):
        added50 = p(f"{transport} through gateway", 50) - p(f"{transport} direct", 50)
        added99 = p(f"{transport} through gateway", 99) - p(f"{transport} direct", 99)
        own50 = added50 - p("the two checks alone", 50)
        ratio = own50 / p(f"{transport} direct", 50)
        print(f"{transport}: added p50 {added50:.3f} ms (p99 {added99:.3f}), of which the checks "
              f"{p('the two checks alone', 50):.3f}; the gateway's own work {own50:.3f} ms = "
              f"{ratio:.0%} of the direct call's p50 (target ≤ 10%)")
    print(f"(mean of the checks: {statistics.mean(results['the two checks alone']):.3f} ms)")


if __name__ == "__main__":
    main()
