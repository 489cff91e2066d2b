"""The log agent: turns ``sim.podrunner.dev/logs`` into log files kwok serves through pods/log."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podrunner._threads import block_stop_signals, start_quiet
from podrunner._time import format_rfc3339_nano
from podrunner.errors import BackendError, Invalid, NotFound
from podrunner.simulation import ANNOTATION_LOGS
from podrunner.testing.controlplane._stages import NO_LOGS_OBJECT_LINE

if TYPE_CHECKING:
    from podrunner.backends.kubernetes import KubernetesBackend

__all__ = ["LOGS_SERVED_LABEL", "LogAgent", "cri_log_lines"]

LOGS_SERVED_LABEL = "kwok.podrunner.dev/logs-served"
"""Set on a pod once kwok serves its log; the pod's containers start only then (``pod.yaml``)."""


def _logs_path(namespace: str, name: str) -> str:
    return f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{namespace}/logs/{name}"


def cri_log_lines(text: str, stream: str = "stdout", stamp_ns: int | None = None) -> str:
    """Format ``text`` as CRI container-log lines (what the kubelet's log reader accepts).

    Each line becomes ``<RFC3339Nano> <stream> F <line>``; a last line without a trailing
    newline is tagged ``P`` (partial), so it is served back without an added newline.

    Args:
        text: The log text.
        stream: ``stdout`` or ``stderr``.
        stamp_ns: Timestamp for every line, in nanoseconds since the epoch; default now.
    """
    if not text:
        return ""
    stamp = format_rfc3339_nano(time.time_ns() if stamp_ns is None else stamp_ns, fixed=True)
    parts = text.split("\n")
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and part == "":
            break
        tag = "P" if last else "F"
        out.append(f"{stamp} {stream} {tag} {part}\n")
    return "".join(out)


class LogAgent:
    """Watches pods; for each one writes per-container CRI log files and a kwok ``Logs`` object.

    The ``Logs`` object is created when the pod appears; the annotated text is appended when a
    container starts (and again on each restart, after rotating the previous run's file), so
    ``follow`` streams opened early see it arrive.

    kwok learns ``Logs`` objects through a watch of its own, which can lag many seconds behind
    an API server restart (client-go backs off); meanwhile it serves the pod an empty log. A
    kubelet's container log exists from the container's start, so once a pod is on the node
    the agent reads its previous log until kwok no longer serves the "no Logs object" line
    there (:data:`~podrunner.testing.controlplane._stages.NO_LOGS_OBJECT_LINE`), then labels
    the pod with :data:`LOGS_SERVED_LABEL`, which the running stage waits for.
    """

    def __init__(self, api: KubernetesBackend, root: Path) -> None:
        self.api = api
        self.root = root
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # The open watch, closed by stop() from another thread (the backend allows it).
        self._watch: Any = None
        self._seen: dict[str, tuple[str, str]] = {}  # uid -> (namespace, name)
        self._runs: dict[tuple[str, str], int] = {}  # (uid, container) -> restartCount written
        self._registered: set[str] = set()  # uids whose Logs object the server took
        self._bound: set[str] = set()  # uids seen on a node without the label
        self._labelling: set[str] = set()  # uids labelled, or being labelled
        self._thread = threading.Thread(target=self._run, name="podrunner-kwok-logs", daemon=True)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            8, thread_name_prefix="podrunner-kwok-logs", initializer=block_stop_signals
        )
        self.errors: list[str] = []

    def start(self) -> None:
        start_quiet(self._thread)

    def stop(self) -> None:
        self._stop.set()
        stream = self._watch
        if stream is not None:
            stream.close()  # wakes the agent's thread, blocked reading the watch
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def pod_dir(self, namespace: str, name: str, uid: str) -> Path:
        return self.root / namespace / f"{name}_{uid}"

    def log_file(self, namespace: str, name: str, uid: str, container: str) -> Path:
        return self.pod_dir(namespace, name, uid) / f"{container}.log"

    def _run(self) -> None:
        resource_version = ""
        while not self._stop.is_set():
            try:
                if not resource_version:
                    listed = self.api.list("Pod", None)
                    for pod in listed.items:
                        self.handle("ADDED", pod)
                    resource_version = listed.resource_version
                resource_version = self._follow(resource_version)
            except Exception as exc:  # keep the agent alive; record for diagnostics
                if self._stop.is_set():
                    return
                self.errors.append(f"{type(exc).__name__}: {exc}")
                del self.errors[:-20]
                resource_version = ""  # Gone (410) or a broken stream: list again
                self._stop.wait(0.5)

    def _follow(self, resource_version: str) -> str:
        """Handle the pod events after ``resource_version``; return the last version seen."""
        stream = self.api.watch(
            "Pod",
            None,
            resource_version=resource_version,
            timeout_seconds=300,
            allow_bookmarks=True,
        )
        self._watch = stream
        try:
            for event in stream:
                if self._stop.is_set():
                    break
                meta = event.object.get("metadata") or {}
                resource_version = meta.get("resourceVersion") or resource_version
                if event.type != "BOOKMARK":
                    self.handle(event.type, event.object)
        finally:
            stream.close()  # type: ignore[attr-defined]  # a WatchStream: see Backend.watch
        return resource_version

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        namespace, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
        if not (namespace and name and uid):
            return
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        if kind == "DELETED":
            self._forget(namespace, name, uid)
            return
        text = (meta.get("annotations") or {}).get(ANNOTATION_LOGS)
        with self._lock:
            new = uid not in self._seen
            if new:
                self._seen[uid] = (namespace, name)
                self._prepare_files(namespace, name, uid, containers, text)
        if new:
            # Creating kwok's Logs object is an API round trip; doing it on the event thread
            # let logs land after a busy cluster's pods had already finished. The files are
            # written first (the text is known from the annotation), the objects in parallel.
            self._pool.submit(self._register_safely, namespace, name, uid, containers)
        if containers and (pod.get("spec") or {}).get("nodeName"):
            self._on_node(namespace, name, uid, containers[0], meta)
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            running = (status.get("state") or {}).get("running")
            if not running:
                continue
            container = status.get("name", "")
            run = int(status.get("restartCount") or 0)
            key = (uid, container)
            with self._lock:
                if self._runs.get(key, -1) >= run:
                    continue
                path = self.log_file(namespace, name, uid, container)
                if run > 0 and path.exists():
                    path.replace(path.with_suffix(".previous.log"))
                    path.touch()
                self._runs[key] = run
                if text:
                    with path.open("a", encoding="utf-8") as fh:
                        fh.write(cri_log_lines(text))

    def _prepare_files(
        self, namespace: str, name: str, uid: str, containers: list[str], text: str | None
    ) -> None:
        """Create the log files; the first run's text is written at once (lock held)."""
        directory = self.pod_dir(namespace, name, uid)
        directory.mkdir(parents=True, exist_ok=True)
        for container in containers:
            current = directory / f"{container}.log"
            (directory / f"{container}.previous.log").touch()
            with current.open("a", encoding="utf-8") as fh:
                if text:
                    fh.write(cri_log_lines(text))
            self._runs[(uid, container)] = 0

    def _register_safely(self, namespace: str, name: str, uid: str, containers: list[str]) -> None:
        # Retried: an API server restart must not leave a pod without its Logs object (kwok
        # would serve it an empty log). A pod that is gone by then needs none.
        deadline = time.monotonic() + 60
        while not self._stop.is_set():
            try:
                if self._register(namespace, name, uid, containers):
                    with self._lock:
                        self._registered.add(uid)
                        start = self._claim_labelling(uid)
                    if start:
                        self._label_safely(namespace, name, uid, containers[0])
                    return
            except Exception as exc:  # keep the agent alive; record for diagnostics
                self.errors.append(f"apply Logs {namespace}/{name}: {type(exc).__name__}: {exc}")
            with self._lock:
                if uid not in self._seen or time.monotonic() > deadline:
                    return
            self._stop.wait(0.5)

    def _on_node(
        self, namespace: str, name: str, uid: str, container: str, meta: dict[str, Any]
    ) -> None:
        """The pod is on the node: label it once kwok serves its log (if not yet labelled)."""
        with self._lock:
            if LOGS_SERVED_LABEL in (meta.get("labels") or {}):
                self._labelling.add(uid)
            self._bound.add(uid)
            start = self._claim_labelling(uid)
        if start:
            self._pool.submit(self._label_safely, namespace, name, uid, container)

    def _claim_labelling(self, uid: str) -> bool:
        """Whether to label the pod now: registered, on a node, not labelled (lock held)."""
        ready = uid in self._registered and uid in self._bound and uid in self._seen
        if not ready or uid in self._labelling:
            return False
        self._labelling.add(uid)
        return True

    def _label_safely(self, namespace: str, name: str, uid: str, container: str) -> None:
        """Label the pod with :data:`LOGS_SERVED_LABEL` once kwok serves its log (60 s bound)."""
        deadline = time.monotonic() + 60
        while not self._stop.is_set():
            try:
                if self._label(namespace, name, uid, container):
                    return
            except (NotFound, Invalid):
                return  # the pod is gone, or its name now belongs to another pod (uid differs)
            except Exception as exc:  # keep the agent alive; record for diagnostics
                self.errors.append(f"label {namespace}/{name}: {type(exc).__name__}: {exc}")
                del self.errors[:-20]
            with self._lock:
                if uid not in self._seen:
                    return
            if time.monotonic() > deadline:
                self.errors.append(f"label {namespace}/{name}: kwok never served its log")
                return
            self._stop.wait(0.1)

    def _label(self, namespace: str, name: str, uid: str, container: str) -> bool:
        """Label the pod if kwok serves its log now; return whether it did."""
        previous = b"".join(self.api.read_log(namespace, name, container, previous=True))
        if NO_LOGS_OBJECT_LINE.encode() in previous:
            return False
        # The uid makes the patch fail (422) if the name now belongs to another pod.
        label = {"metadata": {"uid": uid, "labels": {LOGS_SERVED_LABEL: "true"}}}
        self.api.patch("Pod", namespace, name, label)
        return True

    def _register(self, namespace: str, name: str, uid: str, containers: list[str]) -> bool:
        """Apply the pod's Logs object; return whether the server took it."""
        directory = self.pod_dir(namespace, name, uid)
        logs = []
        for container in containers:
            current = directory / f"{container}.log"
            previous = directory / f"{container}.previous.log"
            logs.append(
                {
                    "containers": [container],
                    "logsFile": str(current),
                    "previousLogsFile": str(previous),
                }
            )
        manifest = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Logs",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"podrunner.dev/pod-uid": uid},
            },
            "spec": {"logs": logs},
        }
        try:
            self.api.request(
                "PATCH",
                _logs_path(namespace, name),
                query=[("fieldManager", "podrunner-kwok"), ("force", "true")],
                # JSON is YAML: the text goes out as it is, whatever the client release.
                body=json.dumps(manifest),
                content_type="application/apply-patch+yaml",
            )
        except BackendError as exc:
            self.errors.append(f"apply Logs {namespace}/{name}: {exc}")
            return False
        return True

    def _forget(self, namespace: str, name: str, uid: str) -> None:
        with self._lock:
            self._seen.pop(uid, None)
            for key in [k for k in self._runs if k[0] == uid]:
                del self._runs[key]
            for uids in (self._registered, self._bound, self._labelling):
                uids.discard(uid)
            still_used = any(v == (namespace, name) for v in self._seen.values())
        if not still_used:
            path = _logs_path(namespace, name)
            with contextlib.suppress(NotFound):
                labels = self.api.request("GET", path).get("metadata", {}).get("labels", {})
                if labels.get("podrunner.dev/pod-uid") == uid:
                    self.api.request("DELETE", path)
        shutil.rmtree(self.pod_dir(namespace, name, uid), ignore_errors=True)

    def append(
        self, namespace: str, name: str, text: str, container: str | None, stream: str
    ) -> None:
        try:
            pod = self.api.get("Pod", namespace, name)
        except NotFound:
            raise LookupError(f"pod {namespace}/{name} not found") from None
        uid = pod["metadata"]["uid"]
        containers = [c["name"] for c in pod["spec"]["containers"]]
        with self._lock:
            if uid not in self._seen:
                self._seen[uid] = (namespace, name)
                if self._register(namespace, name, uid, containers):
                    self._registered.add(uid)
        targets = [container] if container else containers
        for target in targets:
            if target not in containers:
                raise LookupError(f"pod {namespace}/{name} has no container {target!r}")
            with self.log_file(namespace, name, uid, target).open("a", encoding="utf-8") as fh:
                fh.write(cri_log_lines(text, stream))
