"""The chaos tier's engine: scenarios = fault kind x run phase x cleanup policy.

Every scenario runs one :meth:`PodRunner.run` on the local kwok control plane through its own
:class:`~podrunner.testing.controlplane.faultproxy.FaultProxy`. A wrapper around the backend
notices when the run reaches the scenario's phase and fires the fault there, from the run's own
thread:

- ``before-create``: just before the pod is created (the create meets the fault);
- ``after-create``: the create reaches the server but its answer is lost (connection reset),
  then the fault starts: was the pod created?;
- ``scheduling``: at the first observation of the new pod (watch event or read);
- ``running``: while the log is followed, after its first chunk;
- ``terminal``: when the terminal status is first observed, before the runner sees it;
- ``cleanup``: just before the first delete.

Proxy faults act on the scenario's own proxy, so a fault kind's scenarios run in parallel
without touching each other. Control-plane faults (restarts, controller-manager down) are
shared: a kind's scenarios wait at their phase points until all have arrived (or a bound
passes), then one fault hits them all while they are at their different phases.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from podrunner import CleanupPolicy, PodRunner, PodSpec
from podrunner.backends._stream import WatchStream
from podrunner.backends.base import Backend, WatchEvent
from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend
from podrunner.errors import PodrunnerError
from podrunner.manifest import MANAGED_SELECTOR, RUN_ID_LABEL
from podrunner.testing.controlplane.faultproxy import FaultProxy
from podrunner.testing.controlplane.kwok import KwokCluster

PHASES = ("before-create", "after-create", "scheduling", "running", "terminal", "cleanup")
POLICIES = (CleanupPolicy.ALWAYS, CleanupPolicy.ON_SUCCESS)
PROXY_FAULTS = ("reset-all", "reset-streaming", "latency-2s", "stall", "refuse-5s")
CLUSTER_FAULTS = ("apiserver-soft", "apiserver-hard", "etcd-hard", "kcm-down")
FAULTS = ("none", *PROXY_FAULTS, *CLUSTER_FAULTS)  # "none": the baseline

READ_TIMEOUT = 5.0  # the chaos backend's read timeout; a stall lasts longer than this
RUN_TIMEOUT = 60.0  # each run's own deadline
HANG_MARGIN = 20.0  # a run that returns later than its deadline plus this hung
# Requests one run may make under a fault, tries that met an unreachable server included (8
# without a fault; about 25 at most through a 20 s API server restart, where urllib3 also
# tries each connection 4 times): a loop riding out an outage without back-off makes hundreds.
MAX_REQUESTS = 100
DURATION = 3  # seconds each simulated container runs
# Under control-plane faults containers run longer: a group's twelve runs wait at their phase
# points for one shared fault, and the later ones to arrive must still find theirs in flight.
CLUSTER_DURATION = 7
# When each phase's run starts, after the container-running ones, so that a shared fault
# finds them all at their phase (seconds before the container's end).
START_BEFORE_END = {
    "terminal": 0.0,
    "cleanup": 0.0,
    "running": 1.0,
    "scheduling": -0.2,
    "after-create": -0.4,
    "before-create": -0.5,
}


@dataclass
class Scenario:
    fault: str
    phase: str
    policy: CleanupPolicy

    @property
    def id(self) -> str:
        return f"{self.fault}-{self.phase}-{self.policy.value}"

    @property
    def exit_code(self) -> int:
        # On-success runs fail (exit 3) so their objects must be kept, except where the fault
        # hits the cleanup, which only a successful run reaches.
        if self.policy is CleanupPolicy.ON_SUCCESS and self.phase != "cleanup":
            return 3
        return 0

    @property
    def duration(self) -> int:
        return CLUSTER_DURATION if self.fault in CLUSTER_FAULTS else DURATION

    @property
    def start_offset(self) -> float:
        """Seconds after the group starts that this scenario starts."""
        if self.phase in ("terminal", "cleanup"):
            return 0.0
        return self.duration - START_BEFORE_END[self.phase]

    @property
    def logs(self) -> str:
        return "".join(f"{self.id} line {i:02d}\n" for i in range(20))

    def spec(self) -> PodSpec:
        return PodSpec(
            image="busybox:1.36",
            command=["sh", "-c", "true"],
            name_prefix=f"chaos-{self.fault}",
            secret_env={"CHAOS_TOKEN": "not-a-real-secret"},
            annotations={
                "sim.podrunner.dev/logs": self.logs,
                "sim.podrunner.dev/duration": str(self.duration),
                "sim.podrunner.dev/exit-code": str(self.exit_code),
            },
        )


@dataclass
class Outcome:
    scenario: Scenario
    exit_code: int | None = None
    logs: str | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    triggered: bool = False
    requests: int = 0
    watches_before: int = 0
    watches_after: int = 0
    peak_watches: int = 0
    replayed: int = 0  # watch events of the pod delivered again after a reconnect
    streamed: list[str] = field(default_factory=list)  # lines given to on_log
    run_id: str | None = None
    pod: str | None = None
    leaked: list[str] = field(default_factory=list)
    missing_kept: list[str] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)  # monotonic times of progress

    @property
    def kept_expected(self) -> bool:
        """Whether the policy keeps this run's objects (a failed on-success run)."""
        return self.scenario.policy is CleanupPolicy.ON_SUCCESS and (
            self.error is not None or self.exit_code != 0
        )

    def describe(self) -> str:
        """One line for a failure message: what the run returned and what it met."""
        got = (
            f"{type(self.error).__name__}: {self.error}"
            if self.error is not None
            else f"exit {self.exit_code}"
        )
        return (
            f"{self.scenario.id}: {got}; {self.seconds:.1f} s; {self.requests} requests; "
            f"streamed {len(self.streamed)} lines"
        )

    def problems(self) -> list[str]:
        """What is wrong with this outcome (empty: the scenario passed)."""
        out = []
        sc = self.scenario
        if self.error is not None:
            # Every fault of the matrix clears within the run's deadline, so a typed error
            # is a failure too: it would say the run failed when it could have succeeded.
            kind = "typed" if isinstance(self.error, PodrunnerError) else "untyped"
            out.append(f"{kind} error {type(self.error).__name__}: {self.error}")
        elif (self.exit_code, self.logs) != (sc.exit_code, sc.logs):
            out.append(
                f"result differs: exit {self.exit_code} (want {sc.exit_code}), logs "
                f"{len((self.logs or '').splitlines())} lines (want 20): {self.logs!r}"
            )
        elif self.streamed != sc.logs.splitlines():
            out.append(f"on_log lines differ: {self.streamed!r}")
        if self.requests > MAX_REQUESTS:
            out.append(f"{self.requests} requests (retries must stay bounded: {MAX_REQUESTS})")
        if self.seconds > RUN_TIMEOUT + HANG_MARGIN:
            out.append(f"hung: returned after {self.seconds:.1f} s")
        if self.leaked:
            out.append(f"leaked: {self.leaked}")
        if self.missing_kept:
            out.append(f"policy kept nothing of: {self.missing_kept}")
        if self.watches_after != self.watches_before:
            out.append(f"open watches {self.watches_before} -> {self.watches_after}")
        if self.replayed:
            out.append(f"the watch replayed {self.replayed} events (resume from the last version)")
        if self.peak_watches > 1:
            out.append(f"{self.peak_watches} watches open at once")
        return out


class PhaseBackend:
    """Delegates to a backend; calls ``trigger()`` once when the run reaches ``phase``."""

    def __init__(
        self, inner: Backend, phase: str, trigger: Callable[[], None], proxy: FaultProxy
    ) -> None:
        self._inner = inner
        self._phase = phase
        self._trigger = trigger
        self._proxy = proxy
        self._fired = False
        self._lock = threading.Lock()
        self.pod: str | None = None
        self.progress: list[float] = []
        self.versions: list[str] = []  # resourceVersions of the pod's watch events, in order

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def fire(self, phase: str) -> None:
        if phase != self._phase:
            return
        with self._lock:
            if self._fired:
                return
            self._fired = True
        self._trigger()

    @property
    def fired(self) -> bool:
        return self._fired

    def _progressed(self) -> None:
        self.progress.append(time.monotonic())

    def create(self, manifest: Any, **kw: Any) -> dict[str, Any]:
        is_pod = manifest.get("kind") == "Pod"
        if is_pod:
            self.pod = manifest["metadata"]["name"]
            self.fire("before-create")
            if self._phase == "after-create" and not self._fired:
                self._proxy.lose_next_response("POST", "/pods")
        try:
            created = self._inner.create(manifest, **kw)
        finally:
            if is_pod:
                self.fire("after-create")
        self._progressed()
        return created

    def get(self, kind: Any, namespace: Any, name: str) -> dict[str, Any]:
        obj = self._inner.get(kind, namespace, name)
        self._progressed()
        if kind == "Pod" and name == self.pod:
            self._observe(obj)
        return obj

    def list(self, *a: Any, **kw: Any) -> Any:
        listed = self._inner.list(*a, **kw)
        self._progressed()
        return listed

    def _observe(self, pod: dict[str, Any]) -> None:
        self.fire("scheduling")
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self.fire("terminal")

    def watch(self, *a: Any, **kw: Any) -> Iterator[WatchEvent]:
        inner = self._inner.watch(*a, **kw)
        stream = WatchStream()
        stream.interrupt = getattr(inner, "close", lambda: None)

        def events() -> Iterator[WatchEvent]:
            for event in inner:
                self._progressed()
                meta = event.object.get("metadata", {})
                if meta.get("name") == self.pod:
                    self.versions.append(meta.get("resourceVersion", ""))
                    self._observe(event.object)
                yield event

        stream.gen = events()  # type: ignore[assignment]
        return stream

    def read_log(self, *a: Any, **kw: Any) -> Iterator[bytes]:
        inner = self._inner.read_log(*a, **kw)
        follow = kw.get("follow", False)

        def chunks() -> Iterator[bytes]:
            try:
                for chunk in inner:
                    self._progressed()
                    yield chunk
                    if follow:
                        self.fire("running")
            finally:
                close = getattr(inner, "close", None)
                if close is not None:
                    close()

        return chunks()

    def delete(self, *a: Any, **kw: Any) -> None:
        self.fire("cleanup")
        self._inner.delete(*a, **kw)
        self._progressed()


class SharedFault:
    """One control-plane fault for a group of scenarios, fired once all are at their phase."""

    def __init__(self, cluster: KwokCluster, fault: str, expected: int) -> None:
        self.cluster = cluster
        self.fault = fault
        self._pending = expected
        self._cond = threading.Condition()
        self._started = threading.Event()
        self.released = threading.Event()
        self.ready_at: float | None = None
        self.down_at: float | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def arrive(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()
        self.released.wait(timeout=60)

    def leave(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _run(self) -> None:
        with self._cond:
            # A bound, in case a scenario never reaches its phase.
            self._cond.wait_for(lambda: self._pending <= 0, timeout=15)
        self.down_at = time.monotonic()
        try:
            component, hard, downtime = {
                "apiserver-soft": ("kube-apiserver", False, 0.0),
                "apiserver-hard": ("kube-apiserver", True, 0.0),
                "etcd-hard": ("etcd", True, 0.0),
                "kcm-down": ("kube-controller-manager", False, 5.0),
            }[self.fault]
            # The waiting runs go on as the component goes down: their next calls meet it.
            threading.Timer(0.2, self.released.set).start()
            self.cluster.restart(component, hard=hard, downtime=downtime, timeout=90)
            self.ready_at = self.cluster.api_ready_at or time.monotonic()
        except BaseException as exc:
            self.error = exc
        finally:
            self.released.set()

    def join(self) -> None:
        self._thread.join(timeout=120)


def proxy_trigger(fault: str, proxy: FaultProxy) -> Callable[[], None]:
    """The action that starts a proxy fault (and arranges for it to clear)."""

    def later(seconds: float, fn: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, fn)
        timer.daemon = True
        timer.start()

    def trigger() -> None:
        if fault == "reset-all":
            proxy.reset()
        elif fault == "reset-streaming":
            proxy.reset(streaming_only=True)
            proxy.reset_after(512, streaming_only=True)
            later(3.0, proxy.clear)
        elif fault == "latency-2s":
            proxy.set_latency(2.0)
            later(8.0, lambda: proxy.set_latency(0.0))
        elif fault == "stall":
            proxy.stall()
            later(READ_TIMEOUT + 1.5, proxy.unstall)
        elif fault == "refuse-5s":
            proxy.refuse(5.0)
            proxy.reset()
        elif fault != "none":
            raise ValueError(fault)

    return trigger


def managed_objects(backend: Backend, namespace: str) -> dict[str, str]:
    """Managed Pods, Secrets and ConfigMaps in ``namespace``: ``"Kind/name"`` -> run id."""
    found = {}
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = backend.list(kind, namespace, label_selector=MANAGED_SELECTOR)  # type: ignore[arg-type]
        for obj in listed.items:
            meta = obj.get("metadata", {})
            found[f"{kind}/{meta.get('name')}"] = (meta.get("labels") or {}).get(RUN_ID_LABEL, "")
    return found


def run_scenario(
    cluster: KwokCluster, namespace: str, sc: Scenario, shared: SharedFault | None
) -> Outcome:
    """Run one scenario to its outcome (leaks are checked by the group)."""
    outcome = Outcome(sc)
    time.sleep(sc.start_offset)
    proxy = FaultProxy.for_kwok(cluster).start()
    backend = KubernetesBackend(
        ClusterConfig.from_kubeconfig_file(str(proxy.kubeconfig)),
        pool_size=8,
        request_timeout=(2.0, READ_TIMEOUT),
        log_idle_timeout=READ_TIMEOUT * 2,
    )
    trigger = shared.arrive if shared is not None else proxy_trigger(sc.fault, proxy)
    phased = PhaseBackend(backend, sc.phase, trigger, proxy)
    runner = PodRunner(phased, namespace)  # type: ignore[arg-type]
    outcome.watches_before = runner.watch_stats()["open_streams"]
    began = time.monotonic()
    handle = None
    try:
        handle = runner.start(
            sc.spec(), timeout=RUN_TIMEOUT, cleanup=sc.policy, on_log=outcome.streamed.append
        )
        outcome.run_id = handle.run_id
        with handle:
            result = handle.wait()
        outcome.exit_code, outcome.logs = result.exit_code, result.logs
    except BaseException as exc:
        outcome.error = exc
    finally:
        outcome.seconds = time.monotonic() - began
        outcome.triggered = phased.fired
        if shared is not None and not phased.fired:
            shared.leave()
        outcome.pod = phased.pod
        outcome.progress = phased.progress
        outcome.replayed = len(phased.versions) - len(set(phased.versions))
        # One run keeps its shared stream open for the runner's next run, by design; closing
        # the runner must bring the count back to where it was, and faults must never have
        # left two streams open at once.
        runner.close()
        stats = runner.watch_stats()
        outcome.watches_after = stats["open_streams"]
        outcome.peak_watches = stats["peak_open_streams"]
        backend.close()
        # Tries that met an unreachable server count too: they are what a retry loop costs.
        outcome.requests = len(proxy.requests) + proxy.connections_failed
        proxy.stop()
    return outcome


def run_group(
    cluster: KwokCluster, admin: Backend, namespace: str, fault: str, scenarios: list[Scenario]
) -> tuple[dict[str, Outcome], SharedFault | None]:
    """Run one fault kind's scenarios in parallel, then check what each left behind."""
    shared = SharedFault(cluster, fault, len(scenarios)) if fault in CLUSTER_FAULTS else None
    outcomes: dict[str, Outcome] = {}

    def one(sc: Scenario) -> None:
        outcomes[sc.id] = run_scenario(cluster, namespace, sc, shared)

    threads = [threading.Thread(target=one, args=(sc,), daemon=True) for sc in scenarios]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=RUN_TIMEOUT + HANG_MARGIN + 60)
    for sc in scenarios:
        outcomes.setdefault(sc.id, Outcome(sc, error=TimeoutError("thread never returned")))
    if shared is not None:
        shared.join()
    check_leaks(admin, namespace, list(outcomes.values()))
    return outcomes, shared


def wait_gone(admin: Backend, namespace: str, seconds: float = 30.0) -> dict[str, str]:
    """Poll until no managed object is left in ``namespace``; return what is left."""
    deadline = time.monotonic() + seconds
    while True:
        found = managed_objects(admin, namespace)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def check_leaks(admin: Backend, namespace: str, outcomes: list[Outcome]) -> None:
    """Fill each outcome's ``leaked``/``missing_kept``; then delete what policies kept.

    Deletes are asynchronous on a real server, so absence is polled for (30 s bound).
    """
    by_run = {o.run_id: o for o in outcomes if o.run_id}
    by_pod = {o.pod: o for o in outcomes if o.pod}
    deadline = time.monotonic() + 30
    while True:
        found = managed_objects(admin, namespace)
        unexpected = {
            k: rid
            for k, rid in found.items()
            if not (by_run.get(rid) and by_run[rid].kept_expected)
        }
        if not unexpected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for key, rid in unexpected.items():
        owner = by_run.get(rid)
        if owner is None:  # a run whose start() raised: match by the pod name
            owner = next((o for p, o in by_pod.items() if key.endswith(f"/{p}")), None)
        if owner is not None:
            owner.leaked.append(key)
    for o in outcomes:
        failed_run = o.error is None and o.exit_code not in (None, 0)
        if o.kept_expected and failed_run and o.pod and f"Pod/{o.pod}" not in found:
            o.missing_kept.append(f"Pod/{o.pod}")
    # Remove what the policy kept (and any leak), so the next group starts clean.
    for key in found:
        kind, name = key.split("/", 1)
        with contextlib.suppress(PodrunnerError):
            admin.delete(kind, namespace, name, grace_period_seconds=0)  # type: ignore[arg-type]


def admin_backend(cluster: KwokCluster) -> KubernetesBackend:
    """A backend straight to the API server (no proxy), for checks and set-up."""
    return KubernetesBackend(ClusterConfig.from_kubeconfig_file(str(cluster.kubeconfig)))
