"""What the pytest plugin costs a project that does not use it: ``pytest --collect-only``.

An empty project (one trivial test file, no conftest) is collected in fresh interpreters with the
plugin loaded by its entry point and with ``-p no:podrunner``; the difference is the plugin's
load cost. Other third-party plugins are disabled in both runs so only podrunner differs.

Each of the 15 rounds runs both collections back to back (alternating which goes first) and
records their difference, so a busy machine slows both sides of one difference alike; the
figure is the median difference. Bytecode caching is on, as on a user's machine
(``PYTHONDONTWRITEBYTECODE`` would make every run recompile the plugin under pytest's
assertion rewriting).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 15
OTHERS = ["-p", "no:kmock", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:hypothesispytest"]


_UNSET = ("PYTEST_ADDOPTS", "PODRUNNER_BACKEND", "PYTHONDONTWRITEBYTECODE")


def collect_seconds(project: Path, extra: list[str]) -> float:
    """Wall time of one ``pytest --collect-only -q`` in ``project``."""
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *OTHERS, *extra],
        cwd=project,
        capture_output=True,
        check=True,
        env=env,
    )
    return time.perf_counter() - start


def run(rounds: int = RUNS) -> dict[str, object]:
    no_plugin = ["-p", "no:podrunner"]
    with_plugin: list[float] = []
    without: list[float] = []
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
    differences = [a - b for a, b in zip(with_plugin, without, strict=True)]
    return {
        "collect_with_plugin_median_ms": round(statistics.median(with_plugin) * 1000, 1),
        "collect_without_plugin_median_ms": round(statistics.median(without) * 1000, 1),
        "plugin_overhead_ms": round(statistics.median(differences) * 1000, 1),
        "plugin_overhead_budget_ms": 10.0,
        "runs": rounds,
    }


if __name__ == "__main__":
    print(run())
