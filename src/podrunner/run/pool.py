"""PodPool: pods of one spec kept started, one claimed per run, the command run through exec.

The pool's rules (which pod to claim, what to create, delete and renew) are in
:mod:`podrunner.run.pool_core`; this module is their threaded driver. One daemon thread lists
and watches the pool's pods, keeps ``size`` of them warm and renews their expiry; runs claim a
warm pod with a ``replace`` conditional on its ``resourceVersion``, exec the command in it,
then delete it (the default: nothing a run leaves behind reaches the next one) or give it back.

What is left behind, and for how long:

- ``close()`` (and the end of a ``with`` block, by an exception, Ctrl-C or
  :class:`~podrunner.Terminated` included) deletes the pool's pods; a run's own pod is deleted
  as its ``run`` returns or raises.
- A process killed outright (SIGKILL, a lost node) leaves its pods. Each carries
  ``podrunner.dev/expires-at``: ``lease`` seconds ahead for a warm pod (renewed while the pool
  lives), the run's timeout plus a margin for a claimed one (the runner's ``default_ttl``
  without a timeout), so ``podrunner reap`` (or :meth:`PodRunner.reap`) deletes them once that
  passed. Without a reaper, ``max_age`` is the pod's ``activeDeadlineSeconds``: the cluster
  ends it by then.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from podrunner._threads import start_quiet
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
from podrunner.run.collect import (
    Collect,
    CollectedFiles,
    CollectProblem,
    collect_files,
    collect_option,
)
from podrunner.run.outcome import RunResult
from podrunner.run.pool_core import (
    CLAIMED,
    DEFAULT_HOLDER,
    FATAL,
    OWNER_LABEL,
    STATE_LABEL,
    PoolCore,
    PoolWork,
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
from podrunner.run.runner import PodRunner, run_manifests
from podrunner.run.state import PodState
from podrunner.spec import Deadlines, PodSpec

__all__ = ["ClaimedPod", "PodPool"]

_DRAIN_TRIES = 5


class PodPool:
    r"""Keeps ``size`` pods of ``spec`` started and runs commands in them, one run per pod.

    Each pod runs ``holder`` (``sleep infinity``) instead of the spec's command, with
    everything else of the spec (image, resources, security, env, files, egress...). It counts
    as warm once Running and Ready. :meth:`run` claims one atomically, runs ``argv`` in it
    through exec and deletes it (or, with ``recycle=True``, gives it back); the pool refills
    in the background. Use it as a context manager: leaving the block deletes every pod.

    Pools of the same ``name`` (in this process or another) share their pods; a pod is never
    claimed by two runs.

    Args:
        runner: The runner whose backend, namespace, retries and egress default are used.
        spec: What each pod runs (its ``command`` is replaced by ``holder``; ``name`` must be
            unset).
        size: Pods kept warm.
        name: The pool's name (a DNS label of at most 40 characters); by default a random
            one, or with ``pod_name`` one derived from it.
        holder: The command that keeps a waiting pod alive.
        recycle: Give pods back after a run instead of deleting them (a run then sees what
            earlier runs left in the pod: only for trusted commands).
        lease: Seconds a warm pod's expiry reaches ahead (renewed every third of it).
        max_age: Seconds a pool pod may live (``activeDeadlineSeconds``); warm pods are
            replaced after half of it. ``None``: no limit.
        start_timeout: Seconds a run waits for a warm pod before
            :class:`~podrunner.errors.StartTimeout`.
        pod_name: Give the pool's one pod this name (``size`` must be 1). Pools of that
            ``pod_name`` (in any process) share the one pod, and at most one exists: a
            worker's pod, found again by name.
        adopt: Checks an object found under the pool's names before the pool uses, renews
            or deletes it: the pod under ``pod_name`` and a Secret or ConfigMap in the way of
            its create. It raises (a :class:`~podrunner.errors.RunError`) to refuse the
            object, which is then left untouched and the error raised to runs. By default
            an object must carry podrunner's and the pool's labels.

    Raises:
        SpecError: A setting or the spec is invalid (before any API call).

    Example:
        >>> from podrunner import PodPool, PodRunner, PodSpec
        >>> from podrunner.testing import FakeCluster
        >>> cluster = FakeCluster()
        >>> spec = PodSpec("busybox:1.36", ["unused"],
        ...                annotations={"sim.podrunner.dev/duration": "1e9"})
        >>> with PodPool(PodRunner(cluster.backend), spec, size=2) as pool:
        ...     result = pool.run(["echo", "hi"])
        >>> result.exit_code, result.logs
        (0, 'hi\n')
        >>> cluster.pods()
        []
    """

    def __init__(
        self,
        runner: PodRunner,
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
        adopt: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        if not isinstance(runner, PodRunner):
            raise TypeError(f"runner must be a PodRunner, not {type(runner).__name__}")
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
        # Builds (and so checks) the pods' manifests now, before any API call.
        run_manifests(self.spec, None, runner.egress, None, None)
        self.namespace = spec.namespace or runner.namespace
        self.name = self.options.name
        self.error: BaseException | None = None
        """The last error the background thread met (it retries), if any."""
        self._core = PoolCore(self.options, self.owner, vet=adopt is not None)
        self._adopt = adopt or functools.partial(check_member, pool=self.name)
        self.created = 0
        """Pods this pool object created."""
        self._blocked: BaseException | None = None  # an object in the way of the named pod
        self._refused = RefusedPod(Deadlines().autoscaler_grace)
        self._lock = threading.Lock()
        self._news = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: Any = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> PodPool:
        """Start filling the pool in the background (``run`` and ``with`` start it too)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"pool {self.name!r} is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._maintain, name=f"podrunner-pool-{self.name}", daemon=True
                )
                start_quiet(self._thread)  # a Ctrl-C must reach the main thread
        return self

    def __enter__(self) -> PodPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop refilling and delete the pool's pods (a pod a run holds goes with its run)."""
        if self._stop_work():
            self._drain()

    def detach(self) -> None:
        """Stop the pool's background work and leave its pods where they are.

        As when the process ends: nothing renews the pods any more, so ``reap`` may take
        them once their expiry (``lease``) passed; meanwhile a pool of the same name (or
        ``pod_name``), in this process or another, may use them. The pool is closed.
        """
        self._stop_work()

    def _stop_work(self) -> bool:
        """Close the pool and stop its thread; whether this call closed it."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            # Under the lock the thread takes to publish its watch: it sees the stop, or
            # this sees its watch (and closes it), never neither.
            self._stop.set()
            stream, thread = self._stream, self._thread
        if stream is not None:
            stream.close()
        self._notify()
        if thread is not None:
            thread.join()
        return True

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until ``size`` pods of this pool are warm.

        Raises:
            StartTimeout: Not within ``timeout`` seconds (``start_timeout`` by default).
        """
        self.start()
        clock = self.runner.clock
        deadline = clock.monotonic() + (self.options.start_timeout if timeout is None else timeout)
        while True:
            with self._lock:
                warm, news = self._core.warm(), self._news
            if warm >= self.options.size:
                return
            look = self._check_open()
            left = deadline - clock.monotonic()
            if left <= 0:
                raise self._start_timeout(f"{warm} of {self.options.size} pods warm")
            clock.wait(news, min(left, look))

    @property
    def used_uids(self) -> frozenset[str]:
        """Uids of the pods this pool object made or adopted (``adopt`` accepted)."""
        with self._lock:
            return frozenset(self._core.accepted)

    @property
    def warm(self) -> int:
        """How many of this pool's pods are warm and ready now."""
        with self._lock:
            return self._core.warm()

    # -- runs -----------------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = False,
        stdin: bytes | str | None = None,
        recycle: bool | None = None,
        collect: Collect | Sequence[str] | None = None,
        on_log: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Claim a warm pod, run ``argv`` in it through exec, then delete it (or give it back).

        Args:
            argv: The command.
            timeout: Seconds the command may run.
            check: Raise :class:`~podrunner.errors.PodFailed` on a non-zero exit code.
            stdin: Bytes (or text, UTF-8) sent to the command's standard input.
            recycle: Override the pool's ``recycle`` for this run.
            collect: Files to copy out of the pod once the command ended (patterns or a
                :class:`~podrunner.Collect`), into :attr:`RunResult.files`. They are read
                with ``tar`` from the pod's own container, so its image needs ``tar``.
            on_log: Called with each line of output (standard output and error) as it
                arrives. If it raises, the run ends with that error and its pod is deleted.

        Returns:
            The exit code and output (stdout then stderr), ``pod_name`` and, as ``run_id``,
            the claim id.

        Raises:
            StartTimeout: No warm pod within the pool's ``start_timeout``.
            RunTimeout: The command ran longer than ``timeout`` (its pod is deleted).
            PodLost: The pod went away during the run.
            CollectFailed: The command ended but its files could not be copied out.
            BackendError: The cluster refused a request that retrying could not fix.
        """
        args = check_argv(argv)
        data = stdin_bytes(stdin)
        wanted = collect_option(collect)
        with self.claim(timeout=timeout, recycle=recycle) as pod:
            started = self.runner.clock.monotonic()
            done = self.exec_in(pod, args, stdin=data, timeout=timeout, on_log=on_log)
            took = self.runner.clock.monotonic() - started
            result = exec_result(
                done, pod, duration=took, log_limit_bytes=self.runner.log_limit_bytes
            )
            if wanted is not None:
                try:
                    files: CollectedFiles | CollectProblem = collect_files(
                        self.runner.api, pod.namespace, pod.name, wanted, pod.container
                    )
                except CollectProblem as exc:
                    files = exc
                result = with_files(result, files)
        return result.check() if check else result

    @contextlib.contextmanager
    def claim(
        self, *, timeout: float | None = None, recycle: bool | None = None
    ) -> Iterator[ClaimedPod]:
        """Hold one warm pod for the block: it is deleted (or given back) when the block ends.

        Args:
            timeout: Seconds the block may hold the pod (its claim's expiry, for the reaper).
            recycle: Override the pool's ``recycle``.
        """
        self.start()
        self._check_open()
        clock = self.runner.clock
        # A virtual clock must not jump over the holder's work between two calls (other
        # claimers waiting for this pod would time out meanwhile); a real clock ignores it.
        hold = clock.hold()
        try:
            claim_id = new_claim_id()
            expires = self._core.claim_expiry(clock.now(), timeout, self.runner.default_ttl)
            deadline = clock.monotonic() + self.options.start_timeout
            stored = self._claim(claim_id, expires, deadline)
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
                self._after(pod, keep)
        finally:
            hold.release()

    def _claim(self, claim_id: str, expires: float, deadline: float) -> dict[str, Any]:
        clock = self.runner.clock
        while True:
            with self._lock:
                pod, news = self._core.take(clock.now()), self._news
            if pod is None:
                look = self._check_open()
                left = deadline - clock.monotonic()
                if left <= 0:
                    raise self._start_timeout("no warm pod")
                clock.wait(news, min(left, look))
                continue
            try:
                stored = self._try_claim(pod, claim_id, expires)
            except BaseException:
                with self._lock:
                    self._core.taken(pod["metadata"]["name"], None)
                raise
            with self._lock:
                self._core.taken(pod["metadata"]["name"], stored)
            if stored is not None:
                return stored

    def _try_claim(
        self, pod: dict[str, Any], claim_id: str, expires: float
    ) -> dict[str, Any] | None:
        """Claim ``pod`` as it was seen; ``None`` when another claimer got it first."""
        api = self.runner.api
        try:
            return api.replace(claim_body(pod, claim_id, expires))
        except NotFound:
            return None
        except Conflict:
            # A retried replace whose first try landed answers Conflict too: look.
            try:
                now = api.get("Pod", self.namespace, pod["metadata"]["name"])
            except NotFound:
                return None
            return now if claim_of(now) == claim_id else None

    def exec_in(
        self,
        pod: ClaimedPod,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_log: Callable[[str], None] | None = None,
    ) -> ExecResult:
        """Run ``argv`` in a pod this process holds (from :meth:`claim`); return its output.

        Output is kept apart (stdout, stderr) and whole, as the exec returned it. With
        ``on_log``, each line of either stream is passed to it as it arrives; if it raises,
        the command is abandoned and the error raised (the pod is then not given back).

        Raises:
            RunTimeout: The command ran longer than ``timeout`` (the pod is not given back).
            PodLost: The pod went away during the command.
        """
        # The exec's transport times out in real time; the runner's clock is virtual on the
        # fake: either one past the timeout counts.
        started, began = time.monotonic(), self.runner.clock.monotonic()
        try:
            if on_log is not None:
                return self._streamed(pod, list(argv), stdin, timeout, on_log)
            return self.runner.api.exec(
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

    def _streamed(
        self,
        pod: ClaimedPod,
        argv: list[str],
        stdin: bytes | None,
        timeout: float | None,
        on_log: Callable[[str], None],
    ) -> ExecResult:
        """The command through the streamed exec, each line to ``on_log`` as it arrives."""
        api = self.runner.api
        stream = api.open_exec(pod.namespace, pod.name, pod.container, argv, stdin=bool(stdin))
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            stream.close()  # ends the read below

        timer = threading.Timer(timeout, expire) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        output = ExecOutput()
        try:
            with stream:
                if stdin:
                    stream.write(stdin)
                    stream.close_stdin()
                for chunk in stream:
                    for line in output.feed(chunk):
                        on_log(line)
                for line in output.end():
                    on_log(line)
                code = stream.wait()
        except BackendError:
            if not expired.is_set():
                raise
            code = -1
        finally:
            if timer is not None:
                timer.cancel()
        if expired.is_set():
            raise BackendUnavailable(f"the exec was closed at its timeout ({timeout:g}s)")
        return output.result(code)

    def _after(self, pod: ClaimedPod, keep: bool) -> None:
        """Give the pod back (recycle, clean end, pool open) or delete it."""
        api = self.runner.api
        if keep and pod.reusable and not self._closed:
            expires = self._core.expiry(self.runner.clock.now())
            try:
                stored = api.patch("Pod", pod.namespace, pod.name, release_patch(expires))
                with self._lock:
                    self._core.released(stored)
                self._notify()
                return
            except BackendError:
                pass  # cannot give it back: delete it
        api.delete_quietly("Pod", pod.namespace, pod.name, grace=0)

    # -- the background thread ------------------------------------------------------------------

    def _maintain(self) -> None:
        clock = self.runner.clock
        # A virtual clock must not jump while this thread works between two waits (a run
        # waiting for a pod would time out before the pod is even created).
        hold = clock.hold()
        try:
            while not self._stop.is_set():
                try:
                    self._cycle()
                except BackendError as exc:
                    self.error = exc
                    self._notify()
                    clock.wait(self._stop, 1.0)
        except BaseException as exc:  # never silent: runs see it
            self.error = exc
            self._notify()
        finally:
            hold.release()

    def _cycle(self) -> None:
        """List the pool's pods, act, then follow the watch until a look is due."""
        api = self.runner.api
        labels, fields = pool_selectors(self.options)
        listed = api.list("Pod", self.namespace, label_selector=labels, field_selector=fields)
        with self._lock:
            self._core.listed(listed.items)
        self._vet()
        self._act()
        with self._lock:
            wait = self._core.next_look(self.runner.clock.now())
        stream: Any = api.watch(  # closed from close() to end a blocked read
            "Pod",
            self.namespace,
            label_selector=labels,
            field_selector=fields,
            resource_version=listed.resource_version,
            timeout_seconds=math.ceil(wait),
        )
        with self._lock:
            self._stream = stream
            stopping = self._stop.is_set()
        try:
            for event in () if stopping else stream:
                if self._stop.is_set() or event.type == "ERROR":
                    break  # an ERROR (410 Gone) is healed by listing again
                with self._lock:
                    self._core.event(event)
                self._vet()
                self._act()
        finally:
            with self._lock:
                self._stream = None
            stream.close()

    def _vet(self, pods: list[dict[str, Any]] | None = None) -> None:
        """Check the pods not checked yet (see ``adopt``); a refusal stops runs."""
        with self._lock:
            if pods is not None:
                for pod in pods:
                    self._core.pods.setdefault(pod["metadata"]["name"], pod)
            unchecked = self._core.to_vet()
        for pod in unchecked:
            try:
                self._adopt(pod)
                error = None
            except RunError as exc:
                error = exc
            with self._lock:
                self._core.vetted(pod, error)
        if unchecked:
            self._notify()

    def _act(self) -> None:
        """Do what the core asks: delete, renew, create; then wake waiting runs."""
        now = self.runner.clock.now()
        with self._lock:
            work: PoolWork = self._core.work(now)
            self._core.creating += work.create
        self._notify()
        if not work:
            return
        api = self.runner.api
        for name in work.delete:
            api.delete_quietly("Pod", self.namespace, name, grace=0)
        for name in work.renew:
            with self._lock:
                seen = self._core.pods.get(name)
            if seen is not None:
                # Conditional: a lost race (a claim, a change) is seen on the watch.
                with contextlib.suppress(NotFound, Conflict):
                    api.replace(renew_body(seen, self._core.expiry(now)))
        for left in range(work.create, 0, -1):
            try:
                stored = self._create(now)
            except BaseException:
                with self._lock:
                    self._core.creating -= left
                raise
            with self._lock:
                self._core.creating -= 1
                if stored is not None:
                    self._core.pods.setdefault(stored["metadata"]["name"], stored)
                    self._core.vetted(stored, None)  # made here: the pool's own
        if isinstance(self.error, FATAL):
            self.error = None  # a create went through: whatever stopped them is over

    def _create(self, now: float) -> dict[str, Any] | None:
        """Create one pod; ``None`` when its name is taken (a pool of one named pod)."""
        for _ in range(2):
            plan = self._plan(now)
            try:
                stored = self.runner._create(plan, None)
            except AlreadyExists:
                if self.options.pod_name is None:
                    raise
                if not self._in_the_way(plan):
                    return None
                continue  # a leftover of the pool's earlier pod was deleted: try again
            self.created += 1
            self._blocked = None
            return stored
        return None

    def _in_the_way(self, plan: RunPlan) -> bool:
        """The named pod could not be created: something holds its name or its Secret's.

        A pod under the name arrives on the watch and is checked there. A Secret or
        ConfigMap left by the pool's earlier pod (the cluster collects it soon) is deleted
        when ``adopt`` accepts it; anything else blocks the pool, untouched.

        Returns:
            Whether creating again may work (the way is clear now).
        """
        api = self.runner.api
        for manifest in (plan.pod, *plan.extras):
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            try:
                found = api.get(kind, self.namespace, name)
            except NotFound:
                continue
            found.setdefault("kind", kind)
            if kind == "Pod":
                self._vet([found])  # the watch brings it too; it is checked either way
                return False
            try:
                self._adopt(found)
            except RunError as exc:
                self._blocked = exc
                self._notify()
                return False
            api.delete_quietly(kind, self.namespace, name, grace=0)
        # Cleared, or gone meanwhile (the garbage collector took the old pod's Secret).
        return True

    def _plan(self, now: float) -> RunPlan:
        return plan_pool_pod(
            self.spec,
            namespace=self.namespace,
            now=now,
            egress=self.runner.egress,
            lease=self.options.lease,
            objects_ttl=self.options.max_age or self.runner.default_ttl,
            deadline_margin=self.runner.deadline_margin,
        )

    def _notify(self) -> None:
        with self._lock:
            news, self._news = self._news, threading.Event()
        news.set()

    def refresh(self) -> None:
        """Delete the pool's pods that no run holds now; the pool makes new ones.

        For a pod stuck starting, or one made before a change its spec does not show (a
        new image behind the same tag). A pod a run holds is left to its run.

        Raises:
            RunError: The pod under ``pod_name`` is not the pool's (``adopt`` refused it);
                it was left untouched.
        """
        self.start()
        self._check_open(starting=False)
        self._drain(vet=True)
        self._notify()
        with self._lock:
            refused = self._core.refusal()
        if refused is not None:
            raise refused

    def _drain(self, *, vet: bool = False) -> None:
        """Delete this pool object's pods that no run holds, claiming each first.

        ``vet``: check a named pod first seen here (``refresh``); ``close`` deletes only
        pods the pool already made or adopted.

        The claim makes the delete safe against a run of another pool of the same name that
        claims the pod at the same moment: whoever wins the replace has it.
        """
        api = self.runner.api
        labels: str | None = f"{pool_selector(self.name)},{OWNER_LABEL}={self.owner}"
        fields: str | None = None
        if self.options.pod_name is not None:
            labels, fields = pool_selectors(self.options)
        closing = new_claim_id()
        expires = self._core.expiry(self.runner.clock.now())
        listed = api.list("Pod", self.namespace, label_selector=labels, field_selector=fields)
        for pod in listed.items:
            if vet:
                self._vet([pod])  # a pool of one named pod may not have looked at it yet
            if not self._core.mine(pod):
                continue  # the named pod, when it is not (or no longer) the one checked
            name = pod["metadata"]["name"]
            # A conflict may come from an unrelated change (status, a controller's label):
            # try again on the fresh pod while it is still unclaimed.
            for _ in range(_DRAIN_TRIES):
                if (pod["metadata"].get("labels") or {}).get(STATE_LABEL) == CLAIMED:
                    break  # a run holds it and deletes it when it ends
                stored = self._try_claim(pod, closing, expires)
                if stored is not None:
                    with self._lock:  # gone for the pool now (before the delete's event)
                        self._core.retiring(stored)
                    api.delete_quietly("Pod", self.namespace, name, grace=0)
                    break
                try:
                    pod = api.get("Pod", self.namespace, name)
                except NotFound:
                    break

    def _check_open(self, *, starting: bool = True) -> float:
        """Raise what stops runs; return the seconds until a waiting run should look again.

        A closed pool, a refused pod or Secret in the way, a fatal error, and (``starting``)
        a pod of the pool that will not start, as the run engine decides: at once for an
        image or container that cannot be, after ``autoscaler_grace`` for a pod the
        scheduler refuses unless a cluster autoscaler is bringing a node for it.
        """
        if self._closed:
            raise RunCancelled(f"pool {self.name!r} was closed", namespace=self.namespace)
        with self._lock:
            refused, failed = self._core.refusal(), self._core.start_failure()
            unplaced = self._core.unschedulable()
        for error in (refused, self._blocked, self.error):
            if error is not None and (error is not self.error or isinstance(error, FATAL)):
                raise error
        if not starting:
            return math.inf
        if failed is not None:
            raise start_error(*failed, self.namespace)
        return self._capacity_look(unplaced)

    def _capacity_look(self, unplaced: tuple[str, PodState] | None) -> float:
        """Seconds until a waiting run looks again; raises for a pod no node will take."""
        wait = self._refused.due(unplaced, self.runner.clock.monotonic())
        if wait is not None or unplaced is None:
            return math.inf if wait is None else wait
        events = self.runner.api.pod_events(self.namespace, unplaced[0])
        return self._refused.verdict(unplaced, events, self.namespace)

    def _start_timeout(self, what: str) -> RunError:
        with self._lock:
            refused = self._core.unschedulable()
        if refused is not None:
            return start_error(*refused, self.namespace)
        text = f"{what} in pool {self.name!r} within {self.options.start_timeout:g}s"
        if self.error is not None:
            text += f" (last error: {self.error})"
        return StartTimeout(text, namespace=self.namespace)
