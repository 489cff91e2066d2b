"""PodRunner: run a :class:`~podrunner.PodSpec` in an ephemeral pod and give back the result.

How a run goes (every backend, every outcome):

1. Manifests are built and planned (pure: :mod:`podrunner.manifest`) before any API call.
2. The per-run NetworkPolicy, Secret and ConfigMap (if any) are created, then the pod; they
   are then made owned by the pod so the cluster collects them even if this process dies.
   Every object carries a ``podrunner.dev/expires-at`` annotation for :meth:`PodRunner.reap`.
3. A :class:`~podrunner.RunHandle` drives the run's core (:mod:`podrunner.run.core`): it
   follows the pod through the namespace's shared watch (:mod:`podrunner.run.watch`), its log
   through a follower thread (:mod:`podrunner.run.follow`), and does what the core decides.
4. Cleanup runs in ``finally``: on success, error, timeout, cancel or Ctrl-C, everything the
   run created is deleted unless the cleanup policy says to keep it. The caller sees the
   original exception.

Every API call goes through a :class:`~podrunner.RetryingBackend`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from podrunner._time import epoch_of
from podrunner.backends.base import Backend, Clock, Kind
from podrunner.errors import Forbidden, NotFound, RunError
from podrunner.manifest import MANAGED_SELECTOR, RUN_ID_LABEL, build_manifests, owner_reference
from podrunner.manifest.plan import EXPIRES_ANNOTATION, RunPlan, plan_run
from podrunner.run.collect import Collect, collect_option, with_collector
from podrunner.run.core import RunCore
from podrunner.run.handle import Callbacks, Driver, RunHandle
from podrunner.run.many import ManyRuns
from podrunner.run.outcome import ReapReport, RunIdentity, RunResult
from podrunner.run.retry import RetryingBackend, RetryPolicy
from podrunner.run.watch import WatchRegistry
from podrunner.spec import CleanupPolicy, Deadlines, EgressPolicy, PodSpec
from podrunner.spec._fields import _enum

if TYPE_CHECKING:
    from collections.abc import Callable

    from podrunner.backends.kubernetes import ClusterConfig
    from podrunner.manifest import Manifests
    from podrunner.run.state import PodState

__all__ = ["PodRunner"]

_NO_DEADLINES = Deadlines()

REAPED_KINDS: tuple[Kind, ...] = ("Pod", "Secret", "ConfigMap", "NetworkPolicy")
"""What :meth:`PodRunner.reap` looks at."""


class PodRunner:
    r"""Runs pods to completion on a backend and returns their results.

    Args:
        backend: The cluster (a :class:`~podrunner.backends.base.Backend`).
        namespace: Default namespace for specs that name none.
        retry: When API calls are retried.
        log_limit_bytes: Keep at most this much output per run (the tail is kept).
        default_ttl: Expiry written on objects of runs without a total deadline, for
            :meth:`reap`.
        deadline_margin: Seconds added to the total deadline for the pod's
            ``activeDeadlineSeconds``, so the cluster kills a pod whose runner died.
        egress: The egress policy of runs whose spec has none (``None``: unrestricted).

    Example:
        >>> from podrunner import PodRunner, PodSpec
        >>> from podrunner.testing import FakeCluster
        >>> cluster = FakeCluster()
        >>> _ = cluster.when(image="busybox:*").succeed(logs="hi\\n", after=2.0)
        >>> spec = PodSpec(image="busybox:1.36", command=["echo", "hi"])
        >>> result = PodRunner(cluster.backend).run(spec)
        >>> result.exit_code, result.logs
        (0, 'hi\\n')
    """

    def __init__(
        self,
        backend: Backend,
        namespace: str = "default",
        *,
        retry: RetryPolicy | None = None,
        log_limit_bytes: int | None = 16 * 1024 * 1024,
        default_ttl: float = 24 * 3600.0,
        deadline_margin: float = 30.0,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.backend = backend
        self.namespace = namespace
        self.retry = retry or RetryPolicy()
        self.log_limit_bytes = log_limit_bytes
        self.default_ttl = default_ttl
        self.deadline_margin = deadline_margin
        self.egress = check_egress(egress)
        # Every call on the run's behalf goes through the retrying wrapper (the backend may
        # already be one: its own policy then applies).
        self.api = (
            backend
            if isinstance(backend, RetryingBackend)
            else RetryingBackend(backend, self.retry)
        )
        """The backend, with retries (what the runner and its runs call)."""
        self._driver = Driver(api=self.api, watches=WatchRegistry(self.api))

    @classmethod
    def connect(
        cls, cluster: ClusterConfig | None = None, namespace: str = "default", **kw: Any
    ) -> PodRunner:
        """Create a runner on a real cluster through the official ``kubernetes`` client.

        Args:
            cluster: Where to connect; :meth:`ClusterConfig.default` when ``None``.
            namespace: Default namespace.
            **kw: Passed to :class:`PodRunner`.
        """
        from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend

        return cls(KubernetesBackend(cluster or ClusterConfig.default()), namespace, **kw)

    @property
    def clock(self) -> Clock:
        """The backend's clock."""
        return self.backend.clock

    def close(self) -> None:
        """Close shared watches."""
        self._driver.watches.close()

    def __enter__(self) -> PodRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        spec: PodSpec,
        *,
        timeout: float | None = None,
        deadlines: Deadlines | None = None,
        check: bool = False,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: Callable[[str], None] | None = None,
        on_state: Callable[[PodState], None] | None = None,
        collect: Collect | Sequence[str] | None = None,
    ) -> RunResult:
        """Run ``spec`` to completion, like :func:`subprocess.run`.

        Args:
            spec: What to run.
            timeout: Total seconds for the run (shorthand for ``Deadlines(total=...)``).
            deadlines: Separate scheduling, start and total budgets.
            check: Raise :class:`~podrunner.errors.PodFailed` when the exit code is not 0.
            cleanup: What to delete afterwards.
            on_log: Called with each output line as it arrives (streams the log).
            on_state: Called with each new :class:`PodState`.
            collect: Files to copy out of the pod once the container has ended, into
                :attr:`RunResult.files`: absolute paths or globs (``["/out/**"]``) or a
                :class:`Collect` (see ``docs/collect.md``).

        Returns:
            The result, whenever the container ran and terminated (any exit code).

        Raises:
            RunError: The container never ran or the run was cut short;
                :class:`~podrunner.errors.CollectFailed` when the files could not be copied.
            BackendError: The cluster refused a request that retrying could not fix.
        """
        handle = self.start(
            spec,
            timeout=timeout,
            deadlines=deadlines,
            check=check,
            cleanup=cleanup,
            on_log=on_log,
            on_state=on_state,
            collect=collect,
        )
        with handle:
            return handle.wait()

    def start(
        self,
        spec: PodSpec,
        *,
        timeout: float | None = None,
        deadlines: Deadlines | None = None,
        check: bool = False,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: Callable[[str], None] | None = None,
        on_state: Callable[[PodState], None] | None = None,
        run_id: str | None = None,
        collect: Collect | Sequence[str] | None = None,
    ) -> RunHandle:
        """Create the run's objects and return a handle without waiting.

        The arguments are those of :meth:`run`. If creation fails, whatever was created is
        deleted before the error propagates.
        """
        cleanup = cleanup_policy(cleanup)
        deadlines = with_timeout(deadlines, timeout)
        wanted = collect_option(collect)
        plan = plan_run(
            run_manifests(spec, run_id, self.egress, wanted, deadlines.total),
            namespace=spec.namespace or self.namespace,
            now=self.clock.now(),
            total=deadlines.total,
            default_ttl=self.default_ttl,
            deadline_margin=self.deadline_margin,
        )
        started = self.clock.monotonic()
        # An outage is retried for RetryPolicy.outage, but not past the run's own deadline.
        stored = self._create(plan, None if deadlines.total is None else started + deadlines.total)
        manifests = plan.manifests
        core = core_for_plan(
            plan,
            deadlines,
            cleanup,
            started=started,
            log_limit_bytes=self.log_limit_bytes,
            collect=wanted,
        )
        try:
            return RunHandle(
                self._driver,
                core,
                stored=stored,
                resource_version=stored.get("metadata", {}).get("resourceVersion"),
                callbacks=Callbacks(on_log=on_log, on_state=on_state),
                manifests=manifests,
                check=check,
            )
        except BaseException:
            # Whatever failed (an on_state callback that raised, included), nothing stays.
            self._delete_created(plan, [*core.extras, ("Pod", manifests.pod_name)])
            raise

    def _create(self, plan: RunPlan, until: float | None) -> dict[str, Any]:
        """Create the plan's objects: extras, the pod, then the pod owns the extras.

        Creates retry an outage until ``until`` (the run's deadline) at the latest. A create
        that failed may still have landed (its answer lost): the object is then found by
        name and deleted if it carries the run id, with whatever was created before it.
        """
        created: list[tuple[Kind, str]] = []
        creating: dict[str, Any] | None = None  # the manifest whose create is under way
        try:
            for extra in plan.extras:
                creating = extra
                self.api.create(extra, until=until)
                created.append((extra["kind"], extra["metadata"]["name"]))
            creating = plan.pod
            stored = self.api.create(plan.pod, until=until)
            created.append(("Pod", plan.manifests.pod_name))
            creating = None
            if plan.extras:
                # Owned by the pod: the cluster's garbage collector removes them with the pod
                # even if this process dies before its own cleanup.
                owner = {"metadata": {"ownerReferences": [owner_reference(stored)]}}
                for extra in plan.extras:
                    self.api.patch(extra["kind"], plan.namespace, extra["metadata"]["name"], owner)
        except BaseException as exc:
            if creating is not None:
                self.api.forget_lost_create(creating, exc)
            self._delete_created(plan, created)
            raise
        return stored

    def _delete_created(self, plan: RunPlan, created: list[tuple[Kind, str]]) -> None:
        for kind, name in reversed(created):
            self.api.delete_quietly(kind, plan.namespace, name, grace=0)

    def run_many(
        self,
        specs: Iterable[PodSpec],
        *,
        max_parallel: int = 16,
        return_exceptions: bool = True,
        **kwargs: Any,
    ) -> Iterator[RunResult | RunError]:
        """Run several specs concurrently, yielding each outcome as it finishes.

        At most ``max_parallel`` runs are in flight. They share one pod watch per namespace,
        read by a single thread, and a bounded pool (at most 32 threads) does the blocking
        work (creating, draining logs, deleting), so a thousand concurrent runs need neither a
        thousand threads nor a thousand watches.

        Args:
            specs: What to run.
            max_parallel: Upper bound of runs in flight.
            return_exceptions: Yield a run's :class:`~podrunner.errors.RunError` instead of
                raising it; when ``False`` the first error is raised after the other runs
                were stopped and cleaned up.
            **kwargs: Passed to :meth:`run` for every spec.
        """
        spec_list = list(specs)
        many = ManyRuns(
            clock=self.clock,
            start=lambda spec: self.start(spec, **kwargs),
            watch_for=lambda spec: self._driver.watches.for_namespace(
                spec.namespace or self.namespace
            ),
            max_parallel=max(1, max_parallel),
            return_exceptions=return_exceptions,
        )
        return many.outcomes(spec_list)

    def attach(
        self,
        run_id: str,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: Callable[[str], None] | None = None,
        on_state: Callable[[PodState], None] | None = None,
    ) -> RunHandle:
        """Pick up a run started by an earlier process, found by its run-id label.

        Raises:
            NotFound: No pod carries that run id.
        """
        cleanup = cleanup_policy(cleanup)
        namespace = namespace or self.namespace
        selector = f"{MANAGED_SELECTOR},{RUN_ID_LABEL}={run_id}"
        listed = self.api.list("Pod", namespace, label_selector=selector)
        if not listed.items:
            raise NotFound(f"no pod with run id {run_id!r}", kind="Pod", namespace=namespace)
        pod = listed.items[0]
        core = core_for_pod(
            pod,
            namespace,
            run_id,
            timeout,
            cleanup,
            monotonic=self.clock.monotonic(),
            now=self.clock.now(),
            log_limit_bytes=self.log_limit_bytes,
        )
        return RunHandle(
            self._driver,
            core,
            stored=pod,
            resource_version=listed.resource_version,
            callbacks=Callbacks(on_log=on_log, on_state=on_state),
        )

    def reap(self, *, older_than: float | None = None, namespace: str | None = None) -> ReapReport:
        """Delete managed pods, Secrets, ConfigMaps and NetworkPolicies that outlived their runs.

        An object is reaped when its ``podrunner.dev/expires-at`` annotation is in the past,
        or, with ``older_than``, when it was created more than that many seconds ago.

        Args:
            older_than: Also reap objects older than this many seconds.
            namespace: Where to look; the runner's namespace by default.
        """
        namespace = namespace or self.namespace
        reaping = Reaping(namespace, self.clock.now(), older_than)
        for kind in REAPED_KINDS:
            try:
                items = self.api.list(kind, namespace, label_selector=MANAGED_SELECTOR).items
            except Forbidden as exc:
                reaping.forbidden(kind, exc)
                continue
            reaping.listed(kind, items)
        # Everything due is listed before anything is deleted: a Secret owned by a reaped pod
        # may be collected by the cluster meanwhile, and the report still names it.
        for kind, _, name in reaping.deleted:
            self.api.delete_quietly(kind, namespace, name, grace=0)
        return reaping.report()

    def watch_stats(self) -> dict[str, int]:
        """Counters of the shared watches: streams opened, open now and the peak."""
        return self._driver.watches.stats()


def check_egress(egress: EgressPolicy | None) -> EgressPolicy | None:
    """A runner's default egress policy, checked when the runner is made."""
    if egress is not None and not isinstance(egress, EgressPolicy):
        raise TypeError(f"egress must be an EgressPolicy or None, not {type(egress).__name__}")
    return egress


def cleanup_policy(value: object) -> CleanupPolicy:
    """A runner's ``cleanup`` argument as a policy: the enum or its value (``"never"``).

    Raises:
        SpecError: Any other value, before anything is created (a string compared by
            identity would otherwise have meant ``ALWAYS`` whatever it said).
    """
    return _enum(CleanupPolicy, "cleanup", value)


def with_timeout(deadlines: Deadlines | None, timeout: float | None) -> Deadlines:
    """The run's deadlines: ``timeout``, when given, is the total."""
    deadlines = deadlines or _NO_DEADLINES
    return deadlines if timeout is None else attrs.evolve(deadlines, total=timeout)


def run_manifests(
    spec: PodSpec,
    run_id: str | None,
    egress: EgressPolicy | None,
    collect: Collect | None,
    total: float | None,
) -> Manifests:
    """Every manifest of one run of ``spec``, with the collector when files are collected."""
    manifests = build_manifests(spec, run_id=run_id, egress=egress)
    if collect is None:
        return manifests
    return with_collector(manifests, collect, total=total)


def core_for_plan(
    plan: RunPlan,
    deadlines: Deadlines,
    cleanup: CleanupPolicy,
    *,
    started: float,
    log_limit_bytes: int | None,
    collect: Collect | None = None,
) -> RunCore:
    """The core of a run whose objects ``plan`` created at monotonic time ``started``."""
    manifests = plan.manifests
    return RunCore(
        RunIdentity(
            pod_name=manifests.pod_name,
            namespace=plan.namespace,
            run_id=manifests.run_id,
            container=plan.pod["spec"]["containers"][0]["name"],
        ),
        deadlines=deadlines,
        cleanup=cleanup,
        created_at=started,
        extras=tuple((extra["kind"], extra["metadata"]["name"]) for extra in plan.extras),
        log_limit_bytes=log_limit_bytes,
        collect=collect,
    )


def core_for_pod(
    pod: dict[str, Any],
    namespace: str,
    run_id: str,
    timeout: float | None,
    cleanup: CleanupPolicy,
    *,
    monotonic: float,
    now: float,
    log_limit_bytes: int | None,
) -> RunCore:
    """The core of a run picked up by ``attach`` from its pod, found in ``namespace``."""
    meta = pod["metadata"]
    started = monotonic
    created = epoch_of(meta.get("creationTimestamp"))
    if timeout is None and created is not None:
        # Without a new budget, durations count from the pod's creation, not from now.
        started -= max(0.0, now - created)
    return RunCore(
        RunIdentity(
            pod_name=meta["name"],
            namespace=namespace,
            run_id=run_id,
            container=pod["spec"]["containers"][0]["name"],
        ),
        deadlines=Deadlines(total=timeout),
        cleanup=cleanup,
        created_at=started,
        log_limit_bytes=log_limit_bytes,
    )


class Reaping:
    """What :meth:`PodRunner.reap` decides from what it listed (no I/O: both runners list)."""

    def __init__(self, namespace: str, now: float, older_than: float | None) -> None:
        self.namespace = namespace
        self.now = now
        self.older_than = older_than
        self.deleted: list[tuple[Kind, str, str]] = []
        self.kept = 0
        self.skipped: list[Kind] = []
        self._kept_pods: set[str] = set()  # uids of the pods kept

    def listed(self, kind: Kind, items: Iterable[dict[str, Any]]) -> None:
        """Sort the managed objects of one kind into due (to delete) and kept.

        Pods come first: a Secret, ConfigMap or NetworkPolicy owned by a pod that is kept
        goes with that pod, whatever its own expiry (a worker's or a warm pool pod's pod
        outlives the expiry its objects got when it was made).
        """
        for obj in items:
            meta = obj.get("metadata", {})
            owners = {r.get("uid") for r in meta.get("ownerReferences") or ()}
            if kind != "Pod" and owners & self._kept_pods:
                self.kept += 1
            elif _due(meta, self.now, self.older_than):
                self.deleted.append((kind, self.namespace, meta["name"]))
            else:
                self.kept += 1
                if kind == "Pod":
                    self._kept_pods.add(meta.get("uid"))

    def forbidden(self, kind: Kind, exc: Forbidden) -> None:
        """The caller may not list ``kind``: pods are required, the others are skipped."""
        if kind == "Pod":
            raise exc
        # The documented Roles grant no list on Secrets (it would read every Secret of the
        # namespace); runs' own objects go with their pods.
        self.skipped.append(kind)

    def report(self) -> ReapReport:
        """What was deleted, kept and skipped."""
        return ReapReport(tuple(self.deleted), self.kept, tuple(self.skipped))


def _due(meta: dict[str, Any], now: float, older_than: float | None) -> bool:
    """Whether :meth:`PodRunner.reap` deletes an object with this metadata."""
    expires = epoch_of((meta.get("annotations") or {}).get(EXPIRES_ANNOTATION))
    if expires is not None and expires <= now:
        return True
    created = epoch_of(meta.get("creationTimestamp"))
    return older_than is not None and created is not None and now - created >= older_than
