"""Files out: 100 MB of results copied out of a pod on the fake's local runtime.

Target (issue 18, figures): 100 MB of results collected with ``run(collect=...)``, wall time and
peak memory, with at most 64 MB above the baseline when the files go to a directory. Each figure
comes from a fresh interpreter: a baseline run (same code, same collect to a directory, a 1 KB
file), the run without ``collect`` (what the command costs), the run collecting to a directory
and the run keeping the files in memory; ``tar_alone_wall_s`` is the machine's ``tar`` writing
the same files to a pipe read by Python. The main container writes ten 10 MB files of random
bytes and prints their SHA-256 digests; the collected files are checked against them.

The fake's local runtime is the fake here: its streamed exec runs the machine's ``tar`` and
the run extracts its pipe as it is read. On kwok (a local control plane) no container runs: its
local exec runs the machine's ``tar`` over files this benchmark writes beforehand, and the
stream comes back through the API server's exec websocket to ``KubernetesBackend``, frame by
frame (``kwok_*`` figures; the baseline is the same code collecting 1 KB there). A run whose
copy fails records ``CollectFailed``'s message in ``kwok_100mb_<mode>_error``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPEATS = 3
FILES = 10
FILE_MB = 10
GOAL_MB = 64.0

_CHILD = r"""
import hashlib, json, os, resource, shutil, subprocess, sys, tempfile, time
mode, files, file_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from podrunner import Collect, PodRunner, PodSpec, Volume
from podrunner.testing import FakeCluster
script = (
    'i=0; while [ $i -lt "$1" ]; do head -c "$2" /dev/urandom > "$0/f$i.bin"; i=$((i+1)); done; '
    'cd "$0" && sha256sum f*.bin'
)
size = file_mb * 1024 * 1024 if mode != "baseline" else 1024
argv = ["sh", "-c", script, "/out", str(files), str(size)]
spec = PodSpec("busybox:1.36", argv, volumes=[Volume.empty_dir("/out")])
runner = PodRunner(FakeCluster(runtime="local").backend)
runner.run(PodSpec("busybox:1.36", ["true"]), collect=["/out/**"])  # warm: imports, first run
dest = os.path.join(tempfile.mkdtemp(prefix="podrunner-bench-collect-"), "out")
collect = {
    "none": None,
    "baseline": Collect(["/out/**"], directory=dest, max_bytes=None),
    "directory": Collect(["/out/**"], directory=dest, max_bytes=None),
    "memory": Collect(["/out/**"], max_bytes=None),
}[mode]
start = time.perf_counter()
result = runner.run(spec, timeout=600, collect=collect)
wall = time.perf_counter() - start
assert result.ok, result
identical = True
if collect is not None:
    expected = dict(line.split()[::-1] for line in result.logs.splitlines())
    got = {name: hashlib.sha256(result.files[name]).hexdigest() for name in result.files}
    identical = got == expected and result.files.total_bytes == files * size
shutil.rmtree(os.path.dirname(dest))
runner.close()
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall_s": wall, "rss_mb": rss_mb, "identical": identical}))
"""

_TAR = r"""
import os, subprocess, sys, tempfile, time
files, file_mb = int(sys.argv[1]), int(sys.argv[2])
root = tempfile.mkdtemp(prefix="podrunner-bench-tar-")
for i in range(files):
    with open(os.path.join(root, f"f{i}.bin"), "wb") as f:
        f.write(os.urandom(file_mb * 1024 * 1024))
start = time.perf_counter()
out = subprocess.run(["tar", "-cf", "-", "-C", root, "."], stdout=subprocess.PIPE, check=True)
wall = time.perf_counter() - start
subprocess.run(["rm", "-rf", root], check=True)
print(wall)
"""


_KWOK_CHILD = r"""
import hashlib, json, os, resource, shutil, sys, tempfile, time
mode, kubeconfig, root = sys.argv[1], sys.argv[2], sys.argv[3]
expected = json.loads(sys.argv[4])
from podrunner import Collect, PodRunner, PodSpec, Volume
from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend
backend = KubernetesBackend(ClusterConfig.from_kubeconfig_file(kubeconfig))
runner = PodRunner(backend)
spec = PodSpec("busybox:1.36", ["true"], volumes=[Volume.empty_dir(root)])
runner.run(spec, timeout=120)  # warm: imports, connections
dest = os.path.join(tempfile.mkdtemp(prefix="podrunner-bench-collect-"), "out")
collect = Collect([f"{root}/**"], max_bytes=None, directory=None if mode == "memory" else dest)
from podrunner import CollectFailed
start = time.perf_counter()
error = ""
try:
    result = runner.run(spec, timeout=600, collect=collect)
    got = {name: hashlib.sha256(result.files[name]).hexdigest() for name in result.files}
except CollectFailed as exc:
    error, got = exc.message, {}
wall = time.perf_counter() - start
shutil.rmtree(os.path.dirname(dest))
runner.close()
backend.close()
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall_s": wall, "rss_mb": rss_mb, "identical": got == expected, "error": error}))
"""


def write_files(root: Path, count: int, size: int) -> dict[str, str]:
    """Write ``count`` random files of ``size`` bytes under ``root``; return their digests."""
    root.mkdir(parents=True)
    digests = {}
    for i in range(count):
        data = os.urandom(size)
        (root / f"f{i}.bin").write_bytes(data)
        digests[f"f{i}.bin"] = hashlib.sha256(data).hexdigest()
    return digests


def kwok_figures() -> dict[str, object]:
    """The same collection through a local kwok control plane (best of repeats)."""
    from podrunner.testing.controlplane.kwok import KwokCluster

    cluster = KwokCluster()
    if cluster.missing_binaries():
        return {"kwok_skipped": "kwok binaries missing"}
    tmp = Path(tempfile.mkdtemp(prefix="podrunner-bench-kwok-collect-"))
    try:
        big = write_files(tmp / "big", FILES, FILE_MB * 1024 * 1024)
        small = write_files(tmp / "small", 1, 1024)
        with cluster:

            def one(mode: str, root: str, expected: dict[str, str]) -> dict[str, object]:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        _KWOK_CHILD,
                        mode,
                        str(cluster.kubeconfig),
                        root,
                        json.dumps(expected),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode:
                    raise RuntimeError(f"kwok {mode} run failed: {out.stderr[-3000:]}")
                got: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
                return got

            base_rss = float(str(one("directory", str(tmp / "small"), small)["rss_mb"]))
            figures: dict[str, object] = {"kwok_baseline_peak_rss_mb": round(base_rss, 1)}
            for mode in ("directory", "memory"):
                runs = [one(mode, str(tmp / "big"), big) for _ in range(REPEATS)]
                wall = min(float(str(r["wall_s"])) for r in runs)
                rss = max(float(str(r["rss_mb"])) for r in runs)
                name = f"kwok_100mb_{mode}"
                figures[f"{name}_wall_s"] = round(wall, 3)
                figures[f"{name}_peak_rss_above_baseline_mb"] = round(rss - base_rss, 1)
                figures[f"{name}_byte_identical"] = all(r["identical"] for r in runs)
                errors = sorted({str(r["error"])[:160] for r in runs if r["error"]})
                if errors:
                    figures[f"{name}_error"] = "; ".join(errors)
            return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def child(mode: str) -> dict[str, object]:
    """Run one measurement in a fresh interpreter and return its figures."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(FILES), str(FILE_MB)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def best(mode: str) -> dict[str, object]:
    """The fastest of :data:`REPEATS` runs; the peak memory is the highest seen."""
    runs = [child(mode) for _ in range(REPEATS)]
    fastest = dict(min(runs, key=lambda r: float(str(r["wall_s"]))))
    fastest["rss_mb"] = max(float(str(r["rss_mb"])) for r in runs)
    fastest["identical"] = all(r["identical"] for r in runs)
    return fastest


def tar_alone() -> float:
    """Seconds the machine's tar takes to write the same data to a pipe (best of repeats)."""
    walls = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", _TAR, str(FILES), str(FILE_MB)],
            capture_output=True,
            text=True,
            check=True,
        )
        walls.append(float(out.stdout.strip()))
    return min(walls)


def run() -> dict[str, object]:
    baseline = best("baseline")
    base_rss = float(str(baseline["rss_mb"]))
    none = best("none")
    figures: dict[str, object] = {
        "results_mb": FILES * FILE_MB,
        "tar_alone_wall_s": round(tar_alone(), 3),
        "run_without_collect_wall_s": round(float(str(none["wall_s"])), 3),
        "baseline_peak_rss_mb": round(base_rss, 1),
    }
    for mode in ("directory", "memory"):
        got = best(mode)
        figures[f"{mode}_wall_s"] = round(float(str(got["wall_s"])), 3)
        figures[f"{mode}_peak_rss_above_baseline_mb"] = round(
            float(str(got["rss_mb"])) - base_rss, 1
        )
        figures[f"{mode}_byte_identical"] = got["identical"]
    figures.update(kwok_figures())
    figures["directory_goal_64mb_met"] = (
        float(str(figures["directory_peak_rss_above_baseline_mb"])) <= GOAL_MB
    )
    return figures


if __name__ == "__main__":
    print(run())
