"""KubernetesBackend: raw JSON versus the client's model deserialisation, on the same answers.

Against a local kwok control plane when its binaries are built (``tools/controlplane/build.py``),
else against a small HTTP server on 127.0.0.1 serving a recorded pod list. Same server, same
bytes, two ways to read them:

- ``raw``: ``KubernetesBackend.list/get`` (``call_api`` without preloading, ``json.loads``);
- ``model``: ``CoreV1Api.list_namespaced_pod/read_namespaced_pod`` (``V1PodList``/``V1Pod``).

``PODRUNNER_BENCH_SERVER=local`` forces the recorded server; ``PODRUNNER_BENCH_PODS`` sets how
many pods the list holds (default 100).
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import kubernetes.client

from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend

PODS = int(os.environ.get("PODRUNNER_BENCH_PODS", "100"))


def recorded_pod(i: int) -> dict[str, Any]:
    """A pod as kwok reports it once running (conditions, container status, managedFields)."""
    stamp = "2026-01-01T00:00:00Z"
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": f"bench-{i}",
            "namespace": "bench",
            "uid": str(uuid.UUID(int=i)),
            "resourceVersion": str(1000 + i),
            "creationTimestamp": stamp,
            "labels": {
                "app.kubernetes.io/managed-by": "podrunner",
                "podrunner.dev/run-id": f"r{i}",
            },
            "annotations": {"sim.podrunner.dev/duration": "600"},
            "managedFields": [
                {
                    "manager": "podrunner",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": stamp,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {}},
                }
            ],
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": "kwok-node-0",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", "echo hi"],
                    "env": [{"name": "HOME", "value": "/tmp"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": "127.0.0.1",
            "podIP": "10.0.0.1",
            "startTime": stamp,
            "containerStatuses": [
                {
                    "name": "main",
                    "state": {"running": {"startedAt": stamp}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": 0,
                    "image": "busybox:1.36",
                    "imageID": "",
                    "started": True,
                }
            ],
            "qosClass": "Burstable",
        },
    }


class _Recorded(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one write: separate small writes meet delayed ACKs (40 ms stalls).
    wbufsize = 1 << 16
    bodies: ClassVar[dict[str, bytes]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = self.bodies.get(self.path.split("?")[0], b'{"kind":"Status","code":404}')
        self.send_response(200 if self.path.split("?")[0] in self.bodies else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def local_server() -> Iterator[tuple[ClusterConfig, str]]:
    """A 127.0.0.1 server answering the recorded pod list and one pod."""
    pods = [recorded_pod(i) for i in range(PODS)]
    listing: dict[str, Any] = {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "5000"},
    }
    items = []
    for pod in pods:
        item = copy.deepcopy(pod)
        del item["kind"], item["apiVersion"]
        items.append(item)
    listing["items"] = items
    _Recorded.bodies = {
        "/api/v1/namespaces/bench/pods": json.dumps(listing).encode(),
        "/api/v1/namespaces/bench/pods/bench-0": json.dumps(pods[0]).encode(),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
        ],
        "users": [{"name": "u", "user": {"token": "bench"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    try:
        yield ClusterConfig.from_kubeconfig_yaml(json.dumps(config)), "bench"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def kwok_server() -> Iterator[tuple[ClusterConfig, str]]:
    """A kwok control plane with PODS running pods in namespace ``bench``."""
    from podrunner.testing.controlplane.kwok import KwokCluster

    with KwokCluster() as cluster:
        config = ClusterConfig.from_kubeconfig_file(cluster.kubeconfig)
        with KubernetesBackend(config) as backend:
            backend.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
            core = kubernetes.client.CoreV1Api(backend.api_client)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    core.read_namespaced_service_account("default", "bench")
                    break
                except kubernetes.client.ApiException:
                    time.sleep(0.1)
            for i in range(PODS):
                pod = recorded_pod(i)
                pod["spec"].pop("nodeName")
                pod["metadata"] = {
                    k: pod["metadata"][k] for k in ("name", "namespace", "labels", "annotations")
                }
                del pod["status"]
                backend.create(pod)
            while time.monotonic() < deadline + 60:
                phases = [p["status"].get("phase") for p in backend.list("Pod", "bench").items]
                if phases.count("Running") == PODS:
                    break
                time.sleep(0.2)
        yield config, "bench"


def timed(fn: Callable[[], object], rounds: int) -> float:
    """Median seconds per call over ``rounds`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run() -> dict[str, object]:
    """Measure list and get, raw JSON versus model objects, on one server."""
    use_kwok = os.environ.get("PODRUNNER_BENCH_SERVER") != "local"
    if use_kwok:
        from podrunner.testing.controlplane.kwok import KwokCluster

        use_kwok = not KwokCluster().missing_binaries()
    server = kwok_server() if use_kwok else local_server()
    with server as (config, namespace), KubernetesBackend(config) as backend:
        core = kubernetes.client.CoreV1Api(backend.api_client)
        body = backend.api_client.call_api(
            *backend.api_client.param_serialize(
                method="GET",
                resource_path=f"/api/v1/namespaces/{namespace}/pods",
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
        )
        raw_bytes = body.read()
        list_raw = timed(lambda: backend.list("Pod", namespace), 30)
        list_model = timed(lambda: core.list_namespaced_pod(namespace), 30)
        get_raw = timed(lambda: backend.get("Pod", namespace, "bench-0"), 200)
        get_model = timed(lambda: core.read_namespaced_pod("bench-0", namespace), 200)
        parse_raw = timed(lambda: json.loads(raw_bytes), 30)
        parse_model = timed(
            lambda: backend.api_client.deserialize(
                raw_bytes.decode(), "V1PodList", "application/json"
            ),
            30,
        )
    return {
        "server": "kwok" if use_kwok else "local-recorded",
        "pods_in_list": PODS,
        "list_body_kib": round(len(raw_bytes) / 1024, 1),
        "list_raw_ms": round(list_raw * 1e3, 2),
        "list_model_ms": round(list_model * 1e3, 2),
        "list_model_over_raw_x": round(list_model / list_raw, 1),
        "get_raw_ms": round(get_raw * 1e3, 3),
        "get_model_ms": round(get_model * 1e3, 3),
        "get_model_over_raw_x": round(get_model / get_raw, 1),
        "parse_only_raw_ms": round(parse_raw * 1e3, 2),
        "parse_only_model_ms": round(parse_model * 1e3, 2),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
