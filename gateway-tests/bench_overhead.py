"""Overhead per tool call through `charter mcp-gateway`, against calling the upstream directly,
measured in one run (scripts/bench-gateway), over stdio and Streamable HTTP, p50 and p99:

- direct: the `mcp` client calling the upstream itself;
- null relay: the same through `charter mcp-gateway --null-relay`, a proxy with no logic (the
  cost any proxy pays: extra pipe or HTTP hops, wake-ups);
- through: through the gateway, every call and result checked by a real `charter serve`;
- the checks alone: the gateway's two checks per call (`tool_call`, `output`) sent in a loop by
  the gateway's own Charter client (`--time-checks`), and for comparison by Python's
  http.client;
- the gateway's own work, measured inside (CHARTER_GATEWAY_TIMINGS: the time from the request
  read to the response written, less the waits on Charter and on the upstream) and by
  subtraction (through − direct − checks alone − the null relay's cost).

Every measure runs `--rounds` times, alternating, so that a drift of the machine's load hits all
of them alike; p50 and p99 are over all rounds' samples. `--variant LABEL:ENV=VALUE` adds a
gateway run with that environment (e.g. `RUST_LOG=...`), and `--variant LABEL@BINARY` one through
another build, beside the default one, to compare builds or settings in one run.

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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "conformance_server.py"
TOOL = "test_simple_text"  # one text block: one output check per call
TEXT = "This is a simple text response for testing."


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
def process(command: list[str], env: dict[str, str] | None = None, announces: bool = True) -> Any:
    """Runs `command` for the block. Its standard output is piped only when it `announces` its
    URL there (read with `listening_url`); otherwise it goes nowhere: a pipe nobody reads fills
    at 64 KiB and then blocks its writer for good, and the HTTP fixture (uvicorn) writes an
    access-log line of about 56 bytes per request, so it would freeze after about 1,160 calls."""
    p = subprocess.Popen(command, stdout=subprocess.PIPE if announces else subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, **(env or {})))
    try:
        yield p
    finally:
        p.terminate()
        p.wait(timeout=15)


def listening_url(p: subprocess.Popen[str]) -> str:
    """The URL of the `listening on URL` line; whatever the process prints after it is read and
    dropped on a thread of its own, so that the pipe never fills."""
    assert p.stdout is not None
    line = ""
    while not line.startswith("listening on "):
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("the process did not start listening")
    threading.Thread(target=p.stdout.read, daemon=True).start()
    return line.split()[-1]


# A call unanswered this long is a stall, not a slow call (the p99 is tens of ms even on a
# loaded machine): the run stops and says where, rather than waiting for ever.
STALL_SECONDS = 60


async def call(session: ClientSession, name: str, number: int) -> None:
    try:
        with anyio.fail_after(STALL_SECONDS):
            await session.call_tool(TOOL, {})
    except TimeoutError:
        raise RuntimeError(f"{name}: call {number} unanswered after {STALL_SECONDS} s") from None


async def time_calls(session: ClientSession, calls: int, warmup: int, name: str) -> list[float]:
    for i in range(warmup):
        await call(session, name, i + 1)
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        await call(session, name, warmup + i + 1)
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


@dataclass
class Variant:
    label: str
    binary: str
    env: dict[str, str] = field(default_factory=dict)


def parse_variant(spec: str, binary: str) -> Variant:
    """`LABEL[@BINARY][:KEY=VALUE]`."""
    head, _, assignment = spec.partition(":")
    label, _, other = head.partition("@")
    env = {}
    if assignment:
        key, _, value = assignment.partition("=")
        env[key] = value
    return Variant(label, other or binary, env)


@dataclass
class Results:
    samples: dict[str, list[float]] = field(default_factory=dict)
    rounds: dict[str, list[float]] = field(default_factory=dict)
    inside: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def add(self, name: str, samples: list[float]) -> None:
        self.samples.setdefault(name, []).extend(samples)
        self.rounds.setdefault(name, []).append(percentile(samples, 50))

    def p(self, name: str, q: float) -> float:
        return percentile(self.samples[name], q)


def read_timings(path: Path, warmup: int) -> list[dict[str, float]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[warmup:]


# Gaps between stages that are waits, not the gateway's work.
WAITS = {("check_sent", "check_answered"), ("output_sent", "output_answered"),
         ("forwarded", "upstream_read")}


def own_gaps(lines: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each call's gaps between consecutive stages (from the read), waits left out."""
    gaps: dict[str, list[float]] = {}
    for line in lines:
        previous, at = "read", 0.0
        for stage, t in line["stages"]:
            if (previous, stage) not in WAITS:
                gaps.setdefault(f"{previous}→{stage}", []).append(t - at)
            previous, at = stage, t
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[],
                        help="LABEL[@BINARY][:KEY=VALUE]: another gateway run to compare")
    parser.add_argument("--only", choices=["stdio", "http"], help="one transport only")
    a = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    key = "bench-" + secrets.token_urlsafe(24)
    env_key = {"CHARTER_BENCH_KEY": key, "RUST_LOG": "warn"}
    variants = [Variant("gateway", a.binary)] + [parse_variant(v, a.binary) for v in a.variant]
    transports = [a.only] if a.only else ["stdio", "http"]
    r = Results()

    with process([a.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(work / "charter")],
                 {"CHARTER_BOOTSTRAP_KEY": key, "RUST_LOG": "warn"}) as serve:
        url = listening_url(serve)
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

        stdio_config = config({"name": "fx", "command": sys.executable, "args": [str(FIXTURE)]})

        def timings_env(name: str, round_: int) -> tuple[Path, dict[str, str]]:
            path = work / f"timings-{name.replace(' ', '-')}-{round_}.jsonl"
            return path, {"CHARTER_GATEWAY_TIMINGS": str(path)}

        async def stdio_round(round_: int) -> None:
            async with stdio_session(sys.executable, [str(FIXTURE)], {}) as s:
                r.add("stdio direct", await time_calls(s, a.calls, a.warmup, "stdio direct"))
            async with stdio_session(a.binary, ["mcp-gateway", "--config", str(stdio_config), "--null-relay"],
                                     env_key) as s:
                r.add("stdio null relay", await time_calls(s, a.calls, a.warmup, "stdio null relay"))
            for v in variants:
                name = f"stdio through {v.label}"
                path, env = timings_env(name, round_)
                async with stdio_session(v.binary, ["mcp-gateway", "--config", str(stdio_config)],
                                         {**env_key, **env, **v.env}) as s:
                    r.add(name, await time_calls(s, a.calls, a.warmup, name))
                r.inside.setdefault(name, []).extend(read_timings(path, a.warmup))

        def http_round(round_: int) -> None:
            fixture_port = free_port()
            with process([sys.executable, str(FIXTURE), "http", str(fixture_port)], announces=False):
                wait_port(fixture_port)
                upstream = {"name": "fx", "url": f"http://127.0.0.1:{fixture_port}/mcp"}
                front = {"http": {"listen": "127.0.0.1:0"}}
                gw = config(upstream, front)

                async def timed(target: str, name: str) -> None:
                    async with http_session(target) as s:
                        r.add(name, await time_calls(s, a.calls, a.warmup, name))

                anyio.run(timed, f"http://127.0.0.1:{fixture_port}/mcp", "http direct")
                with process([a.binary, "mcp-gateway", "--config", str(gw), "--null-relay"], env_key) as p:
                    anyio.run(timed, listening_url(p), "http null relay")
                for v in variants:
                    name = f"http through {v.label}"
                    path, env = timings_env(name, round_)
                    with process([v.binary, "mcp-gateway", "--config", str(gw)], {**env_key, **env, **v.env}) as p:
                        anyio.run(timed, listening_url(p), name)
                    r.inside.setdefault(name, []).extend(read_timings(path, a.warmup))

        def checks_round() -> None:
            # The gateway's own client, as the gateway sends them.
            out = subprocess.run(
                [a.binary, "mcp-gateway", "--config", str(stdio_config),
                 "--time-checks", str(a.warmup + a.calls), "--check-tool", TOOL, "--check-text", TEXT],
                env=dict(os.environ, **env_key), check=True, capture_output=True, text=True).stdout
            r.add("checks alone (gateway's client)", json.loads(out)[a.warmup:])
            # Python's http.client, the figure of the first measurements, for comparison.
            run = api("POST", "/v1/runs", {"agent_id": "bench", "tenant_id": "bench"})["id"]
            checks = []
            for i in range(a.warmup + a.calls):
                start = time.perf_counter()
                api("POST", f"/v1/runs/{run}/check", {"kind": "tool_call", "tool": f"fx.{TOOL}", "args": {}})
                api("POST", f"/v1/runs/{run}/check", {"kind": "output", "text": TEXT, "channel": "mcp"})
                if i >= a.warmup:
                    checks.append((time.perf_counter() - start) * 1000)
            r.add("checks alone (Python http.client)", checks)

        for round_ in range(a.rounds):
            if "stdio" in transports:
                anyio.run(stdio_round, round_)
            if "http" in transports:
                http_round(round_)
            checks_round()

    report(r, a, variants, transports)


def report(r: Results, a: argparse.Namespace, variants: list[Variant], transports: list[str]) -> None:
    ms = lambda x: f"{x:.3f}"  # noqa: E731
    print(f"binary: {a.binary}; {a.rounds} rounds of {a.calls} calls each after {a.warmup} warm-up "
          f"calls, alternating; ms; load average {os.getloadavg()[0]:.2f}")
    print()
    print("| measure | p50 | p99 | p50 of each round |")
    print("|---|---:|---:|---|")
    for name in r.samples:
        rounds = ", ".join(ms(x) for x in r.rounds[name])
        print(f"| {name} | {ms(r.p(name, 50))} | {ms(r.p(name, 99))} | {rounds} |")
    print()
    print("Inside the gateway (CHARTER_GATEWAY_TIMINGS), per call, ms:")
    print()
    print("| run | total p50 | awaiting Charter p50 | awaiting the upstream p50 | own work p50 | own work p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, lines in r.inside.items():
        if not lines:
            continue
        col = lambda k, q=50: percentile([line[k] / 1000 for line in lines], q)  # noqa: E731
        print(f"| {name} | {ms(col('total_us'))} | {ms(col('charter_us'))} | {ms(col('upstream_us'))} | "
              f"{ms(col('own_us'))} | {ms(col('own_us', 99))} |")
    print()
    print("The gateway's own work by step (p50 of the gap between consecutive stages; the waits on")
    print("Charter and on the upstream left out), µs:")
    print()
    gaps_by_run = {name: own_gaps(lines) for name, lines in r.inside.items() if lines}
    steps = list(dict.fromkeys(step for gaps in gaps_by_run.values() for step in gaps))
    print("| run | " + " | ".join(steps) + " |")
    print("|---|" + "---:|" * len(steps))
    for name, gaps in gaps_by_run.items():
        cells = [f"{percentile(gaps[step], 50):.1f}" if step in gaps else "" for step in steps]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    checks = r.p("checks alone (gateway's client)", 50)
    for transport in transports:
        direct = r.p(f"{transport} direct", 50)
        floor = r.p(f"{transport} null relay", 50) - direct
        for v in variants:
            name = f"{transport} through {v.label}"
            added = r.p(name, 50) - direct
            lines = r.inside.get(name) or []
            inside = percentile([line["own_us"] / 1000 for line in lines], 50) if lines else float("nan")
            by_subtraction = added - checks - floor
            print(f"{name}: added p50 {ms(added)} (p99 {ms(r.p(name, 99) - r.p(f'{transport} direct', 99))}); "
                  f"checks alone {ms(checks)}, null relay's cost {ms(floor)} ({floor / direct:.0%} of direct); "
                  f"own work inside {ms(inside)} = {inside / direct:.0%} of the direct p50 "
                  f"(by subtraction {ms(by_subtraction)} = {by_subtraction / direct:.0%}); "
                  f"target own ≤ 10% ({ms(0.1 * direct)}): {'met' if inside <= 0.1 * direct else 'NOT met'}; "
                  f"target added ≤ checks + 10% ({ms(checks + 0.1 * direct)}): "
                  f"{'met' if added <= checks + 0.1 * direct else 'NOT met'}; "
                  f"added − checks − own inside = {ms(added - checks - inside)} (outside the timed span)")
    mean = statistics.mean(r.samples["checks alone (gateway's client)"])
    print(f"(mean of the checks alone, gateway's client: {mean:.3f} ms)")


if __name__ == "__main__":
    main()
