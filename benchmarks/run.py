"""Run every ``benchmarks/bench_*.py``, print its figures, and record them.

Each benchmark module defines ``run() -> dict[str, object]`` returning named figures (numbers
with their unit in the name, e.g. ``create_get_delete_ops_per_s``). Results are merged into
``benchmarks/results/latest.json`` under the module's name, with the machine and the date, so
docs and notes quote figures from one file. ``python benchmarks/run.py fake runner`` runs only
the named modules. Each module runs in a fresh interpreter, so none pays for another's heap.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "latest.json"


def main(argv: list[str]) -> int:
    wanted = set(argv)
    data: dict[str, object] = {}
    if RESULTS.exists():
        data = json.loads(RESULTS.read_text())
    failed = False
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        # Each benchmark runs in a fresh interpreter: the modules and objects an earlier one
        # left behind would otherwise make every garbage collection of the next one slower.
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:  # a broken benchmark must not hide the others' figures
            print(f"   FAILED: {child.stderr.strip()[-2000:]}", flush=True)
            failed = True
            continue
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        for key, value in figures.items():
            print(f"   {key}: {value}", flush=True)
        data[name] = figures
    data["_meta"] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"written to {RESULTS.relative_to(HERE.parent)}")
    return 1 if failed else 0


def one(path: Path) -> int:
    """Run one benchmark module and print its figures as one JSON line (the child's job)."""
    sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print(json.dumps(module.run()), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        sys.exit(one(Path(sys.argv[2])))
    sys.exit(main(sys.argv[1:]))
