"""Warm pool: time from ``run()`` to the command starting, cold pod against a warm-pool claim.

Targets (issue 18, figures), on kwok (a local control plane), side by side in one run:

- ``start_*``: from the call to the moment the command can start. Cold: ``PodRunner.run`` until
  its ``on_state`` callback reports the pod Running (the pod is created, scheduled and its
  container started). Warm: ``PodPool.claim()`` until the block is entered, the moment the
  pool's ``run`` issues the exec (a warm pod is claimed with a conditional replace). Before each
  warm sample the pool is let refill (not timed): the figure is the claim of a warm pod. Cold
  and warm samples alternate, ``REPEATS`` of each; medians and p90 are reported, and the goal
  is ``cold / warm >= 20``. ``run_*`` are whole runs of ``true`` (cold: to the result; warm:
  claim, exec, delete).
- ``claims_*``: claims per second with 8 concurrent claimers (two pools of one name, as two
  processes would be, four threads each, 8 pods each), each claim a claim and a release
  (``recycle``) without exec: the exec is the command's own cost, not the pool's. Every claimer
  records which pod it holds; ``double_claims`` counts a pod held by two claimers at once
  (the goal is 0 over 10,000 claims). ``writes_per_s_8_writers`` is the API server's own rate
  of merge patches from 8 threads, for reference: a claim and its release are two writes.

The same figures on the fake (``fake_*``), where pods start in virtual time.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

REPEATS = 20
CLAIMS = 10_000
CLAIMERS = 8
SPEC_ANNOTATIONS = {"sim.podrunner.dev/duration": "1000000"}


def _stats(prefix: str, samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        f"{prefix}_median_ms": round(statistics.median(ordered) * 1000, 2),
        f"{prefix}_p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
    }


def _cold_start(runner: Any, spec: Any) -> tuple[float, float]:
    """Seconds to Running (on_state) and to the result of one cold run of ``true``."""
    from podrunner import Phase

    started: list[float] = []

    def on_state(state: Any) -> None:
        if state.phase is Phase.RUNNING and not started:
            started.append(time.perf_counter())

    begin = time.perf_counter()
    result = runner.run(spec, timeout=120, on_state=on_state)
    end = time.perf_counter()
    assert result.exit_code == 0, result
    return (started[0] if started else end) - begin, end - begin


def _warm_start(pool: Any) -> tuple[float, float]:
    """Seconds to a claimed warm pod, and for a whole ``pool.run(["true"])``."""
    pool.wait_ready()
    begin = time.perf_counter()
    with pool.claim(timeout=120):
        claimed = time.perf_counter() - begin
    pool.wait_ready()
    begin = time.perf_counter()
    result = pool.run(["true"], timeout=120)
    whole = time.perf_counter() - begin
    assert result.exit_code == 0, result
    return claimed, whole


def start_figures(runner: Any, namespace: str, prefix: str) -> dict[str, object]:
    """Cold against warm, alternating, ``REPEATS`` each."""
    from podrunner import PodPool, PodSpec

    cold_spec = PodSpec(
        "busybox:1.36",
        ["true"],
        namespace=namespace,
        annotations={"sim.podrunner.dev/duration": "0.1"},
    )
    pool_spec = PodSpec("busybox:1.36", ["x"], namespace=namespace, annotations=SPEC_ANNOTATIONS)
    cold_start, cold_run, warm_claim, warm_run = [], [], [], []
    with PodPool(runner, pool_spec, size=2) as pool:
        _cold_start(runner, cold_spec)  # warm-up: imports, connections
        _warm_start(pool)
        for _ in range(REPEATS):
            to_running, whole = _cold_start(runner, cold_spec)
            cold_start.append(to_running)
            cold_run.append(whole)
            claimed, whole = _warm_start(pool)
            warm_claim.append(claimed)
            warm_run.append(whole)
    out: dict[str, object] = {}
    out.update(_stats(f"{prefix}start_cold", cold_start))
    out.update(_stats(f"{prefix}start_warm_claim", warm_claim))
    out.update(_stats(f"{prefix}run_cold", cold_run))
    out.update(_stats(f"{prefix}run_warm", warm_run))
    ratio = statistics.median(cold_start) / statistics.median(warm_claim)
    out[f"{prefix}start_cold_over_warm_x"] = round(ratio, 1)
    return out


def claim_figures(runner: Any, namespace: str, prefix: str, claims: int) -> dict[str, object]:
    """Claims per second, 8 claimers over two pools of one name; double claims counted."""
    from podrunner import PodPool, PodSpec

    spec = PodSpec("busybox:1.36", ["x"], namespace=namespace, annotations=SPEC_ANNOTATIONS)
    pools = [
        PodPool(runner, spec, size=CLAIMERS, name="bench-shared", recycle=True) for _ in range(2)
    ]
    holders: dict[str, int] = {}
    lock = threading.Lock()
    doubles = 0
    per = claims // CLAIMERS

    def claimer(pool: Any, me: int) -> None:
        nonlocal doubles
        for _ in range(per):
            with pool.claim() as pod:
                with lock:
                    doubles += pod.name in holders
                    holders[pod.name] = me
                with lock:
                    holders.pop(pod.name, None)

    try:
        for pool in pools:
            pool.wait_ready()
        threads = [
            threading.Thread(target=claimer, args=(pools[i % 2], i)) for i in range(CLAIMERS)
        ]
        begin = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - begin
    finally:
        for pool in pools:
            pool.close()
    return {
        f"{prefix}claims_total": per * CLAIMERS,
        f"{prefix}claims_per_s_8_claimers": round(per * CLAIMERS / wall, 1),
        f"{prefix}double_claims": doubles,
    }


def write_figures(runner: Any, namespace: str, prefix: str, writes: int) -> dict[str, object]:
    """The API server's own write rate, for reference: 8 threads merge-patching 8 pods.

    A claim and its release are two writes (a replace, a merge patch), so the claims per
    second cannot pass half of this rate whatever the pool does.
    """
    from podrunner import PodPool, PodSpec

    spec = PodSpec("busybox:1.36", ["x"], namespace=namespace, annotations=SPEC_ANNOTATIONS)
    per = writes // CLAIMERS
    with PodPool(runner, spec, size=CLAIMERS) as pool:
        pool.wait_ready()
        names = [p["metadata"]["name"] for p in runner.api.list("Pod", namespace).items]

        def writer(name: str) -> None:
            for i in range(per):
                patch = {"metadata": {"annotations": {"bench": str(i)}}}
                runner.api.patch("Pod", namespace, name, patch)

        threads = [threading.Thread(target=writer, args=(n,)) for n in names[:CLAIMERS]]
        begin = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - begin
    return {f"{prefix}writes_per_s_8_writers": round(per * len(threads) / wall, 1)}


def fake_figures() -> dict[str, object]:
    from podrunner import PodRunner
    from podrunner.testing import FakeCluster

    runner = PodRunner(FakeCluster().backend)
    out = start_figures(runner, "default", "fake_")
    out.update(claim_figures(runner, "default", "fake_", CLAIMS))
    out.update(write_figures(runner, "default", "fake_", CLAIMS))
    runner.close()
    return out


def kwok_figures() -> dict[str, object]:
    from podrunner import PodRunner
    from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend
    from podrunner.testing.controlplane.kwok import KwokCluster

    cluster = KwokCluster()
    if cluster.missing_binaries():
        return {"kwok_skipped": "kwok binaries missing"}
    with cluster:
        backend = KubernetesBackend(ClusterConfig.from_kubeconfig_file(cluster.kubeconfig))
        runner = PodRunner(backend)
        try:
            out = start_figures(runner, "default", "kwok_")
            out.update(claim_figures(runner, "default", "kwok_", CLAIMS))
            out.update(write_figures(runner, "default", "kwok_", 2000))
        finally:
            runner.close()
            backend.close()
    return out


def run() -> dict[str, object]:
    out = fake_figures()
    out.update(kwok_figures())
    return out


if __name__ == "__main__":
    import json
    import sys

    which = sys.argv[1:] or ["fake", "kwok"]
    figures: dict[str, object] = {}
    if "fake" in which:
        figures.update(fake_figures())
    if "kwok" in which:
        figures.update(kwok_figures())
    print(json.dumps(figures, indent=2))
