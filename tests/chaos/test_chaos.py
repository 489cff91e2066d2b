"""The chaos tier: every fault kind x run phase x cleanup policy on a real API server.

Each scenario must return the result it would have returned without the fault (same exit
code, exact output) or raise a typed podrunner error; never run past its deadline; leave no
Pod, Secret or ConfigMap behind (except what its policy keeps); and close every watch it
opened. See ``harness.py`` for how faults meet phases.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from harness import FAULTS, PHASES, POLICIES, Outcome, Scenario, SharedFault, run_group

from podrunner import CleanupPolicy
from podrunner.backends.kubernetes import KubernetesBackend
from podrunner.testing.controlplane.kwok import KwokCluster

pytestmark = pytest.mark.chaos

SCENARIOS = [Scenario(f, p, c) for f in FAULTS for p in PHASES for c in POLICIES]
_GROUPS: dict[str, tuple[dict[str, Outcome], SharedFault | None]] = {}
# Where the tier's figures go when asked (benchmarks/bench_chaos.py asks, and
# benchmarks/run.py records them in results/latest.json).
FIGURES = os.environ.get("PODRUNNER_CHAOS_FIGURES")


def _group(cluster: KwokCluster, admin: KubernetesBackend, ns: str, fault: str) -> Any:
    if fault not in _GROUPS:
        members = [s for s in SCENARIOS if s.fault == fault]
        _GROUPS[fault] = run_group(cluster, admin, ns, fault, members)
    return _GROUPS[fault]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_scenario(
    scenario: Scenario, cluster: KwokCluster, admin: KubernetesBackend, chaos_namespace: str
) -> None:
    """The run survives the fault or fails typed; nothing hangs, leaks or stays open."""
    outcomes, shared = _group(cluster, admin, chaos_namespace, scenario.fault)
    if shared is not None and shared.error is not None:
        raise shared.error
    outcome = outcomes[scenario.id]
    assert outcome.triggered or outcome.error is not None, "the fault never met the run"
    assert outcome.problems() == [], outcome.describe()


def test_run_many_through_two_apiserver_restarts(
    cluster: KwokCluster, admin: KubernetesBackend, chaos_namespace: str
) -> None:
    """100 runs while the API server restarts twice (once gracefully, once killed).

    No run is lost: each yields its exact result or a typed error; nothing is left behind
    and no watch stays open.
    """
    import threading
    import time

    from harness import wait_gone

    from podrunner import PodRunner, PodSpec, RunResult
    from podrunner.backends.kubernetes import ClusterConfig
    from podrunner.backends.kubernetes import KubernetesBackend as Backend

    def spec(i: int) -> PodSpec:
        return PodSpec(
            image="busybox:1.36",
            command=["sh", "-c", "true"],
            name_prefix="chaos-many",
            annotations={
                "sim.podrunner.dev/logs": f"run {i} a\nrun {i} b\n",
                "sim.podrunner.dev/duration": "6",  # runs still in flight at the 2nd restart
            },
        )

    backend = Backend(
        ClusterConfig.from_kubeconfig_file(str(cluster.kubeconfig)),
        request_timeout=(2.0, 5.0),
        log_idle_timeout=10.0,
    )
    restarts: list[float] = []

    def restart_twice() -> None:
        time.sleep(3)
        restarts.append(cluster.restart("kube-apiserver", timeout=90))
        time.sleep(3)
        restarts.append(cluster.restart("kube-apiserver", hard=True, timeout=90))

    chaos = threading.Thread(target=restart_twice, daemon=True)
    runner = PodRunner(backend, chaos_namespace)
    began = time.monotonic()
    chaos.start()
    try:
        outcomes = list(
            runner.run_many(
                [spec(i) for i in range(100)], max_parallel=25, timeout=RUN_TIMEOUT_MANY
            )
        )
    finally:
        chaos.join(timeout=200)
        runner.close()
        backend.close()
    seconds = time.monotonic() - began
    assert len(restarts) == 2
    results = [o for o in outcomes if isinstance(o, RunResult)]
    errors = [o for o in outcomes if not isinstance(o, RunResult)]
    assert len(outcomes) == 100
    # Both restarts end well within the runs' deadline: every run must succeed.
    assert errors == [], errors
    assert all(r.exit_code == 0 for r in results)
    # Exact output: no lost and no doubled lines, each run its own.
    bad = [r for r in results if not re.fullmatch(r"run (\d+) a\nrun \1 b\n", r.logs)]
    assert bad == [], [(r.pod_name, r.logs, r.message, r.started_at, r.finished_at) for r in bad]
    assert len({r.logs for r in results}) == len(results)
    assert runner.watch_stats()["open_streams"] == 0
    assert wait_gone(admin, chaos_namespace) == {}
    _MANY.update(
        run_many_runs=100,
        run_many_results=len(results),
        run_many_typed_errors=len(errors),
        run_many_seconds=round(seconds, 1),
        run_many_restart_seconds=[round(r, 1) for r in restarts],
    )


def test_an_outage_past_the_deadline_fails_typed_and_leaves_nothing(
    cluster: KwokCluster, admin: KubernetesBackend, chaos_namespace: str
) -> None:
    """The pod's create lands, its answer is lost, and the server stays away past the deadline.

    The run fails with ``BackendUnavailable`` (what happened), not ``RunTimeout``: its create
    stops retrying at the run's deadline instead of riding out the whole outage; and the pod
    that landed is found by its run-id label and deleted once the server answers again.
    """
    from harness import PhaseBackend, wait_gone

    from podrunner import PodRunner
    from podrunner.backends.kubernetes import ClusterConfig
    from podrunner.errors import BackendUnavailable
    from podrunner.testing.controlplane.faultproxy import FaultProxy

    timeout, outage = 8.0, 14.0
    proxy = FaultProxy.for_kwok(cluster).start()
    backend = KubernetesBackend(
        ClusterConfig.from_kubeconfig_file(str(proxy.kubeconfig)), request_timeout=(2.0, 5.0)
    )
    phased = PhaseBackend(backend, "after-create", lambda: proxy.refuse(outage), proxy)
    runner = PodRunner(phased, chaos_namespace)
    spec = Scenario("outage-past-deadline", "after-create", CleanupPolicy.ALWAYS).spec()
    try:
        with pytest.raises(BackendUnavailable):
            runner.run(spec, timeout=timeout)
    finally:
        runner.close()
        backend.close()
        proxy.stop()
    assert phased.fired
    assert wait_gone(admin, chaos_namespace) == {}


def test_zz_figures(cluster: KwokCluster, admin: KubernetesBackend, chaos_namespace: str) -> None:
    """Write the tier's figures (after every scenario ran)."""
    if len(_GROUPS) < len(FAULTS) or not _MANY:
        pytest.skip("figures need the whole matrix")
    outcomes = [o for group, _ in _GROUPS.values() for o in group.values()]
    recovery: dict[str, float] = {}
    for fault, (group, shared) in _GROUPS.items():
        if shared is None or shared.ready_at is None or fault == "kcm-down":
            continue
        for o in group.values():
            after = [t for t in o.progress if t >= shared.ready_at]
            if o.triggered and after:
                recovery[o.scenario.id] = after[0] - shared.ready_at
    slowest = max(recovery, key=recovery.__getitem__, default=None)
    requests = {
        fault: statistics.median(o.requests for o in group.values())
        for fault, (group, _) in _GROUPS.items()
    }
    figures = {
        "chaos_scenarios_run": len(outcomes),
        "chaos_scenarios_passed": sum(1 for o in outcomes if not o.problems()),
        "chaos_typed_errors": sum(1 for o in outcomes if o.error is not None),
        "chaos_runs_lost": sum(
            1 for o in outcomes if o.error is None and o.logs != o.scenario.logs
        ),
        "chaos_objects_leaked": sum(len(o.leaked) for o in outcomes),
        "chaos_hangs": sum(1 for o in outcomes if "hung" in " ".join(o.problems())),
        "chaos_recovery_median_s": (
            round(statistics.median(recovery.values()), 2) if recovery else None
        ),
        "chaos_recovery_max_s": round(max(recovery.values()), 2) if recovery else None,
        "chaos_recovery_max_scenario": slowest,
        "chaos_requests_per_run_median": requests,
        "chaos_requests_per_run_max": max(o.requests for o in outcomes),
        **{f"chaos_{k}": v for k, v in _MANY.items()},
        "chaos_errors": {
            o.scenario.id: f"{type(o.error).__name__}: {o.error}"[:200]
            for o in outcomes
            if o.error is not None
        },
    }
    print(json.dumps(figures, indent=2, sort_keys=True))
    if FIGURES:
        Path(FIGURES).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


RUN_TIMEOUT_MANY = 120.0
_MANY: dict[str, Any] = {}
