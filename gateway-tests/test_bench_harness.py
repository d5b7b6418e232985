"""The benchmark's process handling (bench_overhead.py): a child's standard output must never
fill a pipe nobody reads, or the child blocks on its next write and every call to it waits for
ever. The HTTP fixture's access log (a line per request) fills a 64 KiB pipe in about 1,160
calls, fewer than one bench round makes."""

from __future__ import annotations

import subprocess
import sys

import bench_overhead

# Four times a Linux pipe's default capacity (64 KiB).
FLOOD = 256 * 1024


def test_a_process_that_announces_nothing_can_write_all_it_wants() -> None:
    command = [sys.executable, "-c", f"import sys; sys.stdout.write('x' * {FLOOD}); sys.stdout.flush()"]
    with bench_overhead.process(command, announces=False) as p:
        try:
            assert p.wait(timeout=20) == 0
        except subprocess.TimeoutExpired:
            raise AssertionError("the child blocked writing its standard output") from None


def test_what_a_process_prints_after_its_url_is_drained() -> None:
    script = (
        "import sys; print('listening on http://127.0.0.1:1/mcp', flush=True); "
        f"sys.stdout.write('log line\\n' * ({FLOOD} // 9)); sys.stdout.flush()"
    )
    with bench_overhead.process([sys.executable, "-c", script]) as p:
        assert bench_overhead.listening_url(p) == "http://127.0.0.1:1/mcp"
        try:
            assert p.wait(timeout=20) == 0
        except subprocess.TimeoutExpired:
            raise AssertionError("the child blocked writing after its URL") from None
