"""A warm pool in another process, stopped by a real SIGTERM (or killed) on kwok.

The contract suite (tests/contract/test_pool.py) holds PodPool and AsyncPodPool to the same
claims, races, refill, close and expiry on the fake and kwok; a signal needs a process of its
own, so this file starts one: it fills a pool on the local kwok control plane, claims a pod for
a slow command, and is sent SIGTERM (inside ``stop_on_signals``) or SIGKILL mid-run.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from podrunner import PodRunner
from podrunner.backends.base import Backend
from podrunner.run.pool_core import POOL_LABEL, STATE_LABEL

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
from childsignals import default_stop_signals  # noqa: E402

_CHILD = r"""
import sys
import podrunner
from podrunner import PodPool, PodRunner, PodSpec
from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend

kubeconfig, namespace = sys.argv[1], sys.argv[2]
backend = KubernetesBackend(ClusterConfig.from_kubeconfig_file(kubeconfig))
spec = PodSpec("busybox:1.36", ["x"], annotations={"sim.podrunner.dev/duration": "1000000"})
with podrunner.stop_on_signals(), PodPool(PodRunner(backend, namespace), spec, size=3,
                                          name="signalled", lease=60, max_age=None) as pool:
    pool.wait_ready()
    print("ready", flush=True)
    pool.run(["sh", "-c", "sleep 60"], timeout=120)
"""


def pods(backend: Backend, namespace: str) -> list[dict[str, Any]]:
    listed = backend.list("Pod", namespace, label_selector=f"{POOL_LABEL}=signalled")
    return [p for p in listed.items if not p["metadata"].get("deletionTimestamp")]


def start_child(shared: Any, namespace: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(shared.kubeconfig), namespace],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=default_stop_signals,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def stop(child: subprocess.Popen[str]) -> None:
    child.kill()
    child.wait()
    assert child.stdout is not None
    child.stdout.close()


def wait_claimed(backend: Backend, namespace: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(
            p["metadata"]["labels"].get(STATE_LABEL) == "claimed" for p in pods(backend, namespace)
        ):
            return
        time.sleep(0.1)
    raise AssertionError("no pod was claimed")


def wait_empty(backend: Backend, namespace: str) -> None:
    deadline = time.monotonic() + 60
    while pods(backend, namespace) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pods(backend, namespace) == []


@pytest.fixture
def shared(request: pytest.FixtureRequest, podrunner_backend_name: str) -> Any:
    if podrunner_backend_name != "kwok":
        pytest.skip("a pool in a child process needs a real API server (kwok)")
    return request.getfixturevalue("podrunner_kwok")


def test_sigterm_mid_run_deletes_every_pool_pod(
    shared: Any, podrunner_backend: Backend, podrunner_namespace: str
) -> None:
    child = start_child(shared, podrunner_namespace)
    try:
        wait_claimed(podrunner_backend, podrunner_namespace)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        stop(child)
    wait_empty(podrunner_backend, podrunner_namespace)


def test_sigkill_leaves_pods_that_expire_and_are_reaped(
    shared: Any, podrunner_backend: Backend, podrunner_namespace: str
) -> None:
    child = start_child(shared, podrunner_namespace)
    try:
        wait_claimed(podrunner_backend, podrunner_namespace)
        deadline = time.monotonic() + 30
        while len(pods(podrunner_backend, podrunner_namespace)) < 4:  # the refill of the claim
            assert time.monotonic() < deadline
            time.sleep(0.1)
        child.kill()
        child.wait(timeout=30)
    finally:
        stop(child)
    left = pods(podrunner_backend, podrunner_namespace)
    states = sorted(p["metadata"]["labels"][STATE_LABEL] for p in left)
    assert states == ["claimed", "warm", "warm", "warm"]  # nothing ran to delete them
    runner = PodRunner(podrunner_backend, podrunner_namespace)
    assert [d for d in runner.reap().deleted if d[0] == "Pod"] == []  # not expired yet
    # The claimed pod expires after its run's timeout + 30 s; the warm ones after the lease.
    # reap(older_than=0) stands in for the clock passing both (a reaper run later).
    report = runner.reap(older_than=0)
    assert {d[2] for d in report.deleted if d[0] == "Pod"} == {p["metadata"]["name"] for p in left}
    wait_empty(podrunner_backend, podrunner_namespace)
