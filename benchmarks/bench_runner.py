"""PodRunner on the fake cluster: lifecycles per second, concurrency, virtual time, requests.

Targets (issue 4): >= 5,000 complete runs/s on one core; 1,000 concurrent runs through
run_many all correct with at most 2 watch streams open; a one-virtual-hour run in < 5 ms.
"""

from __future__ import annotations

import statistics
import threading
import time
import tracemalloc

import bench_fake

from podrunner import PodRunner, PodSpec
from podrunner.manifest import build_manifests
from podrunner.testing import FakeCluster

SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "echo hi"])


def runs_per_second(n: int = 3000) -> float:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=1.0)
    runner = PodRunner(cluster.backend)
    for _ in range(200):
        runner.run(SPEC)
    start = time.perf_counter()
    for _ in range(n):
        result = runner.run(SPEC)
        assert result.ok and result.logs == "hi\n"
    return n / (time.perf_counter() - start)


def fake_share_us(n: int = 3000) -> float:
    """Microseconds of the raw backend lifecycle of the runner's own manifest (no runner).

    The same calls a run makes (create, watch to a terminal phase, read the log, delete) on
    the pod ``build_manifests`` produces for :data:`SPEC`: what a run costs before any of
    the runner's own work.
    """
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=1.0)
    backend = cluster.backend
    spent = 0.0
    for i in range(n + 200):
        manifest = build_manifests(SPEC).pod  # not timed: the runner's share includes it
        start = time.perf_counter()
        bench_fake.lifecycle(backend, manifest)
        if i >= 200:
            spent += time.perf_counter() - start
    return spent / n * 1e6


def virtual_hour_ms(repeats: int = 50) -> float:
    times = []
    for _ in range(repeats):
        cluster = FakeCluster()
        cluster.when(image="busybox:*").succeed(logs="done\n", after=3600.0)
        runner = PodRunner(cluster.backend)
        start = time.perf_counter()
        result = runner.run(SPEC, timeout=7200)
        times.append((time.perf_counter() - start) * 1000)
        assert result.ok and result.duration >= 3600
    return statistics.median(times)


def requests_per_run() -> dict[str, object]:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=1.0)
    runner = PodRunner(cluster.backend)
    runner.run(SPEC)
    plain = [f"{a.verb} {a.kind}" for a in cluster.actions]
    before = len(cluster.actions)
    runner.run(SPEC.with_secret_env(TOKEN="x"))
    with_secret = [f"{a.verb} {a.kind}" for a in cluster.actions[before:]]
    return {
        "requests_per_run": len(plain),
        "requests_per_run_calls": ", ".join(plain),
        "requests_per_run_with_secret": len(with_secret),
        "requests_per_run_with_secret_calls": ", ".join(with_secret),
    }


def concurrent(n: int = 1000) -> dict[str, object]:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=30.0)
    runner = PodRunner(cluster.backend)
    specs = [SPEC.with_labels(i=str(i)) for i in range(n)]
    threading.stack_size(256 * 1024)  # 1,000 threads: keep their stacks small
    tracemalloc.start()
    start = time.perf_counter()
    results = list(runner.run_many(specs, max_parallel=n))
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    threading.stack_size(0)
    ok = sum(1 for r in results if not isinstance(r, Exception) and r.ok and r.logs == "hi\n")
    stats = runner.watch_stats()
    watches = sum(1 for a in cluster.actions if a.verb == "watch")
    return {
        "run_many_1000_correct": ok,
        "run_many_1000_seconds": round(elapsed, 3),
        "run_many_1000_peak_watch_streams": stats["peak_open_streams"],
        "run_many_1000_watch_requests": watches,
        "run_many_1000_peak_python_kib_per_run": round(peak / n / 1024, 1),
    }


def run() -> dict[str, object]:
    runs = runs_per_second()
    hour = virtual_hour_ms()
    fake_us = fake_share_us()
    floor_us = bench_fake.bench_floor_model(build_manifests(SPEC).pod)
    figures: dict[str, object] = {
        "runs_per_s": round(runs),
        "runs_target_5000_met": runs >= 5_000,
        "run_us": round(1e6 / runs, 1),
        "run_fake_lifecycle_us": round(fake_us, 1),
        "run_runner_own_us": round(1e6 / runs - fake_us, 1),
        "run_fake_floor_model_us": round(floor_us, 1),
        "virtual_hour_run_ms": round(hour, 3),
        "virtual_hour_target_5ms_met": hour < 5.0,
    }
    figures.update(requests_per_run())
    many = concurrent()
    figures.update(many)
    figures["run_many_1000_target_met"] = (
        many["run_many_1000_correct"] == 1000 and many["run_many_1000_peak_watch_streams"] <= 2
    )
    return figures
