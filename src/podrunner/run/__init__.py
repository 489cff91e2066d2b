"""The run engine: the pure run core, and the driver that performs its actions."""

from __future__ import annotations

from podrunner.run.runner import (
    EXPIRES_ANNOTATION,
    PodRunner,
    ReapReport,
    RetryPolicy,
    RunHandle,
    RunResult,
)
from podrunner.run.state import Phase, PodState, Reason, reduce

__all__ = [
    "EXPIRES_ANNOTATION",
    "Phase",
    "PodRunner",
    "PodState",
    "ReapReport",
    "Reason",
    "RetryPolicy",
    "RunHandle",
    "RunResult",
    "reduce",
]
