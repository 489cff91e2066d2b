"""AsyncPodRunner: :class:`~podrunner.PodRunner` for asyncio, on the same run core.

A run goes as with the sync runner (see :mod:`podrunner.run.runner`): manifests are built and
planned before any API call; the per-run NetworkPolicy, Secret and ConfigMap, then the pod, are
created and the pod made their owner; an :class:`~podrunner.run.aio_handle.AsyncRunHandle`
drives the run's :class:`~podrunner.run.core.RunCore` on the namespace's shared watch; cleanup
deletes what the run created, whatever happened. Only the I/O is awaited, so one event loop
carries thousands of runs on one watch stream and no thread.

Cancellation is structured: cancelling the task that awaits :meth:`AsyncPodRunner.run` (or
``asyncio.timeout``, or an anyio cancel scope) deletes what the run created, shielded from
that cancellation, before ``CancelledError`` propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from podrunner.backends.base import AsyncBackend, AsyncClock, Kind
from podrunner.errors import Forbidden, NotFound, RunError
from podrunner.manifest import MANAGED_SELECTOR, RUN_ID_LABEL, owner_reference
from podrunner.manifest.plan import RunPlan, plan_run
from podrunner.run.aio_handle import (
    AsyncCallbacks,
    AsyncDriver,
    AsyncRunHandle,
    LogCallback,
    StateCallback,
    shielded,
)
from podrunner.run.aio_retry import AsyncRetryingBackend
from podrunner.run.aio_watch import AsyncWatchRegistry
from podrunner.run.collect import Collect, collect_option
from podrunner.run.outcome import ReapReport, RunResult
from podrunner.run.retry import RetryPolicy, _run_id_of
from podrunner.run.runner import (
    REAPED_KINDS,
    Reaping,
    check_egress,
    cleanup_policy,
    core_for_plan,
    core_for_pod,
    run_manifests,
    with_timeout,
)
from podrunner.spec import CleanupPolicy, Deadlines, EgressPolicy, PodSpec

if TYPE_CHECKING:
    from podrunner.backends.kubernetes import ClusterConfig

__all__ = ["AsyncPodRunner", "StartingRun"]


class StartingRun:
    """What :meth:`AsyncPodRunner.start` returns: await it, or enter it with ``async with``.

    ``handle = await runner.start(spec)`` creates the run and returns its handle;
    ``async with runner.start(spec) as handle:`` also cleans it up on exit.
    """

    def __init__(self, start: Callable[[], Awaitable[AsyncRunHandle]]) -> None:
        self._start = start
        self._handle: AsyncRunHandle | None = None

    def __await__(self) -> Generator[Any, None, AsyncRunHandle]:
        return self._start().__await__()

    async def __aenter__(self) -> AsyncRunHandle:
        self._handle = await self._start()
        return self._handle

    async def __aexit__(self, *exc: object) -> None:
        if self._handle is not None:
            await self._handle.close()


class AsyncPodRunner:
    r"""Runs pods to completion on an async backend and returns their results.

    It mirrors :class:`~podrunner.PodRunner` name for name; methods that talk to the cluster
    are coroutines.

    Args:
        backend: The cluster (an :class:`~podrunner.backends.base.AsyncBackend`, such as
            ``FakeCluster().async_backend``).
        namespace: Default namespace for specs that name none.
        retry: When API calls are retried.
        log_limit_bytes: Keep at most this much output per run (the tail is kept).
        default_ttl: Expiry written on objects of runs without a total deadline.
        deadline_margin: Seconds added to the total deadline for ``activeDeadlineSeconds``.
        egress: The egress policy of runs whose spec has none (``None``: unrestricted).

    Example:
        >>> import asyncio
        >>> from podrunner import AsyncPodRunner, PodSpec
        >>> from podrunner.testing import FakeCluster
        >>> cluster = FakeCluster()
        >>> _ = cluster.when(image="busybox:*").succeed(logs="hi\\n", after=3600.0)
        >>> spec = PodSpec(image="busybox:1.36", command=["echo", "hi"])
        >>> result = asyncio.run(AsyncPodRunner(cluster.async_backend).run(spec))
        >>> result.exit_code, result.logs
        (0, 'hi\\n')
    """

    def __init__(
        self,
        backend: AsyncBackend,
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
        self.api = (
            backend
            if isinstance(backend, AsyncRetryingBackend)
            else AsyncRetryingBackend(backend, self.retry)
        )
        """The backend, with retries (what the runner and its runs call)."""
        self._driver = AsyncDriver(api=self.api, watches=AsyncWatchRegistry(self.api))
        self._owns_backend = False

    @classmethod
    def connect(
        cls, cluster: ClusterConfig | None = None, namespace: str = "default", **kw: Any
    ) -> AsyncPodRunner:
        """Create a runner on a real cluster through the async Kubernetes backend.

        ``async with AsyncPodRunner.connect(...) as runner:`` closes its connections on exit.

        Args:
            cluster: Where to connect; :meth:`ClusterConfig.default` when ``None``.
            namespace: Default namespace.
            **kw: Passed to :class:`AsyncPodRunner`.
        """
        from podrunner.backends.kubernetes import ClusterConfig
        from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend

        runner = cls(AsyncKubernetesBackend(cluster or ClusterConfig.default()), namespace, **kw)
        runner._owns_backend = True
        return runner

    @property
    def clock(self) -> AsyncClock:
        """The backend's clock."""
        return self.backend.clock

    async def close(self) -> None:
        """Close shared watches (and the connections of a runner made by :meth:`connect`)."""
        await self._driver.watches.close()
        if self._owns_backend:
            await self.backend.close()

    async def __aenter__(self) -> AsyncPodRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(
        self,
        spec: PodSpec,
        *,
        timeout: float | None = None,
        deadlines: Deadlines | None = None,
        check: bool = False,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: LogCallback | None = None,
        on_state: StateCallback | None = None,
        collect: Collect | Sequence[str] | None = None,
    ) -> RunResult:
        """Run ``spec`` to completion (the arguments of :meth:`PodRunner.run`).

        ``on_log`` and ``on_state`` may be plain functions or coroutine functions.

        Returns:
            The result, whenever the container ran and terminated (any exit code).

        Raises:
            RunError: The container never ran or the run was cut short.
            BackendError: The cluster refused a request that retrying could not fix.
            asyncio.CancelledError: The awaiting task was cancelled, after cleanup.
        """
        async with self.start(
            spec,
            timeout=timeout,
            deadlines=deadlines,
            check=check,
            cleanup=cleanup,
            on_log=on_log,
            on_state=on_state,
            collect=collect,
        ) as handle:
            return await handle.wait()

    def start(
        self,
        spec: PodSpec,
        *,
        timeout: float | None = None,
        deadlines: Deadlines | None = None,
        check: bool = False,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: LogCallback | None = None,
        on_state: StateCallback | None = None,
        run_id: str | None = None,
        collect: Collect | Sequence[str] | None = None,
    ) -> StartingRun:
        """Create the run's objects; await the result for a handle, or ``async with`` it.

        The arguments are those of :meth:`run`. If creation fails or is cancelled, whatever
        was created is deleted before the error propagates.
        """
        cleanup = cleanup_policy(cleanup)
        wanted = collect_option(collect)

        async def start() -> AsyncRunHandle:
            return await self._start(
                spec,
                timeout=timeout,
                deadlines=deadlines,
                check=check,
                cleanup=cleanup,
                callbacks=AsyncCallbacks(on_log=on_log, on_state=on_state),
                run_id=run_id,
                collect=wanted,
            )

        return StartingRun(start)

    async def _start(
        self,
        spec: PodSpec,
        *,
        timeout: float | None,
        deadlines: Deadlines | None,
        check: bool,
        cleanup: CleanupPolicy,
        callbacks: AsyncCallbacks,
        run_id: str | None,
        collect: Collect | None,
    ) -> AsyncRunHandle:
        deadlines = with_timeout(deadlines, timeout)
        plan = plan_run(
            run_manifests(spec, run_id, self.egress, collect, deadlines.total),
            namespace=spec.namespace or self.namespace,
            now=self.clock.now(),
            total=deadlines.total,
            default_ttl=self.default_ttl,
            deadline_margin=self.deadline_margin,
        )
        started = self.clock.monotonic()
        stored = await self._create(
            plan, None if deadlines.total is None else started + deadlines.total
        )
        manifests = plan.manifests
        core = core_for_plan(
            plan,
            deadlines,
            cleanup,
            started=started,
            log_limit_bytes=self.log_limit_bytes,
            collect=collect,
        )
        handle = AsyncRunHandle(
            self._driver, core, callbacks=callbacks, manifests=manifests, check=check
        )
        try:
            await handle._begin(stored, stored.get("metadata", {}).get("resourceVersion"))
        except BaseException:
            created = [*core.extras, ("Pod", manifests.pod_name)]
            await shielded(lambda: self._delete_created(plan, created))
            raise
        return handle

    async def _create(self, plan: RunPlan, until: float | None) -> dict[str, Any]:
        """Create the plan's objects: extras, the pod, then the pod owns the extras.

        A create that failed or was cancelled may still have landed: the object is then
        found by name and deleted if it carries the run id, with whatever was created before.
        """
        created: list[tuple[Kind, str]] = []
        creating: dict[str, Any] | None = None
        try:
            for extra in plan.extras:
                creating = extra
                await self.api.create(extra, until=until)
                created.append((extra["kind"], extra["metadata"]["name"]))
            creating = plan.pod
            stored = await self.api.create(plan.pod, until=until)
            created.append(("Pod", plan.manifests.pod_name))
            creating = None
            owner = {"metadata": {"ownerReferences": [owner_reference(stored)]}}
            for extra in plan.extras:
                await self.api.patch(
                    extra["kind"], plan.namespace, extra["metadata"]["name"], owner
                )
        except BaseException as exc:
            error, pending = exc, creating
            await shielded(lambda: self._undo_create(plan, created, pending, error))
            raise
        return stored

    async def _undo_create(
        self,
        plan: RunPlan,
        created: list[tuple[Kind, str]],
        creating: dict[str, Any] | None,
        exc: BaseException,
    ) -> None:
        if creating is not None:
            if isinstance(exc, asyncio.CancelledError):
                await self._delete_if_ours(creating)
            else:
                await self.api.forget_lost_create(creating, exc)
        await self._delete_created(plan, created)

    async def _delete_if_ours(self, manifest: dict[str, Any]) -> None:
        """A create cancelled in flight may have landed: delete it if it is this run's."""
        meta = manifest["metadata"]
        try:
            found = await self.api.get(manifest["kind"], meta["namespace"], meta["name"])
        except NotFound:
            return
        if _run_id_of(found) == _run_id_of(manifest):
            await self.api.delete_quietly(
                manifest["kind"], meta["namespace"], meta["name"], grace=0
            )

    async def _delete_created(self, plan: RunPlan, created: list[tuple[Kind, str]]) -> None:
        for kind, name in reversed(created):
            await self.api.delete_quietly(kind, plan.namespace, name, grace=0)

    async def run_many(
        self,
        specs: Iterable[PodSpec],
        *,
        max_parallel: int = 16,
        return_exceptions: bool = True,
        **kwargs: Any,
    ) -> list[RunResult | RunError]:
        """Run several specs concurrently; return their outcomes in input order.

        At most ``max_parallel`` runs are in flight, all on the namespace's one watch stream.

        Args:
            specs: What to run.
            max_parallel: Upper bound of runs in flight.
            return_exceptions: Put a run's :class:`~podrunner.errors.RunError` in the list
                instead of raising it; when ``False`` the first error is raised after the
                other runs were stopped and cleaned up. Other errors are always raised so.
            **kwargs: Passed to :meth:`run` for every spec.
        """
        slots = asyncio.Semaphore(max(1, max_parallel))

        async def one(spec: PodSpec) -> RunResult:
            async with slots:
                return await self.run(spec, **kwargs)

        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(one(spec)) for spec in specs]
        try:
            pending: set[asyncio.Task[RunResult]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    error = task.exception()
                    if error is not None and not (
                        return_exceptions and isinstance(error, RunError)
                    ):
                        raise error
            return [_outcome(task) for task in tasks]
        finally:
            for task in tasks:
                task.cancel()  # no-op for finished ones; the others clean up, shielded
            await shielded(lambda: asyncio.gather(*tasks, return_exceptions=True))

    async def attach(
        self,
        run_id: str,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: LogCallback | None = None,
        on_state: StateCallback | None = None,
    ) -> AsyncRunHandle:
        """Pick up a run started by an earlier process, found by its run-id label.

        Raises:
            NotFound: No pod carries that run id.
        """
        cleanup = cleanup_policy(cleanup)
        namespace = namespace or self.namespace
        selector = f"{MANAGED_SELECTOR},{RUN_ID_LABEL}={run_id}"
        listed = await self.api.list("Pod", namespace, label_selector=selector)
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
        handle = AsyncRunHandle(
            self._driver, core, callbacks=AsyncCallbacks(on_log=on_log, on_state=on_state)
        )
        await handle._begin(pod, listed.resource_version)
        return handle

    async def reap(
        self, *, older_than: float | None = None, namespace: str | None = None
    ) -> ReapReport:
        """Delete managed objects that outlived their runs (as :meth:`PodRunner.reap`)."""
        namespace = namespace or self.namespace
        reaping = Reaping(namespace, self.clock.now(), older_than)
        for kind in REAPED_KINDS:
            try:
                listed = await self.api.list(kind, namespace, label_selector=MANAGED_SELECTOR)
            except Forbidden as exc:
                reaping.forbidden(kind, exc)
                continue
            reaping.listed(kind, listed.items)
        for kind, _, name in reaping.deleted:
            await self.api.delete_quietly(kind, namespace, name, grace=0)
        return reaping.report()

    def watch_stats(self) -> dict[str, int]:
        """Counters of the shared watches: streams opened, open now and the peak."""
        return self._driver.watches.stats()


def _outcome(task: asyncio.Task[RunResult]) -> RunResult | RunError:
    error = task.exception()
    if error is None:
        return task.result()
    assert isinstance(error, RunError)  # anything else was raised
    return error
