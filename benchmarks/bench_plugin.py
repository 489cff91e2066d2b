"""What the pytest plugin costs a project that does not use it: ``pytest --collect-only``.

An empty project (one trivial test file, no conftest) is collected in fresh interpreters with the
plugin loaded by its entry point and with ``-p no:podrunner``; the difference is the plugin's
load cost. Other third-party plugins are disabled in both runs so only podrunner differs.

Each of the 15 rounds runs both collections back to back (alternating which goes first) and
records their difference, so a busy machine slows both sides of one difference alike; the
figures are the median differences of wall time and of CPU time (user + system, which other
processes on a busy machine do not inflate). Bytecode caching is on, as on a user's machine
(``PYTHONDONTWRITEBYTECODE`` would make every run recompile the plugin under pytest's
assertion rewriting).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 15
OTHERS = ["-p", "no:kmock", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:hypothesispytest"]


_UNSET = ("PYTEST_ADDOPTS", "PODRUNNER_BACKEND", "PYTHONDONTWRITEBYTECODE")


def collect_seconds(project: Path, extra: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one ``pytest --collect-only -q`` in ``project``.

    CPU time is what the plugin costs even on a loaded machine, where wall time also measures
    the other processes.
    """
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *OTHERS, *extra],
        cwd=project,
        capture_output=True,
        check=True,
        env=env,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run(rounds: int = RUNS) -> dict[str, object]:
    no_plugin = ["-p", "no:podrunner"]
    with_plugin: list[tuple[float, float]] = []
    without: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmp:
        project = Path(tmp)
        (project / "test_empty.py").write_text("def test_nothing():\n    pass\n")
        for _ in range(2):  # warm the bytecode caches
            collect_seconds(project, [])
            collect_seconds(project, no_plugin)
        for i in range(rounds):
            if i % 2:
                with_plugin.append(collect_seconds(project, []))
                without.append(collect_seconds(project, no_plugin))
            else:
                without.append(collect_seconds(project, no_plugin))
                with_plugin.append(collect_seconds(project, []))

    def ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 1)

    pairs = list(zip(with_plugin, without, strict=True))
    return {
        "collect_with_plugin_median_ms": ms([w for w, _ in with_plugin]),
        "collect_without_plugin_median_ms": ms([w for w, _ in without]),
        "plugin_overhead_ms": ms([a[0] - b[0] for a, b in pairs]),
        "plugin_overhead_cpu_ms": ms([a[1] - b[1] for a, b in pairs]),
        "plugin_overhead_budget_ms": 10.0,
        "runs": rounds,
    }


if __name__ == "__main__":
    print(run())
