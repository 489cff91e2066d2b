"""``FakeCluster`` and its ``FakeBackend``: an in-memory Kubernetes behind the backend protocol.

The backend answers every call as the API server would, with the same status codes, reasons
and messages, and never with an exception from its own internals. The cluster object is what
tests hold: it scripts outcomes, injects faults, moves the virtual clock and inspects state.
"""

from __future__ import annotations

import builtins
import fnmatch
import json
import math
import random
import shlex
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Literal, NamedTuple

from podrunner.backends._stream import InterruptibleStream, StreamState, WatchStream
from podrunner.backends.base import ExecResult, Kind, ObjectList, WatchEvent
from podrunner.backends.fake import store as store_mod
from podrunner.backends.fake._json import (
    NotJSON,
    copy_tree,
    format_rfc3339,
    format_rfc3339_nano,
    merge_patch,
    normalize,
    parse_rfc3339,
)
from podrunner.backends.fake.clock import (
    RealTimeClock,
    SchedulingClock,
    VirtualClock,
)
from podrunner.backends.fake.faults import FaultRule
from podrunner.backends.fake.kubelet import ContainerSim, Kubelet, PodSim
from podrunner.backends.fake.logs import LogBuffer, Position, split_inside_utf8
from podrunner.backends.fake.podspec import admit_pod, default_tolerations, token_volume_name
from podrunner.backends.fake.scripting import (
    ExecRequest,
    Rule,
    coerce_exec_result,
)
from podrunner.backends.fake.selectors import FieldSelector, LabelSelector, parse_field, parse_label
from podrunner.backends.fake.store import Store, namespace_object
from podrunner.backends.fake.validation import (
    Errors,
    check_meta_shape,
    check_pod_update,
    check_stored_size,
    prepare,
)
from podrunner.errors import (
    AlreadyExists,
    BackendUnavailable,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    StatusCause,
)

__all__ = ["Action", "FakeBackend", "FakeCluster"]

_PLURAL = {
    "Pod": "pods",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Event": "events",
    "Namespace": "namespaces",
}
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_ATTEMPTS = 8
_SERVER_SET = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
_PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


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


def _not_found(kind: str, namespace: str | None, name: str) -> NotFound:
    return NotFound(
        f'{_PLURAL[kind]} "{name}" not found', kind=kind, namespace=namespace, name=name
    )


def _no_resource() -> NotFound:
    return NotFound("the server could not find the requested resource")


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
        self._clock: SchedulingClock = clock
        self._lock = clock.lock
        self._virtual = isinstance(clock, VirtualClock)
        # Not for security: names and uids only need to be unlikely to collide.
        self._rng = random.Random(seed) if seed is not None else store_mod._rng  # noqa: S311
        self._store = Store(clock, history=history, rng=self._rng, event_ttl=event_ttl)
        self._objects = self._store.objects
        self._rules: list[Rule] = []
        self._faults: list[FaultRule] = []
        # Plain tuples, made Actions on read: the GC stops tracking tuples of strings, so a
        # long action log costs the collector nothing.
        self._actions: list[tuple[Any, ...]] = []
        self._auto_ns = auto_create_namespaces
        # ServiceAccounts besides each namespace's "default" (the backend has no such kind).
        self._service_accounts: set[tuple[str, str]] = set()
        self._stale_credentials = False
        if start_delay is None:
            start_delay = 1.0 if runtime == "scripted" else 0.0
        self._kubelet = Kubelet(
            self._store,
            clock,
            self._rules,
            start_delay=start_delay,
            schedule_delay=schedule_delay,
            runtime=local_runtime,
        )
        self._store.gc_delete = self._gc_delete
        self._backend = FakeBackend(self)

    # -- public surface -------------------------------------------------------------------

    @property
    def backend(self) -> FakeBackend:
        """The :class:`~podrunner.backends.base.Backend` to hand to a runner."""
        return self._backend

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
            return [Action._make(a) for a in self._actions]

    def clear_actions(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self._actions.clear()

    def _listing(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        with self._lock:
            items = [
                obj
                for (ns, _), obj in sorted(self._objects[kind].items(), key=_sort_key)
                if namespace is None or ns == namespace
            ]
        return [copy_tree(o) for o in items]

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored pods (all namespaces by default)."""
        return self._listing("Pod", namespace)

    def secrets(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored Secrets."""
        return self._listing("Secret", namespace)

    def config_maps(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored ConfigMaps."""
        return self._listing("ConfigMap", namespace)

    def namespaces(self) -> list[str]:
        """Return the names of the existing namespaces."""
        with self._lock:
            return sorted(name for _, name in self._objects["Namespace"])

    def events(self, pod: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return Event objects, oldest first, optionally only those about one pod."""
        with self._lock:
            self._store.expire_events()
            items = [
                e
                for e in self._objects["Event"].values()
                if (pod is None or e["involvedObject"].get("name") == pod)
                and (namespace is None or e["metadata"]["namespace"] == namespace)
            ]
            items.sort(key=lambda e: int(e["metadata"]["name"].rsplit(".", 1)[-1], 16))
        return [copy_tree(e) for e in items]

    def history(self, kind: str, namespace: str | None, name: str) -> list[dict[str, Any]]:
        """Return every stored version of one object, oldest first (the last may be deleted).

        Versions of earlier objects with the same name are included: the uid tells them apart.
        Events keep only their current version; versions of deleted objects are kept for the
        last 100 deletions.
        """
        with self._lock:
            versions = list(self._store.versions.get((kind, namespace, name), ()))
            if kind == "Event":
                current = self._objects["Event"].get((namespace, name))
                versions = [] if current is None else [current]
        return [copy_tree(v) for v in versions]

    def add_service_account(self, namespace: str, name: str) -> None:
        """Make a ServiceAccount exist, so pods may name it in ``serviceAccountName``.

        Every namespace has ``default``, made by the controller-manager on a real cluster;
        a pod naming any other account that does not exist is refused (403), as the
        ServiceAccount admission plugin refuses it.
        """
        with self._lock:
            self._service_accounts.add((namespace, name))

    def _has_service_account(self, namespace: str, name: str) -> bool:
        return name == "default" or (namespace, name) in self._service_accounts

    def create_namespace(self, name: str) -> dict[str, Any]:
        """Create a namespace (no-op if it exists) and return it."""
        with self._lock:
            existing = self._objects["Namespace"].get((None, name))
            if existing is not None:
                return copy_tree(existing)
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
            obj = self._objects["Pod"].get((namespace, pod))
            sim = None if obj is None else self._kubelet.sim_for(obj)
            if sim is None or not sim.containers:
                raise _not_found("Pod", namespace, pod)
            c = sim.containers[0] if container is None else sim.container(container)
            buffer = None if c is None else c.current_buffer()
            if c is None or buffer is None:
                raise NotFound(f'container "{container}" in pod "{pod}" has not started')
            if not append:
                buffer.clear()
            buffer.write(int(self._clock.now() * 1e9), data)
            self._clock.notify()

    # -- internals shared with the backend (lock held) ------------------------------------

    def _act(
        self,
        verb: str,
        kind: str | None,
        namespace: str | None,
        name: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> FaultRule | None:
        """Record a call, apply due timers (real clock) and matching faults."""
        self._actions.append(
            (verb, kind, namespace, name, label_selector, field_selector, self._clock.now())
        )
        if not self._virtual:
            self._clock.fire_due()
        if self._store.pending_gc:
            self._store.collect_pending()
        expiry = self._store.event_expiry
        if expiry and expiry[0][0] <= self._clock.monotonic():
            self._store.expire_events()
        if not self._faults:
            return None
        stream: FaultRule | None = None
        for rule in list(self._faults):
            if not rule.matches(verb, kind, namespace, name) or not rule.take():
                continue
            if rule.latency > 0:
                self._clock.block_until(_never, self._clock.monotonic() + rule.latency)
            error = rule.error(verb, kind, namespace, name)
            if error is not None:
                if error.status == 401:
                    self._stale_credentials = True
                raise error
            if (
                rule.cut_watch_after is not None
                or rule.cut_log_after_lines is not None
                or rule.split_utf8
                or rule.follow_never_ends
            ):
                stream = rule
        return stream

    def _mark_deleting(self, obj: dict[str, Any], grace: int) -> dict[str, Any]:
        new = dict(obj)
        new["metadata"] = meta = dict(obj["metadata"])
        if meta.get("deletionTimestamp") is None or grace < meta.get(
            "deletionGracePeriodSeconds", 0
        ):
            meta["deletionTimestamp"] = format_rfc3339(self._clock.now() + grace)
        meta["deletionGracePeriodSeconds"] = grace
        if meta.get("generation"):
            meta["generation"] = meta["generation"] + 1
        return new

    def _gc_delete(self, kind: str, namespace: str | None, name: str) -> None:
        self._delete(kind, namespace, name, None)

    def _delete(
        self, kind: str, namespace: str | None, name: str, grace: int | None
    ) -> dict[str, Any] | None:
        objects = self._objects[kind]
        obj = objects.get((namespace, name))
        if obj is None:
            raise _not_found(kind, namespace, name)
        store = self._store
        meta = obj["metadata"]
        finalizers = meta.get("finalizers")
        if kind == "Pod":
            assert namespace is not None
            spec = obj.get("spec") or {}
            if grace is None:
                grace = spec.get("terminationGracePeriodSeconds", 30)
            grace = int(grace)
            if grace < 0:
                grace = 1  # the pod strategy: a negative grace period is one second
            sim = self._kubelet.sim_for(obj)
            phase = (obj.get("status") or {}).get("phase")
            if not spec.get("nodeName") or sim is None or phase in ("Succeeded", "Failed"):
                # As the API server does: unbound and terminated pods go at once.
                grace = 0
            if meta.get("deletionTimestamp") is not None:
                remaining = meta.get("deletionGracePeriodSeconds", 0)
                if grace >= remaining:
                    return copy_tree(obj)
            # Even an immediate deletion first records the deletion (a MODIFIED with the
            # deletionTimestamp and the next generation), then removes the object.
            new = self._mark_deleting(obj, grace)
            store.write(kind, namespace, name, new, "MODIFIED", obj)
            if grace == 0:
                if finalizers:
                    if sim is not None:
                        self._kubelet.on_delete(sim, 0.0)
                    return copy_tree(new)
                gone = store.remove(kind, namespace, name)
                self._kubelet.forget(namespace, name, meta.get("uid"))
                return gone
            assert sim is not None
            self._kubelet.on_delete(sim, float(grace))
            return copy_tree(new)
        if finalizers and kind != "Namespace":
            # The object stays, marked as deleting, until its last finalizer is removed.
            if meta.get("deletionTimestamp") is not None:
                return copy_tree(obj)
            new = self._mark_deleting(obj, 0)
            store.write(kind, namespace, name, new, "MODIFIED", obj)
            return copy_tree(new)
        if kind == "Namespace":
            if name in _PROTECTED_NAMESPACES:
                raise Forbidden(
                    f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    kind=kind,
                    name=name,
                )
            for other in ("Pod", "Secret", "ConfigMap", "Event"):
                for ns, item in [k for k in self._objects[other] if k[0] == name]:
                    old = store.remove(other, ns, item)
                    if other == "Pod" and old is not None:
                        self._kubelet.forget(name, item)
        return store.remove(kind, namespace, name)


def _never() -> bool:
    return False


def _sort_key(item: tuple[tuple[str | None, str], Any]) -> tuple[str, str]:
    return (item[0][0] or "", item[0][1])


def _peek(manifest: object) -> tuple[str | None, str | None, str | None]:
    """Best-effort kind, namespace and name of any input, for the action log and faults."""
    if not isinstance(manifest, Mapping):
        return None, None, None
    kind = manifest.get("kind")
    meta = manifest.get("metadata")
    ns = name = None
    if isinstance(meta, Mapping):
        ns = meta.get("namespace")
        name = meta.get("name") or meta.get("generateName")
    if kind is not None and not isinstance(kind, str):
        kind = None
    if kind not in (None, "Namespace") and ns is None:
        ns = "default"
    return (
        kind,
        ns if isinstance(ns, str) else None,
        name if isinstance(name, str) else None,
    )


class FakeBackend:
    """The :class:`~podrunner.backends.base.Backend` of a :class:`FakeCluster`."""

    def __init__(self, cluster: FakeCluster) -> None:
        self._c = cluster
        self._lock = cluster._lock
        self._store = cluster._store
        self._objects = cluster._store.objects
        self._kubelet = cluster._kubelet

    @property
    def clock(self) -> SchedulingClock:
        """The cluster's clock."""
        return self._c._clock

    @property
    def cluster(self) -> FakeCluster:
        """The cluster this backend talks to."""
        return self._c

    # -- helpers --------------------------------------------------------------------------

    def _kind(self, kind: object) -> str:
        if kind not in _PLURAL:
            raise _no_resource()
        assert isinstance(kind, str)
        return kind

    @staticmethod
    def _ns(kind: str, namespace: str | None) -> str | None:
        if kind == "Namespace":
            return None
        if not namespace:
            raise BadRequest("a namespace must be specified for namespaced resources")
        return namespace

    def _check_namespace(self, namespace: str) -> None:
        if (None, namespace) in self._objects["Namespace"]:
            return
        if self._c._auto_ns:
            obj = namespace_object(namespace, self._store.uid(), self._c._clock.now())
            self._store.write("Namespace", None, namespace, obj, "ADDED")
            return
        raise NotFound(f'namespaces "{namespace}" not found', kind="Namespace", name=namespace)

    def _normalize(self, manifest: object, what: str = "body") -> dict[str, Any]:
        if not isinstance(manifest, Mapping):
            raise BadRequest(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            )
        try:
            obj: dict[str, Any] = normalize(manifest)
        except NotJSON as exc:
            raise BadRequest(f"json: unsupported value in {what}: {exc}") from None
        except RecursionError:
            raise BadRequest("json: exceeded max depth") from None
        return obj

    def _decode(self, manifest: object) -> tuple[str, dict[str, Any], dict[str, Any]]:
        obj = self._normalize(manifest)
        kind = obj.get("kind")
        if not kind or not isinstance(kind, str):
            raise BadRequest(f"Object 'Kind' is missing in '{json.dumps(obj)[:1000]}'")
        if kind not in _PLURAL:
            raise _no_resource()
        api = obj.setdefault("apiVersion", "v1")
        if api != "v1":
            raise BadRequest(
                f"the API version in the data ({api}) does not match the expected API version (v1)"
            )
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        check_meta_shape(kind, meta)
        return kind, obj, meta

    # -- protocol -------------------------------------------------------------------------

    def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object (``generateName`` honoured); see the backend protocol."""
        c = self._c
        with self._lock:
            kind, ns, name = _peek(manifest)
            c._act("create", kind, ns, name)
            return self._create(manifest, dry_run)

    def _create(self, manifest: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
        kind, obj, meta = self._decode(manifest)
        if kind == "Namespace":
            meta.pop("namespace", None)
            ns: str | None = None
        else:
            ns = meta.get("namespace") or "default"
            meta["namespace"] = ns
        if meta.get("resourceVersion"):
            raise BadRequest("resourceVersion should not be set on objects to be created")
        for field in _SERVER_SET:
            meta.pop(field, None)
        name = meta.get("name")
        generate = meta.get("generateName")
        generated = not name and bool(generate)
        if generated:
            assert isinstance(generate, str)
            error = _prefix_error(kind, generate)
            if error is not None:
                errs = Errors(kind, generate)
                errs.invalid("metadata.generateName", generate, error)
                errs.raise_if_any()
            name = meta["name"] = self._generate(kind, ns, generate)
        prepare(kind, obj, self._admit if kind == "Pod" else None)
        assert isinstance(name, str)
        if ns is not None:
            self._check_namespace(ns)
        objects = self._objects[kind]
        if (ns, name) in objects:
            if not generated:
                raise AlreadyExists(
                    f'{_PLURAL[kind]} "{name}" already exists', kind=kind, namespace=ns, name=name
                )
            assert isinstance(generate, str)
            name = meta["name"] = self._generate(kind, ns, generate)
        clock = self._c._clock
        meta["uid"] = self._store.uid()
        meta["creationTimestamp"] = format_rfc3339(clock.now())
        if kind == "Pod":
            meta["generation"] = 1
        if dry_run:
            return obj
        check_stored_size(kind, obj)  # etcd's limit: only a write reaches it
        self._store.write(kind, ns, name, obj, "ADDED")
        if kind == "Pod":
            self._kubelet.admit(obj)
        return copy_tree(obj)

    def _admit(self, pod: dict[str, Any]) -> None:
        admit_pod(
            pod,
            self._c._has_service_account,
            partial(token_volume_name, self._c._rng.getrandbits),
        )

    def _generate(self, kind: str, ns: str | None, prefix: str) -> str:
        objects = self._objects[kind]
        base = prefix[:58]
        bits = self._c._rng.getrandbits
        alphabet = _GENERATE_ALPHABET
        for _ in range(_GENERATE_ATTEMPTS):
            n = bits(30)  # 5 x 6 bits; the modulo bias is irrelevant for uniqueness
            name = base + "".join([alphabet[(n >> s) % 27] for s in (0, 6, 12, 18, 24)])
            if (ns, name) not in objects:
                return name
        raise AlreadyExists(
            f'{_PLURAL[kind]} "{name}" already exists, the server was not able to generate a '
            "unique name for the object",
            kind=kind,
            namespace=ns,
            name=name,
        )

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Return a copy of one object; see the backend protocol."""
        with self._lock:
            self._c._act("get", kind, namespace, name)
            k = self._kind(kind)
            obj = self._objects[k].get((self._ns(k, namespace), name))
            if obj is None:
                raise _not_found(k, namespace, name)
        return copy_tree(obj)

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects, filtered by selectors; see the backend protocol."""
        with self._lock:
            self._c._act("list", kind, namespace, None, label_selector, field_selector)
            k = self._kind(kind)
            labels = parse_label(label_selector)
            fields = parse_field(k, field_selector)
            if k == "Namespace":
                namespace = None
            items = _select(self._objects[k], namespace, labels, fields)
            rv = str(self._store.rv)
        return ObjectList([copy_tree(o) for o in items], rv)

    def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; a stale resourceVersion is 409 Conflict."""
        with self._lock:
            kind, ns, name = _peek(manifest)
            self._c._act("replace", kind, ns, name)
            k, obj, meta = self._decode(manifest)
            return self._update(k, obj, meta)

    def _update(
        self, kind: str, obj: dict[str, Any], meta: dict[str, Any], *, status_only: bool = False
    ) -> dict[str, Any]:
        ns = None if kind == "Namespace" else (meta.get("namespace") or "default")
        if ns is not None:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name:
            raise BadRequest("name is required for an update (metadata.name)")
        old = self._objects[kind].get((ns, name))
        if old is None:
            raise _not_found(kind, ns, name)
        old_meta = old["metadata"]
        rv = meta.get("resourceVersion")
        if rv and rv != old_meta["resourceVersion"]:
            raise Conflict(
                f'Operation cannot be fulfilled on {_PLURAL[kind]} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                kind=kind,
                namespace=ns,
                name=name,
            )
        uid = meta.get("uid")
        if uid and uid != old_meta.get("uid"):
            raise Conflict(
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                f"{old_meta.get('uid')}",
                kind=kind,
                namespace=ns,
                name=name,
            )
        if status_only:
            # As the pod status strategy does: the spec and the server-owned metadata stay,
            # the status and the rest of the metadata (labels, annotations) are taken.
            new = dict(old)
            new_meta = dict(meta)
            for field in (*_SERVER_SET, "generation", "ownerReferences", "finalizers"):
                if field in old_meta:
                    new_meta[field] = old_meta[field]
                else:
                    new_meta.pop(field, None)
            new["metadata"] = new_meta
            new["status"] = obj.get("status")
        else:
            prepare(kind, obj, update=True)
            for field in (*_SERVER_SET, "generation"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if kind in ("Pod", "Namespace"):
                obj["status"] = old.get("status")
            if kind == "Pod":
                default_tolerations(obj["spec"])  # the admission plugin sees updates too
                check_pod_update(old, obj)
                if obj.get("spec") != old.get("spec"):
                    meta["generation"] = old_meta.get("generation", 1) + 1
            if kind == "Secret" and obj.get("type") != old.get("type"):
                errs = Errors(kind, name)
                errs.invalid("type", obj.get("type"), "field is immutable")
                errs.raise_if_any()
            if old_meta.get("deletionTimestamp") is not None:
                added = [
                    f
                    for f in meta.get("finalizers") or ()
                    if f not in (old_meta.get("finalizers") or ())
                ]
                if added:
                    errs = Errors(kind, name)
                    errs.forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted, found "
                        "new finalizers []string{" + ", ".join(json.dumps(f) for f in added) + "}",
                    )
                    errs.raise_if_any()
            if kind in ("Secret", "ConfigMap") and old.get("immutable"):
                for field in ("data", "binaryData", "immutable"):
                    if obj.get(field) != old.get(field):
                        raise Invalid(
                            f'{kind} "{name}" is invalid: {field}: Forbidden: field is immutable '
                            "when `immutable` is set",
                            kind=kind,
                            name=name,
                            causes=[
                                StatusCause(
                                    field,
                                    "FieldValueForbidden",
                                    "Forbidden: field is immutable when `immutable` is set",
                                )
                            ],
                        )
            new = obj
        meta_new = new["metadata"]
        meta_new["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            # The API server does not write (nor bump the version) when nothing changed.
            return copy_tree(old)
        check_stored_size(kind, new)
        if (
            meta_new.get("deletionTimestamp") is not None
            and not meta_new.get("finalizers")
            and (kind != "Pod" or not meta_new.get("deletionGracePeriodSeconds"))
        ):
            # The last finalizer is gone from an object being deleted: the update deletes
            # it (one DELETED event carrying the new content, no MODIFIED).
            self._store.remove(kind, ns, name, final=new)
            meta_new["resourceVersion"] = str(self._store.rv)
            if kind == "Pod":
                assert ns is not None
                self._kubelet.forget(ns, name, meta_new.get("uid"))
            return copy_tree(new)
        self._store.write(kind, ns, name, new, "MODIFIED", old)
        return copy_tree(new)

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
            self._c._act("patch", kind, namespace, name)
            k = self._kind(kind)
            ns = self._ns(k, namespace)
            if subresource not in (None, "status"):
                raise _no_resource()
            body = self._normalize(patch, "patch")
            old = self._objects[k].get((ns, name))
            if old is None:
                raise _not_found(k, ns, name)
            merged = copy_tree(merge_patch(old, body))
            meta = merged.get("metadata")
            if not isinstance(meta, dict):
                raise BadRequest("metadata must be an object")
            check_meta_shape(k, meta)
            if meta.get("name") != name or (ns is not None and meta.get("namespace") != ns):
                raise BadRequest(
                    "the name of the object does not match the name on the URL"
                    if meta.get("name") != name
                    else "the namespace of the provided object does not match the namespace "
                    "sent on the request"
                )
            uid = meta.get("uid")
            if uid != old["metadata"].get("uid"):
                # As the API server: a patch is no precondition on the uid (a replace is, 409);
                # changing it fails validation of the update.
                message = f'Invalid value: "{uid}": field is immutable'
                raise Invalid(
                    f'{k} "{name}" is invalid: metadata.uid: {message}',
                    kind=k,
                    name=name,
                    causes=[StatusCause("metadata.uid", "FieldValueInvalid", message)],
                )
            rv = (body.get("metadata") or {}).get("resourceVersion")
            meta["resourceVersion"] = rv or old["metadata"]["resourceVersion"]
            return self._update(k, merged, meta, status_only=subresource == "status")

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
            self._c._act("delete", kind, namespace, name)
            k = self._kind(kind)
            grace: object = grace_period_seconds  # callers may send anything
            if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
                raise BadRequest("gracePeriodSeconds must be an integer")
            self._c._delete(k, self._ns(k, namespace), name, grace_period_seconds)

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
    ) -> Iterator[WatchEvent]:
        """Stream changes after ``resource_version``; see the backend protocol.

        With no version (or ``"0"``) the stream starts with a synthetic ``ADDED`` event per
        current object, as the real server does. An object that stops matching the selectors
        is sent as ``DELETED`` (its previous content at the new version) and one that starts
        matching as ``ADDED``, which is what the API server's watch cache does.
        """
        store = self._store
        clock = self._c._clock
        with self._lock:
            fault = self._c._act("watch", kind, namespace, None, label_selector, field_selector)
            k = self._kind(kind)
            ns = None if k == "Namespace" else namespace
            labels = parse_label(label_selector)
            fields = parse_field(k, field_selector)
            if timeout_seconds is not None and timeout_seconds < 0:
                raise BadRequest("timeoutSeconds must be non-negative")
            initial: builtins.list[dict[str, Any]] = []
            if resource_version in (None, "", "0"):
                initial = _select(self._objects[k], ns, labels, fields)
                cursor = store.rv
            else:
                try:
                    cursor = int(str(resource_version))
                except ValueError:
                    raise BadRequest(f'invalid resource version "{resource_version}"') from None
                oldest = store.oldest()
                if cursor < oldest - 1:
                    raise Gone(f"too old resource version: {cursor} ({oldest - 1})")
            deadline = None
            if timeout_seconds is not None:
                deadline = clock.monotonic() + float(timeout_seconds)
        limit = None if fault is None else fault.cut_watch_after
        stream = WatchStream()
        stream.gen = self._stream(
            stream.state, k, ns, labels, fields, initial, cursor, deadline, allow_bookmarks, limit
        )
        stream.interrupt = partial(_wake, clock)
        return stream

    def _stream(
        self,
        handle: StreamState,
        kind: str,
        ns: str | None,
        labels: LabelSelector | None,
        fields: FieldSelector | None,
        initial: builtins.list[dict[str, Any]],
        cursor: int,
        deadline: float | None,
        bookmarks: bool,
        limit: int | None,
    ) -> Generator[WatchEvent, None, None]:
        store = self._store
        clock = self._c._clock
        lock = self._lock
        sent = 0
        for obj in initial:
            if limit is not None and sent >= limit:
                return
            yield WatchEvent("ADDED", copy_tree(obj))
            sent += 1
        filtered = labels is not None or fields is not None
        # A watch on one pod by name (what the runner opens) skips other objects by the name
        # in the history entry, and needs no matching at all when the name is the only term.
        pinned = None if fields is None else fields.exact_name()
        name_only = pinned is not None and labels is None and len(fields.terms) == 1  # type: ignore[union-attr]
        batch: builtins.list[tuple[Any, dict[str, Any]]] = []
        lost = False

        def collect() -> bool:
            nonlocal cursor, lost
            if handle.closed:
                return True  # closed from another thread: end the stream now
            rv_now = store.rv
            if rv_now <= cursor:
                return False
            if cursor + 1 < store.oldest():
                lost = True  # fell out of the window: the server closes such a watcher
                return True
            for entry in store.hist[cursor + 1 - store.hist_base :]:
                rv, ekind, ens, ename, typ, obj, prev = entry
                if ekind != kind or (ns is not None and ens != ns):
                    continue
                if pinned is not None and ename != pinned:
                    continue
                if not filtered or name_only:
                    batch.append((typ, obj))
                    continue
                now_ok = _matches(obj, labels, fields)
                if typ == "ADDED" or typ == "DELETED":
                    if now_ok:
                        batch.append((typ, obj))
                    continue
                was_ok = prev is not None and _matches(prev, labels, fields)
                if now_ok:
                    batch.append(("MODIFIED" if was_ok else "ADDED", obj))
                elif was_ok and prev is not None:
                    gone = dict(prev)
                    gone["metadata"] = dict(prev["metadata"])
                    gone["metadata"]["resourceVersion"] = str(rv)
                    batch.append(("DELETED", gone))
            cursor = rv_now
            return bool(batch)

        while True:
            with lock:
                got = clock.block_until(collect, deadline, soft=True)
                events = batch[:]
                batch.clear()
                rv_now = store.rv
            if lost or handle.closed:
                return
            for typ, obj in events:
                if limit is not None and sent >= limit:
                    return
                yield WatchEvent(typ, copy_tree(obj))
                sent += 1
            if not got:
                if bookmarks:
                    yield WatchEvent(
                        "BOOKMARK",
                        {
                            "kind": kind,
                            "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(rv_now)},
                        },
                    )
                return

    # -- logs -----------------------------------------------------------------------------

    def _container(self, pod: dict[str, Any], container: str | None) -> str:
        names = [c.get("name", "") for c in pod["spec"].get("containers") or []]
        name = pod["metadata"]["name"]
        if container is None:
            if len(names) == 1:
                return str(names[0])
            raise BadRequest(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(names)}]"
            )
        if container not in names:
            raise BadRequest(f"container {container} is not valid for pod {name}")
        return container

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
    ) -> Iterator[bytes]:
        """Stream a container's log as byte chunks; see the backend protocol."""
        clock = self._c._clock
        with self._lock:
            fault = self._c._act("read_log", "Pod", namespace, pod)
            obj = self._objects["Pod"].get((self._ns("Pod", namespace), pod))
            if obj is None:
                raise _not_found("Pod", namespace, pod)
            causes = []
            if since_time is not None and since_seconds is not None:
                causes.append(
                    StatusCause(
                        "sinceSeconds",
                        "FieldValueForbidden",
                        "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                    )
                )
            checks: tuple[tuple[str, object], ...] = (
                ("sinceSeconds", since_seconds),
                ("tailLines", tail_lines),
                ("limitBytes", limit_bytes),
            )
            for field, value in checks:
                if value is not None and (
                    not isinstance(value, int) or value < (0 if field == "tailLines" else 1)
                ):
                    causes.append(
                        StatusCause(
                            field,
                            "FieldValueInvalid",
                            f"Invalid value: {value}: must be greater than "
                            f"{'or equal to ' if field == 'tailLines' else ''}0"
                            if field == "tailLines"
                            else f"Invalid value: {value}: must be greater than 0",
                        )
                    )
            if causes:
                raise Invalid(
                    'PodLogOptions "" is invalid: '
                    + ", ".join(f"{c.field}: {c.message}" for c in causes),
                    kind="PodLogOptions",
                    causes=causes,
                )
            since_ns = None
            if since_time is not None:
                try:
                    since_ns = parse_rfc3339(str(since_time))
                except ValueError:
                    raise BadRequest(
                        f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot parse'
                    ) from None
            elif since_seconds is not None:
                since_ns = int((clock.now() - since_seconds) * 1e9)
            cname = self._container(obj, container)
            sim = self._kubelet.sim_for(obj)
            c = None if sim is None else sim.container(cname)
            buffer = self._buffer(c, pod, cname, previous)
        cut = None if fault is None else fault.cut_log_after_lines
        split = fault is not None and fault.split_utf8
        alive = None
        if follow and fault is not None and fault.follow_never_ends:
            alive = partial(self._same_pod, self._ns("Pod", namespace), pod, obj)
        # Closable from any thread, as the real backend's: a followed log may never end.
        stream: InterruptibleStream[bytes] = InterruptibleStream()
        stream.gen = self._log_stream(
            stream.state,
            buffer,
            follow,
            timestamps,
            since_ns,
            tail_lines,
            limit_bytes,
            cut,
            split,
            alive,
        )
        stream.interrupt = partial(_wake, clock)
        return stream

    def _same_pod(self, namespace: str | None, name: str, obj: dict[str, Any]) -> bool:
        current = self._objects["Pod"].get((namespace, name))
        uid = obj["metadata"].get("uid")
        return current is not None and current["metadata"].get("uid") == uid

    @staticmethod
    def _buffer(c: ContainerSim | None, pod: str, cname: str, previous: bool) -> LogBuffer:
        if previous:
            buffer = None if c is None else c.previous_buffer()
            if buffer is None:
                raise BadRequest(
                    f'previous terminated container "{cname}" in pod "{pod}" not found'
                )
            return buffer
        buffer = None if c is None else c.current_buffer()
        if buffer is None:
            reason = "ContainerCreating"
            if c is not None and "waiting" in c.state:
                reason = c.state["waiting"].get("reason", reason)
            if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                reason = "trying and failing to pull image"
            raise BadRequest(f'container "{cname}" in pod "{pod}" is waiting to start: {reason}')
        return buffer

    def _log_stream(
        self,
        handle: StreamState,
        buffer: LogBuffer,
        follow: bool,
        timestamps: bool,
        since_ns: int | None,
        tail_lines: int | None,
        limit_bytes: int | None,
        cut: int | None,
        split: bool,
        alive: Callable[[], bool] | None = None,
    ) -> Generator[bytes, None, None]:
        lock = self._lock
        clock = self._c._clock
        with lock:
            pos = buffer.start(since_ns, tail_lines)
        sent_bytes = 0
        sent_lines = 0
        per_line = cut is not None or split
        while True:
            with lock:
                if follow:
                    clock.block_until(partial(_has_more, buffer, pos, handle))
                if handle.closed:
                    return
                closed = buffer.closed
                # A follower holds back a partial line until it is complete.
                pieces, pos = buffer.read(pos, whole_lines=follow and not closed)
            for stamp, block in pieces:
                prefix = format_rfc3339_nano(stamp).encode() + b" " if timestamps else b""
                if not per_line:
                    # One piece per block: every line gets the block's stamp.
                    data = block
                    if prefix:
                        data = prefix + block.replace(b"\n", b"\n" + prefix)
                        if block.endswith(b"\n"):
                            data = data[: -len(prefix)]
                    if limit_bytes is not None:
                        room = limit_bytes - sent_bytes
                        if room <= 0:
                            return
                        data = data[:room]
                    sent_bytes += len(data)
                    yield data
                    continue
                for line in _lines(block):
                    if cut is not None and sent_lines >= cut:
                        # A dropped connection mid-body is an error for the client (an
                        # incomplete chunked read), not a clean end: callers must tell.
                        raise BackendUnavailable(
                            f"connection reset: log stream cut after {cut} lines (injected fault)"
                        )
                    data = prefix + line
                    if limit_bytes is not None:
                        room = limit_bytes - sent_bytes
                        if room <= 0:
                            return
                        data = data[:room]
                    sent_bytes += len(data)
                    sent_lines += 1
                    if split:
                        yield from split_inside_utf8(data)
                    else:
                        yield data
            if not follow or closed:
                with lock:
                    more = follow and pos < buffer.end()
                if more:
                    continue
                if alive is not None:
                    # An injected never-ending follow: silent until the pod is deleted.
                    with lock:
                        clock.block_until(lambda: handle.closed or not alive())
                return

    # -- exec -----------------------------------------------------------------------------

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
        clock = self._c._clock
        with self._lock:
            self._c._act("exec", "Pod", namespace, pod)
            obj = self._objects["Pod"].get((self._ns("Pod", namespace), pod))
            if obj is None:
                raise _not_found("Pod", namespace, pod)
            if isinstance(argv, (str, bytes)) or not argv:
                raise BadRequest("you must specify at least one command for the container")
            args = [str(a) for a in argv]
            cname = self._container(obj, container)
            phase = (obj.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                raise BadRequest(
                    f"cannot exec into a container in a completed pod; current phase is {phase}"
                )
            sim = self._kubelet.sim_for(obj)
            c = None if sim is None else sim.container(cname)
            if sim is None or c is None or not c.running():
                raise BadRequest(f'unable to upgrade connection: container not found ("{cname}")')
            handler = self._exec_handler(obj, args)
            runtime = self._kubelet.runtime
            clock.enter_busy()
        request = ExecRequest(namespace, pod, cname, args, stdin)
        try:
            if handler is not None:
                return coerce_exec_result(handler(request))
            if runtime is not None:
                from podrunner.backends.fake.runtime_local import LocalRuntime

                assert isinstance(runtime, LocalRuntime)
                return runtime.exec(sim, c, args, stdin=stdin, timeout=timeout)
            return _builtin_exec(args, stdin)
        finally:
            with self._lock:
                clock.leave_busy()

    def _exec_handler(self, pod: dict[str, Any], argv: builtins.list[str]) -> Any:
        joined = shlex.join(argv)
        for rule in reversed(self._c._rules):
            if not rule.exec_handlers or not rule.matches(pod):
                continue
            for pattern, fn in reversed(rule.exec_handlers):
                if pattern is None or fnmatch.fnmatchcase(joined, pattern):
                    return fn
        return None

    def refresh_credentials(self) -> bool:
        """Pretend to load new credentials after an injected 401.

        Returns:
            ``True`` once after each 401 the fake answered (as if a rotated token was read),
            so a caller's refresh-and-retry path can be tested; ``False`` otherwise.
        """
        with self._lock:
            changed = self._c._stale_credentials
            self._c._stale_credentials = False
            return changed

    def close(self) -> None:
        """Stop local processes; the in-memory state stays readable."""
        with self._lock:
            for key in list(self._kubelet.sims):
                sim: PodSim = self._kubelet.sims[key]
                if self._kubelet.runtime is not None:
                    self._kubelet.runtime.cleanup(sim)


def _wake(clock: SchedulingClock) -> None:
    # A closed watch's reader is blocked in the clock: a notify makes it look again.
    with clock.lock:
        clock.notify()


def _lines(block: bytes) -> list[bytes]:
    """Split a block into lines, each with its newline (only a newline byte ends a line)."""
    lines = [line + b"\n" for line in block.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def _has_more(buffer: LogBuffer, pos: Position, handle: StreamState) -> bool:
    return buffer.has_more(pos) or handle.closed


def _matches(
    obj: dict[str, Any], labels: LabelSelector | None, fields: FieldSelector | None
) -> bool:
    if labels is not None and not labels.matches(obj["metadata"].get("labels")):
        return False
    return fields is None or fields.matches(obj)


def _select(
    objects: dict[tuple[str | None, str], dict[str, Any]],
    namespace: str | None,
    labels: LabelSelector | None,
    fields: FieldSelector | None,
) -> list[dict[str, Any]]:
    name = None if fields is None else fields.exact_name()
    if name is not None and namespace is not None:
        obj = objects.get((namespace, name))
        candidates = [] if obj is None else [obj]
    else:
        candidates = [
            obj
            for (ns, _), obj in sorted(objects.items(), key=_sort_key)
            if namespace is None or ns == namespace
        ]
    if labels is None and fields is None:
        return candidates
    return [o for o in candidates if _matches(o, labels, fields)]


def _prefix_error(kind: str, prefix: str) -> str | None:
    from podrunner import _validation

    # The server validates a generateName as a name prefix: a trailing dash is allowed.
    masked = prefix[:-1] + "a" if prefix.endswith("-") else prefix
    check = (
        _validation.dns1123_label_error
        if kind == "Namespace"
        else _validation.dns1123_subdomain_error
    )
    return check(masked)


def _shell_exec(argv: list[str], stdin: bytes | None) -> ExecResult:
    """Run ``sh -c SCRIPT`` with the machine's /bin/sh, as kwok's local exec does.

    It runs in an empty temporary directory with a minimal environment, never through a
    shell string built here: the argv goes to the process as it is.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="podrunner-exec-") as tmp:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp}
        try:
            proc = subprocess.run(
                ["/bin/sh", *argv[1:]],
                input=stdin or b"",
                capture_output=True,
                cwd=tmp,
                env=env,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return ExecResult(137, exc.stdout or b"", exc.stderr or b"")
    return ExecResult(proc.returncode, proc.stdout, proc.stderr)


def _builtin_exec(argv: list[str], stdin: bytes | None) -> ExecResult:
    """A few commands every image has, so simple probes work without a handler."""
    cmd = argv[0].rsplit("/", 1)[-1]
    if cmd == "echo":
        return ExecResult(0, (" ".join(argv[1:]) + "\n").encode(), b"")
    if cmd == "cat" and len(argv) == 1:
        return ExecResult(0, stdin or b"", b"")
    if cmd == "true":
        return ExecResult(0, b"", b"")
    if cmd == "false":
        return ExecResult(1, b"", b"")
    if cmd in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c":
        return _shell_exec(argv, stdin)
    return ExecResult(
        127,
        b"",
        (
            "OCI runtime exec failed: exec failed: unable to start container process: "
            f'exec: "{argv[0]}": executable file not found in $PATH: unknown\n'
        ).encode(),
    )
