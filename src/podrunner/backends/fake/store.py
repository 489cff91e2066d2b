"""The object store: versions, history for watches, ownership and Event recording.

Every write takes the next value of one global ``resourceVersion`` counter (as etcd's
revision does), so the history of all kinds is one ordered list with consecutive versions and
a watch resumes from any version still in the window in O(1). Stored objects are immutable by
convention: a write builds a new top-level dict and shares unchanged subtrees with the
previous version, so history entries are references, not copies.
"""

from __future__ import annotations

import collections
import itertools
import math
import random
from typing import TYPE_CHECKING, Any

from podrunner._time import format_rfc3339
from podrunner.backends.fake._fastcopy import forget_spec

if TYPE_CHECKING:
    from collections.abc import Callable

    from podrunner.backends.fake.clock import SchedulingClock

__all__ = ["Entry", "Store", "UidSource"]

#: ``(resource_version, kind, namespace, name, type, object, previous_object)``.
Entry = tuple[int, str, "str | None", str, str, dict[str, Any], "dict[str, Any] | None"]
Key = tuple["str | None", str]

#: How many deleted objects keep their versions for :meth:`FakeCluster.history`.
KEEP_DELETED = 100
#: Seconds an Event lives, as with the API server's default ``--event-ttl=1h``.
EVENT_TTL = 3600.0

#: The default randomness of clusters without a seed (names and uid prefixes).
_rng = random.Random()  # noqa: S311 - uids and names need uniqueness, not secrecy


class UidSource:
    """Version-4-shaped UUIDs for one cluster: a random 80-bit prefix and a 48-bit counter.

    A cluster mints a uid for every object and Event, so this is on the hot path: one
    f-string per uid instead of 128 random bits and five slices. Uids stay unique within
    the cluster (the counter) and across clusters (the random prefix).
    """

    __slots__ = ("_count", "_prefix")

    def __init__(self, rng: random.Random) -> None:
        h = f"{rng.getrandbits(80):020x}"
        self._prefix = f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{'89ab'[int(h[15], 16) & 3]}{h[16:19]}-"
        self._count = itertools.count(rng.getrandbits(32))

    def __call__(self) -> str:
        """Return the next uid."""
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:012x}"


class Store:
    """All objects of one fake cluster, keyed by kind then ``(namespace, name)``.

    Callers hold the clock's lock for every method.
    """

    def __init__(
        self,
        clock: SchedulingClock,
        *,
        history: int,
        rng: random.Random,
        event_ttl: float = EVENT_TTL,
    ) -> None:
        self.clock = clock
        self.uid = UidSource(rng)
        self.rv = 0
        self.objects: dict[str, dict[Key, dict[str, Any]]] = {
            "Pod": {},
            "Secret": {},
            "ConfigMap": {},
            "Event": {},
            "Namespace": {},
            "NetworkPolicy": {},
        }
        self.hist: list[Entry] = []
        self.hist_base = 1
        self.limit = max(int(history), 1)
        self.versions: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {}
        # Versions of deleted objects are kept for the last 100 deletions only (fewer when the
        # history is shorter): enough to inspect what just ran, and a long test run neither
        # grows without bound nor makes every garbage collection walk old pods.
        self.keep_deleted = min(self.limit, KEEP_DELETED)
        self.deleted: collections.deque[tuple[str, str | None, str]] = collections.deque()
        self.uids: dict[str, tuple[str, str | None, str]] = {}
        self.dependents: dict[str, set[tuple[str, str | None, str]]] = {}
        self.pending_gc: list[tuple[str, str | None, str]] = []
        self.event_index: dict[tuple[Any, ...], Key] = {}
        self.event_seq = 0
        # Event expiry, as the API server's --event-ttl lease does: (due, key) in due order,
        # the latest due per Event (an aggregated Event's lease is renewed) and its index key.
        self.event_ttl = event_ttl
        self.event_expiry: collections.deque[tuple[float, Key]] = collections.deque()
        self.event_due: dict[Key, tuple[float, tuple[Any, ...]]] = {}
        # Events about one pod version share their involvedObject and source subtrees:
        # stored objects are never mutated, and readers get copies.
        self._refs: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._sources: dict[tuple[str, str | None], dict[str, str]] = {}
        #: Called as ``gc_delete(kind, namespace, name)`` for orphaned dependents.
        self.gc_delete: Callable[[str, str | None, str], None] | None = None
        self._stamp_second = -1
        self._stamp_text = ""
        for name in ("default", "kube-system"):
            ns = namespace_object(name, self.uid(), self.timestamp(clock.now()))
            self.write("Namespace", None, name, ns, "ADDED")

    def timestamp(self, epoch: float) -> str:
        """Return a clock time as RFC 3339 text (whole seconds), as the objects carry it."""
        second = math.floor(epoch)
        # Writes cluster around the same second: the text of the last one saves a strftime
        # per write (one cluster, under its lock).
        if second != self._stamp_second:
            self._stamp_text = format_rfc3339(second)
            self._stamp_second = second
        return self._stamp_text

    # -- writes ---------------------------------------------------------------------------

    def write(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        type_: str,
        prev: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store a new version (``obj['metadata']`` must be a dict owned by this version)."""
        self.rv = rv = self.rv + 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(rv)
        self.objects[kind][(namespace, name)] = obj
        self._record(rv, kind, namespace, name, type_, obj, prev)
        if type_ == "ADDED":
            self.uids[meta["uid"]] = (kind, namespace, name)
            refs = meta.get("ownerReferences")
            if refs:
                self._own(kind, namespace, name, refs)
            if kind == "Namespace":
                # The controller-manager's root-ca-cert-publisher puts this ConfigMap in every
                # namespace; code that lists ConfigMaps sees it on a real cluster too.
                ca = _root_ca_config_map(name, self.uid(), meta["creationTimestamp"])
                self.write("ConfigMap", name, ROOT_CA_CONFIG_MAP, ca, "ADDED")
        elif prev is not None:
            # An update may add, swap or drop owners (the runner ties its Secret to the pod
            # with a patch): the garbage collector follows the current references.
            refs = meta.get("ownerReferences")
            old_refs = prev["metadata"].get("ownerReferences")
            if refs != old_refs:
                self._disown(kind, namespace, name, old_refs)
                if refs:
                    self._own(kind, namespace, name, refs)
        return obj

    def remove(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        final: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Delete an object for good (a ``DELETED`` event) and collect its dependents.

        ``final`` is the object's last content when an update deletes it (its last
        finalizer removed): the server sends only the ``DELETED`` event, with that content.
        """
        old = self.objects[kind].pop((namespace, name), None)
        if old is not None and kind == "Pod":
            forget_spec(old.get("spec"))
        if old is not None and final is not None:
            old = final
        if old is None:
            return None
        self.rv = rv = self.rv + 1
        gone = dict(old)
        gone["metadata"] = meta = dict(old["metadata"])
        meta["resourceVersion"] = str(rv)
        self._record(rv, kind, namespace, name, "DELETED", gone, old)
        if kind != "Event":  # Events keep no versions, so they must not push others out
            deleted = self.deleted
            deleted.append((kind, namespace, name))
            if len(deleted) > self.keep_deleted:
                key = deleted.popleft()
                if (key[1], key[2]) not in self.objects[key[0]]:
                    self.versions.pop(key, None)
        uid = str(meta.get("uid"))
        self.uids.pop(uid, None)
        self._disown(kind, namespace, name, meta.get("ownerReferences"))
        dependents = self.dependents.pop(uid, None)
        if dependents:
            for dep in sorted(dependents, key=str):
                self._collect(dep)
        return gone

    def _record(
        self,
        rv: int,
        kind: str,
        namespace: str | None,
        name: str,
        type_: str,
        obj: dict[str, Any],
        prev: dict[str, Any] | None,
    ) -> None:
        hist = self.hist
        hist.append((rv, kind, namespace, name, type_, obj, prev))
        if len(hist) > 2 * self.limit:
            # Trim in batches: O(1) amortised, and indexing by version stays a subtraction.
            cut = len(hist) - self.limit
            del hist[:cut]
            self.hist_base += cut
        if kind != "Event":
            key = (kind, namespace, name)
            versions = self.versions.get(key)
            if versions is None:
                self.versions[key] = [obj]
            else:
                versions.append(obj)
        self.clock.notify()

    def oldest(self) -> int:
        """Return the oldest resourceVersion whose event is still in the watch window."""
        return max(self.hist_base, self.rv - self.limit + 1)

    # -- ownership ------------------------------------------------------------------------

    def collect_pending(self) -> None:
        """Collect the dependents made without a live owner (the garbage collector's lag)."""
        pending, self.pending_gc = self.pending_gc, []
        for dep in pending:
            self._collect(dep)

    def _own(self, kind: str, namespace: str | None, name: str, refs: list[Any]) -> None:
        if kind == "Event":
            return  # the garbage collector ignores Events (its default ignored resources)
        alive = False
        for ref in refs:
            uid = ref.get("uid") if isinstance(ref, dict) else None
            if not isinstance(uid, str):
                continue
            self.dependents.setdefault(uid, set()).add((kind, namespace, name))
            if uid in self.uids:
                alive = True
        if not alive:
            # The garbage collector deletes dependents whose owners are all gone, including
            # owners that never existed; it does so shortly after, not inside the create:
            # before the next API call, or when the clock moves, whichever comes first.
            dep = (kind, namespace, name)
            self.pending_gc.append(dep)
            self.clock.call_later(0.0, lambda: self._collect(dep))

    def _disown(self, kind: str, namespace: str | None, name: str, refs: object) -> None:
        # Forget the object as a dependent of these owners (it was deleted or its references
        # changed), so an owner's deletion never touches an object that no longer names it.
        if not isinstance(refs, list):
            return
        dep = (kind, namespace, name)
        for ref in refs:
            uid = ref.get("uid") if isinstance(ref, dict) else None
            if not isinstance(uid, str):
                continue
            deps = self.dependents.get(uid)
            if deps is not None:
                deps.discard(dep)
                if not deps:
                    del self.dependents[uid]

    def _collect(self, dep: tuple[str, str | None, str]) -> None:
        kind, namespace, name = dep
        obj = self.objects[kind].get((namespace, name))
        if obj is None:
            return
        refs = obj["metadata"].get("ownerReferences") or []
        owned = False
        for ref in refs:
            uid = ref.get("uid") if isinstance(ref, dict) else None
            if not isinstance(uid, str):
                continue
            if uid in self.uids:
                return
            owned = True
        if not owned:
            return  # no owner at all (e.g. made again under the same name): never garbage
        if self.gc_delete is not None:
            self.gc_delete(kind, namespace, name)

    # -- Events ---------------------------------------------------------------------------

    def emit_event(
        self,
        involved: dict[str, Any],
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        component: str = "kubelet",
        host: str | None = "fake-node-1",
        field_path: str | None = None,
    ) -> None:
        """Record an Event about ``involved`` as a kubelet or scheduler would.

        Identical events (same object, reason, message and source) are aggregated into one
        Event whose ``count`` and ``lastTimestamp`` move, as the client-go recorder does.
        """
        meta = involved["metadata"]
        uid = meta.get("uid")
        now = self.clock.now()
        stamp = self.timestamp(now)
        key = (uid, reason, message, component, field_path)
        existing = self.event_index.get(key)
        if existing is not None and self._count_again(existing, key, stamp):
            return
        namespace = meta.get("namespace") or "default"
        self.event_seq += 1
        name = f"{meta['name']}.{int(now * 1e9) + self.event_seq:x}"
        event = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": self.uid(),
                "creationTimestamp": stamp,
            },
            "involvedObject": self._reference(involved, namespace, field_path),
            "reason": reason,
            "message": message,
            "source": self._source(component, host),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        self.event_index[key] = where = (namespace, name)
        self.write("Event", namespace, name, event, "ADDED")
        self._lease(where, key)

    def _count_again(self, where: Key, key: tuple[Any, ...], stamp: str) -> bool:
        """Count one more occurrence of the Event at ``where``; ``False`` if it is gone."""
        old = self.objects["Event"].get(where)
        if old is None:
            return False
        new = dict(old)
        new["metadata"] = dict(old["metadata"])
        new["count"] = old.get("count", 1) + 1
        new["lastTimestamp"] = stamp
        self.write("Event", where[0], where[1], new, "MODIFIED", old)
        self._lease(where, key)
        return True

    def _reference(
        self, involved: dict[str, Any], namespace: str, field_path: str | None
    ) -> dict[str, Any]:
        """The ``involvedObject`` of an Event: shared by the Events about one pod version."""
        meta = involved["metadata"]
        uid = meta.get("uid")
        ref_key = (uid, meta.get("resourceVersion", ""), field_path)
        ref = self._refs.get(ref_key)
        if ref is None:
            ref = {
                "kind": involved.get("kind", "Pod"),
                "namespace": namespace,
                "name": meta["name"],
                "uid": uid or "",
                "apiVersion": "v1",
                "resourceVersion": ref_key[1],
            }
            if field_path:
                ref["fieldPath"] = field_path
            if len(self._refs) >= 64:
                self._refs.clear()  # only the pod versions being recorded right now matter
            self._refs[ref_key] = ref
        return ref

    def _source(self, component: str, host: str | None) -> dict[str, str]:
        source = self._sources.get((component, host))
        if source is None:
            source = {"component": component}
            if host:
                source["host"] = host
            self._sources[(component, host)] = source
        return source

    def _lease(self, where: Key, index_key: tuple[Any, ...]) -> None:
        due = self.clock.monotonic() + self.event_ttl
        self.event_expiry.append((due, where))
        self.event_due[where] = (due, index_key)

    def expire_events(self) -> None:
        """Delete the Events whose time to live has passed (a ``DELETED`` event each)."""
        expiry = self.event_expiry
        now = self.clock.monotonic()
        while expiry and expiry[0][0] <= now:
            due, where = expiry.popleft()
            current = self.event_due.get(where)
            if current is None or current[0] != due:
                continue  # renewed since, or already gone
            del self.event_due[where]
            if self.event_index.get(current[1]) == where:
                del self.event_index[current[1]]
            self.remove("Event", where[0], where[1])


ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
_FAKE_CA = (
    "-----BEGIN CERTIFICATE-----\n"
    "ZmFrZSBjbHVzdGVyIENBOiBwb2RydW5uZXIncyBpbi1tZW1vcnkgS3ViZXJuZXRlcw==\n"
    "-----END CERTIFICATE-----\n"
)


def _root_ca_config_map(namespace: str, uid: str, created: str) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": ROOT_CA_CONFIG_MAP,
            "namespace": namespace,
            "uid": uid,
            "creationTimestamp": created,
            "annotations": {
                "kubernetes.io/description": (
                    "Contains a CA bundle that can be used to verify the kube-apiserver when "
                    "using internal endpoints such as the internal service IP or "
                    "kubernetes.default.svc. No other usage is guaranteed across distributions "
                    "of Kubernetes clusters."
                )
            },
        },
        "data": {"ca.crt": _FAKE_CA},
    }


def namespace_object(name: str, uid: str, created: str) -> dict[str, Any]:
    """Return a new Namespace object as the API server would create it."""
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": uid,
            "creationTimestamp": created,
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
