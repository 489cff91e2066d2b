"""AsyncPodPool: :class:`~podrunner.PodPool` for asyncio, on the same pool core.

The rules (claim choice, labels, expiry, refill) are :mod:`podrunner.run.pool_core`'s; this
module awaits their I/O. One task lists and watches the pool's pods, keeps ``size`` warm and
renews their expiry; :meth:`AsyncPodPool.run` claims a pod with a ``replace`` conditional on
its ``resourceVersion``, execs the command and deletes (or gives back) the pod. Cancelling a
run deletes its pod, shielded from the cancellation; leaving ``async with`` deletes the rest.
What a killed process leaves, and what bounds it, is as for :mod:`podrunner.run.pool`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from podrunner.backends.base import ExecResult
from podrunner.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Conflict,
    NotFound,
    RunCancelled,
    RunError,
    StartTimeout,
)
from podrunner.manifest.plan import RunPlan
from podrunner.run.aio_collect import acollect_files
from podrunner.run.aio_handle import LogCallback, call_back, shielded
from podrunner.run.aio_runner import AsyncPodRunner
from podrunner.run.collect import Collect, CollectedFiles, CollectProblem, collect_option
from podrunner.run.outcome import RunResult
from podrunner.run.pool import _DRAIN_TRIES
from podrunner.run.pool_core import (
    CLAIMED,
    DEFAULT_HOLDER,
    FATAL,
    OWNER_LABEL,
    STATE_LABEL,
    PoolCore,
    check_member,
    claim_body,
    claim_of,
    new_claim_id,
    new_owner_id,
    plan_pool_pod,
    pool_options,
    pool_pod_spec,
    pool_selector,
    pool_selectors,
    release_patch,
    renew_body,
)
from podrunner.run.pool_run import (
    EXEC_FAILURES,
    ClaimedPod,
    ExecOutput,
    RefusedPod,
    check_argv,
    exec_failure,
    exec_result,
    start_error,
    stdin_bytes,
    with_files,
)
from podrunner.run.runner import run_manifests
from podrunner.spec import Deadlines, PodSpec

__all__ = ["AsyncPodPool"]


class AsyncPodPool:
    r"""Keeps ``size`` pods of ``spec`` started for an :class:`~podrunner.AsyncPodRunner`.

    The arguments and behaviour are :class:`~podrunner.PodPool`'s; methods that talk to the
    cluster are coroutines and the pool is an async context manager. ``adopt`` and
    ``on_log`` may be plain functions or coroutine functions.

    Example:
        >>> import asyncio
        >>> from podrunner import AsyncPodPool, AsyncPodRunner, PodSpec
        >>> from podrunner.testing import FakeCluster
        >>> cluster = FakeCluster()
        >>> spec = PodSpec("busybox:1.36", ["unused"],
        ...                annotations={"sim.podrunner.dev/duration": "1e9"})
        >>> async def main():
        ...     async with AsyncPodPool(AsyncPodRunner(cluster.async_backend), spec) as pool:
        ...         return await pool.run(["echo", "hi"])
        >>> asyncio.run(main()).logs
        'hi\n'
    """

    def __init__(
        self,
        runner: AsyncPodRunner,
        spec: PodSpec,
        size: int = 1,
        *,
        name: str | None = None,
        holder: Sequence[str] = DEFAULT_HOLDER,
        recycle: bool = False,
        lease: float = 300.0,
        max_age: float | None = 3600.0,
        start_timeout: float = 300.0,
        pod_name: str | None = None,
        adopt: Callable[[Mapping[str, Any]], object] | None = None,
    ) -> None:
        if not isinstance(runner, AsyncPodRunner):
            raise TypeError(f"runner must be an AsyncPodRunner, not {type(runner).__name__}")
        self.options = pool_options(
            size=size,
            name=name,
            holder=holder,
            recycle=recycle,
            lease=lease,
            max_age=max_age,
            start_timeout=start_timeout,
            pod_name=pod_name,
        )
        self.runner = runner
        self.owner = new_owner_id()
        self.spec = pool_pod_spec(spec, self.options, self.owner)
        run_manifests(self.spec, None, runner.egress, None, None)  # checked before any call
        self.namespace = spec.namespace or runner.namespace
        self.name = self.options.name
        self.error: BaseException | None = None
        """The last error the background task met (it retries), if any."""
        self._core = PoolCore(self.options, self.owner, vet=adopt is not None)
        # May be a coroutine function: awaited.
        self._adopt = adopt or functools.partial(check_member, pool=self.name)
        self.created = 0
        """Pods this pool object created."""
        self._blocked: BaseException | None = None  # an object in the way of the named pod
        self._refused = RefusedPod(Deadlines().autoscaler_grace)
        self._news: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> AsyncPodPool:
        """Start filling the pool in a background task (in the running event loop)."""
        if self._closed:
            raise RuntimeError(f"pool {self.name!r} is closed")
        if self._task is None:
            self._news = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._maintain(), name=f"podrunner-pool-{self.name}")
        return self

    async def __aenter__(self) -> AsyncPodPool:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop refilling and delete the pool's pods (shielded from cancellation)."""
        if await self._stop_work():
            await shielded(self._drain)

    async def detach(self) -> None:
        """Stop the background task and leave the pods (see :meth:`PodPool.detach`)."""
        await self._stop_work()

    async def _stop_work(self) -> bool:
        if self._closed:
            return False
        self._closed = True
        self._notify()
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return True

    @property
    def used_uids(self) -> frozenset[str]:
        """Uids of the pods this pool object made or adopted (``adopt`` accepted)."""
        return frozenset(self._core.accepted)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until ``size`` pods of this pool are warm.

        Raises:
            StartTimeout: They are not warm within ``timeout``.
        """
        self.start()
        clock = self.runner.clock
        deadline = clock.monotonic() + (self.options.start_timeout if timeout is None else timeout)
        while self._core.warm() < self.options.size:
            self._check_open()
            look = await self._capacity_look()
            left = deadline - clock.monotonic()
            if left <= 0:
                raise self._start_timeout(f"{self._core.warm()} of {self.options.size} pods warm")
            await clock.wait(self._waiter(), min(left, look))

    @property
    def warm(self) -> int:
        """How many of this pool's pods are warm and ready now."""
        return self._core.warm()

    # -- runs -----------------------------------------------------------------------------------

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = False,
        stdin: bytes | str | None = None,
        recycle: bool | None = None,
        collect: Collect | Sequence[str] | None = None,
        on_log: LogCallback | None = None,
    ) -> RunResult:
        """Claim a warm pod, run ``argv`` in it, then delete it (see :meth:`PodPool.run`)."""
        args = check_argv(argv)
        data = stdin_bytes(stdin)
        wanted = collect_option(collect)
        async with self.claim(timeout=timeout, recycle=recycle) as pod:
            started = self.runner.clock.monotonic()
            done = await self.exec_in(pod, args, stdin=data, timeout=timeout, on_log=on_log)
            took = self.runner.clock.monotonic() - started
            result = exec_result(
                done, pod, duration=took, log_limit_bytes=self.runner.log_limit_bytes
            )
            if wanted is not None:
                try:
                    files: CollectedFiles | CollectProblem = await acollect_files(
                        self.runner.api, pod.namespace, pod.name, wanted, pod.container
                    )
                except CollectProblem as exc:
                    files = exc
                result = with_files(result, files)
        return result.check() if check else result

    @contextlib.asynccontextmanager
    async def claim(
        self, *, timeout: float | None = None, recycle: bool | None = None
    ) -> AsyncIterator[ClaimedPod]:
        """Hold one warm pod for the block (see :meth:`PodPool.claim`)."""
        self.start()
        self._check_open()
        clock = self.runner.clock
        claim_id = new_claim_id()
        expires = self._core.claim_expiry(clock.now(), timeout, self.runner.default_ttl)
        deadline = clock.monotonic() + self.options.start_timeout
        stored = await self._claim(claim_id, expires, deadline)
        pod = ClaimedPod(
            name=stored["metadata"]["name"],
            namespace=self.namespace,
            container=stored["spec"]["containers"][0]["name"],
            claim_id=claim_id,
        )
        keep = self.options.recycle if recycle is None else recycle
        try:
            yield pod
        except BaseException:
            pod.reusable = False
            raise
        finally:
            await shielded(lambda: self._after(pod, keep))

    async def _claim(self, claim_id: str, expires: float, deadline: float) -> dict[str, Any]:
        clock = self.runner.clock
        while True:
            pod = self._core.take(clock.now())
            if pod is None:
                self._check_open()
                look = await self._capacity_look()
                left = deadline - clock.monotonic()
                if left <= 0:
                    raise self._start_timeout("no warm pod")
                await clock.wait(self._waiter(), min(left, look))
                continue
            try:
                stored = await self._try_claim(pod, claim_id, expires)
            except BaseException:
                self._core.taken(pod["metadata"]["name"], None)
                raise
            self._core.taken(pod["metadata"]["name"], stored)
            if stored is not None:
                return stored

    async def _try_claim(
        self, pod: dict[str, Any], claim_id: str, expires: float
    ) -> dict[str, Any] | None:
        api = self.runner.api
        try:
            return await api.replace(claim_body(pod, claim_id, expires))
        except NotFound:
            return None
        except Conflict:
            try:
                now = await api.get("Pod", self.namespace, pod["metadata"]["name"])
            except NotFound:
                return None
            return now if claim_of(now) == claim_id else None

    async def exec_in(
        self,
        pod: ClaimedPod,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_log: LogCallback | None = None,
    ) -> ExecResult:
        """Run ``argv`` in a pod this task holds (see :meth:`PodPool.exec_in`).

        ``on_log`` may be a plain function or a coroutine function.
        """
        # The exec's transport times out in real time; the runner's clock is virtual on the
        # fake: either one past the timeout counts.
        started, began = time.monotonic(), self.runner.clock.monotonic()
        try:
            if on_log is not None:
                return await self._streamed(pod, list(argv), stdin, timeout, on_log)
            return await self.runner.api.exec(
                pod.namespace, pod.name, pod.container, list(argv), stdin=stdin, timeout=timeout
            )
        except EXEC_FAILURES as exc:
            pod.reusable = False
            error = exec_failure(
                exc,
                pod_name=pod.name,
                namespace=pod.namespace,
                claim_id=pod.claim_id,
                timeout=timeout,
                elapsed=max(time.monotonic() - started, self.runner.clock.monotonic() - began),
            )
            if error is None:
                raise
            raise error from exc

    async def _streamed(
        self,
        pod: ClaimedPod,
        argv: list[str],
        stdin: bytes | None,
        timeout: float | None,
        on_log: LogCallback,
    ) -> ExecResult:
        """The command through the streamed exec, each line to ``on_log`` as it arrives."""
        api = self.runner.api
        stream = await api.open_exec(
            pod.namespace, pod.name, pod.container, argv, stdin=bool(stdin)
        )
        output = ExecOutput()

        async def follow() -> int:
            if stdin:
                await stream.write(stdin)
                await stream.close_stdin()
            async for chunk in stream:
                for line in output.feed(chunk):
                    await call_back(on_log, line)
            for line in output.end():
                await call_back(on_log, line)
            return await stream.wait()

        try:
            code = await asyncio.wait_for(follow(), timeout)
        except asyncio.TimeoutError:
            raise BackendUnavailable(f"the exec was closed at its timeout ({timeout:g}s)") from None
        finally:
            await stream.aclose()
        return output.result(code)

    async def _after(self, pod: ClaimedPod, keep: bool) -> None:
        api = self.runner.api
        if keep and pod.reusable and not self._closed:
            expires = self._core.expiry(self.runner.clock.now())
            try:
                stored = await api.patch("Pod", pod.namespace, pod.name, release_patch(expires))
                self._core.released(stored)
                self._notify()
                return
            except BackendError:
                pass  # cannot give it back: delete it
        await api.delete_quietly("Pod", pod.namespace, pod.name, grace=0)

    # -- the background task --------------------------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            try:
                await self._cycle()
            except BackendError as exc:
                self.error = exc
                self._notify()
                await self.runner.clock.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # never silent: runs see it
                self.error = exc
                self._notify()
                return

    async def _cycle(self) -> None:
        api = self.runner.api
        labels, fields = pool_selectors(self.options)
        listed = await api.list("Pod", self.namespace, label_selector=labels, field_selector=fields)
        self._core.listed(listed.items)
        await self._vet()
        await self._act()
        wait = self._core.next_look(self.runner.clock.now())
        stream = await api.watch(
            "Pod",
            self.namespace,
            label_selector=labels,
            field_selector=fields,
            resource_version=listed.resource_version,
            timeout_seconds=math.ceil(wait),
        )
        try:
            async for event in stream:
                if event.type == "ERROR":
                    break  # an ERROR (410 Gone) is healed by listing again
                self._core.event(event)
                await self._vet()
                await self._act()
        finally:
            await stream.aclose()

    async def _act(self) -> None:
        now = self.runner.clock.now()
        work = self._core.work(now)
        self._core.creating += work.create
        self._notify()
        if not work:
            return
        api = self.runner.api
        for name in work.delete:
            await api.delete_quietly("Pod", self.namespace, name, grace=0)
        for name in work.renew:
            seen = self._core.pods.get(name)
            if seen is not None:
                # Conditional: a lost race (a claim, a change) is seen on the watch.
                with contextlib.suppress(NotFound, Conflict):
                    await api.replace(renew_body(seen, self._core.expiry(now)))
        for left in range(work.create, 0, -1):
            try:
                stored = await self._create(now)
            except BaseException:
                self._core.creating -= left
                raise
            self._core.creating -= 1
            if stored is not None:
                self._core.pods.setdefault(stored["metadata"]["name"], stored)
                self._core.vetted(stored, None)  # made here: the pool's own
        if isinstance(self.error, FATAL):
            self.error = None  # a create went through: whatever stopped them is over

    async def _vet(self, pods: list[dict[str, Any]] | None = None) -> None:
        """Check the pods not checked yet (see ``adopt``); a refusal stops runs."""
        for pod in pods or ():
            self._core.pods.setdefault(pod["metadata"]["name"], pod)
        unchecked = self._core.to_vet()
        for pod in unchecked:
            try:
                await call_back(self._adopt, pod)
                error = None
            except RunError as exc:
                error = exc
            self._core.vetted(pod, error)
        if unchecked:
            self._notify()

    async def _create(self, now: float) -> dict[str, Any] | None:
        """Create one pod; ``None`` when its name is taken (see :meth:`PodPool._create`)."""
        for _ in range(2):
            plan = plan_pool_pod(
                self.spec,
                namespace=self.namespace,
                now=now,
                egress=self.runner.egress,
                lease=self.options.lease,
                objects_ttl=self.options.max_age or self.runner.default_ttl,
                deadline_margin=self.runner.deadline_margin,
            )
            try:
                stored = await self.runner._create(plan, None)
            except AlreadyExists:
                if self.options.pod_name is None:
                    raise
                if not await self._in_the_way(plan):
                    return None
                continue  # a leftover of the pool's earlier pod was deleted: try again
            self.created += 1
            self._blocked = None
            return stored
        return None

    async def _in_the_way(self, plan: RunPlan) -> bool:
        """What holds the named pod's name or its Secret's (see :meth:`PodPool._in_the_way`)."""
        api = self.runner.api
        for manifest in (plan.pod, *plan.extras):
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            try:
                found = await api.get(kind, self.namespace, name)
            except NotFound:
                continue
            found.setdefault("kind", kind)
            if kind == "Pod":
                await self._vet([found])
                return False
            try:
                await call_back(self._adopt, found)
            except RunError as exc:
                self._blocked = exc
                self._notify()
                return False
            await api.delete_quietly(kind, self.namespace, name, grace=0)
        # Cleared, or gone meanwhile (the garbage collector took the old pod's Secret).
        return True

    def _waiter(self) -> asyncio.Future[None]:
        if self._news is None:
            self._news = asyncio.get_running_loop().create_future()
        return self._news

    def _notify(self) -> None:
        news, self._news = self._news, None
        if news is not None and not news.done():
            news.set_result(None)

    async def refresh(self) -> None:
        """Delete the pool's pods that no run holds now (see :meth:`PodPool.refresh`)."""
        self.start()
        self._check_open(starting=False)
        await self._drain(vet=True)
        self._notify()
        refused = self._core.refusal()
        if refused is not None:
            raise refused

    async def _drain(self, *, vet: bool = False) -> None:
        """Delete this pool object's pods that no run holds, claiming each first."""
        api = self.runner.api
        labels: str | None = f"{pool_selector(self.name)},{OWNER_LABEL}={self.owner}"
        fields: str | None = None
        if self.options.pod_name is not None:
            labels, fields = pool_selectors(self.options)
        closing = new_claim_id()
        expires = self._core.expiry(self.runner.clock.now())
        listed = await api.list("Pod", self.namespace, label_selector=labels, field_selector=fields)
        for pod in listed.items:
            if vet:
                await self._vet([pod])
            if not self._core.mine(pod):
                continue  # the named pod, when it is not (or no longer) the one checked
            name = pod["metadata"]["name"]
            for _ in range(_DRAIN_TRIES):  # a conflict may come from an unrelated change
                if (pod["metadata"].get("labels") or {}).get(STATE_LABEL) == CLAIMED:
                    break  # a run holds it and deletes it when it ends
                stored = await self._try_claim(pod, closing, expires)
                if stored is not None:
                    self._core.retiring(stored)  # gone for the pool (before the delete's event)
                    await api.delete_quietly("Pod", self.namespace, name, grace=0)
                    break
                try:
                    pod = await api.get("Pod", self.namespace, name)
                except NotFound:
                    break

    def _check_open(self, *, starting: bool = True) -> None:
        """Raise what stops runs (see :meth:`PodPool._check_open`)."""
        if self._closed:
            raise RunCancelled(f"pool {self.name!r} was closed", namespace=self.namespace)
        for error in (self._core.refusal(), self._blocked, self.error):
            if error is not None and (error is not self.error or isinstance(error, FATAL)):
                raise error
        failed = self._core.start_failure()
        if failed is not None and starting:
            raise start_error(*failed, self.namespace)

    async def _capacity_look(self) -> float:
        """Seconds until a waiting run looks again; raises for a pod no node will take."""
        unplaced = self._core.unschedulable()
        wait = self._refused.due(unplaced, self.runner.clock.monotonic())
        if wait is not None or unplaced is None:
            return math.inf if wait is None else wait
        events = await self.runner.api.pod_events(self.namespace, unplaced[0])
        return self._refused.verdict(unplaced, events, self.namespace)

    def _start_timeout(self, what: str) -> RunError:
        refused = self._core.unschedulable()
        if refused is not None:
            return start_error(*refused, self.namespace)
        text = f"{what} in pool {self.name!r} within {self.options.start_timeout:g}s"
        if self.error is not None:
            text += f" (last error: {self.error})"
        return StartTimeout(text, namespace=self.namespace)
