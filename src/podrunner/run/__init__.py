"""The run engine: the pure run core, and the threaded driver that performs its actions.

One folder per stage: ``state`` (pod -> PodState), ``core`` (the run's rules, no I/O),
``outcome`` (RunResult and the final state -> result/error mapping), ``logs`` (the
LogCollector), ``retry`` (RetryingBackend), ``watch`` (the shared watch), ``follow`` (the log
follower thread), ``handle`` (RunHandle), ``many`` (run_many), ``runner`` (PodRunner).
"""

from __future__ import annotations

from podrunner.manifest.plan import EXPIRES_ANNOTATION
from podrunner.run.handle import RunHandle
from podrunner.run.outcome import ReapReport, RunResult
from podrunner.run.retry import RetryingBackend, RetryPolicy
from podrunner.run.runner import PodRunner
from podrunner.run.state import Phase, PodState, Reason, reduce

__all__ = [
    "EXPIRES_ANNOTATION",
    "Phase",
    "PodRunner",
    "PodState",
    "ReapReport",
    "Reason",
    "RetryPolicy",
    "RetryingBackend",
    "RunHandle",
    "RunResult",
    "reduce",
]
