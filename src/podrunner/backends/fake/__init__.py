"""The in-memory fake cluster: a Kubernetes API server, scheduler and kubelet in one process.

``FakeCluster`` is what tests build; its ``backend`` implements
:class:`~podrunner.backends.base.Backend` and its ``async_backend``
:class:`~podrunner.backends.base.AsyncBackend`. See ``docs/fake-cluster.md``.
"""

from __future__ import annotations

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
]
