"""The ``podrunner_*`` pytest fixtures (registered by :mod:`podrunner.testing.plugin`).

==========================  ========  ====================================================
fixture                     scope     what
==========================  ========  ====================================================
``podrunner_fake``          function  a fresh :class:`~podrunner.testing.FakeCluster`
``podrunner_backend_name``  function  ``fake``, ``kwok``, ``kind`` or ``kubeconfig``
``podrunner_backend``       function  the backend of that cluster
``podrunner_namespace``     function  ``default`` on the fake; a fresh labelled namespace,
                                      removed afterwards, on real clusters
``podrunner_runner``        function  a :class:`~podrunner.PodRunner` on both; on real
                                      clusters its pods follow ``podrunner_fake``'s rules
``podrunner_kwok``          session   a local kwok control plane, one per session
``podrunner_kind``          session   a kind cluster, reused by name
==========================  ========  ====================================================

Under pytest-xdist the session clusters are created once, by whichever worker asks first, behind
a file lock in the directory the workers share; the others attach to it, and the creator stops
it only after the last of them is done.

Nothing heavy is imported at module level: this module is loaded with the plugin. The log
recording and the rules-to-annotations translation live in :mod:`podrunner.testing._recording`,
loaded by the fixtures that use them.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from podrunner.testing._options import marker_options, settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from podrunner.backends.base import Backend
    from podrunner.backends.fake import FakeCluster
    from podrunner.run import PodRunner
    from podrunner.testing._recording import LogRecorder, SimulatingBackend

__all__ = [
    "CALL_FAILED",
    "TRACKED",
    "SharedCluster",
    "Tracked",
    "describe_pods",
    "podrunner_backend",
    "podrunner_backend_name",
    "podrunner_fake",
    "podrunner_kind",
    "podrunner_kwok",
    "podrunner_namespace",
    "podrunner_runner",
    "podrunner_session_backends",
]

TEST_LABEL = "podrunner.dev/test"
"""Label on the namespaces the fixtures create (value: a sanitised test name)."""

_LOG_TAIL = 20
_LEFTOVER_WAIT = 10.0
_SHARED_WAIT = 900.0


class Tracked:
    """Where a test's pods live, for the failure report.

    A plain class, not a dataclass: this module loads with the plugin in every test session.

    Attributes:
        backend: The backend the pods were created on.
        namespace: Their namespace (``None``: every namespace of a fake cluster).
        cluster: The fake cluster, which also remembers deleted pods.
        recorder: The output the test's runs read, per pod (a
            :class:`~podrunner.testing._recording.LogRecorder`), kept after the pods are deleted.
        simulating: On real clusters, the runner's
            :class:`~podrunner.testing._recording.SimulatingBackend` (remembers created pods).
    """

    __slots__ = ("backend", "cluster", "namespace", "recorder", "simulating")

    def __init__(
        self,
        backend: Backend,
        namespace: str | None,
        cluster: FakeCluster | None = None,
        recorder: LogRecorder | None = None,
        simulating: SimulatingBackend | None = None,
    ) -> None:
        self.backend = backend
        self.namespace = namespace
        self.cluster = cluster
        self.recorder = recorder
        self.simulating = simulating


TRACKED = pytest.StashKey[list[Tracked]]()
CALL_FAILED = pytest.StashKey[bool]()


def _track(request: pytest.FixtureRequest, entry: Tracked) -> None:
    request.node.stash.setdefault(TRACKED, []).append(entry)


def _options(request: pytest.FixtureRequest) -> Any:
    __tracebackhide__ = True
    return marker_options(request.node)


def _check_leftovers(
    request: pytest.FixtureRequest, target: Any, namespace: str | None, *, wait: float
) -> None:
    """Fail at teardown when the test left pods or Secrets (unless it failed or opted out)."""
    __tracebackhide__ = True
    from podrunner.testing.assertions import leftovers

    if request.node.stash.get(CALL_FAILED, False) or _options(request).allow_leftovers:
        return
    deadline = time.monotonic() + wait
    left = leftovers(target, namespace)
    # A real cluster finishes deletes asynchronously (garbage-collected Secrets, finalizers).
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = leftovers(target, namespace)
    if left:
        listing = "\n".join(f"  - {line}" for line in left)
        pytest.fail(
            f"podrunner: the test left {len(left)} object(s) behind:\n{listing}\n"
            "Delete them (or run with cleanup=ALWAYS), or opt out with "
            "@pytest.mark.podrunner(allow_leftovers=True).",
            pytrace=False,
        )


def _setup_beyond_rules(cluster: FakeCluster) -> tuple[int, ...]:
    """How many faults and objects the fake holds (what a script can set up besides rules)."""
    # FakeCluster keeps its faults private; the plugin is its sibling in the package.
    return (
        len(cluster._faults),
        len(cluster.pods()),
        len(cluster.secrets()),
        len(cluster.config_maps()),
        len(cluster.network_policies()),
        len(cluster.namespaces()),
    )


_SCRIPT_DOES_MORE = pytest.StashKey[bool]()


# -- the fake -----------------------------------------------------------------------------------


@pytest.fixture
def podrunner_fake(request: pytest.FixtureRequest) -> Iterator[FakeCluster]:
    """A fresh in-memory cluster per test (virtual clock, scripted kubelet).

    ``@pytest.mark.podrunner(script=fn, runtime=..., seed=...)`` configures it. At teardown a
    pod or Secret the test left behind fails the test, unless ``allow_leftovers=True``.
    """
    __tracebackhide__ = True
    from podrunner.backends.fake import FakeCluster
    from podrunner.testing._recording import LogRecorder, record_fake_logs

    options = _options(request)
    cluster = FakeCluster(
        runtime=options.runtime,
        seed=options.seed,
        auto_create_namespaces=options.auto_create_namespaces,
    )
    if options.script is not None:
        before = _setup_beyond_rules(cluster)
        options.script(cluster)
        # On a real cluster only the rules apply: note a script that does more.
        request.node.stash[_SCRIPT_DOES_MORE] = _setup_beyond_rules(cluster) != before
    recorder = LogRecorder()
    # Cleanup deletes a run's pod (and the fake its log) before the report is written.
    record_fake_logs(cluster, recorder)
    _track(request, Tracked(cluster.backend, None, cluster, recorder))
    try:
        yield cluster
    finally:
        try:
            _check_leftovers(request, cluster, None, wait=0.0)
        finally:
            cluster.backend.close()


# -- real clusters, shared by the session (and by xdist workers) ---------------------------------


class SharedCluster(NamedTuple):
    """A session cluster as the fixtures hand it out.

    Attributes:
        backend_name: ``kwok`` or ``kind``.
        kubeconfig: Path of its private kubeconfig.
        created_here: Whether this process started it (the others attach to it).
        cluster: The :class:`~podrunner.testing.controlplane.KwokCluster` or
            :class:`~podrunner.testing.controlplane.KindCluster` in the process that started it,
            ``None`` in the other xdist workers.
    """

    backend_name: str
    kubeconfig: Path
    created_here: bool
    cluster: Any = None


def _read_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(path)


def _shared_cluster(
    name: str,
    tmp_path_factory: pytest.TempPathFactory,
    start: Callable[[], Any],
) -> Iterator[SharedCluster]:
    """Start a cluster once per session (once for all xdist workers), skip when unavailable."""
    from podrunner.testing.controlplane import ClusterUnavailable

    if os.environ.get("PYTEST_XDIST_WORKER"):
        yield from _cluster_across_workers(name, tmp_path_factory, start)
        return
    try:
        cluster = start()
    except ClusterUnavailable as exc:
        pytest.skip(f"podrunner: no {name} cluster: {exc}")
    try:
        yield SharedCluster(name, Path(cluster.kubeconfig), True, cluster)
    finally:
        cluster.stop()


def _cluster_across_workers(
    name: str,
    tmp_path_factory: pytest.TempPathFactory,
    start: Callable[[], Any],
) -> Iterator[SharedCluster]:
    """The first xdist worker starts the cluster; the others attach; the last one out stops it."""
    from filelock import FileLock

    # The workers' base temporary directories share this parent (pytest-xdist's recipe).
    root = tmp_path_factory.getbasetemp().parent / f"podrunner-{name}"
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / "lock"))
    state_path = root / "state.json"
    with lock:
        state, owned = _join_shared(state_path, name, start)
    try:
        yield SharedCluster(name, Path(state["kubeconfig"]), owned is not None, owned)
    finally:
        with lock:
            current = _read_state(state_path) or {"users": 1}
            current["users"] = current.get("users", 1) - 1
            _write_state(state_path, current)
        if owned is not None:
            _stop_when_alone(owned, lock, state_path)


def _join_shared(
    state_path: Path, name: str, start: Callable[[], Any]
) -> tuple[dict[str, Any], Any]:
    """Under the lock: count this worker in, starting the cluster if it is the first."""
    from podrunner.testing.controlplane import ClusterUnavailable

    owned: Any = None
    state = _read_state(state_path)
    if state is None:
        try:
            owned = start()
        except ClusterUnavailable as exc:
            _write_state(state_path, {"unavailable": str(exc)})
            pytest.skip(f"podrunner: no {name} cluster: {exc}")
        state = {"kubeconfig": str(owned.kubeconfig), "users": 1, "pid": os.getpid()}
    elif "unavailable" in state:
        pytest.skip(f"podrunner: no {name} cluster: {state['unavailable']}")
    else:
        state["users"] += 1
    _write_state(state_path, state)
    return state, owned


def _stop_when_alone(owned: Any, lock: Any, state_path: Path) -> None:
    """The cluster's processes belong to this worker: wait for the others to finish."""
    deadline = time.monotonic() + _SHARED_WAIT
    while time.monotonic() < deadline:
        with lock:
            users = (_read_state(state_path) or {}).get("users", 0)
        if users <= 0:
            break
        time.sleep(0.5)
    with lock:
        owned.stop()
        state_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def podrunner_kwok(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedCluster]:
    """A local kwok control plane (real API server, simulated node), started once per session.

    Skips when the control-plane binaries are not built.
    """
    keep = settings(pytestconfig).keep_cluster

    def start() -> Any:
        from podrunner.testing.controlplane.kwok import KwokCluster

        return KwokCluster(keep_workdir=keep).start()

    yield from _shared_cluster("kwok", tmp_path_factory, start)


@pytest.fixture(scope="session")
def podrunner_kind(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedCluster]:
    """A kind cluster, reused if it exists, deleted at the end only if created and not kept.

    Skips when ``kind`` or Docker is missing.
    """
    chosen = settings(pytestconfig)

    def start() -> Any:
        from podrunner.testing.controlplane.kind import KindCluster

        return KindCluster(chosen.kind_cluster, keep=chosen.keep_cluster).start()

    yield from _shared_cluster("kind", tmp_path_factory, start)


@pytest.fixture(scope="session")
def podrunner_session_backends(pytestconfig: pytest.Config) -> Iterator[dict[str, Backend]]:
    """Real backends built once per session and closed at its end (internal cache)."""
    cache: dict[str, Backend] = {}
    try:
        yield cache
    finally:
        for backend in cache.values():
            with contextlib.suppress(Exception):
                backend.close()


# -- per-test fixtures ---------------------------------------------------------------------------


@pytest.fixture
def podrunner_backend_name(request: pytest.FixtureRequest) -> str:
    """The backend this test runs on: the marker's ``backend``, else the session's."""
    chosen = _options(request).backend or settings(request.config).backend
    if chosen != "fake" and _options(request).script is not None:
        if chosen != "kwok":
            # A real kubelet runs the command itself; the script's rules would not hold.
            pytest.skip(
                "scripted with @pytest.mark.podrunner(script=...): fake and kwok only, "
                f"not {chosen}"
            )
        runners = ("podrunner_runner", "podrunner_async_runner")
        if not any(name in request.fixturenames for name in runners):
            # The script's rules reach kwok through the runner fixtures only.
            pytest.skip(
                "scripted with @pytest.mark.podrunner(script=...) without podrunner_runner: "
                "fake only"
            )
    return str(chosen)


@pytest.fixture
def podrunner_backend(request: pytest.FixtureRequest, podrunner_backend_name: str) -> Backend:
    """The backend of the selected cluster: the test's fake cluster, kwok, kind or a kubeconfig."""
    if podrunner_backend_name == "fake":
        fake: FakeCluster = request.getfixturevalue("podrunner_fake")
        return fake.backend
    cache: dict[str, Backend] = request.getfixturevalue("podrunner_session_backends")
    backend = cache.get(podrunner_backend_name)
    if backend is None:
        from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend

        if podrunner_backend_name == "kubeconfig":
            path = settings(request.config).kubeconfig
            config = ClusterConfig.from_kubeconfig_file(path) if path else ClusterConfig.default()
        else:
            shared: SharedCluster = request.getfixturevalue(f"podrunner_{podrunner_backend_name}")
            config = ClusterConfig.from_kubeconfig_file(shared.kubeconfig)
        backend = cache[podrunner_backend_name] = KubernetesBackend(config)
    return backend


def _label_value(text: str) -> str:
    from podrunner.manifest.naming import sanitize_label_value

    return sanitize_label_value(text)


def _wait_for_default_service_account(backend: Any, namespace: str, timeout: float = 60) -> None:
    # Pods are refused until the controller-manager made the namespace's default
    # ServiceAccount (kubernetes#66689); the backend protocol has no ServiceAccount kind.
    api_client = getattr(backend, "api_client", None)
    if api_client is None:
        return
    import kubernetes

    core = kubernetes.client.CoreV1Api(api_client)
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except kubernetes.client.ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def podrunner_namespace(
    request: pytest.FixtureRequest, podrunner_backend_name: str, podrunner_backend: Backend
) -> Iterator[str]:
    """``default`` on the fake; on real clusters a fresh labelled namespace, deleted afterwards.

    At teardown a pod or Secret left in it fails the test, unless ``allow_leftovers=True``.
    """
    __tracebackhide__ = True
    if podrunner_backend_name == "fake":
        yield "default"
        return
    import secrets

    name = f"podrunner-test-{secrets.token_hex(4)}"
    podrunner_backend.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {TEST_LABEL: _label_value(request.node.name) or "test"},
            },
        }
    )
    try:
        _wait_for_default_service_account(podrunner_backend, name)
        _track(request, Tracked(podrunner_backend, name))
        yield name
        _check_leftovers(request, podrunner_backend, name, wait=_LEFTOVER_WAIT)
    finally:
        from podrunner.errors import NotFound

        with contextlib.suppress(NotFound):
            podrunner_backend.delete("Namespace", None, name)


def _rules_fake(request: pytest.FixtureRequest) -> FakeCluster | None:
    """The test's fake cluster whose scripting rules a real cluster follows, if any."""
    __tracebackhide__ = True
    script = _options(request).script
    if script is None and "podrunner_fake" not in request.fixturenames:
        return None
    fake: FakeCluster = request.getfixturevalue("podrunner_fake")
    if script is not None and request.node.stash.get(_SCRIPT_DOES_MORE, False):
        pytest.skip(
            "scripted with @pytest.mark.podrunner(script=...) that injects faults or "
            "creates objects: fake only"
        )
    return fake


@pytest.fixture
def podrunner_runner(
    request: pytest.FixtureRequest,
    podrunner_backend_name: str,
    podrunner_backend: Backend,
    podrunner_namespace: str,
) -> Iterator[PodRunner]:
    """A :class:`~podrunner.PodRunner` on the selected backend and the test's namespace.

    On real clusters the pods it creates carry the simulation annotations that the scripting
    rules of the test's ``podrunner_fake`` (or marker ``script=``) describe, so a scripted test
    runs unchanged on kwok; a rule kwok cannot express skips the test with the reason.
    """
    __tracebackhide__ = True
    from podrunner.run import PodRunner

    backend = podrunner_backend
    if podrunner_backend_name != "fake":
        from podrunner.testing._recording import LogRecorder, SimulatingBackend

        simulating = SimulatingBackend(podrunner_backend, LogRecorder(), _rules_fake(request))
        for entry in request.node.stash.get(TRACKED, []):
            if entry.namespace == podrunner_namespace and entry.cluster is None:
                entry.recorder, entry.simulating = simulating.recorder, simulating
        backend = simulating
    runner = PodRunner(backend, namespace=podrunner_namespace)
    try:
        yield runner
    finally:
        runner.close()


# -- the failure report --------------------------------------------------------------------------


def _manifest(pod: dict[str, Any]) -> str:
    import yaml

    meta = pod.get("metadata", {})
    shown = {
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)
        },
        "spec": pod.get("spec", {}),
    }
    return str(yaml.safe_dump(shown, sort_keys=False, default_flow_style=False))


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())


def _tail(text: str, heading: str) -> str:
    lines = text.splitlines()[-_LOG_TAIL:]
    body = _indent("\n".join(lines)) if lines else "    (empty)"
    return heading.format(n=_LOG_TAIL) + "\n" + body


def _one_pod(entry: Tracked, first: dict[str, Any], last: dict[str, Any]) -> str:
    from podrunner.run.state import reduce

    meta = first["metadata"]
    ns, name = meta.get("namespace", "default"), meta["name"]
    gone = last.get("_gone", False)
    state = reduce(last)
    head = f"pod {ns}/{name}: {state}" + (" (deleted)" if gone else "")
    if state.message:
        head += f": {state.message}"
    parts = [head]
    try:
        if entry.cluster is not None:
            events = entry.cluster.events(pod=name, namespace=ns)
        else:
            events = entry.backend.list(
                "Event", ns, field_selector=f"involvedObject.name={name}"
            ).items
        lines = [
            f"{e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}" for e in events
        ]
        parts.append("  events:\n" + (_indent("\n".join(lines)) if lines else "    (none)"))
    except Exception as exc:  # a diagnostic must never hide the test's own failure
        parts.append(f"  events: unavailable ({exc})")
    parts.append("  manifest:\n" + _indent(_manifest(first)))
    if gone:
        # What the test's runs read, kept when cleanup deleted the pod with its log.
        recorded = entry.recorder.text(ns, name) if entry.recorder is not None else None
        if recorded is None:
            parts.append("  log tail: unavailable (the pod was deleted before its log was read)")
        else:
            parts.append(_tail(recorded, "  log tail (last {n} lines, as the run read it):"))
    else:
        try:
            container = first["spec"]["containers"][0]["name"]
            chunks = entry.backend.read_log(ns, name, container, tail_lines=_LOG_TAIL)
            raw = b"".join(chunks)
            parts.append(_tail(raw.decode("utf-8", "replace"), "  log tail (last {n} lines):"))
        except Exception as exc:  # a diagnostic must never hide the test's own failure
            parts.append(f"  log tail: unavailable ({exc})")
    return "\n".join(parts)


def describe_pods(tracked: list[Tracked]) -> str:
    """Describe every pod of the tracked clusters: state, events, manifest and log tail."""
    out: list[str] = []
    for entry in tracked:
        try:
            if entry.cluster is not None:
                from podrunner.testing.assertions import created_pods

                for first in created_pods(entry.cluster):
                    meta = first["metadata"]
                    versions = entry.cluster.history("Pod", meta["namespace"], meta["name"])
                    exists = any(
                        p["metadata"]["name"] == meta["name"]
                        for p in entry.cluster.pods(meta["namespace"])
                    )
                    last = dict(versions[-1] if versions else first)
                    if not exists:
                        last["_gone"] = True
                    out.append(_one_pod(entry, first, last))
            else:
                assert entry.namespace is not None
                live = entry.backend.list("Pod", entry.namespace).items
                names = {pod["metadata"]["name"] for pod in live}
                seen = entry.simulating.seen if entry.simulating is not None else {}
                # Pods the runner created and cleanup already deleted, as last seen.
                for first, last in seen.values():
                    if first["metadata"]["name"] not in names:
                        out.append(_one_pod(entry, first, {**last, "_gone": True}))
                for pod in live:
                    out.append(_one_pod(entry, pod, pod))
        except Exception as exc:  # a diagnostic must never hide the test's own failure
            out.append(f"pods unavailable: {exc}")
    return "\n\n".join(out)
