"""The fake API server: stored objects and what each write does to them, as kube-apiserver.

:class:`FakeApiServer` holds one cluster's state (the store, the simulated node, scripting
rules, faults and the record of calls) and the semantics of creates, updates, patches and
deletes: names, uids, versions, preconditions, admission and validation, immutability,
finalizers, graceful pod deletion and namespace contents. The test's
:class:`~podrunner.backends.fake.FakeCluster` and the protocol's
:class:`~podrunner.backends.fake.FakeBackend` are both thin over it.

Every method expects the caller to hold the clock's lock. Errors are the API server's: the
same status codes, reasons and messages.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from podrunner import _validation
from podrunner.backends.base import API_VERSIONS, PLURALS
from podrunner.backends.fake._fastcopy import copy_object, register_spec
from podrunner.backends.fake._json import NotJSON, copy_tree, merge_patch, normalize
from podrunner.backends.fake.clock import VirtualClock
from podrunner.backends.fake.field_errors import decode_error, resource
from podrunner.backends.fake.kubelet import Kubelet
from podrunner.backends.fake.podsim import PodSims
from podrunner.backends.fake.podspec import admit_pod, default_tolerations, token_volume_name
from podrunner.backends.fake.scheduler import Scheduler
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
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    StatusCause,
)

if TYPE_CHECKING:
    from podrunner.backends.fake.clock import SchedulingClock
    from podrunner.backends.fake.faults import FaultRule
    from podrunner.backends.fake.kubelet import Runtime
    from podrunner.backends.fake.scripting import Rule

__all__ = ["FakeApiServer", "decode", "no_resource", "not_found", "peek"]

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_ATTEMPTS = 8
_SERVER_SET = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
_PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_GENERATION = ("Pod", "NetworkPolicy")  # the kinds whose strategy counts spec changes
_NAMESPACED = ("Pod", "Secret", "ConfigMap", "Event", "NetworkPolicy")


def not_found(kind: str, namespace: str | None, name: str) -> NotFound:
    """The API server's 404 for a missing object."""
    return NotFound(
        f'{resource(kind)} "{name}" not found', kind=kind, namespace=namespace, name=name
    )


def no_resource() -> NotFound:
    """The API server's 404 for a kind it does not serve."""
    return NotFound("the server could not find the requested resource")


def peek(manifest: object) -> tuple[str | None, str | None, str | None]:
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


def normalize_body(manifest: object, what: str = "body") -> dict[str, Any]:
    """Decode a request body as the server's JSON decoder would (400 for what JSON cannot be)."""
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


def decode(manifest: object) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Decode an object to create or replace: its kind, the object and its metadata."""
    obj = normalize_body(manifest)
    kind = obj.get("kind")
    if not kind or not isinstance(kind, str):
        raise BadRequest(f"Object 'Kind' is missing in '{json.dumps(obj)[:1000]}'")
    if kind not in PLURALS:
        raise no_resource()
    expected = API_VERSIONS[kind]
    api = obj.setdefault("apiVersion", expected)
    if api != expected:
        if api == "v1":  # the core group has no such kind
            raise decode_error(
                kind,
                f'no kind "{kind}" is registered for version "v1" in scheme '
                '"pkg/runtime/scheme.go:111"',
            )
        raise BadRequest(
            f"the API version in the data ({api}) does not match the expected API version "
            f"({expected})"
        )
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    check_meta_shape(kind, meta)
    return kind, obj, meta


class FakeApiServer:
    """One fake cluster's state and the semantics of every write to it.

    Args:
        clock: The cluster's clock; its lock guards everything here.
        history: How many changes the watch history keeps.
        rng: Randomness for generated names and uids.
        event_ttl: Seconds an Event lives.
        auto_create_namespaces: Create a missing namespace on first use.
        start_delay: The kubelet's seconds from binding to running containers.
        schedule_delay: The scheduler's seconds from creation to binding.
        runtime: Runs the containers' commands (``None``: scripted outcomes).
    """

    def __init__(
        self,
        clock: SchedulingClock,
        *,
        history: int,
        rng: random.Random,
        event_ttl: float,
        auto_create_namespaces: bool,
        start_delay: float,
        schedule_delay: float,
        runtime: Runtime | None,
    ) -> None:
        self.clock = clock
        self.lock = clock.lock
        self.rng = rng
        self.store = Store(clock, history=history, rng=rng, event_ttl=event_ttl)
        self.objects = self.store.objects
        self.rules: list[Rule] = []
        self.faults: list[FaultRule] = []
        # Plain tuples, made Actions on read: the GC stops tracking tuples of strings, so a
        # long action log costs the collector nothing.
        self.actions: list[tuple[Any, ...]] = []
        self.auto_create_namespaces = auto_create_namespaces
        # ServiceAccounts besides each namespace's "default" (the backend has no such kind).
        self.service_accounts: set[tuple[str, str]] = set()
        #: An injected 401 was answered since the last credentials refresh.
        self.stale_credentials = False
        self.pods = PodSims(self.store, clock)
        self.kubelet = Kubelet(self.pods, self.rules, start_delay=start_delay, runtime=runtime)
        self.scheduler = Scheduler(self.pods, self.kubelet, delay=schedule_delay)
        self.store.gc_delete = self._gc_delete
        self._virtual = isinstance(clock, VirtualClock)  # the real clock fires timers lazily

    # -- every call -------------------------------------------------------------------------

    def begin_call(
        self,
        verb: str,
        kind: str | None,
        namespace: str | None,
        name: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> FaultRule | None:
        """Begin a call: record it, catch up with time (timers, garbage, Events), apply faults.

        Returns:
            The fault rule that shapes the call's stream (watch or log cuts), if any.

        Raises:
            BackendError: An injected fault answers the call with an error.
        """
        clock = self.clock
        call = (verb, kind, namespace, name, label_selector, field_selector, clock.now())
        self.actions.append(call)
        if not self._virtual:
            clock.fire_due()
        store = self.store
        if store.pending_gc:
            store.collect_pending()
        expiry = store.event_expiry
        if expiry and expiry[0][0] <= clock.monotonic():
            store.expire_events()
        if not self.faults:
            return None
        return self._apply_faults(verb, kind, namespace, name)

    def _apply_faults(
        self, verb: str, kind: str | None, namespace: str | None, name: str | None
    ) -> FaultRule | None:
        stream: FaultRule | None = None
        for rule in list(self.faults):
            if not rule.matches(verb, kind, namespace, name) or not rule.take():
                continue
            if rule.latency > 0:
                self.clock.block_until(_never, self.clock.monotonic() + rule.latency)
            error = rule.error(verb, kind, namespace, name)
            if error is not None:
                if error.status == 401:
                    self.stale_credentials = True
                raise error
            if (
                rule.cut_watch_after is not None
                or rule.cut_log_after_lines is not None
                or rule.split_utf8
                or rule.follow_never_ends
            ):
                stream = rule
        return stream

    def has_service_account(self, namespace: str, name: str) -> bool:
        """Whether a pod in ``namespace`` may name the ServiceAccount ``name``."""
        return name == "default" or (namespace, name) in self.service_accounts

    def stored(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Return the stored object (never to be mutated or handed out), or raise 404."""
        obj = self.objects[kind].get((namespace, name))
        if obj is None:
            raise not_found(kind, namespace, name)
        return obj

    # -- create -----------------------------------------------------------------------------

    def create(self, manifest: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
        """Create an object (``generateName`` honoured) and return a copy of it."""
        kind, obj, meta = decode(manifest)
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
        generate = self._generate_name(kind, ns, meta)
        template = prepare(kind, obj, self._admit if kind == "Pod" else None)
        if ns is not None:
            self._check_namespace(ns)
        name = meta["name"]
        if (ns, name) in self.objects[kind]:
            if generate is None:
                raise AlreadyExists(
                    f'{resource(kind)} "{name}" already exists', kind=kind, namespace=ns, name=name
                )
            name = meta["name"] = self._generate(kind, ns, generate)
        meta["uid"] = self.store.uid()
        meta["creationTimestamp"] = self.store.timestamp(self.clock.now())
        if kind in _GENERATION:
            meta["generation"] = 1
        if dry_run:
            return copy_object(obj)  # it shares subtrees with the memoised spec
        check_stored_size(kind, obj)  # etcd's limit: only a write reaches it
        self.store.write(kind, ns, name, obj, "ADDED")
        if kind == "Pod":
            if template is not None:
                register_spec(template, obj["spec"])
            self.scheduler.admit(obj)
        return copy_object(obj)

    def _generate_name(self, kind: str, ns: str | None, meta: dict[str, Any]) -> str | None:
        """Give an object without a name one from its ``generateName``; return the prefix."""
        if meta.get("name"):
            return None
        generate = meta.get("generateName")
        if not generate:
            return None  # validation answers the missing name
        assert isinstance(generate, str)  # check_meta_shape saw to it
        error = _prefix_error(kind, generate)
        if error is not None:
            errs = Errors(kind, generate)
            errs.invalid("metadata.generateName", generate, error)
            errs.raise_if_any()
        meta["name"] = self._generate(kind, ns, generate)
        return generate

    def _admit(self, pod: dict[str, Any]) -> None:
        admit_pod(
            pod,
            self.has_service_account,
            partial(token_volume_name, self.rng.getrandbits),
        )

    def _generate(self, kind: str, ns: str | None, prefix: str) -> str:
        objects = self.objects[kind]
        base = prefix[:58]
        bits = self.rng.getrandbits
        alphabet = _GENERATE_ALPHABET
        for _ in range(_GENERATE_ATTEMPTS):
            n = bits(30)  # 5 x 6 bits; the modulo bias is irrelevant for uniqueness
            name = base + "".join([alphabet[(n >> s) % 27] for s in (0, 6, 12, 18, 24)])
            if (ns, name) not in objects:
                return name
        raise AlreadyExists(
            f'{resource(kind)} "{name}" already exists, the server was not able to generate a '
            "unique name for the object",
            kind=kind,
            namespace=ns,
            name=name,
        )

    def _check_namespace(self, namespace: str) -> None:
        if (None, namespace) in self.objects["Namespace"]:
            return
        if self.auto_create_namespaces:
            created = self.store.timestamp(self.clock.now())
            obj = namespace_object(namespace, self.store.uid(), created)
            self.store.write("Namespace", None, namespace, obj, "ADDED")
            return
        raise NotFound(f'namespaces "{namespace}" not found', kind="Namespace", name=namespace)

    # -- update and patch -------------------------------------------------------------------

    def update(
        self, kind: str, obj: dict[str, Any], meta: dict[str, Any], *, status_only: bool = False
    ) -> dict[str, Any]:
        """Replace an object (or only its status) and return a copy of the result.

        Raises:
            Conflict: A stale resourceVersion or another uid in the preconditions.
        """
        ns = None if kind == "Namespace" else (meta.get("namespace") or "default")
        if ns is not None:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name:
            raise BadRequest("name is required for an update (metadata.name)")
        old = self.stored(kind, ns, name)
        _check_preconditions(kind, ns, name, meta, old["metadata"])
        if status_only:
            new = _status_update(old, obj, meta)
        else:
            new = _full_update(kind, name, obj, meta, old)
        return self._commit(kind, ns, name, new, old)

    def _commit(
        self, kind: str, ns: str | None, name: str, new: dict[str, Any], old: dict[str, Any]
    ) -> dict[str, Any]:
        meta = new["metadata"]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            # The API server does not write (nor bump the version) when nothing changed.
            return copy_object(old)
        check_stored_size(kind, new)
        if (
            meta.get("deletionTimestamp") is not None
            and not meta.get("finalizers")
            and (kind != "Pod" or not meta.get("deletionGracePeriodSeconds"))
        ):
            # The last finalizer is gone from an object being deleted: the update deletes
            # it (one DELETED event carrying the new content, no MODIFIED).
            self.store.remove(kind, ns, name, final=new)
            meta["resourceVersion"] = str(self.store.rv)
            if kind == "Pod":
                assert ns is not None
                self.kubelet.forget(ns, name, meta.get("uid"))
            return copy_object(new)
        self.store.write(kind, ns, name, new, "MODIFIED", old)
        return copy_object(new)

    def patch(
        self,
        kind: str,
        ns: str | None,
        name: str,
        patch: Mapping[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch to an object or its status; return a copy of the result."""
        if subresource not in (None, "status"):
            raise no_resource()
        body = normalize_body(patch, "patch")
        old = self.stored(kind, ns, name)
        merged = copy_tree(merge_patch(old, body))
        meta = merged.get("metadata")
        if not isinstance(meta, dict):
            raise BadRequest("metadata must be an object")
        check_meta_shape(kind, meta)
        _check_patched_identity(kind, ns, name, meta, old["metadata"])
        rv = (body.get("metadata") or {}).get("resourceVersion")
        meta["resourceVersion"] = rv or old["metadata"]["resourceVersion"]
        return self.update(kind, merged, meta, status_only=subresource == "status")

    # -- delete -----------------------------------------------------------------------------

    def delete(self, kind: str, namespace: str | None, name: str, grace: int | None) -> None:
        """Delete an object: pods gracefully, objects with finalizers once they are done."""
        obj = self.stored(kind, namespace, name)
        if kind == "Pod":
            assert namespace is not None
            self._delete_pod(namespace, name, obj, grace)
            return
        store = self.store
        if obj["metadata"].get("finalizers") and kind != "Namespace":
            # The object stays, marked as deleting, until its last finalizer is removed.
            if obj["metadata"].get("deletionTimestamp") is None:
                store.write(kind, namespace, name, self._mark_deleting(obj, 0), "MODIFIED", obj)
            return
        if kind == "Namespace":
            self._empty_namespace(name)
        store.remove(kind, namespace, name)

    def _delete_pod(
        self, namespace: str, name: str, obj: dict[str, Any], grace: int | None
    ) -> None:
        spec = obj.get("spec") or {}
        meta = obj["metadata"]
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        grace = int(grace)
        if grace < 0:
            grace = 1  # the pod strategy: a negative grace period is one second
        sim = self.pods.get(obj)
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or sim is None or phase in ("Succeeded", "Failed"):
            grace = 0  # as the API server does: unbound and terminated pods go at once
        if meta.get("deletionTimestamp") is not None and grace >= meta.get(
            "deletionGracePeriodSeconds", 0
        ):
            return  # already being deleted, at least as soon
        # Even an immediate deletion first records the deletion (a MODIFIED with the
        # deletionTimestamp and the next generation), then removes the object.
        self.store.write("Pod", namespace, name, self._mark_deleting(obj, grace), "MODIFIED", obj)
        if grace > 0:
            assert sim is not None
            self.kubelet.on_delete(sim, float(grace))
        elif meta.get("finalizers"):
            if sim is not None:
                self.kubelet.on_delete(sim, 0.0)
        else:
            self.store.remove("Pod", namespace, name)
            self.kubelet.forget(namespace, name, meta.get("uid"))

    def _mark_deleting(self, obj: dict[str, Any], grace: int) -> dict[str, Any]:
        new = dict(obj)
        new["metadata"] = meta = dict(obj["metadata"])
        if meta.get("deletionTimestamp") is None or grace < meta.get(
            "deletionGracePeriodSeconds", 0
        ):
            meta["deletionTimestamp"] = self.store.timestamp(self.clock.now() + grace)
        meta["deletionGracePeriodSeconds"] = grace
        if meta.get("generation"):
            meta["generation"] = meta["generation"] + 1
        return new

    def _empty_namespace(self, name: str) -> None:
        """Delete everything in a namespace that is being deleted (protected ones: 403)."""
        if name in _PROTECTED_NAMESPACES:
            raise Forbidden(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                kind="Namespace",
                name=name,
            )
        for kind in _NAMESPACED:
            for ns, item in [key for key in self.objects[kind] if key[0] == name]:
                old = self.store.remove(kind, ns, item)
                if kind == "Pod" and old is not None:
                    self.kubelet.forget(name, item)

    def _gc_delete(self, kind: str, namespace: str | None, name: str) -> None:
        self.delete(kind, namespace, name, None)


def _never() -> bool:
    return False


def _prefix_error(kind: str, prefix: str) -> str | None:
    # The server validates a generateName as a name prefix: a trailing dash is allowed.
    masked = prefix[:-1] + "a" if prefix.endswith("-") else prefix
    check = (
        _validation.dns1123_label_error
        if kind == "Namespace"
        else _validation.dns1123_subdomain_error
    )
    return check(masked)


def _check_preconditions(
    kind: str, ns: str | None, name: str, meta: dict[str, Any], old_meta: dict[str, Any]
) -> None:
    """An update's resourceVersion and uid must be the stored ones (409 otherwise)."""
    rv = meta.get("resourceVersion")
    if rv and rv != old_meta["resourceVersion"]:
        raise Conflict(
            f'Operation cannot be fulfilled on {resource(kind)} "{name}": the object has been '
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


def _check_patched_identity(
    kind: str, ns: str | None, name: str, meta: dict[str, Any], old_meta: dict[str, Any]
) -> None:
    """A patch may not move the object (400) nor change its uid (422)."""
    if meta.get("name") != name or (ns is not None and meta.get("namespace") != ns):
        raise BadRequest(
            "the name of the object does not match the name on the URL"
            if meta.get("name") != name
            else "the namespace of the provided object does not match the namespace "
            "sent on the request"
        )
    uid = meta.get("uid")
    if uid != old_meta.get("uid"):
        # As the API server: a patch is no precondition on the uid (a replace is, 409);
        # changing it fails validation of the update.
        message = f'Invalid value: "{uid}": field is immutable'
        raise Invalid(
            f'{kind} "{name}" is invalid: metadata.uid: {message}',
            kind=kind,
            name=name,
            causes=[StatusCause("metadata.uid", "FieldValueInvalid", message)],
        )


def _keep(meta: dict[str, Any], old_meta: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Carry the server-owned ``fields`` over from the stored metadata."""
    for field in fields:
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)


def _status_update(
    old: dict[str, Any], obj: dict[str, Any], meta: dict[str, Any]
) -> dict[str, Any]:
    # As the pod status strategy does: the spec and the server-owned metadata stay, the
    # status and the rest of the metadata (labels, annotations) are taken.
    new = dict(old)
    new_meta = dict(meta)
    _keep(new_meta, old["metadata"], (*_SERVER_SET, "generation", "ownerReferences", "finalizers"))
    new["metadata"] = new_meta
    new["status"] = obj.get("status")
    return new


def _full_update(
    kind: str, name: str, obj: dict[str, Any], meta: dict[str, Any], old: dict[str, Any]
) -> dict[str, Any]:
    old_meta = old["metadata"]
    prepare(kind, obj, update=True)
    _keep(meta, old_meta, (*_SERVER_SET, "generation"))
    if kind in ("Pod", "Namespace"):
        obj["status"] = old.get("status")
    if kind == "Pod":
        default_tolerations(obj["spec"])  # the admission plugin sees updates too
        check_pod_update(old, obj)
    if kind in _GENERATION and obj.get("spec") != old.get("spec"):
        meta["generation"] = old_meta.get("generation", 1) + 1
    if kind == "Secret" and obj.get("type") != old.get("type"):
        errs = Errors(kind, name)
        errs.invalid("type", obj.get("type"), "field is immutable")
        errs.raise_if_any()
    if old_meta.get("deletionTimestamp") is not None:
        _check_no_new_finalizers(kind, name, meta, old_meta)
    if kind in ("Secret", "ConfigMap") and old.get("immutable"):
        _check_immutable_data(kind, name, obj, old)
    return obj


def _check_no_new_finalizers(
    kind: str, name: str, meta: dict[str, Any], old_meta: dict[str, Any]
) -> None:
    old = old_meta.get("finalizers") or ()
    added = [f for f in meta.get("finalizers") or () if f not in old]
    if added:
        errs = Errors(kind, name)
        errs.forbidden(
            "metadata.finalizers",
            "no new finalizers can be added if the object is being deleted, found "
            "new finalizers []string{" + ", ".join(json.dumps(f) for f in added) + "}",
        )
        errs.raise_if_any()


def _check_immutable_data(kind: str, name: str, obj: dict[str, Any], old: dict[str, Any]) -> None:
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
