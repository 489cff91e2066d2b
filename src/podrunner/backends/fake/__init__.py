"""The in-memory fake cluster: a Kubernetes API server, scheduler and kubelet in one process.

``FakeCluster`` is what tests build; its ``backend`` implements
:class:`~podrunner.backends.base.Backend` and its ``async_backend``
:class:`~podrunner.backends.base.AsyncBackend`. See ``docs/fake-cluster.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from podrunner.backends.fake.clock import RealTimeClock, VirtualClock
from podrunner.backends.fake.cluster import Action, FakeBackend, FakeCluster
from podrunner.backends.fake.faults import FaultRule
from podrunner.backends.fake.scripting import (
    ANNOTATION_DURATION,
    ANNOTATION_EXIT_CODE,
    ANNOTATION_FAILURE,
    ANNOTATION_LOGS,
    ContainerContext,
    ExecRequest,
    Outcome,
    Rule,
)

if TYPE_CHECKING:
    from podrunner.backends.fake.aio import AsyncFakeBackend


def async_backend_of(cluster: FakeCluster) -> AsyncFakeBackend:
    """The :class:`~podrunner.backends.base.AsyncBackend` to hand to an ``AsyncPodRunner``.

    The same store, scripting, faults and clock as ``backend``; loaded on first use, so the
    sync fake never imports :mod:`asyncio`.
    """
    found: AsyncFakeBackend | None = vars(cluster).get("_async_backend")
    if found is None:
        from podrunner.backends.fake.aio import AsyncFakeBackend

        found = vars(cluster)["_async_backend"] = AsyncFakeBackend(cluster)
    return found


# TODO(issue 16): a property of FakeCluster itself (so type checkers see it) once the split
# of cluster.py has landed; cluster.py is being split by another change and stays untouched.
setattr(FakeCluster, "async_backend", property(async_backend_of))  # noqa: B010

__all__ = [
    "ANNOTATION_DURATION",
    "ANNOTATION_EXIT_CODE",
    "ANNOTATION_FAILURE",
    "ANNOTATION_LOGS",
    "Action",
    "ContainerContext",
    "ExecRequest",
    "FakeBackend",
    "FakeCluster",
    "FaultRule",
    "Outcome",
    "RealTimeClock",
    "Rule",
    "VirtualClock",
    "async_backend_of",
]
