"""Fake cluster speed: raw API ops, full lifecycles, virtual hours, construction, and kmock.

kmock (PyPI) is driven through the official ``kubernetes`` client for the same
create/get/delete sequence; when it cannot be imported or started, the reason is recorded
in the figures instead of a number.
"""

from __future__ import annotations

import gc
import itertools
import time
from typing import Any

from podrunner.backends.fake import FakeCluster
from podrunner.backends.fake._json import copy_tree, normalize
from podrunner.backends.fake.validation import prepare

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "bench-",
        "labels": {
            "app.kubernetes.io/managed-by": "podrunner",
            "app.kubernetes.io/component": "runner",
            "podrunner.dev/run-id": "r1",
        },
    },
    "spec": {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "main",
                "image": "busybox:1.36",
                "command": ["sh", "-c", "echo hi"],
                "env": [{"name": "FOO", "value": "bar"}],
                "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
            }
        ],
    },
}


def _timed(fn: Any, seconds: float = 1.0) -> tuple[int, float]:
    gc.collect()
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        fn()
        count += 1
        if count % 64 == 0 and time.perf_counter() >= deadline:
            break
    return count, time.perf_counter() - start


def bench_crud() -> float:
    cluster = FakeCluster()
    backend = cluster.backend

    def one() -> None:
        name = backend.create(POD)["metadata"]["name"]
        backend.get("Pod", "default", name)
        backend.delete("Pod", "default", name)

    count, elapsed = _timed(one)
    return 3 * count / elapsed


def lifecycle(backend: Any, manifest: dict[str, Any]) -> None:
    """One full lifecycle through the backend protocol: create, watch to the end, log, delete."""
    pod = backend.create(manifest)
    meta = pod["metadata"]
    name = meta["name"]
    for event in backend.watch(
        "Pod",
        "default",
        field_selector=f"metadata.name={name}",
        resource_version=meta["resourceVersion"],
        timeout_seconds=60,
    ):
        if event.object["status"]["phase"] in ("Succeeded", "Failed"):
            break
    b"".join(backend.read_log("default", name))
    backend.delete("Pod", "default", name)


def bench_lifecycle() -> float:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=1.0)
    backend = cluster.backend
    count, elapsed = _timed(lambda: lifecycle(backend, POD))
    return count / elapsed


_STAMP = "2026-01-01T00:00:00Z"
_PHASES = (
    ("Pending", None),
    ("Pending", "waiting"),
    ("Running", "running"),
    ("Succeeded", "terminated"),
)


def _condition(type_: str, status: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": _STAMP}


def _floor_lifecycle(i: int, manifest: dict[str, Any] = POD) -> None:
    """The data work any faithful fake must do for one lifecycle, and nothing else.

    Decode and validate the manifest, hand out a copy of the created pod, build the four
    status versions a kubelet writes and hand out a copy of each (the watch), build the five
    Events, split the log. No store, lock, clock, timer, watch or selector.
    """
    obj = normalize(manifest)
    meta = obj["metadata"]
    meta.update(name=f"bench-{i}", namespace="default", uid=str(i), resourceVersion=str(i))
    prepare("Pod", obj)
    copy_tree(obj)
    prev = obj
    for phase, state in _PHASES:
        new = dict(prev)
        new["metadata"] = {**prev["metadata"], "resourceVersion": str(i)}
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [_condition(t, "True") for t in ("PodScheduled", "Initialized")],
            "qosClass": "Guaranteed",
        }
        if state is not None:
            status.update(hostIP="127.0.0.1", podIP="10.244.0.2", startTime=_STAMP)
            status["containerStatuses"] = [
                {"name": "main", "state": {state: {"startedAt": _STAMP}}, "lastState": {}}
            ]
        new["status"] = status
        copy_tree(new)
        prev = new
    for reason in ("Scheduled", "Pulling", "Pulled", "Created", "Started"):
        _ = {
            "kind": "Event",
            "metadata": {"name": f"bench-{i}.{reason}", "namespace": "default", "uid": "u"},
            "involvedObject": {"kind": "Pod", "name": meta["name"]},
            "reason": reason,
            "source": {"component": "kubelet"},
            "firstTimestamp": _STAMP,
            "count": 1,
        }
    b"hi\n".splitlines()


def bench_floor_model(manifest: dict[str, Any] = POD) -> float:
    """Microseconds per lifecycle of :func:`_floor_lifecycle`: the best any design could do.

    The copies are the store contract (a caller mutating a result never changes the store)
    and the statuses and Events are the fidelity the fake promises, so this is a lower bound
    for a lifecycle through the backend protocol in CPython, whatever the store looks like.
    """
    numbers = itertools.count()
    count, elapsed = _timed(lambda: _floor_lifecycle(next(numbers), manifest))
    return elapsed / count * 1e6


def bench_virtual_hour() -> float:
    best = float("inf")
    for _ in range(200):
        cluster = FakeCluster()
        cluster.when(image="busybox:*").succeed(logs="done\n", after=3600.0)
        backend = cluster.backend
        start = time.perf_counter()
        pod = backend.create(POD)
        name = pod["metadata"]["name"]
        for event in backend.watch(
            "Pod",
            "default",
            field_selector=f"metadata.name={name}",
            resource_version=pod["metadata"]["resourceVersion"],
            timeout_seconds=7200,
        ):
            if event.object["status"]["phase"] == "Succeeded":
                break
        best = min(best, time.perf_counter() - start)
        assert cluster.clock.monotonic() >= 3600.0
    return best * 1e3


def bench_construction() -> float:
    FakeCluster()
    n = 5000
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        FakeCluster()
    return (time.perf_counter() - start) / n * 1e6


def bench_kmock(seconds: float = 1.0) -> dict[str, object]:
    try:
        import asyncio
        import threading

        import kmock
        from kubernetes import client
    except Exception as exc:  # kmock is an optional benchmark dependency
        return {"kmock_error": f"cannot import kmock/kubernetes: {exc!r}"}
    try:
        return _run_kmock(asyncio, threading, kmock, client, seconds)
    except Exception as exc:
        return {"kmock_error": f"kmock could not be driven: {exc!r}"}


def _run_kmock(
    asyncio: Any, threading: Any, kmock: Any, client: Any, seconds: float
) -> dict[str, object]:
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            state["url"] = str(server.url)
            state["loop"] = asyncio.get_running_loop()
            state["stop"] = asyncio.Event()
            ready.set()
            await state["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("kmock server did not start")
    try:
        config = client.Configuration()
        config.host = state["url"].rstrip("/")
        api = client.CoreV1Api(client.ApiClient(config))
        counter = [0]

        def one() -> None:
            counter[0] += 1
            name = f"bench-{counter[0]}"
            body = dict(POD)
            body["metadata"] = {"name": name, "namespace": "default"}
            api.create_namespaced_pod("default", body, _preload_content=False)
            api.read_namespaced_pod(name, "default", _preload_content=False)
            api.delete_namespaced_pod(name, "default", _preload_content=False)

        one()
        count, elapsed = _timed(one, seconds)
        return {"kmock_create_get_delete_ops_per_s": round(3 * count / elapsed)}
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(5)


def run() -> dict[str, object]:
    figures: dict[str, object] = {}
    crud = bench_crud()
    figures["create_get_delete_ops_per_s"] = round(crud)
    figures["create_get_delete_target_50000_met"] = crud >= 50_000
    lifecycles = bench_lifecycle()
    figures["lifecycles_per_s"] = round(lifecycles)
    figures["lifecycles_target_10000_met"] = lifecycles >= 10_000
    floor = bench_floor_model()
    figures["lifecycle_floor_model_us"] = round(floor, 1)
    figures["lifecycle_floor_model_share_of_100us"] = round(floor / 100, 2)
    hour = bench_virtual_hour()
    figures["virtual_hour_wall_ms"] = round(hour, 4)
    figures["virtual_hour_target_1ms_met"] = hour < 1.0
    construct = bench_construction()
    figures["construction_us"] = round(construct, 2)
    figures["construction_target_50us_met"] = construct < 50
    kmock_figures = bench_kmock()
    figures.update(kmock_figures)
    kmock_ops = kmock_figures.get("kmock_create_get_delete_ops_per_s")
    if isinstance(kmock_ops, (int, float)) and kmock_ops:
        figures["fake_vs_kmock_ratio"] = round(crud / kmock_ops, 1)
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
