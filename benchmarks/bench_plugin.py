"""What the pytest plugin costs a project that does not use it: ``pytest --collect-only``.

An empty project (one trivial test file, no conftest) is collected in fresh interpreters with the
plugin loaded by its entry point and with ``-p no:podrunner``; the difference is the plugin's
load cost. Other third-party plugins are disabled in both runs so only podrunner differs.
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


def collect_seconds(project: Path, extra: list[str], runs: int = RUNS) -> float:
    """Median wall time of ``pytest --collect-only -q`` in ``project``."""
    samples = []
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PODRUNNER_BACKEND")}
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", *OTHERS, *extra],
            cwd=project,
            capture_output=True,
            check=True,
            env=env,
        )
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmp:
        project = Path(tmp)
        (project / "test_empty.py").write_text("def test_nothing():\n    pass\n")
        collect_seconds(project, [], runs=2)  # warm the bytecode caches
        with_plugin = collect_seconds(project, [])
        without = collect_seconds(project, ["-p", "no:podrunner"])
    return {
        "collect_with_plugin_median_ms": round(with_plugin * 1000, 1),
        "collect_without_plugin_median_ms": round(without * 1000, 1),
        "plugin_overhead_ms": round((with_plugin - without) * 1000, 1),
        "runs": RUNS,
    }


if __name__ == "__main__":
    print(run())
