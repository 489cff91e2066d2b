"""How long `import podrunner` takes (against `import kubernetes`), and manifest build rate."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 15
TIMER = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str, runs: int = RUNS) -> float:
    """Median wall time of importing ``module`` in fresh interpreters."""
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", TIMER.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        samples.append(float(out))
    return statistics.median(samples)


def build_rate(seconds: float = 1.0) -> tuple[float, float]:
    """build_manifests calls per second for a plain spec and for one with secrets."""
    from podrunner import PodSpec, Resources, Volume, build_manifests

    plain = PodSpec(
        "busybox:1.36",
        ["sh", "-c", "echo hi"],
        env={"A": "1", "B": "2"},
        labels={"team": "ml"},
        resources=Resources(cpu_limit="500m", memory_limit="512Mi"),
        volumes=[Volume.empty_dir("/scratch"), Volume.pvc("claim", "/data")],
    )
    secret = plain.with_secret_env(TOKEN="x").with_secret_files({"/etc/creds.json": "{}"})
    rates = []
    for spec in (plain, secret):
        count = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(100):
                build_manifests(spec)
            count += 100
        rates.append(count / elapsed)
    return rates[0], rates[1]


def run() -> dict[str, object]:
    podrunner_s = import_seconds("podrunner")
    kubernetes_s = import_seconds("kubernetes")
    plain, with_secret = build_rate()
    return {
        "import_podrunner_median_ms": round(podrunner_s * 1000, 1),
        "import_kubernetes_median_ms": round(kubernetes_s * 1000, 1),
        "import_runs": RUNS,
        "build_manifests_per_s": round(plain),
        "build_manifests_with_secret_per_s": round(with_secret),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
