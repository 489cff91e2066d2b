"""The chaos tier's figures: faults on a real API server (a local kwok control plane).

Runs ``tests/chaos`` (every fault kind x run phase x cleanup policy, plus ``run_many`` with
100 runs through two API server restarts) in a child pytest and returns what its last test
writes: scenarios run and passed, runs lost, objects leaked, hangs, the recovery time from the
API server answering ``/readyz`` again to every in-flight run progressing (median, max, and
the slowest scenario), and the requests per run under each fault (median per fault, and the
most any run made; ``none``: 8 without faults for a scenario's run, with its Secret and
followed log; ``bench_kwok``'s plain run makes 4).

``python benchmarks/run.py chaos`` records them under ``chaos`` in ``results/latest.json``.
Needs the control-plane binaries (``python -m podrunner.testing.controlplane build``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="podrunner-chaos-") as scratch:
        figures = Path(scratch) / "chaos.json"
        env = {**os.environ, "PODRUNNER_CHAOS_FIGURES": str(figures)}
        child = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/chaos", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if not figures.exists():
            raise RuntimeError(f"the chaos tier wrote no figures:\n{child.stdout[-3000:]}")
        data: dict[str, object] = json.loads(figures.read_text())
        data["pytest_exit_code"] = child.returncode
        return data
