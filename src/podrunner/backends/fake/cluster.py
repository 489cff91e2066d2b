"""``FakeCluster`` and its ``FakeBackend``: an in-memory Kubernetes behind the backend protocol.

The cluster object is what tests hold: it scripts outcomes, injects faults, moves the virtual
clock and inspects state. Its backend answers every call as the API server would, with the
same status codes, reasons and messages, and never with an exception from its own internals.
Both are thin: the state and the semantics of writes are the
:class:`~podrunner.backends.fake.apiserver.FakeApiServer`'s, watches are in
:mod:`~podrunner.backends.fake.watch`, logs in :mod:`~podrunner.backends.fake.podlogs`
and exec in :mod:`~podrunner.backends.fake.podexec`.
"""

from __future__ import annotations

import contextlib
import math
import random
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from podrunner.backends.base import PLURALS, ExecResult, ExecStream, Kind, ObjectList
from podrunner.backends.fake import store as store_mod
from podrunner.backends.fake._fastcopy import copy_object
from podrunner.backends.fake.apiserver import (
    FakeApiServer,
    decode,
    no_resource,
    not_found,
    peek,
)
from podrunner.backends.fake.clock import RealTimeClock, SchedulingClock, VirtualClock
from podrunner.backends.fake.faults import FaultRule
from podrunner.backends.fake.podexec import prepare_exec, prepare_open_exec
from podrunner.backends.fake.podlogs import FakeLogStream, open_log
from podrunner.backends.fake.scripting import Rule
from podrunner.backends.fake.selectors import parse_field, parse_label, select
from podrunner.backends.fake.watch import FakeWatchStream, open_watch
from podrunner.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from podrunner.backends.fake.aio import AsyncFakeBackend

__all__ = ["Action", "FakeBackend", "FakeCluster"]


class Action(NamedTuple):
    """One recorded backend call.

    Attributes:
        verb: ``create``, ``get``, ``list``, ``replace``, ``patch``, ``delete``, ``watch``,
            ``read_log`` or ``exec``.
        kind: The kind involved (``Pod`` for logs and exec), when known.
        namespace: The namespace, when given.
        name: The object name, when given (for create, the requested name or generateName).
        label_selector: The label selector of a list or watch.
        field_selector: The field selector of a list or watch.
        at: Clock time (``clock.now()``) of the call.
    """

    verb: str
    kind: str | None
    namespace: str | None
    name: str | None
    label_selector: str | None = None
    field_selector: str | None = None
    at: float = 0.0


class FakeCluster:
    r"""An in-memory Kubernetes cluster with one simulated node, for tests and local runs.

    Args:
        clock: ``"virtual"`` (default with the scripted runtime), ``"real"`` (default with the
            local runtime), or a :class:`VirtualClock`/:class:`RealTimeClock` to share.
        runtime: ``"scripted"``: containers follow :meth:`when` rules and simulation
            annotations. ``"local"``: the container's command runs as a local process in a
            temporary HOME and working directory (the image is ignored).
        history: How many changes the watch history keeps; older versions are 410 Gone.
        auto_create_namespaces: Create a missing namespace on first use instead of answering
            ``namespaces "x" not found`` as a real server does.
        schedule_delay: Seconds the scheduler takes to bind a new pod to the node (0: at
            once). A busy or absent scheduler leaves pods Pending with no condition at all,
            which is what a scheduling timeout has to catch.
        start_delay: Seconds from scheduling to running containers (image pull and start);
            1.0 with the scripted runtime, 0 with the local one.
        seed: Seed for generated names and uids, for reproducible runs.
        event_ttl: Seconds an Event lives before the cluster deletes it (one hour, the API
            server's default ``--event-ttl``).

    Example:
        >>> cluster = FakeCluster()
        >>> _ = cluster.when(image="busybox:*").succeed(logs="hi\\n", after=2.0)
        >>> pod = cluster.backend.create({"kind": "Pod", "metadata": {"name": "p"},
        ...     "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})
        >>> cluster.advance(5)
        >>> cluster.backend.get("Pod", "default", "p")["status"]["phase"]
        'Succeeded'
    """

    def __init__(
        self,
        *,
        clock: Literal["virtual", "real"] | SchedulingClock | None = None,
        runtime: Literal["scripted", "local"] = "scripted",
        history: int = 1000,
        auto_create_namespaces: bool = False,
        start_delay: float | None = None,
        seed: int | None = None,
        schedule_delay: float = 0.0,
        event_ttl: float = 3600.0,
    ) -> None:
        if runtime not in ("scripted", "local"):
            raise ValueError(f"runtime must be 'scripted' or 'local', not {runtime!r}")
        ttl: object = event_ttl  # callers may pass anything
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not 0 < ttl < math.inf:
            raise ValueError(f"event_ttl must be a positive number of seconds, not {event_ttl!r}")
        if clock is None:
            clock = "virtual" if runtime == "scripted" else "real"
        if clock == "virtual":
            clock = VirtualClock()
        elif clock == "real":
            clock = RealTimeClock()
        elif not isinstance(clock, SchedulingClock):
            raise TypeError(
                f"clock must be 'virtual', 'real', a VirtualClock or a RealTimeClock, not {clock!r}"
            )
        local_runtime = None
        if runtime == "local":
            if isinstance(clock, VirtualClock):
                raise ValueError("the local runtime runs real processes and needs clock='real'")
            from podrunner.backends.fake.runtime_local import LocalRuntime

            local_runtime = LocalRuntime()
        if start_delay is None:
            start_delay = 1.0 if runtime == "scripted" else 0.0
        # Not for security: names and uids only need to be unlikely to collide.
        rng = random.Random(seed) if seed is not None else store_mod._rng  # noqa: S311
        self._api = api = FakeApiServer(
            clock,
            history=history,
            rng=rng,
            event_ttl=event_ttl,
            auto_create_namespaces=auto_create_namespaces,
            start_delay=start_delay,
            schedule_delay=schedule_delay,
            runtime=local_runtime,
        )
        self._clock: SchedulingClock = clock
        self._lock = clock.lock
        self._rules = api.rules
        self._faults = api.faults
        self._backend = FakeBackend(self, api)
        self._async_backend: AsyncFakeBackend | None = None

    # -- public surface -------------------------------------------------------------------

    @property
    def backend(self) -> FakeBackend:
        """The :class:`~podrunner.backends.base.Backend` to hand to a runner."""
        return self._backend

    @property
    def async_backend(self) -> AsyncFakeBackend:
        """The :class:`~podrunner.backends.base.AsyncBackend` to hand to an ``AsyncPodRunner``.

        The same store, scripting, faults and clock as :attr:`backend`. Made on first use, so
        that the sync fake never imports :mod:`asyncio`.
        """
        found = self._async_backend
        if found is None:
            from podrunner.backends.fake.aio import AsyncFakeBackend

            calls = FakeBackend(self, self._api)
            found = AsyncFakeBackend(calls, self._clock, self._faults)
            self._async_backend = found
        return found

    @property
    def clock(self) -> SchedulingClock:
        """The cluster's clock (a :class:`VirtualClock` unless built with a real one)."""
        return self._clock

    def when(
        self,
        *,
        image: str | None = None,
        labels: Mapping[str, str] | None = None,
        name: str | None = None,
        command: str | Sequence[str] | None = None,
        namespace: str | None = None,
        times: int | None = None,
    ) -> Rule:
        """Start a scripting rule for pods created from now on; the newest match wins.

        Args:
            image: Glob over container images (``"busybox:*"``).
            labels: Labels the pod must carry (all of them, equal values).
            name: Glob over the pod name.
            command: Glob over the shell-quoted ``command + args``, or an exact argv list.
            namespace: The pod's namespace.
            times: Apply to this many pods, then stop matching.

        Returns:
            The rule: call one outcome method on it (``succeed``, ``fail``, ``oom``...).
        """
        rule = Rule(
            image=image,
            labels=labels,
            name=name,
            command=command,
            namespace=namespace,
            times=times,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def fault(
        self,
        *,
        verb: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        connection_error: bool = False,
        latency: float = 0.0,
        times: int | None = None,
        nth: int | None = None,
        cut_watch_after: int | None = None,
        cut_log_after_lines: int | None = None,
        split_utf8: bool = False,
        follow_never_ends: bool = False,
    ) -> FaultRule:
        """Inject a fault into matching backend calls.

        Args:
            verb: Backend method name (``create``, ``watch``, ``read_log``...); any if omitted.
            kind: Kind of the call (``Pod`` for ``read_log`` and ``exec``).
            namespace: Namespace of the call.
            name: Glob over the object name.
            status: HTTP status to answer with (401, 403, 404, 409, 410, 429, 500, 503...).
            reason: ``Status.reason`` override (e.g. ``AlreadyExists`` for a 409).
            message: Message override.
            retry_after: ``Retry-After`` seconds of a 429.
            connection_error: Answer with :class:`~podrunner.errors.BackendUnavailable`.
            latency: Seconds (on the cluster's clock) to wait before answering.
            times: Apply to this many matching calls.
            nth: Apply to the nth matching call only (with ``times``: from the nth on).
            cut_watch_after: End matching watch streams after this many events.
            cut_log_after_lines: End matching log streams after this many lines.
            split_utf8: Split log chunks inside multi-byte UTF-8 characters.
            follow_never_ends: A followed log stays open after the container terminated,
                until the pod is deleted (what kwok does, and real kubelets sometimes).

        Returns:
            The rule; ``rule.fired`` counts the calls it applied to.
        """
        rule = FaultRule(
            verb=verb,
            kind=kind,
            namespace=namespace,
            name=name,
            status=status,
            reason=reason,
            message=message,
            retry_after=retry_after,
            connection_error=connection_error,
            latency=latency,
            times=times,
            nth=nth,
            cut_watch_after=cut_watch_after,
            cut_log_after_lines=cut_log_after_lines,
            split_utf8=split_utf8,
            follow_never_ends=follow_never_ends,
        )
        with self._lock:
            self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        with self._lock:
            self._faults.clear()

    @property
    def actions(self) -> list[Action]:
        """Every backend call so far, oldest first (a copy)."""
        with self._lock:
            return [Action._make(a) for a in self._api.actions]

    def clear_actions(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self._api.actions.clear()

    def _listing(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        with self._lock:
            items = select(self._api.objects[kind], namespace)
        return [copy_object(o) for o in items]

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored pods (all namespaces by default)."""
        return self._listing("Pod", namespace)

    def secrets(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored Secrets."""
        return self._listing("Secret", namespace)

    def config_maps(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored ConfigMaps."""
        return self._listing("ConfigMap", namespace)

    def network_policies(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored NetworkPolicies."""
        return self._listing("NetworkPolicy", namespace)

    def namespaces(self) -> list[str]:
        """Return the names of the existing namespaces."""
        with self._lock:
            return sorted(name for _, name in self._api.objects["Namespace"])

    def events(self, pod: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return Event objects, oldest first, optionally only those about one pod."""
        with self._lock:
            self._api.store.expire_events()
            items = [
                e
                for e in self._api.objects["Event"].values()
                if (pod is None or e["involvedObject"].get("name") == pod)
                and (namespace is None or e["metadata"]["namespace"] == namespace)
            ]
            items.sort(key=lambda e: int(e["metadata"]["name"].rsplit(".", 1)[-1], 16))
        return [copy_object(e) for e in items]

    def history(self, kind: str, namespace: str | None, name: str) -> list[dict[str, Any]]:
        """Return every stored version of one object, oldest first (the last may be deleted).

        Versions of earlier objects with the same name are included: the uid tells them apart.
        Events keep only their current version; versions of deleted objects are kept for the
        last 100 deletions.
        """
        with self._lock:
            versions = list(self._api.store.versions.get((kind, namespace, name), ()))
            if kind == "Event":
                current = self._api.objects["Event"].get((namespace, name))
                versions = [] if current is None else [current]
        return [copy_object(v) for v in versions]

    def add_service_account(self, namespace: str, name: str) -> None:
        """Make a ServiceAccount exist, so pods may name it in ``serviceAccountName``.

        Every namespace has ``default``, made by the controller-manager on a real cluster;
        a pod naming any other account that does not exist is refused (403), as the
        ServiceAccount admission plugin refuses it.
        """
        with self._lock:
            self._api.service_accounts.add((namespace, name))

    def create_namespace(self, name: str) -> dict[str, Any]:
        """Create a namespace (no-op if it exists) and return it."""
        with self._lock:
            existing = self._api.objects["Namespace"].get((None, name))
            if existing is not None:
                return copy_object(existing)
        return self._backend.create({"kind": "Namespace", "metadata": {"name": name}})

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward, running every kubelet transition due on the way.

        Raises:
            TypeError: The cluster runs on the real clock.
        """
        if not isinstance(self._clock, VirtualClock):
            raise TypeError("advance() needs the virtual clock")
        self._clock.advance(seconds)

    def set_logs(
        self,
        namespace: str,
        pod: str,
        text: str | bytes,
        *,
        container: str | None = None,
        append: bool = False,
    ) -> None:
        """Replace (or extend) the current log of a started container.

        Raises:
            NotFound: No such pod, or its container has not started.
        """
        data = text.encode() if isinstance(text, str) else text
        with self._lock:
            obj = self._api.objects["Pod"].get((namespace, pod))
            sim = None if obj is None else self._api.pods.get(obj)
            if sim is None or not sim.containers:
                raise not_found("Pod", namespace, pod)
            c = sim.containers[0] if container is None else sim.container(container)
            buffer = None if c is None else c.current_buffer()
            if c is None or buffer is None:
                raise NotFound(f'container "{container}" in pod "{pod}" has not started')
            if not append:
                buffer.clear()
            buffer.write(int(self._clock.now() * 1e9), data)
            self._clock.notify()


class FakeBackend:
    """The :class:`~podrunner.backends.base.Backend` of a :class:`FakeCluster`.

    Each call takes the cluster's lock, is recorded (and faults applied), and is answered by
    the cluster's API server.
    """

    def __init__(self, cluster: FakeCluster, api: FakeApiServer) -> None:
        self._cluster = cluster
        self._api = api
        self._lock = api.lock
        # Streamed execs still open, ended by close() (a caller that never closed one).
        self._streams: weakref.WeakSet[ExecStream] = weakref.WeakSet()

    @property
    def clock(self) -> SchedulingClock:
        """The cluster's clock."""
        return self._api.clock

    @property
    def cluster(self) -> FakeCluster:
        """The cluster this backend talks to."""
        return self._cluster

    def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object (``generateName`` honoured); see the backend protocol."""
        with self._lock:
            self._api.begin_call("create", *peek(manifest))
            return self._api.create(manifest, dry_run)

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Return a copy of one object; see the backend protocol."""
        with self._lock:
            self._api.begin_call("get", kind, namespace, name)
            k = _kind(kind)
            obj = self._api.objects[k].get((_namespace(k, namespace), name))
            if obj is None:
                raise not_found(k, namespace, name)
        return copy_object(obj)

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects, filtered by selectors; see the backend protocol."""
        api = self._api
        with self._lock:
            api.begin_call("list", kind, namespace, None, label_selector, field_selector)
            k = _kind(kind)
            labels = parse_label(label_selector)
            fields = parse_field(k, field_selector)
            if k == "Namespace":
                namespace = None
            items = select(api.objects[k], namespace, labels, fields)
            rv = str(api.store.rv)
        return ObjectList([copy_object(o) for o in items], rv)

    def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; a stale resourceVersion is 409 Conflict."""
        with self._lock:
            self._api.begin_call("replace", *peek(manifest))
            kind, obj, meta = decode(manifest)
            return self._api.update(kind, obj, meta)

    def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch to an object or its status."""
        with self._lock:
            self._api.begin_call("patch", kind, namespace, name)
            k = _kind(kind)
            return self._api.patch(k, _namespace(k, namespace), name, patch, subresource)

    def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
    ) -> None:
        """Delete an object: pods gracefully unless the grace period is 0."""
        with self._lock:
            self._api.begin_call("delete", kind, namespace, name)
            k = _kind(kind)
            grace: object = grace_period_seconds  # callers may send anything
            if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
                raise BadRequest("gracePeriodSeconds must be an integer")
            self._api.delete(k, _namespace(k, namespace), name, grace_period_seconds)

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: float | None = None,
        allow_bookmarks: bool = False,
    ) -> FakeWatchStream:
        """Stream changes after ``resource_version``; see the backend protocol.

        With no version (or ``"0"``) the stream starts with a synthetic ``ADDED`` event per
        current object, as the real server does. An object that stops matching the selectors
        is sent as ``DELETED`` (its previous content at the new version) and one that starts
        matching as ``ADDED``, which is what the API server's watch cache does.
        """
        api = self._api
        with self._lock:
            fault = api.begin_call("watch", kind, namespace, None, label_selector, field_selector)
            k = _kind(kind)
            return open_watch(
                api.store,
                k,
                None if k == "Namespace" else namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_bookmarks=allow_bookmarks,
                limit=None if fault is None else fault.cut_watch_after,
            )

    def read_log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        follow: bool = False,
        timestamps: bool = False,
        since_time: str | None = None,
        since_seconds: int | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
    ) -> FakeLogStream:
        """Stream a container's log as byte chunks; see the backend protocol."""
        api = self._api
        with self._lock:
            fault = api.begin_call("read_log", "Pod", namespace, pod)
            obj = api.stored("Pod", _namespace("Pod", namespace), pod)
            return open_log(
                api.pods,
                obj,
                container,
                follow=follow,
                timestamps=timestamps,
                since_time=since_time,
                since_seconds=since_seconds,
                tail_lines=tail_lines,
                limit_bytes=limit_bytes,
                previous=previous,
                fault=fault,
            )

    def exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run ``argv`` in a running container: an exec handler, the local runtime or builtins."""
        api = self._api
        clock = api.clock
        with self._lock:
            api.begin_call("exec", "Pod", namespace, pod)
            obj = api.stored("Pod", _namespace("Pod", namespace), pod)
            run = prepare_exec(api.kubelet, obj, container, argv, stdin=stdin, timeout=timeout)
            clock.enter_busy()
        try:
            return run()
        finally:
            with self._lock:
                clock.leave_busy()

    def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
    ) -> ExecStream:
        """Start ``argv`` in a running container and stream it (see :func:`prepare_open_exec`)."""
        api = self._api
        with self._lock:
            api.begin_call("exec", "Pod", namespace, pod)
            obj = api.stored("Pod", _namespace("Pod", namespace), pod)
            open_ = prepare_open_exec(
                api.kubelet, obj, container, argv, stdin=stdin, busy=self._busy
            )
        with self._busy():
            stream = open_()
        self._streams.add(stream)
        return stream

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """Count a blocking step of an exec stream as work: virtual time waits for it."""
        clock = self._api.clock
        with self._lock:
            clock.enter_busy()
        try:
            yield
        finally:
            with self._lock:
                clock.leave_busy()

    def refresh_credentials(self) -> bool:
        """Pretend to load new credentials after an injected 401.

        Returns:
            ``True`` once after each 401 the fake answered (as if a rotated token was read),
            so a caller's refresh-and-retry path can be tested; ``False`` otherwise.
        """
        with self._lock:
            changed = self._api.stale_credentials
            self._api.stale_credentials = False
            return changed

    def close(self) -> None:
        """Stop local processes (streamed execs too); the in-memory state stays readable."""
        for stream in list(self._streams):
            stream.close()
        with self._lock:
            self._api.kubelet.close()


def _kind(kind: object) -> str:
    if kind not in PLURALS:
        raise no_resource()
    assert isinstance(kind, str)
    return kind


def _namespace(kind: str, namespace: str | None) -> str | None:
    if kind == "Namespace":
        return None
    if not namespace:
        raise BadRequest("a namespace must be specified for namespaced resources")
    return namespace
