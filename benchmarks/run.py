"""Run every ``benchmarks/bench_*.py``, print its figures, and record them.

Each benchmark module defines ``run() -> dict[str, object]`` returning named figures (numbers
with their unit in the name, e.g. ``create_get_delete_ops_per_s``). Results are merged into
``benchmarks/results/latest.json`` under the module's name, with the machine and the date, so
docs and notes quote figures from one file. ``python benchmarks/run.py fake runner`` runs only
the named modules.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import platform
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
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {name}", flush=True)
        try:
            figures = module.run()
        except Exception as exc:  # a broken benchmark must not hide the others' figures
            print(f"   FAILED: {exc!r}", flush=True)
            failed = True
            continue
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
