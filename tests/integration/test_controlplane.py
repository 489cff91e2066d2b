"""The control plane through the plain ``kubernetes`` client: lifecycles, logs, exec, GC.

Each pod carries the simulation annotations (honoured by kwok) and a command that does the same
thing for real (run by kind's kubelet), so the scenarios hold on both clusters.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.integration

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import watch  # noqa: E402
from kubernetes.client import ApiException  # noqa: E402
from kubernetes.stream import stream  # noqa: E402

IMAGE = "busybox:1.36"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")


def pod_manifest(
    name: str,
    *,
    annotations: dict[str, str] | None = None,
    command: list[str] | None = None,
    restart_policy: str = "Never",
    image: str = IMAGE,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A minimal pod whose command mirrors its simulation annotations."""
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": command or ["sh", "-c", "sleep 1"],
            }
        ],
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }


def wait_for(
    core: Any, namespace: str, name: str, predicate: Callable[[Any], bool], timeout: float = 90
) -> Any:
    """Poll a pod until ``predicate(pod)`` holds; return the pod."""
    deadline = time.monotonic() + timeout
    while True:
        pod = core.read_namespaced_pod(name, namespace)
        if predicate(pod):
            return pod
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {namespace}/{name} never matched; last status: {pod.status}")
        time.sleep(0.2)


def waiting_reason(pod: Any) -> str | None:
    """The first container's waiting reason, if any."""
    for status in pod.status.container_statuses or []:
        if status.state and status.state.waiting:
            return str(status.state.waiting.reason)
    return None


def is_running(pod: Any) -> bool:
    """True when the pod is Running with a running container."""
    statuses = pod.status.container_statuses or []
    return pod.status.phase == "Running" and any(s.state and s.state.running for s in statuses)


def test_annotated_pod_goes_pending_running_failed_with_exit_code_and_logs(
    core: Any, namespace: str
) -> None:
    """Pending, Running, then Failed with exitCode 3, and the annotated logs via pods/log."""
    name = "exit-three"
    manifest = pod_manifest(
        name,
        annotations={
            "sim.podrunner.dev/exit-code": "3",
            "sim.podrunner.dev/logs": "hello\nworld\n",
            "sim.podrunner.dev/duration": "2",
        },
        command=["sh", "-c", "printf 'hello\\nworld\\n'; sleep 2; exit 3"],
    )
    pod = core.create_namespaced_pod(namespace, manifest)
    phases = [pod.status.phase] if pod.status and pod.status.phase else []
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={name}",
        resource_version=pod.metadata.resource_version,
        timeout_seconds=120,
    ):
        phase = event["object"].status.phase
        if phase and (not phases or phases[-1] != phase):
            phases.append(phase)
        if phase in ("Succeeded", "Failed"):
            w.stop()
    assert phases[0] == "Pending"
    assert phases[-2:] == ["Running", "Failed"], phases

    pod = core.read_namespaced_pod(name, namespace)
    (status,) = pod.status.container_statuses
    assert status.state.terminated.exit_code == 3
    assert status.state.terminated.reason == "Error"
    ready = {c.type: c for c in pod.status.conditions}
    assert ready["Ready"].status == "False"
    assert ready["PodScheduled"].status == "True"

    assert core.read_namespaced_pod_log(name, namespace) == "hello\nworld\n"
    stamped = core.read_namespaced_pod_log(name, namespace, timestamps=True)
    lines = stamped.splitlines()
    assert len(lines) == 2
    assert all(TIMESTAMP.match(line) for line in lines), lines
    assert [TIMESTAMP.sub("", line) for line in lines] == ["hello", "world"]
    assert core.read_namespaced_pod_log(name, namespace, tail_lines=1) == "world\n"


def test_logs_follow_streams_the_annotated_text(core: Any, namespace: str) -> None:
    """``follow=True`` opened while the pod runs delivers the log lines as they arrive."""
    name = "follow"
    core.create_namespaced_pod(
        namespace,
        pod_manifest(
            name,
            annotations={"sim.podrunner.dev/logs": "one\ntwo\n", "sim.podrunner.dev/duration": "3"},
            command=["sh", "-c", "echo one; echo two; sleep 3"],
        ),
    )
    wait_for(core, namespace, name, is_running)
    resp = core.read_namespaced_pod_log(
        name,
        namespace,
        follow=True,
        timestamps=True,
        _preload_content=False,
        _request_timeout=(5, 20),
    )
    received = b""
    try:
        while received.count(b"\n") < 2:
            chunk = resp.read1(1024)
            if not chunk:
                break
            received += chunk
    finally:
        resp.close()  # never release_conn(): the unfinished stream must not go back to the pool
    lines = received.decode().splitlines()
    assert [TIMESTAMP.sub("", line) for line in lines] == ["one", "two"]


def test_image_pull_backoff_shows_the_waiting_reason(
    core: Any, namespace: str, backend_name: str
) -> None:
    """A pod annotated ImagePullBackOff waits with reason ImagePullBackOff and stays Pending."""
    image = IMAGE if backend_name == "kwok" else "podrunner.invalid/does-not-exist:1"
    name = "no-image"
    core.create_namespaced_pod(
        namespace,
        pod_manifest(
            name, image=image, annotations={"sim.podrunner.dev/failure": "ImagePullBackOff"}
        ),
    )
    pod = wait_for(core, namespace, name, lambda p: waiting_reason(p) == "ImagePullBackOff")
    assert pod.status.phase == "Pending"
    assert "Back-off pulling image" in pod.status.container_statuses[0].state.waiting.message


def test_unschedulable_shows_pod_scheduled_false(
    core: Any, namespace: str, backend_name: str
) -> None:
    """A pod annotated Unschedulable gets PodScheduled=False, reason Unschedulable."""
    name = "nowhere"
    selector = {"sim.podrunner.dev/unschedulable": "true"} if backend_name != "kwok" else None
    core.create_namespaced_pod(
        namespace,
        pod_manifest(
            name,
            annotations={"sim.podrunner.dev/failure": "Unschedulable"},
            node_selector=selector,
        ),
    )

    def unschedulable(pod: Any) -> bool:
        return any(
            c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
            for c in pod.status.conditions or []
        )

    pod = wait_for(core, namespace, name, unschedulable)
    assert pod.status.phase == "Pending"
    assert not pod.spec.node_name


def test_exec_returns_output_and_exit_code(core: Any, namespace: str) -> None:
    """Exec through the python client returns stdout, stderr and the command's exit code."""
    name = "worker"
    core.create_namespaced_pod(
        namespace,
        pod_manifest(name, restart_policy="Always", command=["sh", "-c", "sleep 3600"]),
    )
    wait_for(core, namespace, name, is_running)
    for argv, code, out in (
        (["sh", "-c", "echo out; echo err >&2"], 0, "out\n"),
        (["sh", "-c", "echo partial; exit 7"], 7, "partial\n"),
    ):
        client = stream(
            core.connect_get_namespaced_pod_exec,
            name,
            namespace,
            command=argv,
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
        )
        try:
            client.run_forever(timeout=30)
            stdout = client.read_stdout()
            stderr = client.read_stderr()
            returncode = client.returncode
        finally:
            client.close()
            # WSClient.close() skips the socket once the server has closed the stream, which
            # leaks it (ResourceWarning); shutdown() closes it whatever the state.
            client.sock.shutdown()
        assert returncode == code
        assert stdout == out
        if code == 0:
            assert stderr == "err\n"


def test_owner_reference_garbage_collection(core: Any, namespace: str) -> None:
    """A Secret owned by a pod is garbage-collected after the pod is deleted."""
    name = "owner"
    pod = core.create_namespaced_pod(
        namespace, pod_manifest(name, restart_policy="Always", command=["sleep", "3600"])
    )
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod.metadata.uid}
                ],
            },
            "stringData": {"token": "s3cret"},
        },
    )
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    deadline = time.monotonic() + 90
    gone: set[str] = set()
    while gone != {"pod", "secret"}:
        assert time.monotonic() < deadline, f"still present: { ({'pod', 'secret'} - gone) }"
        for kind, read, obj in (
            ("pod", core.read_namespaced_pod, name),
            ("secret", core.read_namespaced_secret, "owned"),
        ):
            if not exists(read, obj, namespace):
                gone.add(kind)
        time.sleep(0.2)


def exists(read: Callable[[str, str], Any], name: str, namespace: str) -> bool:
    """True if ``read(name, namespace)`` finds the object, False on 404."""
    try:
        read(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_kubectl_get_nodes_and_pods(kubeconfig: Any) -> None:
    """``kubectl --kubeconfig <kubeconfig> get nodes,pods -A`` works against the cluster."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    proc = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "get", "nodes,pods", "-A"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "node/" in proc.stdout


# -- kwok-only simulation details ---------------------------------------------------------------


@pytest.fixture
def kwok_only(backend_name: str) -> None:
    """Skip on clusters with a real kubelet (these scenarios are simulated)."""
    if backend_name != "kwok":
        pytest.skip("simulation-only scenario")


@pytest.mark.usefixtures("kwok_only")
def test_unannotated_pods_succeed_or_keep_running(core: Any, namespace: str) -> None:
    """Never/OnFailure pods without annotations succeed with 0; Always pods stay Running."""
    for policy in ("Never", "OnFailure", "Always"):
        core.create_namespaced_pod(
            namespace, pod_manifest(f"plain-{policy.lower()}", restart_policy=policy)
        )
    for policy in ("Never", "OnFailure"):
        pod = wait_for(
            core, namespace, f"plain-{policy.lower()}", lambda p: p.status.phase == "Succeeded"
        )
        terminated = pod.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    wait_for(core, namespace, "plain-always", is_running)
    time.sleep(2.5)
    pod = core.read_namespaced_pod("plain-always", namespace)
    assert is_running(pod)
    assert pod.status.container_statuses[0].restart_count == 0


@pytest.mark.usefixtures("kwok_only")
def test_oomkilled_and_evicted(core: Any, namespace: str) -> None:
    """OOMKilled ends in terminated/137/OOMKilled; Evicted ends in phase Failed, reason Evicted."""
    core.create_namespaced_pod(
        namespace, pod_manifest("oom", annotations={"sim.podrunner.dev/failure": "OOMKilled"})
    )
    core.create_namespaced_pod(
        namespace,
        pod_manifest(
            "evicted",
            restart_policy="Always",
            annotations={"sim.podrunner.dev/failure": "Evicted"},
        ),
    )
    pod = wait_for(core, namespace, "oom", lambda p: p.status.phase == "Failed")
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")
    pod = wait_for(core, namespace, "evicted", lambda p: p.status.phase == "Failed")
    assert pod.status.reason == "Evicted"
    assert "low on resource" in pod.status.message
    conditions = {c.type: c for c in pod.status.conditions}
    assert conditions["DisruptionTarget"].status == "True"


@pytest.mark.usefixtures("kwok_only")
def test_on_failure_restarts_with_crash_loop_backoff(core: Any, namespace: str) -> None:
    """OnFailure with a non-zero exit restarts: CrashLoopBackOff and a growing restartCount."""
    name = "crashloop"
    core.create_namespaced_pod(
        namespace,
        pod_manifest(
            name,
            restart_policy="OnFailure",
            annotations={"sim.podrunner.dev/exit-code": "1", "sim.podrunner.dev/duration": "0.5"},
        ),
    )
    pod = wait_for(
        core,
        namespace,
        name,
        lambda p: (
            (p.status.container_statuses or [None])[0] is not None
            and p.status.container_statuses[0].restart_count >= 1
        ),
    )
    status = pod.status.container_statuses[0]
    assert pod.status.phase == "Running"
    assert status.last_state.terminated.exit_code == 1
    assert status.last_state.terminated.reason == "Error"


@pytest.mark.usefixtures("kwok_only")
def test_write_logs_appends_to_pods_log(kwok_cluster: Any, core: Any, namespace: str) -> None:
    """``KwokCluster.write_logs`` text is served by pods/log after the annotated text."""
    name = "writer"
    core.create_namespaced_pod(
        namespace,
        pod_manifest(
            name, restart_policy="Always", annotations={"sim.podrunner.dev/logs": "first\n"}
        ),
    )
    wait_for(core, namespace, name, is_running)
    deadline = time.monotonic() + 10
    while core.read_namespaced_pod_log(name, namespace) != "first\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    kwok_cluster.write_logs(namespace, name, "second\n")
    assert core.read_namespaced_pod_log(name, namespace) == "first\nsecond\n"
