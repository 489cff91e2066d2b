"""ClaudeWorker as a pool of one pod: what a task's claim costs next to the exec it guards.

A worker task is an exec of the Claude CLI in the worker's pod. Since the worker became a
``PodPool`` of one named pod, each task first claims the pod (a ``replace`` conditional on its
``resourceVersion``) and gives it back after (a merge patch): two writes that keep tasks of two
processes out of one ``HOME``. Side by side, alternating, ``REPEATS`` of each, on kwok (a local
control plane) and on the fake:

- ``exec_only``: an exec of ``true`` straight into the worker's pod (what a task cost before,
  less the CLI itself);
- ``claimed_exec``: the same exec inside ``worker.pool.claim()`` (claim, exec, release): what a
  task costs now, less the CLI;
- ``cold_run``: ``PodRunner.run`` of ``true`` in a new pod (what a worker saves per task).

Medians and p90 in milliseconds; ``claim_overhead_ms`` is the difference of the medians.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

REPEATS = 20
IMAGE = "example.com/claude-code:2"


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (
        round(statistics.median(ordered) * 1000, 2),
        round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
    )


def _timed(fn: Any) -> float:
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def figures(runner: Any, prefix: str, cold_spec: Any) -> dict[str, object]:
    from podrunner.claude import ClaudeWorker

    worker = ClaudeWorker(runner, image=IMAGE, launcher_environ={}, start_timeout=120)
    samples: dict[str, list[float]] = {"exec_only": [], "claimed_exec": [], "cold_run": []}
    with worker:
        pod = worker.ensure_running()
        name, container = pod["metadata"]["name"], pod["spec"]["containers"][0]["name"]
        api = runner.api

        def claimed() -> None:
            with worker.pool.claim(timeout=60) as held:
                worker.pool.exec_in(held, ["true"], timeout=60)

        for _ in range(REPEATS):
            samples["exec_only"].append(
                _timed(lambda: api.exec(worker.namespace, name, container, ["true"]))
            )
            samples["claimed_exec"].append(_timed(claimed))
            samples["cold_run"].append(_timed(lambda: runner.run(cold_spec, timeout=120)))
    out: dict[str, object] = {}
    for key, values in samples.items():
        median, p90 = _ms(values)
        out[f"{prefix}{key}_median_ms"] = median
        out[f"{prefix}{key}_p90_ms"] = p90
    overhead = out[f"{prefix}claimed_exec_median_ms"] - out[f"{prefix}exec_only_median_ms"]  # type: ignore[operator]
    out[f"{prefix}claim_overhead_ms"] = round(overhead, 2)
    return out


def fake_figures() -> dict[str, object]:
    from podrunner import PodRunner, PodSpec
    from podrunner.testing import FakeCluster

    cluster = FakeCluster()
    cluster.when(image=IMAGE).hang()
    runner = PodRunner(cluster.backend)
    try:
        return figures(runner, "fake_", PodSpec("busybox:1.36", ["true"]))
    finally:
        runner.close()


def kwok_figures() -> dict[str, object]:
    from podrunner import PodRunner, PodSpec
    from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend
    from podrunner.testing.controlplane.kwok import KwokCluster

    cluster = KwokCluster()
    if cluster.missing_binaries():
        return {"kwok_skipped": "kwok binaries missing"}
    with cluster:
        backend = KubernetesBackend(ClusterConfig.from_kubeconfig_file(cluster.kubeconfig))
        runner = PodRunner(backend)
        try:
            return figures(runner, "kwok_", PodSpec("busybox:1.36", ["true"]))
        finally:
            runner.close()
            backend.close()


def run() -> dict[str, object]:
    out = fake_figures()
    out.update(kwok_figures())
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
