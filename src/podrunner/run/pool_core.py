"""The warm pool's rules, without I/O: shared by :class:`PodPool` and :class:`AsyncPodPool`.

A pool keeps ``size`` pods of one spec started, with the spec's command replaced by a holder
(``sleep infinity``) that keeps the container alive, and hands one out per run. The drivers
(:mod:`podrunner.run.pool` with threads, :mod:`podrunner.run.aio_pool` with asyncio) list and
watch the pool's pods and feed what they see to a :class:`PoolCore`; the core answers which pod
to claim, which pods to create, delete or renew, and when to look again. Everything a pod's
role depends on is on the pod itself, so two processes sharing a pool agree:

- ``podrunner.dev/pool`` (label): the pool's name; every pod of the pool carries it.
- ``podrunner.dev/pool-owner`` (label): the pool object that made the pod and renews it.
- ``podrunner.dev/pool-state`` (label): ``warm`` (free) or ``claimed`` (one run holds it).
- ``podrunner.dev/claim-id`` (annotation): which run holds a claimed pod.
- ``podrunner.dev/expires-at`` (annotation, as on every run's objects): when
  :meth:`PodRunner.reap` may delete the pod. A warm pod's expiry is renewed by its owner while
  the pool lives; a claim sets it to the run's deadline plus a margin.

A claim is a ``replace`` carrying the ``resourceVersion`` the claimer saw: of two claimers of
one pod the API server accepts one and answers the other ``409 Conflict``, so two processes
never hold the same pod.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import math
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from podrunner._time import epoch_of, format_rfc3339
from podrunner._validation import dns1123_label_error, dns1123_subdomain_error
from podrunner.backends.base import WatchEvent
from podrunner.errors import (
    BackendError,
    BadRequest,
    Forbidden,
    Invalid,
    RunError,
    SpecError,
    Unauthorized,
)
from podrunner.manifest import MANAGED_BY, MANAGED_BY_LABEL, MANAGED_SELECTOR, build_manifests
from podrunner.manifest.plan import EXPIRES_ANNOTATION, RunPlan, plan_run
from podrunner.run.outcome import is_fail_fast
from podrunner.run.state import PodState, Reason, reduce
from podrunner.spec import EgressPolicy, PodSpec

__all__ = [
    "CLAIMED",
    "CLAIM_ANNOTATION",
    "FATAL",
    "OWNER_LABEL",
    "POOL_LABEL",
    "STATE_LABEL",
    "WARM",
    "PoolCore",
    "PoolOptions",
    "PoolWork",
    "check_member",
    "claim_body",
    "claim_of",
    "new_claim_id",
    "new_owner_id",
    "plan_pool_pod",
    "pool_options",
    "pool_pod_spec",
    "pool_selector",
    "pool_selectors",
    "release_patch",
    "renew_body",
]

POOL_LABEL = "podrunner.dev/pool"
OWNER_LABEL = "podrunner.dev/pool-owner"
STATE_LABEL = "podrunner.dev/pool-state"
CLAIM_ANNOTATION = "podrunner.dev/claim-id"
WARM = "warm"
CLAIMED = "claimed"
DEFAULT_HOLDER: tuple[str, ...] = ("sleep", "infinity")

FATAL: tuple[type[BackendError], ...] = (BadRequest, Forbidden, Invalid, Unauthorized)
"""Errors that stop a pool from making pods until something changes (a spec the server
refuses, missing rights): a run that finds no warm pod raises them instead of waiting."""

_NAME_MAX = 40  # leaves room for the generated pod-name suffix within 63 characters
_RESYNC = 60.0  # at most this long between two full lists of the pool's pods


@attrs.frozen
class PoolOptions:
    """A pool's settings, checked (see :func:`pool_options`).

    Attributes:
        size: Pods kept warm.
        name: The pool's name (label value); pools of one name share their pods.
        holder: The command that keeps a pool pod alive while it waits.
        recycle: Give a pod back to the pool after a run instead of deleting it.
        lease: Seconds a warm pod's expiry reaches ahead; renewed every third of it.
        max_age: Seconds a pool pod may live (its ``activeDeadlineSeconds``); a warm pod is
            replaced once half of it has passed. ``None``: no limit.
        start_timeout: Seconds a run waits for a warm pod.
        claim_margin: Seconds added to a run's timeout for its claim's expiry.
    """

    size: int
    name: str
    holder: tuple[str, ...]
    recycle: bool
    lease: float
    max_age: float | None
    start_timeout: float
    claim_margin: float = 30.0
    pod_name: str | None = None
    """The one pod's fixed name (a pool of size 1 found by name, as a worker is)."""


def _positive(field: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise SpecError(field, value, "must be a positive number of seconds")


def pool_options(
    *,
    size: object,
    name: object,
    holder: object,
    recycle: object,
    lease: object,
    max_age: object,
    start_timeout: object,
    pod_name: object = None,
) -> PoolOptions:
    """Check a pool's settings before any API call.

    Raises:
        SpecError: Naming the field, the value and the rule it breaks.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise SpecError("size", size, "must be an integer of at least 1")
    if name is None and isinstance(pod_name, str):
        # Pools of one pod_name share their pod by default: the name follows from it.
        name = f"pod-{hashlib.sha256(pod_name.encode()).hexdigest()[:12]}"
    if name is None:
        name = f"pool-{secrets.token_hex(4)}"
    if not isinstance(name, str) or dns1123_label_error(name) or len(name) > _NAME_MAX:
        rule = f"must be a DNS-1123 label of at most {_NAME_MAX} characters"
        raise SpecError("name", name, rule)
    if isinstance(holder, (str, bytes)) or not isinstance(holder, Sequence) or not holder:
        raise SpecError("holder", holder, "must be a non-empty list of strings (an argv)")
    if not all(isinstance(a, str) for a in holder):
        raise SpecError("holder", holder, "must be a non-empty list of strings (an argv)")
    if not isinstance(recycle, bool):
        raise SpecError("recycle", recycle, "must be True or False")
    _positive("lease", lease)
    _positive("max_age", max_age, allow_none=True)
    _positive("start_timeout", start_timeout)
    if max_age is not None and float(max_age) < 2 * float(lease):  # type: ignore[arg-type]
        raise SpecError("max_age", max_age, f"must be at least twice the lease ({lease} s)")
    if pod_name is not None:
        if not isinstance(pod_name, str) or dns1123_subdomain_error(pod_name):
            raise SpecError("pod_name", pod_name, "must be a DNS-1123 subdomain (a pod name)")
        if size != 1:
            raise SpecError("size", size, "must be 1 when pod_name is set (one pod, one name)")
    return PoolOptions(
        size=size,
        name=name,
        holder=tuple(holder),
        recycle=recycle,
        lease=float(lease),  # type: ignore[arg-type]
        max_age=None if max_age is None else float(max_age),  # type: ignore[arg-type]
        start_timeout=float(start_timeout),  # type: ignore[arg-type]
        pod_name=pod_name,
    )


def pool_pod_spec(spec: object, options: PoolOptions, owner: str) -> PodSpec:
    """The spec of the pool's pods: ``spec`` with the holder as command and the pool's labels.

    Raises:
        SpecError: ``spec`` is not a PodSpec, names its pod (pool pods need generated names)
            or asks for ``stdin``.
    """
    if not isinstance(spec, PodSpec):
        raise SpecError("spec", type(spec).__name__, "must be a PodSpec")
    if spec.name is not None and spec.name != options.pod_name:
        raise SpecError(
            "spec.name", spec.name, "must be unset: pool pods get generated names (or pod_name)"
        )
    if spec.stdin:
        raise SpecError("spec.stdin", True, "is not supported in a pool (pass stdin to run)")
    labels = {**spec.labels, POOL_LABEL: options.name, OWNER_LABEL: owner, STATE_LABEL: WARM}
    ads = None if options.max_age is None else math.ceil(options.max_age)
    if spec.active_deadline_seconds is not None:
        ads = (
            spec.active_deadline_seconds if ads is None else min(ads, spec.active_deadline_seconds)
        )
    return attrs.evolve(
        spec,
        command=options.holder,
        labels=labels,
        name=options.pod_name,
        name_prefix=None if options.pod_name else spec.name_prefix or options.name,
        active_deadline_seconds=ads,
    )


def plan_pool_pod(
    spec: PodSpec,
    *,
    namespace: str,
    now: float,
    egress: EgressPolicy | None,
    lease: float,
    objects_ttl: float,
    deadline_margin: float,
) -> RunPlan:
    """One pool pod's objects, planned: the pod's expiry is ``lease`` seconds ahead.

    Its Secret and ConfigMap, owned by the pod, carry ``objects_ttl`` (they go with it).
    """
    plan = plan_run(
        build_manifests(spec, egress=egress),
        namespace=namespace,
        now=now,
        total=None,
        default_ttl=objects_ttl,
        deadline_margin=deadline_margin,
    )
    plan.pod["metadata"]["annotations"][EXPIRES_ANNOTATION] = format_rfc3339(now + lease)
    return plan


def new_owner_id() -> str:
    """A fresh id for one pool object (the owner label of the pods it makes)."""
    return secrets.token_hex(6)


def new_claim_id() -> str:
    """A fresh id for one claim (the claim annotation, and the run's ``run_id``)."""
    return f"claim-{secrets.token_hex(6)}"


def pool_selector(name: str) -> str:
    """The label selector of every pod of the pool ``name``."""
    return f"{MANAGED_SELECTOR},{POOL_LABEL}={name}"


def pool_selectors(options: PoolOptions) -> tuple[str | None, str | None]:
    """The label and field selectors that list and watch a pool's pods.

    A pool of one named pod follows that name, whatever its labels: a pod someone else put
    under the name is seen (and refused), not mistaken for a free name.
    """
    if options.pod_name is not None:
        return None, f"metadata.name={options.pod_name}"
    return pool_selector(options.name), None


def check_member(obj: Mapping[str, Any], pool: str) -> None:
    """Refuse an object found under a pool's names that was not made for the pool.

    The default check of :class:`PodPool` ``adopt``: made by podrunner and labelled with the
    pool's name.

    Raises:
        RunError: Naming the object and why it is not the pool's.
    """
    labels = _labels(obj)
    meta = obj.get("metadata") or {}
    what = f"{obj.get('kind', 'Pod')} {meta.get('namespace')}/{meta.get('name')}"
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or labels.get(POOL_LABEL) != pool:
        raise RunError(
            f"{what} is not a pod of pool {pool!r} (it lacks the pool's labels); it was "
            "left untouched",
            pod_name=str(meta.get("name")),
            namespace=str(meta.get("namespace")),
        )


def claim_body(pod: Mapping[str, Any], claim_id: str, expires: float) -> dict[str, Any]:
    """The pod marked claimed by ``claim_id``, for a ``replace`` conditional on its version.

    The body keeps the ``resourceVersion`` the claimer saw: the API server refuses it with
    ``409 Conflict`` when the pod changed since (another claim landed first).
    """
    body = copy.deepcopy(dict(pod))
    body.pop("status", None)
    meta = body["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), STATE_LABEL: CLAIMED}
    annotations = dict(meta.get("annotations") or {})
    annotations[CLAIM_ANNOTATION] = claim_id
    annotations[EXPIRES_ANNOTATION] = format_rfc3339(expires)
    meta["annotations"] = annotations
    return body


def release_patch(expires: float) -> dict[str, Any]:
    """The merge patch that gives a claimed pod back to the pool (``recycle``)."""
    return {
        "metadata": {
            "labels": {STATE_LABEL: WARM},
            "annotations": {CLAIM_ANNOTATION: None, EXPIRES_ANNOTATION: format_rfc3339(expires)},
        }
    }


def renew_body(pod: Mapping[str, Any], expires: float) -> dict[str, Any]:
    """A warm pod with its expiry moved to ``expires``, for a conditional ``replace``.

    It keeps the version it was seen at: a claim that landed meanwhile (with the claim's own
    expiry) is never undone by a renewal.
    """
    body = copy.deepcopy(dict(pod))
    body.pop("status", None)
    meta = body["metadata"]
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        EXPIRES_ANNOTATION: format_rfc3339(expires),
    }
    return body


def claim_of(pod: Mapping[str, Any]) -> str | None:
    """The claim id a pod carries, if any."""
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(CLAIM_ANNOTATION)


# -- what the core asks for -------------------------------------------------------------------


@attrs.frozen
class PoolWork:
    """What a driver does after telling the core what it saw.

    Attributes:
        create: How many pods to create.
        delete: Pods to delete (dead, expired, too old, or left by a crashed claimer).
        renew: Warm pods of this pool object whose expiry to move ahead.
    """

    create: int = 0
    delete: tuple[str, ...] = ()
    renew: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.create or self.delete or self.renew)


def _labels(pod: Mapping[str, Any]) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Running, every container ready, and not being deleted: a pod that may be claimed."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
    return bool(ready) and ready[0].get("status") == "True"


def _dead(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class PoolCore:
    """The pool's book-keeping and decisions (see the module docstring).

    Not thread-safe: the threaded driver calls it under one lock, the async one from its loop.

    Args:
        options: The pool's settings.
        owner: This pool object's id (the owner label of the pods it makes).
        rng: Picks among free pods (seed it for a repeatable choice).
    """

    def __init__(
        self,
        options: PoolOptions,
        owner: str,
        rng: random.Random | None = None,
        *,
        vet: bool = False,
    ) -> None:
        self.options = options
        self.owner = owner
        self.vet = vet or options.pod_name is not None
        """Whether a pod must pass the driver's check (:meth:`vetted`) before it is used."""
        self.accepted: set[str] = set()
        """Uids of pods the check found to be the pool's."""
        self.refused: dict[str, BaseException] = {}
        """Uids of pods the check refused, with why: never used, renewed or deleted."""
        self.rng = rng or random.Random()  # noqa: S311 (spreads claims; not a secret)
        self.lost = 0
        """Claims this process lost to another claimer (or to a change of the pod)."""
        self.pods: dict[str, dict[str, Any]] = {}
        """The pool's pods as last seen, by name (every owner's)."""
        self.taking: set[str] = set()
        """Pods a run of this process is claiming right now (not offered twice)."""
        self.creating = 0
        """Creates under way (counted as pods, so a refill is not asked twice)."""
        self.deleting: set[str] = set()
        """Pods this pool asked to delete (not counted, not claimed)."""
        self.ahead: dict[str, str] = {}
        """Pods known from this process's own write before the watch brings it: the
        ``resourceVersion`` written, and older events of the pod are not taken in."""
        self._seen: dict[str, collections.deque[str | None]] = {}
        # The latest versions the watch brought, per pod: a write whose version is among
        # them is already known.

    def listed(self, items: Iterable[dict[str, Any]]) -> None:
        """A fresh list of the pool's pods replaces what was known."""
        self.pods = {p["metadata"]["name"]: p for p in items}
        self.deleting &= set(self.pods)
        self.ahead.clear()
        self._seen.clear()

    def event(self, event: WatchEvent) -> None:
        """A watch event about one of the pool's pods."""
        if event.type not in ("ADDED", "MODIFIED", "DELETED"):
            return
        name = event.object["metadata"]["name"]
        if event.type == "DELETED":
            self.pods.pop(name, None)
            self.deleting.discard(name)
            self.taking.discard(name)
            self.ahead.pop(name, None)
            self._seen.pop(name, None)
            uid = event.object["metadata"].get("uid")
            self.accepted.discard(uid)
            self.refused.pop(uid, None)
        else:
            version = event.object["metadata"].get("resourceVersion")
            self._seen.setdefault(name, collections.deque(maxlen=16)).append(version)
            if name in self.ahead:
                # Older than what this process wrote (a claim, a release) until the write's
                # own event arrives: a stale claimed version would look expired later.
                if version != self.ahead[name]:
                    return
                del self.ahead[name]
            self.pods[name] = event.object

    def to_vet(self) -> list[dict[str, Any]]:
        """Pods seen that the driver has not checked yet (none when the pool does not vet)."""
        if not self.vet:
            return []
        known = self.accepted | set(self.refused)
        return [p for p in self.pods.values() if p["metadata"].get("uid") not in known]

    def vetted(self, pod: Mapping[str, Any], error: BaseException | None) -> None:
        """The driver's check of ``pod``: the pool's (``error`` is ``None``) or refused."""
        uid = str(pod["metadata"].get("uid"))
        if error is None:
            self.accepted.add(uid)
        else:
            self.refused[uid] = error

    def refusal(self) -> BaseException | None:
        """Why the pool cannot use its pod's name: a refused pod holds it (``None``: none)."""
        for pod in self.pods.values():
            error = self.refused.get(pod["metadata"].get("uid"))
            if error is not None and pod["metadata"]["name"] == self.options.pod_name:
                return error
        return None

    def usable(self, pod: Mapping[str, Any]) -> bool:
        """Whether the pool may use, renew or delete ``pod`` (it passed the check, if any)."""
        return not self.vet or pod["metadata"].get("uid") in self.accepted

    def mine(self, pod: Mapping[str, Any]) -> bool:
        """Whether this pool object renews and refills ``pod``.

        It made it, or it is the pool's one named pod and passed the check.
        """
        if not self.usable(pod):
            return False
        named = self.options.pod_name
        if named is not None:
            return bool(pod["metadata"]["name"] == named)
        return _labels(pod).get(OWNER_LABEL) == self.owner

    def _free(self, pod: Mapping[str, Any]) -> bool:
        # A named pod made before it was a pool's (an older worker's) has no state: free.
        unset = WARM if pod["metadata"]["name"] == self.options.pod_name else None
        return (
            _labels(pod).get(STATE_LABEL, unset) == WARM
            and pod["metadata"]["name"] not in self.deleting
            and self.usable(pod)
        )

    def start_failure(self) -> tuple[str, PodState] | None:
        """A pod of this pool object that will not start by itself, when none is warm.

        A bad image, a container that cannot be created, a failed init container.
        """
        if self.warm():
            return None
        for pod in self.pods.values():
            if self.mine(pod) and pod["metadata"]["name"] not in self.deleting:
                state = reduce(pod)
                if is_fail_fast(state) and state.reason is not Reason.UNSCHEDULABLE:
                    return pod["metadata"]["name"], state
        return None

    def unschedulable(self) -> tuple[str, PodState] | None:
        """A pod of this pool object the scheduler refused.

        Reported when a wait times out: an autoscaler may still bring a node until then.
        """
        for pod in self.pods.values():
            if self.mine(pod):
                state = reduce(pod)
                if state.reason is Reason.UNSCHEDULABLE:
                    return pod["metadata"]["name"], state
        return None

    def _retiring(self, pod: Mapping[str, Any], now: float) -> bool:
        """A pod past half its life is replaced while warm (a run then has the other half)."""
        if self.options.max_age is None:
            return False
        created = epoch_of(pod["metadata"].get("creationTimestamp"))
        return created is not None and now - created >= self.options.max_age / 2

    def take(self, now: float) -> dict[str, Any] | None:
        """A warm, ready pod to claim (oldest first), marked as being taken; ``None``: none."""
        free = [
            p
            for p in self.pods.values()
            if self._free(p)
            and p["metadata"]["name"] not in self.taking
            and is_ready(p)
            and not self._retiring(p, now)
        ]
        if not free:
            return None
        # A random free pod, not the oldest: claimers of other processes, who see the same
        # pods, then rarely race for the same one.
        pod = self.rng.choice(sorted(free, key=lambda p: str(p["metadata"]["name"])))
        self.taking.add(pod["metadata"]["name"])
        return pod

    def taken(self, name: str, stored: dict[str, Any] | None) -> None:
        """A claim of ``name`` ended: won (``stored`` is the claimed pod) or lost (``None``)."""
        self.taking.discard(name)
        if stored is not None:
            self._wrote(stored)
        else:
            # Lost to another claimer (or gone): never offer this version again; the watch
            # brings the pod's new state.
            self.lost += 1
            self.pods.pop(name, None)

    def released(self, stored: dict[str, Any]) -> None:
        """A run gave ``stored`` back (recycle): offer it now, before the watch tells."""
        name = stored["metadata"]["name"]
        if name in self.pods or self.mine(stored):
            self._wrote(stored)

    def _wrote(self, stored: dict[str, Any]) -> None:
        """Take in a version this process wrote, unless the watch brought it already.

        What the watch brought is then as new as the write, or newer.
        """
        name = stored["metadata"]["name"]
        version = stored["metadata"].get("resourceVersion")
        if version and version in self._seen.get(name, ()):
            return
        self.pods[name] = stored
        if version:
            self.ahead[name] = version

    def retiring(self, stored: dict[str, Any]) -> None:
        """This process claimed ``stored`` to delete it (close, refresh): gone for the pool."""
        self._wrote(stored)
        self.deleting.add(stored["metadata"]["name"])

    def warm(self) -> int:
        """Pods of this pool object that are warm and ready now."""
        return sum(1 for p in self.pods.values() if self.mine(p) and self._free(p) and is_ready(p))

    def work(self, now: float) -> PoolWork:
        """What to do now: refill to ``size``, delete dead, expired or extra pods, renew.

        A pod claimed from a ``recycle`` pool counts toward ``size`` (it comes back); from
        a deleting pool it does not (it is about to go: the refill starts at once). Free pods
        beyond ``size`` (one run recycled a pod of a deleting pool) are deleted, newest first.
        """
        delete: list[str] = []
        renew: list[str] = []
        free: list[dict[str, Any]] = []
        held = 0
        for name, pod in self.pods.items():
            if name in self.deleting or not self.usable(pod):
                continue
            expires = epoch_of((pod["metadata"].get("annotations") or {}).get(EXPIRES_ANNOTATION))
            expired = expires is not None and expires <= now
            if _dead(pod) or (expired and not (self.mine(pod) and self._free(pod))):
                # What the reaper would delete, whoever made it; a free pod of this pool
                # object whose lease lapsed (its renewal was late, say) is renewed instead.
                delete.append(name)
            elif not self.mine(pod):
                continue
            elif not self._free(pod):
                held += self.options.recycle
            elif self._retiring(pod, now) and name not in self.taking:
                delete.append(name)
            else:
                # A pod being claimed still counts until its claim lands (a lost claim
                # leaves it warm); it is not renewed meanwhile, which would void the claim.
                free.append(pod)
                due = expires is None or expires - now < self.options.lease * 2 / 3
                if due and name not in self.taking:
                    renew.append(name)
        extra = len(free) + held - self.options.size
        if extra > 0:
            spare = [p for p in free if p["metadata"]["name"] not in self.taking]
            spare.sort(key=lambda p: str(p["metadata"].get("creationTimestamp") or ""))
            gone = [p["metadata"]["name"] for p in spare[max(0, len(spare) - extra) :]]
            delete += gone
            renew = [n for n in renew if n not in gone]
        self.deleting.update(delete)
        create = max(0, self.options.size - len(free) - held - self.creating)
        if self.options.pod_name in self.pods:
            create = 0  # the name is taken (by a pod going away, or refused): wait for it
        return PoolWork(create=create, delete=tuple(delete), renew=tuple(renew))

    def next_look(self, now: float) -> float:
        """Seconds until :meth:`work` may have something new to do without any event."""
        wake = now + _RESYNC
        for pod in self.pods.values():
            if not self.mine(pod):
                continue
            meta = pod["metadata"]
            expires = epoch_of((meta.get("annotations") or {}).get(EXPIRES_ANNOTATION))
            if expires is not None:
                wake = min(wake, expires - self.options.lease * 2 / 3)
            created = epoch_of(meta.get("creationTimestamp"))
            if self.options.max_age is not None and created is not None:
                wake = min(wake, created + self.options.max_age / 2)
        return max(1.0, wake - now)

    def expiry(self, now: float) -> float:
        """The expiry of a warm pod renewed (or made) at ``now``."""
        return now + self.options.lease

    def claim_expiry(self, now: float, timeout: float | None, default_ttl: float) -> float:
        """The expiry of a claim made at ``now`` for a run of ``timeout`` seconds."""
        if timeout is None:
            return now + default_ttl
        return now + timeout + self.options.claim_margin
